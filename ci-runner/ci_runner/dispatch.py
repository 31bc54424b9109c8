"""The service's side of the Redis engine: place queued runs on hosts, follow them, report them once.

With `service.engine = "redis"` this thread replaces the service's own
workers. The SQLite queue stays the record (intake, superseding, statuses
and the run pages work as on one host); a run leaves it for a host only
when a host is free, so a dead host never holds a queue. Every tick:

1. RQ's StartedJobRegistry of each host queue is cleaned: a started job
   whose host stopped heartbeating for `service.lease` seconds is failed as
   abandoned (RQ's lease).
2. Each running run is followed: a cancellation is passed on (a Redis key
   the host polls; a job not yet started is taken back at once), its files
   are pulled into the service's state dir, and when its job ends the
   outcome is recorded with its statuses, once. An abandoned job (its host
   died) or one that sat in the queue of a host that went away is queued
   again, on another host; after `max_attempts` it is reported `errored`.
3. Free hosts take queued runs (warm affinity, ci_runner.affinity), and
   each placement is recorded with its reason.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import redis
from rq.exceptions import InvalidJobOperation
from rq.job import JobStatus

from ci_runner import affinity, doitrun, engine, runfiles, runsdb
from ci_runner.config import Config
from ci_runner.intake import queue_status
from ci_runner.runsdb import Run, RunsDB
from ci_runner.statuses import StatusBook
from ci_runner.worker import FirstRed, finish, record_outcome, report_first_failure, requeue

log = logging.getLogger("ci_runner.dispatch")
TICK = 0.25
FILES_EVERY = 1.0  # a running run's files are pulled this often (the live run page)
RESULT_TTL = 7 * 86400


class Dispatcher(threading.Thread):
    def __init__(self, db: RunsDB, config: Config, wake: threading.Event, stop: threading.Event,
                 posted: threading.Event, conn: redis.Redis | None = None) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.db, self.config, self.wake, self.stop, self.posted = db, config, wake, stop, posted
        self.conn = conn or engine.connect(config.secrets.redis_url)
        self.book = StatusBook(config.status_context, config.public_url)
        self.receivers: dict[str, runfiles.Receiver] = {}
        self.pulled: dict[str, float] = {}
        self.reds: dict[str, FirstRed] = {}  # each running run's first-failure file, as pulled from its host
        self.cancel_sent: set[str] = set()
        self.down_since: float | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.step()
                if self.down_since is not None:
                    log.info("Redis answers again")
                self.down_since = None
            except redis.RedisError as exc:
                if self.down_since is None:
                    log.error("Redis is not reachable (%s); runs stay queued, running ones go on", exc)
                    self.down_since = time.time()
            except Exception:
                log.exception("dispatcher: unexpected error; trying again")
            self.wake.wait(TICK)
            self.wake.clear()

    def hosts_view(self) -> dict[str, Any]:
        """For /health: each alive host, what it runs, when it was last heard of; or why Redis cannot say."""
        try:
            hosts = engine.hosts(self.conn, self.config.lease)
        except redis.RedisError as exc:
            return {"error": f"Redis is not reachable: {type(exc).__name__}"}
        with self.db.read() as c:
            busy = {r.host: r.id for r in runsdb.runs(c, "state = 'running' AND host IS NOT NULL")}
        return {name: {"machine": h.machine, "state": h.state, "last_heartbeat": h.seen, "running": busy.get(name)}
                for name, h in sorted(hosts.items())}

    # -- one tick --------------------------------------------------------------------------------

    def step(self) -> None:
        with self.db.read() as c:
            running = runsdb.runs(c, "state = 'running' AND engine_job IS NOT NULL")
        for host in {r.host for r in running if r.host}:
            engine.queue(self.conn, host).started_job_registry.cleanup()
        hosts = engine.hosts(self.conn, self.config.lease)
        for run in running:
            self.follow(run, hosts)
        self.place(hosts)

    def follow(self, run: Run, hosts: dict[str, engine.Host]) -> None:
        assert run.engine_job is not None
        job = engine.fetch(self.conn, run.engine_job)
        if job is None:
            self.lost(run, "its job is gone from Redis (was Redis restarted without its data?)")
            return
        status = job.get_status(refresh=False)
        if run.cancel_reason and run.engine_job not in self.cancel_sent:
            self.conn.set(engine.cancel_key(run.engine_job), run.cancel_reason, ex=engine.KEY_TTL)
            self.cancel_sent.add(run.engine_job)
            if status == JobStatus.QUEUED and self._take_back(job, run.host):
                self.settle(run, lambda c: finish(c, self.book, run, "cancelled", run.cancel_reason or ""))
                return
        if status == JobStatus.QUEUED and run.host not in hosts and self._take_back(job, run.host):
            self.settle(run, lambda c: requeue(c, self.book, run, f"Queued again: host {run.host} went away "
                                                                  "before it started the run", counts=False))
            return
        if status == JobStatus.STARTED:
            self._doit_started(run, job.get_meta(refresh=False))
            if time.monotonic() - self.pulled.get(run.engine_job, 0.0) >= FILES_EVERY:
                self.pull(run)
                self._first_failure(run)
        elif status == JobStatus.FINISHED:
            self.ended(run, job.return_value())
        elif status == JobStatus.FAILED:
            result = job.latest_result()
            exc = (result.exc_string if result else None) or ""
            if "AbandonedJobError" in exc:
                self.lost(run, f"host {run.host} stopped heartbeating for {self.config.lease:.0f} s")
            else:
                last = exc.strip().splitlines()[-1] if exc.strip() else "no traceback"
                self.pull(run)
                self.settle(run, lambda c: finish(c, self.book, run, "errored",
                                                  f"The host worker {run.host} failed: {last}"[:300]))
        elif status in (JobStatus.STOPPED, JobStatus.CANCELED):
            self.settle(run, lambda c: requeue(c, self.book, run, f"Queued again: its job on {run.host} was "
                                                                  f"{status.value}", counts=False))

    def _take_back(self, job: Any, host: str | None) -> bool:
        """Take a job back that no host has started; False when a host took it meanwhile. Removing it from
        its queue is atomic against a worker's dequeue: after that, no host can start it."""
        if not host or engine.queue(self.conn, host).remove(job.id) != 1:
            return False
        try:
            job.cancel()
        except InvalidJobOperation:
            pass
        return True

    def _doit_started(self, run: Run, meta: dict[str, Any]) -> None:
        started = meta.get("doit_started_at")
        if run.doit_started_at is None and isinstance(started, int | float):
            with self.db.write() as c:
                runsdb.update(c, run.id, doit_started_at=float(started))

    def _first_failure(self, run: Run) -> None:
        """The host ships first-failure.json with the run's files: the commit turns red a pull after it."""
        assert run.engine_job and run.state_dir and run.run_id
        red = self.reds.get(run.engine_job)
        if red is None:
            if run.doit_started_at is None:
                return  # doit has not started on the host: nothing has failed yet
            path = doitrun.first_failure_path(Path(run.state_dir), run.run_id)
            red = self.reds[run.engine_job] = FirstRed(path, run.doit_started_at)
        if report_first_failure(self.db, self.book, run, red):
            self.posted.set()

    def pull(self, run: Run) -> None:
        assert run.engine_job and run.state_dir and run.run_id and run.log_file
        rec = self.receivers.get(run.engine_job)
        if rec is None:
            rec = runfiles.Receiver(self.conn, run.engine_job, Path(run.state_dir) / "runs" / run.run_id,
                                    Path(run.log_file))
            self.receivers[run.engine_job] = rec
        rec.pull()
        self.pulled[run.engine_job] = time.monotonic()

    def ended(self, run: Run, value: Any) -> None:
        """The host's job returned: its files are here; the outcome and its statuses are recorded, once."""
        assert run.run_id and run.log_file and run.state_dir and run.engine_job
        ran = value if isinstance(value, dict) else {}
        self.pull(run)
        if ran.get("stopped"):
            log.info("run %s: host %s was stopped mid-run; queued again", run.id, run.host)
            self.settle(run, lambda c: requeue(c, self.book, run, f"Queued again: host {run.host} was stopped "
                                                                  "mid-run", counts=False))
            return
        if ran.get("checkout_error"):
            self.settle(run, lambda c: finish(c, self.book, run, "errored",
                                              f"Checkout failed on {run.host}: {ran['checkout_error']}"))
            return
        code = ran.get("exit_code")
        code = code if isinstance(code, int) else None
        results = doitrun.read_results(Path(run.state_dir) / "runs" / run.run_id / "results.json", run.run_id)
        reason = run.cancel_reason if ran.get("reason") else None
        result = doitrun.outcome(code, results, Path(run.log_file), reason)
        log.info("run %s on %s: %s (doit exit %s): %s", run.id, run.host, result.state, code, result.detail)
        self.settle(run, lambda c: record_outcome(c, self.book, self.config, run, result, code))

    def lost(self, run: Run, why: str) -> None:
        """Its host died (RQ's lease ran out) or its job vanished: another attempt, or `errored`."""
        if run.cancel_reason:
            self.settle(run, lambda c: finish(c, self.book, run, "cancelled", run.cancel_reason or ""))
        elif run.attempts >= self.config.max_attempts:
            self.settle(run, lambda c: finish(c, self.book, run, "errored",
                                              f"Lost {run.attempts} times, last: {why}; not retried "
                                              f"(`python -m ci_runner rerun {run.id}`)"))
        else:
            log.warning("run %s: %s; queued again", run.id, why)
            self.settle(run, lambda c: requeue(c, self.book, run, f"Queued again: {why}", counts=True))

    def settle(self, run: Run, op: Any) -> None:
        """One transaction for the run's new state and its status; then its Redis keys go."""
        with self.db.write() as c:
            now = runsdb.run(c, run.id)
            if now is None or now.state != "running" or now.engine_job != run.engine_job:
                return  # settled meanwhile (another tick, an operator)
            op(c)
        self.posted.set()
        job = run.engine_job or ""
        rec = self.receivers.pop(job, None)
        if rec is not None:
            rec.drop()
        self.pulled.pop(job, None)
        self.reds.pop(job, None)
        self.cancel_sent.discard(job)
        self.conn.delete(engine.cancel_key(job))

    # -- placing queued runs ---------------------------------------------------------------------

    def place(self, hosts: dict[str, engine.Host]) -> None:
        if not hosts:
            return
        with self.db.read() as c:
            queued = runsdb.runs(c, "state = 'queued'")
            if not queued:
                return
            active = runsdb.runs(c, "state = 'running' AND host IS NOT NULL")
            busy = {r.host: r.id for r in active if r.host}
            free = [h for h in hosts if h not in busy]
            last_used = {h: _last_start(c, h) for h in free}
            candidates = [_candidate(c, r) for r in queued]
        free.sort(key=lambda h: (last_used[h], h))
        for p in affinity.place(candidates, free, {h: r for h, r in busy.items() if h in hosts}):
            self.assign(p)

    def assign(self, p: affinity.Placement) -> None:
        with self.db.write() as c:
            run = runsdb.run(c, p.run)
            if run is None or run.state != "queued":
                return
            repo = self.config.repo(run.repo)
            if repo is None:
                finish(c, self.book, run, "errored", f"Repository {run.repo} is no longer in the runner's config")
                return
            attempt = run.attempts + 1
            run_id = f"ci-{run.id}-{attempt}"
            job_id = f"warmci-{run_id}"
            mirror = self.config.state_dir / "remote"
            runsdb.update(c, run.id, state="running", started_at=time.time(), attempts=attempt, run_id=run_id,
                          host=p.host, placement=p.why, engine_job=job_id, state_dir=str(mirror),
                          checkout_dir=None, pid=None, pid_created=None, doit_started_at=None, exit_code=None,
                          log_file=str(self.config.logs_dir / f"{run_id}.log"),
                          results_file=str(doitrun.results_path(mirror, run_id)))
            placed = runsdb.run(c, run.id)
            assert placed is not None
            spec = doitrun.spec_of(placed, repo)
            queue_status(c, placed, self.book.started(placed))
        log.info("run %s -> %s: %s", run.id, p.host, p.why)
        try:
            engine.queue(self.conn, p.host).enqueue(
                engine.JOB_FUNCTION, asdict(spec), job_id=job_id, job_timeout=-1, result_ttl=RESULT_TTL,
                failure_ttl=RESULT_TTL, description=f"{run.repo}@{run.short_sha} ({run.branch}) run {run.id}")
        except redis.RedisError:
            with self.db.write() as c:
                requeue(c, self.book, placed, "Queued again: Redis did not take the job", counts=False)
            raise
        self.posted.set()


def _candidate(c: Any, run: Run) -> affinity.Candidate:
    # The branch's latest placed run, this one's own earlier attempt included.
    last = runsdb.runs(c, "repo = ? AND branch = ? AND host IS NOT NULL AND started_at IS NOT NULL",
                       (run.repo, run.branch), order="started_at DESC", limit=1)
    return affinity.Candidate(run.id, run.branch, last[0].host if last else None, last[0].id if last else None)


def _last_start(c: Any, host: str) -> float:
    row = c.execute("SELECT MAX(started_at) FROM runs WHERE host = ?", (host,)).fetchone()
    return float(row[0] or 0.0)
