"""`python -m warmci explain [JOB ...]`: why each job would run now, naming every changed input.

A doit command (it needs doit's task list and dependency DB, like `doit
info`), run through doit's main by warmci.cli. It asks doit's own up-to-date
check, then warmci.inputs.why for the names: a file, a lockfile, an
upstream output, a tool version, an env var, the pipeline entry, a missing
output or environment, first run / last run failed / forgotten. A job whose
whole key has a recorded success would be restored rather than run: it says
from which run and commit. It first says which target and state directory
it explains.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warmci import context
from warmci.doitapi import DoitCmdBase, InvalidCommand, get_var, unknown_job
from warmci.inputs import why
from warmci.run import kept


class Explain(DoitCmdBase):
    name = "explain"
    doc_purpose = "say why jobs would run now, naming each changed input"
    doc_usage = "[JOB ...]"
    doc_description = None
    cmd_options = ()

    def _execute(self, pos_args: list[str] | None = None) -> int:
        tasks = {t.name: t for t in self.task_list}
        names = list(pos_args or ()) or [t.name for t in self.task_list]
        unknown = [n for n in names if n not in tasks]
        if unknown:
            raise InvalidCommand(unknown_job(unknown[0], tasks))
        runs: dict[str, list[why.Reason] | None] = {}  # None: up to date

        def check(name: str) -> list[why.Reason] | None:
            if name not in runs:
                task = tasks[name]
                status = self.dep_manager.get_status(task, tasks)
                if status.status == "error":
                    runs[name] = [{"kind": "error", "name": "", "text": status.get_error_message()}]
                else:
                    runs[name] = why.final(task) if status.status == "run" else None
            return runs[name]

        # The same choice dodo.py made (doit variables, then the environment): say it, a default is silent.
        ctx = context.resolve(get_var)
        self.outstream.write(f"explaining {ctx.target} (pipeline {ctx.pipeline}, state {ctx.state})\n")
        store = kept.RunStore(ctx)
        for name in names:
            self.outstream.write(describe(name, tasks, check, lambda t: store.restorable(t, tasks)) + "\n")
        return 0


def describe(name: str, tasks: dict[str, Any], check: Any,
             restorable: Callable[[Any], str | None] = lambda task: None) -> str:
    reasons = check(name)
    if reasons is not None:
        origin = restorable(tasks[name])
        head = f"{name}: would be restored ({origin}), not run" if origin else f"{name}: would run"
        return f"{head}\n" + "".join(f"  - {r['text']}\n" for r in reasons).rstrip("\n")
    upstream = _upstream(name, tasks, check)
    if upstream:
        return (f"{name}: up to date now, but it reads outputs of {', '.join(upstream)}, which would or may "
                "run first: it reruns if those outputs change")
    return f"{name}: up to date"


def _upstream(name: str, tasks: dict[str, Any], check: Any) -> list[str]:
    """Jobs whose outputs `name` reads and that would run, or read outputs of jobs that would (recursively)."""
    task = tasks[name]
    return [d for d in task.task_dep
            if d in tasks and set(tasks[d].targets) & set(task.file_dep)
            and (check(d) is not None or _upstream(d, tasks, check))]
