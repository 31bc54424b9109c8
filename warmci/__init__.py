"""warmci: a CI runner on doit that skips what did not change."""

__version__ = "0.1.0"
