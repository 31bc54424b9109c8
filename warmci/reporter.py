"""The doit reporter: ci.log, results.json and a readable terminal.

Workers write one status file per job (warmci.jobrun); the reporter runs in
doit's main process, adds what only doit knows (up to date, not run because
a dependency failed) and writes the run's results.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from doit.exceptions import UnmetDependency

from warmci import hygiene
from warmci.context import Context

SCHEMA = 1


def make_reporter(ctx: Context) -> type:
    """A reporter class bound to this run's context (doit instantiates it)."""
    return type("WarmciReporter", (WarmciReporter,), {"ctx": ctx})


class WarmciReporter:
    ctx: Context
    desc = "warmci: ci.log, results.json, per-job logs"

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        self.out = outstream
        self.options = options
        self.jobs: dict[str, dict[str, Any]] = {}
        self.selected: list[str] = []
        self.start = time.time()
        self.ci_log: Any = None
        self.errors: list[str] = []

    # -- helpers ---------------------------------------------------------
    def _line(self, word: str, name: str, extra: str = "") -> None:
        stamp = time.strftime("%H:%M:%S")
        if self.ci_log is not None:
            self.ci_log.write(f"[{stamp}] {word} {name}{(' ' + extra) if extra else ''}\n")
            self.ci_log.flush()

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _job(self, name: str) -> dict[str, Any]:
        return self.jobs.setdefault(name, {"name": name})

    def _worker_status(self, name: str) -> dict[str, Any]:
        try:
            with open(self.ctx.status_file(name)) as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return {}
        # A status file from an earlier run of this run id cannot exist; one
        # older than this run's start is a leftover and is ignored.
        return data if data.get("start", 0) >= self.start - 1 else {}

    # -- doit reporter API ----------------------------------------------------
    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        os.makedirs(self.ctx.run_dir, exist_ok=True)
        hygiene.start_run(self.ctx)
        self.ci_log = open(os.path.join(self.ctx.run_dir, "ci.log"), "a")
        self.tasks = tasks
        self.selected = list(selected_tasks)
        latest = os.path.join(self.ctx.state, "runs", "latest")
        try:
            if os.path.islink(latest):
                os.remove(latest)
            os.symlink(self.ctx.run_id, latest)
        except OSError:
            pass

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        job = self._job(task.name)
        job.update(status="running", start=time.time())
        self._line("START", task.name)

    def add_success(self, task: Any) -> None:
        job = self._job(task.name)
        job.update(self._worker_status(task.name))
        job.setdefault("status", "passed")
        if job["status"] == "running":
            job["status"] = "passed"
        job.setdefault("end", time.time())
        word = "SKIP" if job["status"] == "skipped" else "PASS"
        self._line(word, task.name, job.get("reason", "") if word == "SKIP" else "")
        self._say(f"{word:5} {task.name}" + (f"  ({job.get('duration', 0):.1f} s)" if word == "PASS" else
                                              f"  ({job.get('reason')})"))

    def add_failure(self, task: Any, fail: Any) -> None:
        job = self._job(task.name)
        if isinstance(fail, UnmetDependency):
            job.update(status="not-run", reason=f"dependency failed: {fail.message}")
            self._line("SKIP", task.name, f"dependency failed: {fail.message}")
            self._say(f"SKIP  {task.name}  (not run: dependency failed: {fail.message})")
            return
        job.update(self._worker_status(task.name))
        if job.get("status") in (None, "running", "passed"):
            job.update(status="error", reason=fail.get_msg().strip().splitlines()[-1] if fail.get_msg() else "")
        job.setdefault("end", time.time())
        self._line("FAIL", task.name)
        self._say(f"FAIL  {task.name}  ({job['status']}: {job.get('reason', '')})\n      log: "
                  f"{job.get('log', self.ctx.log_file(task.name))}")

    def skip_uptodate(self, task: Any) -> None:
        self._job(task.name).update(status="up-to-date", reason="up to date")
        self._line("SKIP", task.name, "up to date")
        if self.options.get("verbosity", 1) >= 1:
            self._say(f"--    {task.name}  (up to date)")

    def skip_ignore(self, task: Any) -> None:
        self._job(task.name).update(status="ignored", reason="ignored (doit ignore)")
        self._line("SKIP", task.name, "ignored")

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(exception))
        self._say(str(exception))

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)
        sys.stderr.write(f"warmci: {msg}\n")

    def teardown_task(self, task: Any) -> None:
        pass

    def complete_run(self) -> None:
        end = time.time()
        for name in self.selected:
            if name not in self.jobs:
                self.jobs[name] = {"name": name, "status": "not-run", "reason": "the run stopped first"}
        statuses = [j.get("status") for j in self.jobs.values()]
        bad = [s for s in statuses if s in ("failed", "error", "timed-out", "not-run")]
        overall = "passed" if not bad and not self.errors else ("error" if "error" in statuses or self.errors
                                                                 else "failed")
        results = {
            "schema": SCHEMA,
            "run_id": self.ctx.run_id,
            "target": self.ctx.target,
            "pipeline": self.ctx.pipeline,
            "start": self.start,
            "end": end,
            "duration": round(end - self.start, 3),
            "status": overall,
            "jobs": self.jobs,
            "errors": self.errors,
        }
        path = os.path.join(self.ctx.run_dir, "results.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(results, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
        counts: dict[str, int] = {}
        for s in statuses:
            counts[str(s)] = counts.get(str(s), 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        self._say(f"warmci: {overall.upper()} in {end - self.start:.1f} s: {summary}\n"
                  f"warmci: results {path}")
        if self.ci_log is not None:
            self.ci_log.close()
        hygiene.end_run(self.ctx)
