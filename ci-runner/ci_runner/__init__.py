"""ci-runner: the service around doit — GitHub pushes in, commit statuses out.

A webhook receiver verifies and persists deliveries, a SQLite queue keeps
runs across restarts, a worker checks each SHA out in the repository's own
checkout and runs `doit` there as a subprocess, and a poster sends commit
statuses to GitHub. The service never imports the runner's task code: it
reads doit's exit code and results.json.
"""
from __future__ import annotations

from pathlib import Path

# The warmci checkout this package lives in: its dodo.py is what the worker runs.
RUNNER_ROOT = Path(__file__).resolve().parent.parent.parent
