"""The pipeline file: model (what a validated pipeline is), table and reading (TOML in), checks (across jobs)."""
