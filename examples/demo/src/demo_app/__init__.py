"""warmci-demo: a tiny data-table app (Python server + JS front end)."""

__version__ = "0.1.0"
DIST_NAME = "warmci-demo"
