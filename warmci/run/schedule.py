"""Dispatch order: the critical path first, and the first failure as early as that allows.

doit dispatches ready tasks first in, first out, in definition order, so
with few workers a long chain (install -> build -> wheel -> browser suite)
can wait behind short jobs that nothing waits for. warmci gives each task
a priority, its longest remaining path in seconds (warmci.run.critpath, from
the durations earlier runs recorded in the state dir), yields the tasks in
descending priority (ties keep pipeline order) and replaces doit's FIFO pick
among ready tasks with its own (warmci.doitapi.dispatch_by).

Critical-path-first alone runs cheap jobs last: a lint error that takes
0.2 s to find is reported after the long chain has had its workers. So the
default order, `first-red`, takes a job that is likely to say "red" soon
ahead of the critical-path choice when that cannot lengthen the run by more
than a small bound:

- urgent jobs: those that failed in their last run (history.json), and
  those on the way to one (a job a recently failed job needs), ranked by
  the seconds until that job could report; then short jobs (expected to
  take at most the bound), shortest first;
- an urgent job goes first when its expected time fits in the slack of the
  critical-path choice plus the bound (`slack` = how long that choice can
  wait without becoming the longest remaining path, given what is running),
  or when it is itself within the bound of the critical-path choice's
  priority. Otherwise the critical-path choice goes first.

The bound is `WARMCI_RED_BOUND` seconds, by default 5 % of the expected
critical path, at least 0.5 s. `WARMCI_ORDER=critical-path` keeps the
critical path first without this; `WARMCI_ORDER=definition` is doit's order.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from warmci import doitapi
from warmci.errors import WarmciError
from warmci.run import critpath
from warmci.status import Status

ORDER_VAR = "WARMCI_ORDER"
BOUND_VAR = "WARMCI_RED_BOUND"
MODES = ("first-red", "critical-path", "definition")
FAILED = (Status.FAILED, Status.ERRORED, Status.TIMED_OUT)


def mode(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(ORDER_VAR) or MODES[0]
    if value not in MODES:
        raise WarmciError(f"{ORDER_VAR}={value!r}: expected one of {', '.join(MODES)}")
    return value


def bound(critical: float, environ: Mapping[str, str] | None = None) -> float:
    """Seconds the first red may cost the critical path (WARMCI_RED_BOUND, else 5 % of it, at least 0.5 s)."""
    env = os.environ if environ is None else environ
    raw = env.get(BOUND_VAR)
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0:
            raise WarmciError(f"{BOUND_VAR}={raw!r}: expected seconds (a number >= 0)")
        return value
    return max(0.5, 0.05 * critical)


def expected(tasks: list[dict[str, Any]], durations: Mapping[str, float]) -> dict[str, float]:
    """Each job's expected seconds: its history, else (a cold state dir) its kind's estimate."""
    names = [t["basename"] for t in tasks]
    known = [durations[n] for n in names if n in durations]
    if known:
        # A job never seen before counts as a typical one of this pipeline.
        default = sorted(known)[len(known) // 2]  # (statistics costs 6 ms to import)
        return {n: float(durations.get(n, default)) for n in names}
    # A cold state dir: rank by what each kind of job usually costs, or a browser
    # suite at the end of the longest chain is dispatched last.
    return {t["basename"]: float(t.get("meta", {}).get("warmci", {}).get("estimate", 1.0)) for t in tasks}


def prioritize(tasks: list[dict[str, Any]], last: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Set meta.warmci.priority/expected/red on each task dict; return them longest remaining path first.

    `last`: what warmci.run.history recorded of each job.
    """
    needs = {t["basename"]: list(t.get("task_dep", ())) for t in tasks}
    est = expected(tasks, {n: float(r["duration"]) for n, r in last.items()
                           if isinstance(r.get("duration"), (int, float))})
    prio = critpath.remaining(needs, est, 1.0)
    failed = {n for n, r in last.items() if n in needs and r.get("status") in FAILED}
    reds = critpath.to_nearest(needs, est, failed)
    for t in tasks:
        name = t["basename"]
        meta = t.setdefault("meta", {}).setdefault("warmci", {})
        meta.update(priority=round(prio[name], 3), expected=round(est[name], 3))
        if name in reds:
            meta["red"] = round(reds[name], 3)
            meta["failed_last"] = name in failed
    return sorted(tasks, key=lambda t: -prio[t["basename"]])


class Scheduler:
    """The pick among ready tasks (warmci.doitapi.dispatch_by) and the clock of what runs."""

    def __init__(self, order: str, red_bound: float) -> None:
        self.order, self.bound = order, red_bound
        self.started: dict[str, float] = {}

    def dispatched(self, task: Any, tasks: Mapping[str, Any]) -> None:
        self.started[task.name] = time.monotonic()

    def pick(self, candidates: Sequence[Any], running: Sequence[Any]) -> int:
        metas = [doitapi.task_meta(t) for t in candidates]
        best = _critical_choice(metas)
        if self.order != "first-red":
            return best
        top = _num(metas[best], "priority")
        now = time.monotonic()
        # The longest path still ahead: the critical choice's, or a running job's rest plus its tail.
        ahead = top
        for task in running:
            meta = doitapi.task_meta(task)
            own = _num(meta, "expected")
            left = max(own - (now - self.started.get(task.name, now)), 0.0)
            ahead = max(ahead, left + _num(meta, "priority") - own)
        slack = ahead - top
        choice, rank = best, None
        for i, meta in enumerate(metas):
            key = _urgency(meta, self.bound)
            if i == best or key is None:
                continue
            fits = _num(meta, "expected") <= slack + self.bound or _num(meta, "priority") >= top - self.bound
            if fits and (rank is None or key < rank):
                choice, rank = i, key
        return choice


def _num(meta: Mapping[str, Any], key: str) -> float:
    value = meta.get(key, 0.0)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _critical_choice(metas: Sequence[Mapping[str, Any]]) -> int:
    """The highest priority; ties to the earliest candidate (doit's own preference)."""
    return max(range(len(metas)), key=lambda i: (_num(metas[i], "priority"), -i))


def _urgency(meta: Mapping[str, Any], red_bound: float) -> tuple[int, float] | None:
    """How soon taking this job may report a failure: lower first; None if it is not urgent."""
    if "red" in meta:
        return (0, _num(meta, "red"))  # a recently failed job, or on the way to one
    own = _num(meta, "expected")
    if own <= red_bound:
        return (1, own)
    return None


def install(scheduler: Scheduler) -> None:
    """Make doit's dispatcher pick with this scheduler (this process only)."""
    doitapi.dispatch_by(scheduler.pick)
    doitapi.on_dispatch(scheduler.dispatched)
