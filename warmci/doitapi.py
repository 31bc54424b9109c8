"""Everything warmci does with doit's internals, in one place (doit is pinned to 0.37).

doit's public API is the dodo file and its task dicts; what warmci needs
beyond that goes through here, so an upgrade of doit is checked in one
module:

- the names of doit classes warmci uses (TaskFailed, UnmetDependency, the
  md5 checker, the uptodate calculator base, the command base class);
- `control_runs`: the run between warmci's own start and finish (lock,
  signals, leftovers; the exit code from the run's outcome: doit's own 1/2
  split is about its exceptions, not about what the jobs did), and a
  cancelled run ending quietly instead of with a KeyboardInterrupt trace;
- `dispatch_by_priority`: doit's FIFO choice among ready tasks replaced by
  a priority (TaskDispatcher._get_next_node);
- `resolve_names`: job names on the command line: a matrix base name runs
  all its variants; an unknown one is one line naming the closest jobs
  (TaskControl._filter_tasks, and `doit info`, which has its own lookup);
- `run_command`: a warmci command run through doit's main (explain);
- `content_checker`: doit's file check by content (warmci.inputs.filestates)
  instead of its md5 checker, which trusts an unchanged mtime;
- `on_dispatch`: a call in the main process for each task doit decided to
  execute, before it goes to a worker (Runner.select_task).
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from doit import cmd_info, control, get_var, runner
from doit.cmd_base import DoitCmdBase
from doit.dependency import FileChangedChecker, UptodateCalculator
from doit.doit_cmd import DoitMain
from doit.exceptions import InvalidCommand, TaskFailed, UnmetDependency

__all__ = [
    "DoitCmdBase", "InvalidCommand", "RunHooks", "TaskFailed", "UnmetDependency", "UptodateCalculator",
    "always_execute", "control_runs", "dispatch_by_priority", "get_var", "resolve_names", "run_command", "task_meta",
    "unknown_job", "content_checker", "on_dispatch",
]


def _replace(owner: type, name: str, new: Callable[..., Any]) -> None:
    """Replace a method of a doit class: the one way warmci changes what doit does."""
    if not callable(getattr(owner, name, None)):
        raise RuntimeError(f"doit has no {owner.__name__}.{name}: warmci needs doit 0.37 (see pyproject.toml)")
    setattr(owner, name, new)


def task_meta(task: Any) -> dict[str, Any]:
    """warmci's part of a doit task's meta (kind, ports, group, priority, ...)."""
    meta = getattr(task, "meta", None) or {}
    found = meta.get("warmci", {})
    return found if isinstance(found, dict) else {}


# -- the run's lifecycle and exit code ------------------------------------------
class RunHooks(Protocol):
    def start(self) -> None:
        """Before doit's reporter starts: nothing has been dispatched yet."""

    def finish(self, cancelled: bool) -> int:
        """After the reporter wrote the results (or the run was cancelled): the process exit code."""


_hooks: RunHooks | None = None
_original_run_all = runner.Runner.run_all
_always_execute = False


def always_execute() -> bool:
    """The run in this process was started with `doit -a` (every selected task runs, changed or not)."""
    return _always_execute


def _run_all(self: Any, task_dispatcher: Any) -> int:
    global _always_execute
    _always_execute = bool(getattr(self, "always_execute", False))
    hooks = _hooks
    if hooks is None:
        return int(_original_run_all(self, task_dispatcher))
    hooks.start()
    cancelled = False
    try:
        _original_run_all(self, task_dispatcher)
    except KeyboardInterrupt:
        # warmci's signal handler ended the job trees and raised it; doit saved
        # its DB and the reporter wrote the results on the way out.
        cancelled = True
    return hooks.finish(cancelled)


def control_runs(hooks: RunHooks) -> None:
    """Run doit's runner between `hooks.start()` and `hooks.finish()`, whose value is doit's exit code."""
    global _hooks
    _hooks = hooks
    _replace(runner.Runner, "run_all", _run_all)


# -- dispatch order ---------------------------------------------------------------
def dispatch_by_priority(priority: Callable[[Any], float]) -> None:
    """Make doit's dispatcher pick the ready task with the highest `priority(task)` (this process only)."""

    def _get_next_node(self: Any, ready: Any, tasks_to_run: list[str]) -> Any:
        # `ready` holds nodes that may be stepped; `tasks_to_run` the selected task
        # names not looked at yet (doit pops from the end). Either may hold the most
        # urgent job; ties go to `ready` and then to doit's own order.
        while True:
            best = max(ready, key=lambda n: priority(n.task)) if ready else None
            idx = (max(range(len(tasks_to_run)), key=lambda i: (priority(self.tasks[tasks_to_run[i]]), i))
                   if tasks_to_run else None)
            if best is not None and (idx is None or priority(best.task) >= priority(self.tasks[tasks_to_run[idx]])):
                ready.remove(best)
                return best
            if idx is None:
                return None
            node = self._gen_node(None, tasks_to_run.pop(idx))
            if node:
                return node

    _replace(control.TaskDispatcher, "_get_next_node", _get_next_node)


