"""Critical-path-first dispatch.

doit dispatches ready tasks first in, first out, in definition order, so
with few workers a long chain (install -> build -> wheel -> browser suite)
can wait behind short jobs that nothing waits for. warmci gives each task
a priority, its longest remaining path in seconds (warmci.critpath, from
the durations earlier runs recorded in the state dir), and:

- yields the tasks in descending priority (ties keep pipeline order), which
  decides the first dispatches;
- replaces doit's FIFO pick among ready tasks with "highest priority first"
  (one method of doit 0.37's TaskDispatcher; doit is pinned to that version).

`WARMCI_ORDER=definition` turns both off: doit's own order, for comparison.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from warmci import critpath
from warmci.errors import WarmciError

ORDER_VAR = "WARMCI_ORDER"
# Relative cost of a job kind when no run has been recorded yet (seconds on the demo).
KIND_ESTIMATE = {"playwright": 5.0, "pytest": 2.0, "smoke": 1.0, "wheel": 1.0, "js-build": 1.0,
                 "js-test": 1.0, "python-deps": 1.0, "js-deps": 1.0, "lint": 0.5, "command": 1.0}
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
        # A cold state dir: rank by what each kind of job usually costs, or a
        # browser suite at the end of the longest chain is dispatched last.
        default = 1.0
        estimates = {t["basename"]: KIND_ESTIMATE.get(t.get("meta", {}).get("warmci", {}).get("kind", ""), 1.0)
                     for t in tasks}
    prio = critpath.remaining(needs, estimates, default)
    for t in tasks:
        t.setdefault("meta", {}).setdefault("warmci", {})["priority"] = round(prio[t["basename"]], 3)
    return sorted(tasks, key=lambda t: -prio[t["basename"]])


def _priority(task: Any) -> float:
    meta = getattr(task, "meta", None) or {}
    return float(meta.get("warmci", {}).get("priority", 0.0))


def _get_next_node(self: Any, ready: Any, tasks_to_run: list[str]) -> Any:
    """TaskDispatcher._get_next_node, by priority instead of FIFO.

    `ready` holds nodes that may be stepped; `tasks_to_run` the selected task
    names not looked at yet (doit pops from the end). Either may hold the
    most urgent job; ties go to `ready` and then to doit's own order.
    """
    while True:
        best = max(ready, key=lambda n: _priority(n.task)) if ready else None
        idx = (max(range(len(tasks_to_run)), key=lambda i: (_priority(self.tasks[tasks_to_run[i]]), i))
               if tasks_to_run else None)
        if best is not None and (idx is None or _priority(best.task) >= _priority(self.tasks[tasks_to_run[idx]])):
            ready.remove(best)
            return best
        if idx is None:
            return None
        node = self._gen_node(None, tasks_to_run.pop(idx))
        if node:
            return node


def install() -> None:
    """Make doit's dispatcher pick by priority (this process only; idempotent)."""
    from doit import control

    if getattr(control.TaskDispatcher, "_warmci_priority", False):
        return
    if not hasattr(control.TaskDispatcher, "_get_next_node"):
        return  # another doit: the yield order still applies
    control.TaskDispatcher._get_next_node = _get_next_node
    control.TaskDispatcher._warmci_priority = True
