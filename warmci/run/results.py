"""results.json: a finished run, for machines (its schema is docs/results.md; bump SCHEMA on a change)."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import psutil

from warmci import statefile
from warmci.context import Context, host_name
from warmci.run import critpath
from warmci.status import Status, run_outcome

SCHEMA = 3  # 3: the status `error` is called `errored`; `ignored` jobs are `filtered` (later keys are additions)


def build(ctx: Context, jobs: dict[str, dict[str, Any]], *, start: float, end: float, sha: str | None,
          branch: str | None, dirty: bool | None, errors: list[str], versions: Mapping[str, str], interval: float,
          samples: list[tuple[float, float, float]], first_failure: dict[str, Any] | None = None,
          order: str = "critical-path") -> dict[str, Any]:
    """The whole run; `jobs` are complete (every job has a Status)."""
    statuses = [Status(j["status"]) for j in jobs.values()]
    # A job not run because it needs a job this run skips (skip=) is left out as a filtered one is.
    outcome = [Status.FILTERED if j.get("skipped_need") else Status(j["status"]) for j in jobs.values()]
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    ran = [j for j in jobs.values() if Status(j["status"]).ran and j.get("duration") is not None]
    return {
        "schema": SCHEMA,
        "run_id": ctx.run_id,
        "target": ctx.target,
        "pipeline": ctx.pipeline,
        "state": ctx.state,
        "sha": sha,
        "branch": branch,
        "dirty": dirty,
        "host": {"name": host_name(), "placement": os.environ.get("WARMCI_PLACEMENT") or None},
        "argv": sys.argv[1:],
        "order": order if any("priority" in j for j in jobs.values()) else "definition",
        "start": start,
        "end": end,
        "duration": round(end - start, 3),
        "status": run_outcome(outcome, run_errors=bool(errors)),
        "filters": ctx.filters.as_dict(),
        "first_failure": first_failure,
        "counts": counts,
        "job_seconds": round(sum(j["duration"] for j in ran), 3),
        "critical_path": critpath.of_run(jobs, start, end),
        "jobs": jobs,
        "versions": dict(versions),
        "resources": {"interval": interval, "cpu_count": psutil.cpu_count(),
                      "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
                      "samples": samples},
        "errors": errors,
    }


def path(ctx: Context) -> str:
    return os.path.join(ctx.run_dir, "results.json")


def write(ctx: Context, results: dict[str, Any]) -> str:
    out = path(ctx)
    statefile.write_json(out, results)
    return out
