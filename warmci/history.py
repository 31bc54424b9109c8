"""What earlier runs in this state dir recorded about each job.

One small JSON file, STATE/history.json, updated at the end of every run:
per job, the status and run of its last execution and its expected
duration (its passes averaged, the latest counting half). The scheduler
reads the durations (longest remaining path first); warmci.why reads the
last status (a job with no success in doit's DB either never ran, failed
last time, or was forgotten).
"""
from __future__ import annotations

import os
from typing import Any

from warmci import statefile

# Statuses that mean the job's command actually ran in that run.
EXECUTED = ("passed", "failed", "error", "timed-out", "skipped", "cancelled")


def path(state: str) -> str:
    return os.path.join(state, "history.json")


def load(state: str) -> dict[str, dict[str, Any]]:
    """job -> {"status", "run_id", "end", "duration"}; {} when nothing was recorded."""
    data = statefile.read_json(path(state))
    jobs = data.get("jobs") if isinstance(data, dict) else None
    return jobs if isinstance(jobs, dict) else {}


def durations(state: str) -> dict[str, float]:
    """Expected seconds of each job that passed before."""
    return {name: float(rec["duration"]) for name, rec in load(state).items()
            if isinstance(rec.get("duration"), (int, float))}


def record(state: str, run_id: str, jobs: dict[str, dict[str, Any]]) -> None:
    """Merge one run's executed jobs into the history (atomically: readers never see half a file)."""
    known = load(state)
    for name, job in jobs.items():
        if job.get("status") not in EXECUTED:
            continue
        rec = dict(known.get(name, {}))
        rec.update(status=job["status"], run_id=run_id, end=job.get("end"))
        if job["status"] == "passed" and isinstance(job.get("duration"), (int, float)):
            # Half the last pass, half the earlier estimate: one run on a busy machine
            # does not reorder the next one, and a job that got slower shows within a few runs.
            old = rec.get("duration")
            new = float(job["duration"])
            rec["duration"] = round(new if not isinstance(old, (int, float)) else (old + new) / 2, 3)
        known[name] = rec
    statefile.write_json(path(state), {"schema": 1, "jobs": known})
