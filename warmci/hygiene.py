"""Run-level process hygiene: what happens at the start and end of every run.

Filled in by the process-hygiene work: state-dir lock, ending what earlier
runs left behind, signal handling, snapshots.
"""
from __future__ import annotations

from warmci.context import Context


def start_run(ctx: Context) -> None:
    """Called once in doit's main process before any job is dispatched."""


def end_run(ctx: Context) -> None:
    """Called once in doit's main process after the last job finished."""
