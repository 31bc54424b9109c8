"""The worker: claim the next run, check its SHA out, run doit, report the outcome.

One run at a time per host by default (`service.workers`), and never two
runs of one repository at once (they share its checkout and state dir).
While doit runs, the worker watches the run's row: a cancellation (a newer
push, an operator) is SIGTERM to doit's process group, which is warmci's
own cancellation (job trees ended, successes kept, results.json written);
SIGKILL follows after `service.cancel_grace` seconds. When the service
stops, the running run is ended the same way and put back in the queue.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ci_runner import doitrun, hostrun, procs, prune, runsdb
from ci_runner.config import Config
from ci_runner.intake import queue_status
from ci_runner.runsdb import Run, RunsDB
from ci_runner.statuses import StatusBook

log = logging.getLogger("ci_runner.worker")
IDLE_POLL = 1.0  # runs the CLI queued (another process) are noticed this fast


def claim(db: RunsDB, config: Config, book: StatusBook) -> Run | None:
    """The oldest queued run whose repository is free, now running (with its started status queued)."""
    with db.write() as c:
        running = runsdb.runs(c, "state = 'running'")
        if len(running) >= config.workers:
            return None
        busy = {r.repo for r in running}
        for run in runsdb.runs(c, "state = 'queued'"):
            repo = config.repo(run.repo)
            if repo is None:
                finish(c, book, run, "errored", f"Repository {run.repo} is no longer in the runner's config")
                continue
            if run.repo in busy:
                continue
            repo = doitrun.repo_for(run, repo)
            attempt = run.attempts + 1
            run_id = f"ci-{run.id}-{attempt}"
            runsdb.update(c, run.id, state="running", started_at=time.time(), attempts=attempt, run_id=run_id,
                          state_dir=str(repo.state_dir), checkout_dir=str(repo.checkout_dir), pid=None,
                          pid_created=None, doit_started_at=None, exit_code=None,
                          log_file=str(config.logs_dir / f"{run_id}.log"),
                          results_file=str(doitrun.results_path(repo.state_dir, run_id)))
            claimed = runsdb.run(c, run.id)
            assert claimed is not None
            queue_status(c, claimed, book.started(claimed))
            return claimed
    return None


def finish(c: sqlite3.Connection, book: StatusBook, run: Run, state: str, detail: str, *,
           exit_code: int | None = None, results: dict[str, Any] | None = None) -> None:
    """Record the outcome (with the job counts the run list shows) and queue its status, in the caller's
    transaction."""
    counts = (results or {}).get("counts")
    runsdb.update(c, run.id, state=state, detail=detail, finished_at=time.time(), exit_code=exit_code,
                  job_counts=json.dumps(counts) if isinstance(counts, dict) else None)
    done = runsdb.run(c, run.id)
    assert done is not None
    queue_status(c, done, book.finished(done))


def record_outcome(c: sqlite3.Connection, book: StatusBook, config: Config, run: Run, result: doitrun.Outcome,
                   exit_code: int | None) -> None:
    """A run's outcome and its statuses (the run's, and one per job family when configured): posted once."""
    finish(c, book, run, result.state, result.detail, exit_code=exit_code, results=result.results)
    if config.job_statuses:
        done = runsdb.run(c, run.id)
        assert done is not None
        for status in book.job_groups(done, result.results):
            queue_status(c, done, status)


def requeue(c: sqlite3.Connection, book: StatusBook, run: Run, why: str, *, counts: bool) -> None:
    """Back in the queue, keeping its place (its id); an interruption that is not its fault does not count."""
    runsdb.update(c, run.id, state="queued", detail=why, pid=None, pid_created=None,
                  attempts=run.attempts if counts else run.attempts - 1)
    again = runsdb.run(c, run.id)
    assert again is not None
    place, total = runsdb.position(c, run.id)
    queue_status(c, again, book.queued(again, place, total))


class FirstRed:
    """The run's first-failure file (warmci writes it whole, once, the moment a job fails), seen once."""

    def __init__(self, path: Path, started: float) -> None:
        self.path, self.started = path, started
        self.seen = False

    def check(self) -> dict[str, Any] | None:
        """The first failure the first time it is there, else None."""
        if self.seen or not self.path.exists():
            return None
        first = doitrun.read_first_failure(self.path)
        self.seen = first is not None
        return first


