"""Critical paths: the one a finished run had, and the one a scheduler should expect.

`remaining` plans: each job's longest path to the end of the run, from the
durations earlier runs recorded. `of_run` looks back: the longest chain of
dependent jobs in a finished run, each with the time it waited before it
started (for a free worker, or doit's dispatch).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from graphlib import TopologicalSorter
from typing import Any

from warmci.status import Status


def job_ran(job: Mapping[str, Any]) -> bool:
    """Its command ran (up-to-date, filtered and not-run jobs took no time)."""
    status = Status.of(job.get("status"))
    return status is not None and status.ran


def _dependents(needs: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n: [] for n in needs}
    for name, deps in needs.items():
        for dep in deps:
            if dep in out:
                out[dep].append(name)
    return out


def remaining(needs: Mapping[str, Iterable[str]], durations: Mapping[str, float],
              default: float) -> dict[str, float]:
    """job -> its duration plus the longest remaining path among the jobs that need it."""
    dependents = _dependents(needs)
    out: dict[str, float] = {}
    # Visit a job after every job that needs it.
    for name in TopologicalSorter({n: dependents[n] for n in needs}).static_order():
        tail = max((out[d] for d in dependents[name]), default=0.0)
        out[name] = durations.get(name, default) + tail
    return out


def to_nearest(needs: Mapping[str, Iterable[str]], durations: Mapping[str, float],
               targets: set[str]) -> dict[str, float]:
    """job -> the shortest path from its start to the end of a target job (itself, or one that needs it);
    jobs that lead to no target are left out."""
    dependents = _dependents(needs)
    out: dict[str, float] = {}
    for name in TopologicalSorter({n: dependents[n] for n in needs}).static_order():
        tails = [0.0] if name in targets else [out[d] for d in dependents[name] if d in out]
        if tails:
            out[name] = durations[name] + min(tails)
    return out


def of_run(jobs: Mapping[str, Mapping[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The critical path of a finished run, from results.json's jobs (each with status, start, end, needs).

    The longest chain, by the durations measured in this run, of jobs that
    ran, each needing the one before it (directly, or through needed jobs
    that did not run): with enough workers the run could not have been
    shorter. `wait` is the gap before each job of the chain started (for a
    free worker, or doit's dispatch); the chain's durations plus all waits,
    and the time after its last job, make the wall time.
    """
    ran = {n: j for n, j in jobs.items() if job_ran(j)
           and isinstance(j.get("start"), (int, float)) and isinstance(j.get("end"), (int, float))}
    wall = max(end - start, 0.0)
    if not ran:
        return {"jobs": [], "duration": 0.0, "wait": round(wall, 3), "wall": round(wall, 3)}
    preds = {n: _ran_ancestors(n, jobs, ran) for n in ran}
    longest: dict[str, float] = {}
    best_pred: dict[str, str | None] = {}
    for name in TopologicalSorter(preds).static_order():
        j = ran[name]
        # Ties go to the predecessor that ended last: the one the job actually waited for.
        pred = max(preds[name], key=lambda p: (longest[p], ran[p]["end"]), default=None)
        best_pred[name] = pred
        longest[name] = (j["end"] - j["start"]) + (longest[pred] if pred else 0.0)
    chain = [max(ran, key=lambda n: (longest[n], ran[n]["end"]))]
    while (pred := best_pred[chain[-1]]) is not None:
        chain.append(pred)
    chain.reverse()
    entries, prev_end = [], start
    for name in chain:
        j = ran[name]
        dur = j["end"] - j["start"]
        entries.append({"job": name, "start": j["start"], "end": j["end"], "duration": round(dur, 3),
                        "wait": round(max(j["start"] - prev_end, 0.0), 3),
                        "share": round(dur / wall, 4) if wall else 0.0})
        prev_end = j["end"]
    busy = sum(e["duration"] for e in entries)
    return {"jobs": entries, "duration": round(busy, 3), "wait": round(max(wall - busy, 0.0), 3),
            "wall": round(wall, 3)}


def _ran_ancestors(name: str, jobs: Mapping[str, Mapping[str, Any]], ran: Mapping[str, Any]) -> set[str]:
    """Jobs `name` needs that ran, looking through needed jobs that did not run."""
    out: set[str] = set()
    todo, seen = list(jobs.get(name, {}).get("needs", ())), set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in ran:
            out.add(n)
        else:
            todo += list(jobs.get(n, {}).get("needs", ()))
    return out
