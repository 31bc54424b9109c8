"""The doit reporter: ci.log, results.json, versions.txt and a readable terminal.

Workers write one status file per job (warmci.execute.jobrun); the reporter
runs in doit's main process, adds what only doit knows (up to date,
filtered, not run because a dependency failed, why a job ran:
warmci.inputs.why) and writes the run's results into STATE/runs/<run-id>/
(warmci.run.results). It reports; the run's lifecycle is warmci.run.lifecycle,
which gets the run's outcome from here.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from warmci import doitapi, statefile
from warmci.context import Context
from warmci.inputs import why
from warmci.inputs.uptodate import inputs_key
from warmci.run import gitinfo, history, kept, results, versions
from warmci.run.sampler import Sampler
from warmci.run.terminal import Console, secs, summary
from warmci.status import Status


def make_reporter(ctx: Context, on_outcome: Callable[[Status], None]) -> type:
    """A reporter class bound to this run's context (doit instantiates it); `on_outcome` gets the run's status."""
    return type("WarmciReporter", (WarmciReporter,), {"ctx": ctx, "on_outcome": staticmethod(on_outcome)})


class WarmciReporter:
    ctx: Context
    on_outcome: Callable[[Status], None]
    desc = "warmci: ci.log, results.json, versions.txt, per-job logs"

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        self.out = outstream
        self.options = options
        self.jobs: dict[str, dict[str, Any]] = {}
        self.running: set[str] = set()
        self.tasks: dict[str, Any] = {}
        self.selected: list[str] = []
        self.wanted: set[str] = set()
        self.start = time.time()
        self.ci_log: Any = None
        self.errors: list[str] = []
        self.sha: str | None = None
        self.branch: str | None = None
        self.console = Console(outstream)
        self.sampler = Sampler(on_tick=self.console.tick)
        self._tools: dict[str, dict[str, str]] = {"tools": {}, "paths": {}}
        self._versions_thread: threading.Thread | None = None
        self.kept = kept.RunStore(self.ctx)

    # -- helpers ---------------------------------------------------------
    def _line(self, word: str, name: str, extra: str = "") -> None:
        """One ci.log line: `[HH:MM:SS] START|PASS|FAIL|SKIP job[ reason]` (the buckaroo tools parse it)."""
        stamp = time.strftime("%H:%M:%S")
        if self.ci_log is not None:
            self.ci_log.write(f"[{stamp}] {word} {name}{(' ' + extra) if extra else ''}\n")
            self.ci_log.flush()

    def _job(self, name: str) -> dict[str, Any]:
        return self.jobs.setdefault(name, {"name": name})

    def _worker_status(self, name: str) -> dict[str, Any]:
        data = statefile.read_json(self.ctx.status_file(name))
        if not isinstance(data, dict):
            return {}
        # A status file older than this run's start is a leftover and is ignored.
        return data if data.get("start", 0) >= self.start - 1 else {}

    def _background(self) -> None:
        """Start sampling and the tool versions lookup, once doit's worker processes exist (see warmci.run.sampler)."""
        if self.sampler.running:
            return
        self.sampler.start()
        self._versions_thread = threading.Thread(target=self._find_tools, name="warmci-versions", daemon=True)
        self._versions_thread.start()

    def _find_tools(self) -> None:
        names: set[str] = set()
        pythons: set[str] = set()
        for task in self.tasks.values():
            key = inputs_key(task)
            if key is not None:
                names.update(key.tools)
                if key.python:
                    pythons.add(key.python)
        try:
            self._tools = versions.tools(self.ctx, names, pythons)
        except Exception as exc:  # versions are information: never fail the run for them
            self._tools = {"tools": {"error": f"{type(exc).__name__}: {exc}"}, "paths": {}}

    def _write_versions(self) -> dict[str, str]:
        if self._versions_thread is None:
            self._find_tools()  # nothing ran: every version is cached, no thread needed
        else:
            self._versions_thread.join()
        try:
            versions.write(self.ctx, os.path.join(self.ctx.run_dir, "versions.txt"), self._tools)
        except OSError as exc:
            self.errors.append(f"could not write versions.txt: {exc}")
        return self._tools["tools"]

    # -- doit reporter API ----------------------------------------------------
    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        os.makedirs(self.ctx.run_dir, exist_ok=True)
        self.ci_log = open(os.path.join(self.ctx.run_dir, "ci.log"), "a")
        self.tasks = tasks
        self.selected = list(selected_tasks)
        self.sha, self.branch = gitinfo.head(self.ctx.target)
        latest = os.path.join(self.ctx.state, "runs", "latest")
        try:
            if os.path.islink(latest):
                os.remove(latest)
            os.symlink(self.ctx.run_id, latest)
        except OSError:
            pass
        self.wanted = _closure(tasks, self.selected)
        for name in tasks:
            if name not in self.wanted:
                self._job(name).update(status=Status.FILTERED, reason="filtered: not selected in this run")
                self._line("SKIP", name, "filtered")

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        # In doit's main process, when a worker reports the start: the checks
        # that decided to run it are done, so warmci.inputs.why has its reasons.
        now = time.time()
        job = self._job(task.name)
        job.update(start=now, why=why.final(task, forced=doitapi.always_execute()))
        self.running.add(task.name)
        if self.kept.may_restore(task):
            job["_start_line"] = time.strftime("%H:%M:%S")  # written only if it runs after all
        else:
            self._line("START", task.name)
        self.console.started(task.name, now)
        self._background()

    def _started(self, name: str, job: dict[str, Any]) -> None:
        """The START line a job whose result might have been restored did not get yet."""
        stamp = job.pop("_start_line", None)
        if stamp is not None and self.ci_log is not None:
            self.ci_log.write(f"[{stamp}] START {name}\n")

    def add_success(self, task: Any) -> None:
        job = self._job(task.name)
        self.running.discard(task.name)
        job.update(self._worker_status(task.name))
        job.setdefault("status", Status.PASSED)
        job.setdefault("end", time.time())
        self.console.finished(task.name)
        if job["status"] == Status.RESTORED:
            job.pop("_start_line", None)
            origin = kept.origin(job)
            self._line("SKIP", task.name, f"restored: {origin}")
            because = f"  because: {why.summary(job['why'], 2)}" if job.get("why") else ""
            self.console.say(f"REST  {task.name}  ({origin}){because}")
            return
        self._started(task.name, job)
        self._flaky(task.name, job)
        if job["status"] == Status.SKIPPED:
            self._line("SKIP", task.name, job.get("reason", ""))
            self.console.say(f"SKIP  {task.name}  ({job.get('reason')})")
            return
        self._line("PASS", task.name)
        because = f"  because: {why.summary(job['why'], 2)}" if job.get("why") else ""
        self.console.say(f"PASS  {task.name}  ({secs(job.get('duration'))}){because}")
        self._notes(job)

    def add_failure(self, task: Any, fail: Any) -> None:
        job = self._job(task.name)
        self.running.discard(task.name)
        self.console.finished(task.name)
        if isinstance(fail, doitapi.UnmetDependency):
            job.update(status=Status.NOT_RUN, reason=f"dependency failed: {fail.message}")
            self._line("SKIP", task.name, f"dependency failed: {fail.message}")
            self.console.say(f"SKIP  {task.name}  (not run: dependency failed: {fail.message})")
            return
        job.update(self._worker_status(task.name))
        self._started(task.name, job)
        self._flaky(task.name, job)
        if job.get("status") in (None, Status.PASSED):
            # No worker verdict: doit itself failed the task (a dependency check, an action that raised).
            msg = fail.get_msg().strip().splitlines() if fail.get_msg() else []
            job.update(status=Status.ERRORED, reason=msg[-1] if msg else "")
        job.setdefault("end", time.time())
        self._line("FAIL", task.name)
        self.console.say(f"FAIL  {task.name}  ({job['status']}: {job.get('reason', '')})\n      log: "
                         f"{job.get('log', self.ctx.log_file(task.name))}")
        self._notes(job)

    def _notes(self, job: dict[str, Any]) -> None:
        """What the result store had to say about a job that ran (a corrupt blob, a flaky key, ...)."""
        for note in (job.get("store") or {}).get("notes", ()):
            self.console.say(f"      store: {note}")

    def _flaky(self, name: str, job: dict[str, Any]) -> None:
        if job.get("flaky"):
            self.console.say(f"FLAKY {name}: {kept.flaky_text(job['flaky'])}")

    def skip_uptodate(self, task: Any) -> None:
        now = time.time()
        self._job(task.name).update(status=Status.UP_TO_DATE, reason="up to date", start=now, end=now, duration=0.0)
        self._line("SKIP", task.name, "up to date")
        if self.options.get("verbosity", 1) >= 1:
            self.console.say(f"--    {task.name}  (up to date)")

    def skip_ignore(self, task: Any) -> None:
        self._job(task.name).update(status=Status.FILTERED, reason="filtered: ignored (`doit ignore`)")
        self._line("SKIP", task.name, "ignored")

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(exception))
        self.console.say(str(exception))

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)
        sys.stderr.write(f"warmci: {msg}\n")

    def teardown_task(self, task: Any) -> None:
        pass

    def complete_run(self) -> None:
        end = time.time()
        samples = self.sampler.stop()
        self.console.close()
        for name in sorted(self.wanted):
            job = self.jobs.get(name)
            if job is None:
                self.jobs[name] = {"name": name, "status": Status.NOT_RUN, "reason": "the run stopped first"}
            elif name in self.running:
                job.update(self._worker_status(name))
                if "status" not in job:
                    job.update(status=Status.CANCELLED, reason="the run ended before the job finished")
        for name, job in self.jobs.items():
            task = self.tasks.get(name)
            meta = doitapi.task_meta(task)
            job.setdefault("kind", meta.get("kind"))
            for key in ("start", "end", "duration", "exit_code", "log"):
                job.setdefault(key, None)
            job.setdefault("reason", "")
            job.setdefault("why", [])
            job["needs"] = list(getattr(task, "task_dep", ()) or ())
            if "priority" in meta:
                job["priority"] = meta["priority"]
        for job in self.jobs.values():
            job.pop("_start_line", None)
        tool_versions = self._write_versions()
        store = self.kept.finish(self.jobs)
        run = results.build(self.ctx, self.jobs, start=self.start, end=end, sha=self.sha, branch=self.branch,
                            errors=self.errors, versions=tool_versions, interval=self.sampler.interval,
                            samples=samples)
        run["store"] = store
        run["flaky"] = sorted(n for n, j in self.jobs.items() if j.get("flaky"))
        path = results.write(self.ctx, run)
        try:
            history.record(self.ctx.state, self.ctx.run_id, self.jobs)
        except OSError as exc:
            sys.stderr.write(f"warmci: could not update {history.path(self.ctx.state)}: {exc}\n")
        for line in summary(run):
            self.console.say(line)
        self.console.say(f"warmci: results {path}")
        if self.ci_log is not None:
            self.ci_log.close()
        self.on_outcome(run["status"])


def _closure(tasks: dict[str, Any], selected: list[str]) -> set[str]:
    """The selected tasks and everything they need: what this run may execute."""
    out: set[str] = set()
    todo = list(selected)
    while todo:
        name = todo.pop()
        if name in out or name not in tasks:
            continue
        out.add(name)
        todo += list(tasks[name].task_dep) + list(getattr(tasks[name], "setup_tasks", ()))
    return out
