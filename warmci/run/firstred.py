"""The run's first failure, the moment it happens: STATE/runs/<run-id>/first-failure.json.

Whoever sees a failure first writes the file, once: the reporter when a job
fails (doit's main process), or a job's worker when a first pass inside
the job failed while the job goes on to its full suite. The file appears
whole (written aside, then hard-linked into place, which fails if it
exists), so a watcher (the CI service turns the commit status red from it)
never reads half of it and the first writer wins. results.json repeats it
as `first_failure`, with the seconds since the run's start.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from warmci import statefile
from warmci.context import Context


def claim(ctx: Context, record: dict[str, Any]) -> bool:
    """Write the run's first failure unless one is written already; True if this one is it."""
    path = ctx.first_failure_file
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(tmp)


class FirstRed:
    """The reporter's side: claims a job's failure, announces a worker's first-pass failure, reads it back."""

    def __init__(self, ctx: Context, start: float, say: Callable[[str], None]) -> None:
        self.ctx, self.start, self.say = ctx, start, say
        self.announced = False

    def reset(self) -> None:
        """At the run's start: a run id given again must not inherit an earlier run's first failure."""
        try:
            os.remove(self.ctx.first_failure_file)
        except FileNotFoundError:
            pass

    def job_failed(self, name: str, job: dict[str, Any]) -> None:
        at = job.get("end") or time.time()
        claim(self.ctx, {"job": name, "status": str(job.get("status")), "reason": job.get("reason", ""),
                         "at": at, "where": "job"})
        self.announced = True  # its FAIL line is the announcement

    def poll(self) -> None:
        """Say so when a worker recorded a failed first pass (called while jobs run)."""
        if self.announced or not os.path.exists(self.ctx.first_failure_file):
            return
        self.announced = True
        rec = self.read()
        if rec and rec.get("where") == "first pass":
            self.say(f"RED   {rec['job']}  first pass failed after {rec['seconds']:.1f} s ({rec.get('reason')}); "
                     "its full suite goes on")

    def read(self) -> dict[str, Any] | None:
        """The first failure with `seconds` since the run's start, or None when nothing failed."""
        rec = statefile.read_json(self.ctx.first_failure_file)
        if not isinstance(rec, dict) or not isinstance(rec.get("at"), (int, float)):
            return None
        return {**rec, "seconds": round(max(float(rec["at"]) - self.start, 0.0), 3)}
