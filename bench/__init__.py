"""warmci's benchmark: warmci against its baselines, side by side, in one run (see docs/bench.md)."""
