"""What earlier runs in this state dir recorded about each job.

One small JSON file, STATE/history.json, updated at the end of every run:
per job, the status and run of its last execution (or of the run where a
job it needs failed, with that reason) and its expected duration (its
passes averaged, the latest counting half). The scheduler reads the
durations (longest remaining path first); warmci.inputs.why reads the last
status (a job with no success in doit's DB either never ran, did not pass
last time, was not run because a job it needs failed, or was forgotten).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from warmci import statefile
from warmci.status import Status


def path(state: str) -> str:
    return os.path.join(state, "history.json")


def load(state: str) -> dict[str, dict[str, Any]]:
    """job -> {"status", "run_id", "end", "duration"}; {} when nothing was recorded."""
    data = statefile.read_json(path(state))
    jobs = data.get("jobs") if isinstance(data, dict) else None
    return jobs if isinstance(jobs, dict) else {}


def durations(last: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Expected seconds of each job that passed before (`last`: what `load` returned)."""
    return {name: float(rec["duration"]) for name, rec in last.items()
            if isinstance(rec.get("duration"), (int, float))}


def record(state: str, run_id: str, jobs: dict[str, dict[str, Any]]) -> None:
    """Merge one run's executed (and not run) jobs into the history (atomically: readers never see half a file)."""
    known = load(state)
    for name, job in jobs.items():
        status = Status(job["status"])
        if not (status.ran or status == Status.NOT_RUN):
            continue
        rec = dict(known.get(name, {}))
        rec.update(status=status, run_id=run_id, end=job.get("end"), reason=job.get("reason", ""))
        if status == Status.PASSED and isinstance(job.get("duration"), (int, float)):
            # Half the last pass, half the earlier estimate: one run on a busy machine
            # does not reorder the next one, and a job that got slower shows within a few runs.
            old = rec.get("duration")
            new = float(job["duration"])
            rec["duration"] = round(new if not isinstance(old, (int, float)) else (old + new) / 2, 3)
        known[name] = rec
    statefile.write_json(path(state), {"schema": 1, "jobs": known})
