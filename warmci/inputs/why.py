"""Why a job runs: each input that changed since its last success, by name.

doit decides *whether* a task runs, but in a normal run it stops at the first
failing check (warmci's InputsKey comes first) and then compares no files,
so `task.dep_changed` is empty exactly when something else changed too. The
Probe below is the last `uptodate` entry of every warmci task: doit calls it
in its main process after the other checks and before the task starts (the
only hook between the two), and it finishes the comparison for the jobs
that will run. Computing it later, when the job is already running, would
race with the job deleting its own outputs.

A reason is a dict {"kind", "name", "text"} (plus "old"/"new" for tool, env
and python, "job" for upstream outputs); kinds are listed in docs/results.md.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from warmci.doitapi import UptodateCalculator
from warmci.inputs.filestates import MISSING, FileStates
from warmci.inputs.uptodate import inputs_key
from warmci.status import Status

Reason = dict[str, Any]
CHECKER = "ContentChecker"  # the name doit records for warmci.doitapi.content_checker


class Probe(UptodateCalculator):
    """Last uptodate check of a task: records why it would run; never decides (returns None).

    `last` is what earlier runs recorded of each job (warmci.run.history),
    read once per run and shared by every task's probe.
    """

    def __init__(self, target: str, last: Mapping[str, Mapping[str, Any]], states: FileStates) -> None:
        super().__init__()
        self.target, self.last, self.states = target, last, states
        self.reasons: list[Reason] = []
        self.files_checked = False

    def __getstate__(self) -> dict[str, Any]:
        # The DB reader holds an sqlite connection: never send it to a worker.
        return {k: v for k, v in self.__dict__.items() if k not in ("get_val", "tasks_dict")}

    def __call__(self, task: Any, values: dict[str, Any]) -> None:
        self.reasons, self.files_checked = probe(task, self.get_val, self.tasks_dict or {}, self.target,
                                                 self.last.get(task.name), self.states)
        return None


def probe(task: Any, get_val: Any, tasks: Mapping[str, Any], target: str,
          last: Mapping[str, Any] | None, states: FileStates) -> tuple[list[Reason], bool]:
    """(reasons, whether the files were compared) for a task whose other checks just ran."""
    if get_val is None:
        return [], False
    checker = get_val(task.name, "checker:")
    if checker is None:
        return [no_record(last)], True
    if checker != CHECKER:
        # doit drops what it recorded under another file check: the first run with this one.
        return [{"kind": "first-run", "name": "checker",
                 "text": f"first run with files compared by content (its last success was checked by {checker})"}
                ], True
    reasons = checks_failed(task)
    reasons += [{"kind": "output", "name": _show(t, target), "text": f"output {_show(t, target)} is missing"}
                for t in task.targets if not os.path.exists(t)]
    saved = set(get_val(task.name, "deps:") or ())
    removed = sorted(saved - set(task.file_dep))
    reasons += [_file_reason(p, "removed from inputs", task, tasks, target) for p in removed]
    if not reasons:
        return reasons, False  # doit compares the files itself next (task.dep_changed)
    for dep in sorted(task.file_dep):
        state = get_val(task.name, dep)
        now = states.identity(dep)  # by content, as doit's check (warmci.doitapi.content_checker)
        if now == MISSING:
            reasons.append(_file_reason(dep, "is missing", task, tasks, target))
        elif state is None:
            reasons.append(_file_reason(dep, "added to inputs", task, tasks, target))
        elif now != state:
            reasons.append(_file_reason(dep, "changed", task, tasks, target))
    return reasons, True


def checks_failed(task: Any) -> list[Reason]:
    """What the non-file checks found: the InputsKey's differences, a missing environment or artifact."""
    key = inputs_key(task)
    out: list[Reason] = list(key.diff) if key is not None else []
    for utd, _, _ in task.uptodate:
        if getattr(utd, "last", None) is False and hasattr(utd, "describe"):
            out.append({"kind": "environment", "name": type(utd).__name__, "text": utd.describe()})
    return out


def no_record(last: Mapping[str, Any] | None) -> Reason:
    """The job has no success in doit's DB: new, did not pass last time, or forgotten."""
    if not last:
        return {"kind": "first-run", "name": "", "text": "first run (no earlier success recorded)"}
    status, run = last.get("status"), last.get("run_id")
    if status == Status.NOT_RUN:
        # doit drops a task's recorded success when a task it needs fails.
        return {"kind": "last-run", "name": str(status),
                "text": f"in its last run ({run}) it did not run: {last.get('reason') or 'a job it needs failed'}; "
                        "doit dropped its recorded success then"}
    if status in (Status.PASSED, Status.SKIPPED):
        return {"kind": "forced", "name": "forget",
                "text": f"forced: its success in run {run} is no longer recorded (`doit forget`)"}
    return {"kind": "last-run", "name": str(status), "text": f"its last run ({run}) {status}"}


FORCED = {"kind": "forced", "name": "always-execute", "text": "forced (doit -a / --always-execute)"}


def final(task: Any, forced: bool = False) -> list[Reason]:
    """Why a task that is being executed runs (call after doit's own checks; `forced`: doit -a)."""
    probe_ = next((u for u, _, _ in task.uptodate if isinstance(u, Probe)), None)
    if probe_ is None:
        return []
    reasons = [dict(FORCED)] if forced else []
    reasons += probe_.reasons
    if not probe_.files_checked:
        tasks = probe_.tasks_dict or {}
        reasons += [_file_reason(p, "changed" if probe_.get_val and probe_.get_val(task.name, p) is not None
                                 else "added to inputs", task, tasks, probe_.target)
                    for p in sorted(getattr(task, "dep_changed", None) or ())]
    if not reasons:
        # Every check warmci knows of passed, yet doit runs it: say so rather than guess.
        reasons.append({"kind": "unknown", "name": "",
                        "text": "doit found it not up to date, and warmci's checks name no changed input"})
    return reasons


def summary(reasons: list[Reason], limit: int = 3) -> str:
    """One line for the terminal and ci.log: the first few reasons."""
    texts = [r["text"] for r in reasons]
    more = len(texts) - limit
    return "; ".join(texts[:limit]) + (f"; and {more} more" if more > 0 else "")


def _file_reason(path: str, change: str, task: Any, tasks: Mapping[str, Any], target: str) -> Reason:
    meta = (getattr(task, "meta", None) or {}).get("warmci", {})
    name = _show(path, target)
    producer = _producer(path, tasks)
    if path in meta.get("lockfiles", ()):
        return {"kind": "lockfile", "name": name, "change": change, "text": f"lockfile {name} {change}"}
    if producer and producer != task.name:
        short = name if not os.path.isabs(name) else os.path.basename(name)
        return {"kind": "upstream", "name": name, "job": producer, "change": change,
                "text": f"output {short} of {producer} {change}"}
    return {"kind": "file", "name": name, "change": change, "text": f"{name} {change}"}


def _producer(path: str, tasks: Mapping[str, Any]) -> str | None:
    for name, t in tasks.items():
        if path in getattr(t, "targets", ()):
            return name
    return None


def _show(path: str, target: str) -> str:
    """Paths inside the target relative to it, others (the state dir) as they are."""
    rel = os.path.relpath(path, target)
    return path if rel.startswith("..") else rel
