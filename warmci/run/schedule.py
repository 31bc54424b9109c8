"""Critical-path-first dispatch.

doit dispatches ready tasks first in, first out, in definition order, so
with few workers a long chain (install -> build -> wheel -> browser suite)
can wait behind short jobs that nothing waits for. warmci gives each task
a priority, its longest remaining path in seconds (warmci.run.critpath, from
the durations earlier runs recorded in the state dir), and:

- yields the tasks in descending priority (ties keep pipeline order), which
  decides the first dispatches;
- replaces doit's FIFO pick among ready tasks with "highest priority first"
  (warmci.doitapi.dispatch_by_priority).

`WARMCI_ORDER=definition` turns both off: doit's own order, for comparison.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from warmci import doitapi
from warmci.errors import WarmciError
from warmci.run import critpath

ORDER_VAR = "WARMCI_ORDER"
MODES = ("critical-path", "definition")


def mode(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(ORDER_VAR) or MODES[0]
    if value not in MODES:
        raise WarmciError(f"{ORDER_VAR}={value!r}: expected one of {', '.join(MODES)}")
    return value


def prioritize(tasks: list[dict[str, Any]], durations: Mapping[str, float]) -> list[dict[str, Any]]:
    """Set meta.warmci.priority on each task dict; return them longest remaining path first."""
    needs = {t["basename"]: list(t.get("task_dep", ())) for t in tasks}
    known = [durations[n] for n in needs if n in durations]
    if known:
        # A job never seen before counts as a typical one of this pipeline.
        default = sorted(known)[len(known) // 2]  # (statistics costs 6 ms to import)
        estimates = dict(durations)
    else:
        # A cold state dir: rank by what each kind of job usually costs (its
        # kind's estimate, in the task's meta), or a browser suite at the end
        # of the longest chain is dispatched last.
        default = 1.0
        estimates = {t["basename"]: float(t.get("meta", {}).get("warmci", {}).get("estimate", 1.0)) for t in tasks}
    prio = critpath.remaining(needs, estimates, default)
    for t in tasks:
        t.setdefault("meta", {}).setdefault("warmci", {})["priority"] = round(prio[t["basename"]], 3)
    return sorted(tasks, key=lambda t: -prio[t["basename"]])


def _priority(task: Any) -> float:
    return float(doitapi.task_meta(task).get("priority", 0.0))


def install() -> None:
    """Make doit's dispatcher pick by priority (this process only)."""
    doitapi.dispatch_by_priority(_priority)
