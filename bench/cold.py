"""Section 3: a run from an empty state dir on a fresh checkout, against what the graph allows.

The lower bound comes from the same run's per-job durations (worker-stamped
start and end): nothing can finish before its longest chain of `needs`
(the critical path), nor before all job time is spread evenly over the
workers. The ratio is the cold run's wall time over that bound.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from bench import graphinfo, stats, targets
from bench.runs import Result, ran
from bench.session import Session, passed_all

GOAL = 1.10  # the goal: cold wall ≤ 1.10 × the bound


def workers() -> int:
    return os.cpu_count() or 1  # dodo.py's num_process


def durations(results: dict[str, Any] | None) -> dict[str, float]:
    """job -> end - start for jobs whose command ran (read defensively: the format is growing)."""
    out: dict[str, float] = {}
    jobs = (results or {}).get("jobs")
    for name, job in (jobs.items() if isinstance(jobs, dict) else ()):
        if not ran(job):
            continue
        start, end = job.get("start"), job.get("end")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end >= start:
            out[name] = end - start
    return out


def bound(needs: dict[str, list[str]], durs: dict[str, float], n_workers: int) -> dict[str, Any]:
    cp, chain = graphinfo.critical_path(needs, durs)
    total = sum(durs.values())
    return {"critical_path_s": round(cp, 3), "critical_path": chain, "job_seconds": round(total, 3),
            "workers": n_workers, "spread_s": round(total / n_workers, 3),
            "bound_s": round(max(cp, total / n_workers), 3),
            # Not a bound: what a dispatcher without overhead, always starting the ready job with the
            # longest remaining path, would take with these durations (separates order from overhead).
            "list_schedule_s": round(graphinfo.list_schedule(needs, durs, n_workers), 3)}


def timeline(results: dict[str, Any] | None) -> dict[str, list[float]]:
    """job -> [start, end] in seconds from the run's start, for the jobs that ran."""
    jobs = (results or {}).get("jobs")
    t0 = (results or {}).get("start")
    if not isinstance(jobs, dict) or not isinstance(t0, (int, float)):
        return {}
    out = {}
    for name, job in jobs.items():
        if isinstance(job, dict) and isinstance(job.get("start"), (int, float)) and \
                isinstance(job.get("end"), (int, float)) and job.get("status") not in ("up-to-date",):
            out[name] = [round(job["start"] - t0, 3), round(job["end"] - t0, 3)]
    return dict(sorted(out.items(), key=lambda kv: kv[1][0]))


def assess(res: Result, needs: dict[str, list[str]]) -> dict[str, Any]:
    """One run's wall time against the bound its own job durations give."""
    durs = durations(res.results)
    b = bound(needs, durs, workers())
    inner = (res.results or {}).get("duration")
    inner = inner if isinstance(inner, (int, float)) else None
    return {**b, "wall_s": round(res.wall, 3), "results_duration_s": inner,
            "ratio": stats.ratio(res.wall, b["bound_s"]),
            "ratio_inside_run": stats.ratio(inner, b["bound_s"]),
            "jobs": {n: round(d, 3) for n, d in sorted(durs.items())},
            "timeline": timeline(res.results)}


def measure(s: Session) -> dict[str, Any]:
    s.say(f"cold: {s.reps.cold} runs, each from an empty state dir on a clean checkout")
    needs = {name: info.needs for name, info in s.jobs.items()}
    runs: list[dict[str, Any]] = []
    last_state = None
    for i in range(s.reps.cold):
        state = s.work / f"state-cold-{i}"

        def fresh(state: Path = state) -> None:
            shutil.rmtree(state, ignore_errors=True)
            targets.clean_checkout(s.target)

        fresh()
        res = s.attempt(f"cold #{i}", lambda st=state: s.doit.run(tag="cold", state=st), passed_all,
                        before_retry=fresh)
        if res is None:
            continue
        s.runs.append(res)
        runs.append(assess(res, needs))
        if last_state is not None:
            shutil.rmtree(last_state, ignore_errors=True)
        last_state = state
    if last_state is not None:
        # The last cold run's state dir (and the checkout it built) is the warm pipeline the other
        # sections use; it cannot be moved: venvs and doit's DB hold absolute paths into it.
        s.use_state(last_state)
    return {
        "runs": runs,
        "wall": stats.summary([r["wall_s"] for r in runs]),
        "bound": stats.summary([r["bound_s"] for r in runs]),
        "list_schedule": stats.summary([r["list_schedule_s"] for r in runs]),
        "ratio": stats.summary([r["ratio"] for r in runs if r["ratio"] is not None]),
        "ratio_inside_run": stats.summary([r["ratio_inside_run"] for r in runs if r["ratio_inside_run"] is not None]),
        "goal_ratio": GOAL,
    }
