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
- `dispatch_by`: doit's FIFO choice among ready tasks replaced by a
  choice of warmci's (TaskDispatcher._get_next_node), which sees what is
  running; `on_dispatch`: a call in the main process for each task doit
  decided to execute, before it goes to a worker (Runner.select_task);
- `before_dispatch`: a call with the tasks and the selection, before doit
  dispatches anything (where a run's filters are applied);
- `ignore_tasks`: jobs skipped in this run, through doit's own `ignore`
  (Dependency.status_is_ignore): their dependents are not run either;
- `order_after`: a task waits for others without needing them: an edge of
  doit's graph (ExecNode.task_dep) whose failure does not stop the task
  (ExecNode.parent_status);
- `resolve_names`: job names on the command line: a matrix base name runs
  all its variants; an unknown one is one line naming the closest jobs
  (TaskControl._filter_tasks, and `doit info`, which has its own lookup);
- `run_command`: a warmci command run through doit's main (explain);
- `content_checker`: doit's file check by content (warmci.inputs.filestates)
  instead of its md5 checker, which trusts an unchanged mtime.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from doit import cmd_info, control, dependency, get_var, runner
from doit.cmd_base import DoitCmdBase
from doit.dependency import FileChangedChecker, UptodateCalculator
from doit.doit_cmd import DoitMain
from doit.exceptions import InvalidCommand, TaskFailed, UnmetDependency

__all__ = [
    "DoitCmdBase", "InvalidCommand", "RunHooks", "TaskFailed", "UnmetDependency", "UptodateCalculator",
    "always_execute", "before_dispatch", "closure", "content_checker", "control_runs", "dispatch_by", "get_var",
    "ignore_tasks", "keep_going", "on_dispatch", "order_after", "resolve_names", "run_command", "task_meta",
    "unknown_job", "waits_only_for",
]


def _replace(owner: type, name: str, new: Callable[..., Any]) -> None:
    """Replace a method of a doit class: the one way warmci changes what doit does."""
    if not callable(getattr(owner, name, None)):
        raise RuntimeError(f"doit has no {owner.__name__}.{name}: warmci needs doit 0.37 (see pyproject.toml)")
    setattr(owner, name, new)


def closure(tasks: Mapping[str, Any], selected: Iterable[str]) -> set[str]:
    """The selected tasks and everything they need: what a run of them may execute."""
    out: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        if name in out or name not in tasks:
            continue
        out.add(name)
        todo += list(tasks[name].task_dep) + list(getattr(tasks[name], "setup_tasks", ()))
    return out


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
_keep_going = True
_before: list[Callable[[Mapping[str, Any], Sequence[str]], None]] = []


def always_execute() -> bool:
    """The run in this process was started with `doit -a` (every selected task runs, changed or not)."""
    return _always_execute


def keep_going() -> bool:
    """The run in this process goes on past a failure (doit's `--continue`, warmci's default)."""
    return _keep_going


def before_dispatch(hook: Callable[[Mapping[str, Any], Sequence[str]], None]) -> None:
    """Call `hook(tasks, selected)` at the start of each run, before doit dispatches a task (once per hook)."""
    if hook not in _before:
        _before.append(hook)


def _run_all(self: Any, task_dispatcher: Any) -> int:
    global _always_execute, _keep_going
    _always_execute = bool(getattr(self, "always_execute", False))
    _keep_going = bool(getattr(self, "continue_", True))
    for hook in _before:
        hook(task_dispatcher.tasks, list(task_dispatcher.selected_tasks))
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
Pick = Callable[[Sequence[Any], Sequence[Any]], int]


def dispatch_by(pick: Pick) -> None:
    """Make doit's dispatcher take the ready task `pick(candidates, running)` chooses (this process only).

    `candidates` are doit tasks in doit's own order of preference (the nodes that
    may be stepped, then the selected tasks not looked at yet); `running` the
    tasks handed to a worker that have not finished. `pick` returns an index
    into `candidates`.
    """

    def _get_next_node(self: Any, ready: Any, tasks_to_run: list[str]) -> Any:
        while ready or tasks_to_run:
            nodes = list(ready)
            # doit pops `tasks_to_run` from the end: its own next choice is the last one.
            candidates = [n.task for n in nodes] + [self.tasks[name] for name in reversed(tasks_to_run)]
            running = [n.task for n in self.nodes.values() if n.run_status == "run"]
            i = pick(candidates, running)
            if i < len(nodes):
                ready.remove(nodes[i])
                return nodes[i]
            node = self._gen_node(None, tasks_to_run.pop(len(tasks_to_run) - 1 - (i - len(nodes))))
            if node:
                return node
        return None

    _replace(control.TaskDispatcher, "_get_next_node", _get_next_node)


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


# -- skipped jobs and phases ------------------------------------------------------------
_ignored: set[str] = set()
_order_only: dict[str, set[str]] = {}
_original_is_ignore = dependency.Dependency.status_is_ignore
_original_node_init = control.ExecNode.__init__
_original_parent_status = control.ExecNode.parent_status


def _status_is_ignore(self: Any, task: Any) -> bool:
    return task.name in _ignored or bool(_original_is_ignore(self, task))


def ignore_tasks(names: Iterable[str]) -> None:
    """doit treats these tasks as ignored in this run (as `doit ignore` would, without writing its DB):
    they do not run, nor does any task that needs one of them (each is reported through `skip_ignore`)."""
    _ignored.clear()
    _ignored.update(names)
    _replace(dependency.Dependency, "status_is_ignore", _status_is_ignore)


def _node_init(self: Any, task: Any, parent: Any) -> None:
    _original_node_init(self, task, parent)
    extra = [name for name in sorted(_order_only.get(task.name, ())) if name not in self.task_dep]
    self.task_dep += extra


def _parent_status(self: Any, parent_node: Any) -> None:
    # A task it only waits for: its failure (or being ignored) is not this task's business.
    name = parent_node.task.name
    if name in _order_only.get(self.task.name, ()) and name not in self.task.task_dep:
        return
    _original_parent_status(self, parent_node)


def order_after(after: Mapping[str, Iterable[str]]) -> None:
    """Each task of `after` waits until the named tasks have finished, whatever became of them.

    The edges are doit's own (the task's node waits for them as for a task_dep,
    so doit's graph orders them), but only in this run's nodes: `task.task_dep`,
    what the job needs, is unchanged. A name the task also needs keeps its usual
    meaning (its failure means the task does not run).
    """
    _order_only.clear()
    for name, names in after.items():
        _order_only[name] = set(names) - {name}
    _replace(control.ExecNode, "__init__", _node_init)
    _replace(control.ExecNode, "parent_status", _parent_status)


def waits_only_for(name: str) -> set[str]:
    """The tasks `name` waits for in this run without needing them (order_after)."""
    return set(_order_only.get(name, ()))


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