# -- job names on the command line ---------------------------------------------------
def unknown_job(name: str, names: Iterable[str]) -> str:
    """One line for a job name that does not exist, naming the closest ones."""
    names = sorted(names)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close += [n for n in names if n.startswith(name) and n not in close][: 3 - len(close)]
    hint = f"closest: {', '.join(close)}; " if close else ""
    return f"unknown job {name!r}; {hint}`doit list` shows every job"


def _groups(tasks: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, task in tasks.items():
        group = task_meta(task).get("group")
        if group and group not in tasks:
            out.setdefault(group, []).append(name)
    return {g: sorted(names) for g, names in out.items()}


_original_filter = control.TaskControl._filter_tasks
_original_info = cmd_info.Info._execute


def _filter_tasks(self: Any, task_selection: Sequence[str]) -> Any:
    groups = _groups(self.tasks)
    selection: list[str] = []
    for item in task_selection:
        if item in self.tasks or item in self.targets or item.startswith("-") or ":" in item:
            selection.append(item)
        elif item in groups:
            selection += groups[item]  # a matrix base name: every variant
        else:
            raise InvalidCommand(unknown_job(item, list(self.tasks) + list(groups)))
    return _original_filter(self, selection)


def _info(self: Any, pos_args: Sequence[str], hide_status: bool = False) -> Any:
    if len(pos_args) == 1:
        names = {t.name: t for t in self.task_list}
        name = pos_args[0]
        if name not in names:
            groups = _groups(names)
            if name in groups:
                raise InvalidCommand(f"{name!r} is a matrix of jobs: {', '.join(groups[name])}; "
                                     f"`doit info` takes one of them")
            raise InvalidCommand(unknown_job(name, list(names) + list(groups)))
    return _original_info(self, pos_args, hide_status=hide_status)


def resolve_names() -> None:
    """Matrix base names and unknown job names on doit's command line (run, info), as warmci means them."""
    _replace(control.TaskControl, "_filter_tasks", _filter_tasks)
    _replace(cmd_info.Info, "_execute", _info)


# -- warmci's own doit commands --------------------------------------------------------
def run_command(args: Sequence[str], commands: Mapping[str, str]) -> int:
    """Run doit's main with extra commands ({name: "module:Class"}), e.g. `explain`."""
    main = DoitMain(config_filenames=(), extra_config={"COMMAND": dict(commands)})
    return int(main.run(list(args)))


# -- file contents ------------------------------------------------------------------
class FileStates(Protocol):
    def identity(self, path: str, st: os.stat_result | None = None) -> str: ...


def content_checker(states: FileStates) -> type[FileChangedChecker]:
    """A doit checker (DOIT_CONFIG check_file_uptodate) whose state of a file is its content identity.

    doit's md5 checker calls a file unchanged when its mtime is, which `cp -p`,
    `rsync -a`, `tar` or `os.utime` make a lie. This one compares contents,
    through the hash cache (a file is read only when its stat signature
    changed: warmci.inputs.contenthash).
    """

    class ContentChecker(FileChangedChecker):
        def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
            return bool(states.identity(file_path, file_stat) != state)

        def get_state(self, dep: str, current_state: Any) -> str | None:
            # After the job ran; a missing file raises FileNotFoundError, which doit reports.
            now = states.identity(dep, os.stat(dep))
            return None if now == current_state else now

    return ContentChecker


# -- dispatch -------------------------------------------------------------------------
_dispatch_hooks: list[Callable[[Any, Mapping[str, Any]], None]] = []
_original_select = runner.Runner.select_task


def _select_task(self: Any, node: Any, tasks_dict: Mapping[str, Any]) -> bool:
    chosen = bool(_original_select(self, node, tasks_dict))
    if chosen:
        for hook in _dispatch_hooks:
            hook(node.task, tasks_dict)
    return chosen


def on_dispatch(hook: Callable[[Any, Mapping[str, Any]], None]) -> None:
    """Call `hook(task, tasks)` for every task doit decided to execute, in the main process, before a worker
    gets it (what the hook puts in the task's meta travels with it). Once per hook."""
    if hook not in _dispatch_hooks:
        _dispatch_hooks.append(hook)
    _replace(runner.Runner, "select_task", _select_task)