def report_first_failure(db: RunsDB, book: StatusBook, run: Run, red: FirstRed) -> bool:
    """The run's first failure, the first time it is there: the commit status turns `failure` while the run
    goes on (not for a run being cancelled). True when a status was queued."""
    first = red.check()
    if first is None:
        return False
    at = first.get("at")
    seconds = float(at) - red.started if isinstance(at, (int, float)) else None
    log.info("run %s: first failure: %s %s", run.id, first.get("job"), first.get("status"))
    with db.write() as c:
        now = runsdb.run(c, run.id)
        if now is None or now.state != "running" or now.cancel_reason:
            return False
        queue_status(c, now, book.failing(now, first, seconds))
    return True


class Worker(threading.Thread):
    def __init__(self, db: RunsDB, config: Config, wake: threading.Event, stop: threading.Event,
                 posted: threading.Event, n: int = 0) -> None:
        super().__init__(name=f"worker-{n}", daemon=True)
        self.db, self.config, self.wake, self.stop, self.posted = db, config, wake, stop, posted
        self.book = StatusBook(config.status_context, config.public_url)

    def run(self) -> None:
        while not self.stop.is_set():
            self.wake.clear()
            try:
                run = claim(self.db, self.config, self.book)
            except Exception:
                log.exception("worker: could not claim a run; trying again")
                run = None
            if run is None:
                self.wake.wait(IDLE_POLL)
                continue
            self.posted.set()
            try:
                self.execute(run)
            except Exception as exc:  # never leave a run `running` because of a bug here
                log.exception("worker: run %s failed unexpectedly", run.id)
                self._finish(run, "errored", f"The runner failed: {type(exc).__name__}")
            try:
                prune.prune(self.db, self.config)
            except Exception:
                log.exception("worker: pruning old runs failed; trying again after the next run")
            self.wake.set()  # another worker may now take this repository's next run

    def execute(self, run: Run) -> None:
        repo = self.config.repo(run.repo)
        assert repo is not None and run.run_id and run.log_file
        spec = doitrun.spec_of(run, repo)
        repo = doitrun.repo_for(run, repo)
        env = doitrun.environment(os.environ, spec)
        red = FirstRed(doitrun.first_failure_path(repo.state_dir, run.run_id), time.time())

        def started(proc: subprocess.Popen[bytes]) -> None:
            red.started = time.time()
            with self.db.write() as c:
                runsdb.update(c, run.id, pid=proc.pid, pid_created=procs.started(proc.pid),
                              doit_started_at=red.started)

        # The run's first failure turns the commit status `failure` at once, while the run goes on.
        ran = hostrun.run_here(spec, repo, Path(run.log_file), env, git_timeout=self.config.git_timeout,
                               cancel_grace=self.config.cancel_grace, why_end=lambda: self._why_end(run.id),
                               on_start=started, tick=lambda: self._first_failure(run, red))
        if ran.stopped:
            with self.db.write() as c:
                requeue(c, self.book, run, "Queued again: the service was stopped mid-run", counts=False)
            return
        if ran.checkout_error is not None:
            self._finish(run, "errored", f"Checkout failed: {ran.checkout_error}")
            return
        results = doitrun.read_results(doitrun.results_path(repo.state_dir, run.run_id), run.run_id)
        result = doitrun.outcome(ran.exit_code, results, Path(run.log_file), ran.reason)
        log.info("run %s: %s (doit exit %s): %s", run.id, result.state, ran.exit_code, result.detail)
        with self.db.write() as c:
            record_outcome(c, self.book, self.config, run, result, ran.exit_code)
        self.posted.set()

    def _why_end(self, run_id: int) -> str | None:
        return hostrun.STOPPING if self.stop.is_set() else self._cancel_reason(run_id)

    def _first_failure(self, run: Run, red: FirstRed) -> None:
        if report_first_failure(self.db, self.book, run, red):
            self.posted.set()

    def _cancel_reason(self, run_id: int) -> str | None:
        with self.db.read() as c:
            row = runsdb.run(c, run_id)
        return row.cancel_reason if row else None

    def _finish(self, run: Run, state: str, detail: str) -> None:
        with self.db.write() as c:
            finish(c, self.book, run, state, detail)
        self.posted.set()
