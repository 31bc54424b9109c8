"""Section 4: how long a dependent waits after the job it needs finishes.

For each job that ran, with needs that ran in the same run: ready = the end
of the need that finished last, gap = the dependent's start − ready (both
stamped by the workers). A gap counts as a handoff only when a worker was
free for the dependent all along: fewer than `workers` other jobs were
running at `ready` and no other job took the last free worker before the
dependent started. Otherwise the dependent was queued behind other work
(a scheduling question, reported separately), not slowed by the handoff.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bench import stats
from bench.runs import ran

GOAL_MS = 15.0


def _intervals(results: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    jobs = (results or {}).get("jobs")
    for name, job in (jobs.items() if isinstance(jobs, Mapping) else ()):
        if not isinstance(job, dict) or not ran(job):
            continue
        start, end = job.get("start"), job.get("end")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)):
            out[name] = (float(start), float(end))
    return out


def pairs(results: Mapping[str, Any] | None, needs: Mapping[str, Iterable[str]], workers: int,
          source: str = "") -> list[dict[str, Any]]:
    ran = _intervals(results)
    out = []
    for name, (start, _) in ran.items():
        done = [(ran[n][1], n) for n in needs.get(name, ()) if n in ran]
        if not done:
            continue
        ready, need = max(done)
        others = [(s, e) for n, (s, e) in ran.items() if n != name]
        busy = sum(1 for s, e in others if s <= ready < e)
        took = sum(1 for s, _ in others if ready <= s < start)
        kind = "handoff" if busy + took < workers else "queued"
        out.append({"job": name, "after": need, "gap_ms": round((start - ready) * 1000, 2), "kind": kind,
                    "source": source})
    return out


def summarize(all_pairs: list[dict[str, Any]]) -> dict[str, Any]:
    hand = [p["gap_ms"] for p in all_pairs if p["kind"] == "handoff"]
    queued = [p["gap_ms"] for p in all_pairs if p["kind"] == "queued"]
    sources = sorted({p["source"] for p in all_pairs})
    worst = sorted((p for p in all_pairs if p["kind"] == "handoff"), key=lambda p: -p["gap_ms"])[:5]
    return {
        "handoff_ms": stats.summary(hand, 2),
        "queued_ms": stats.summary(queued, 2),
        "goal_ms": GOAL_MS,
        "meets_goal": None if not hand else stats.summary(hand)["median"] <= GOAL_MS,
        "max_meets_goal": None if not hand else max(hand) <= GOAL_MS,
        "sources": sources,
        "worst": worst,
        "pairs": all_pairs,
    }
