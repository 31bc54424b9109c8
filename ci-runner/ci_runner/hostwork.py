"""`python -m ci_runner worker`: a host of the Redis engine, running the runs the service sends it.

An RQ worker that listens on the queue of its own name (`[worker] name` in
its config, default the machine's name) and runs each run exactly as the
service's own worker does (ci_runner.hostrun: checkout, doit, cancellation),
in its own checkout and state dir, warm between runs. While doit runs, the
run's files go to the service (ci_runner.runfiles) and the service's
cancellation key is polled; RQ's work horse heartbeats every `lease / 3`
seconds, and RQ fails the job as abandoned when the heartbeats stop for
`lease` seconds (the host died): the service then runs it elsewhere.

SIGTERM (docker stop): doit gets warmci's cancellation, the run's files are
shipped and the job returns `stopped`, which the service queues again
without counting an attempt; then the worker exits 0.

Several workers may share a machine (each with its own name and dirs) only
where jobs with ports can get network namespaces of their own; elsewhere a
second worker on the machine refuses to start, saying why.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from rq import Worker, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from ci_runner import doitrun, engine, hostrun, runfiles
from ci_runner.config import Config, redis_url
from ci_runner.errors import RunnerError

log = logging.getLogger("ci_runner.hostwork")
SHIP_EVERY = 1.0  # seconds between two shipments of a running run's files


@dataclass
class _Host:
    config: Config
    conn: redis.Redis
    stopping: bool = False


_HOST: _Host | None = None  # set in the worker before RQ forks its work horses


class HostWorker(Worker):
    """RQ's forking worker with warmci's lease, and a warm shutdown that cancels the running doit."""

    lease: float = 30.0
    heartbeat_file: Path | None = None  # touched with every heartbeat: the container's health check reads it

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if self.heartbeat_file is not None:
            self.heartbeat_file.touch()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ adds a fixed minute to the heartbeat interval; a host's lease is the service's to choose.
        return max(int(self.lease), int(self.job_monitoring_interval) + 1)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGTERM)  # the run ends as a cancellation, then the worker
            except ProcessLookupError:
                pass
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def perform(spec: dict[str, Any]) -> dict[str, Any]:
    """The RQ job: one run on this host. Its return value is the service's to read (JSON)."""
    host = _HOST
    assert host is not None, "perform() runs in a host worker's work horse"
    job = get_current_job()
    assert job is not None
    s = doitrun.Spec.from_dict(spec)
    config = host.config
    repo = config.repo(s.repo)
    if repo is None:
        raise RunnerError(f"repository {s.repo} is not in this host's config {config.path}")
    repo = doitrun.workplace(repo, s.trust)

    def on_term(signum: int, frame: FrameType | None) -> None:
        host.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    log_file = config.logs_dir / f"{s.run_id}.log"
    run_dir = doitrun.results_path(repo.state_dir, s.run_id).parent
    shipper = runfiles.Shipper(host.conn, job.id, run_dir, log_file)
    env = doitrun.environment(os.environ, s)
    env.update(WARMCI_HOST=config.host_name)
    shipped = [0.0]

    def why_end() -> str | None:
        if host.stopping:
            return hostrun.STOPPING
        reason = host.conn.get(engine.cancel_key(job.id))
        return reason.decode() if isinstance(reason, bytes) else None

    def started(proc: Any) -> None:
        job.meta["doit_started_at"] = time.time()
        job.save_meta()  # type: ignore[no-untyped-call]

    def tick() -> None:
        if time.monotonic() - shipped[0] >= SHIP_EVERY:
            shipped[0] = time.monotonic()
            shipper.ship()

    ran = hostrun.run_here(s, repo, log_file, env, git_timeout=config.git_timeout,
                           cancel_grace=config.cancel_grace, why_end=why_end, on_start=started, tick=tick)
    shipper.ship()
    return {"host": config.host_name, "exit_code": ran.exit_code, "reason": ran.reason, "stopped": ran.stopped,
            "checkout_error": ran.checkout_error}


def check_concurrency(conn: redis.Redis, config: Config) -> str:
    """Refuse a second worker on a machine where jobs with ports cannot get namespaces of their own."""
    machine = socket.gethostname()
    others = [h for h in engine.hosts(conn, config.lease).values()
              if h.machine == machine and h.name != config.host_name]
    why_not = doitrun.namespaces_unavailable()
    if others and why_not:
        raise RunnerError(f"another worker ({', '.join(h.name for h in others)}) runs on this machine, and jobs "
                          f"with ports cannot get a network namespace of their own here ({why_not}): two runs "
                          "would fight over the pipeline's ports. Run one worker per machine, or run the "
                          "workers as root (or with CAP_SYS_ADMIN)")
    if why_not:
        return f"network namespaces unavailable ({why_not}): this must stay the machine's only worker"
    return "network namespaces available: jobs with ports get their own"


def _clear_dead_namesake(conn: redis.Redis, name: str) -> None:
    """A worker of this name killed on this machine (kill -9, a reboot) leaves its key behind for a while."""
    for w in Worker.all(connection=conn, serializer=JSONSerializer):
        if w.name != name or w.hostname != socket.gethostname():
            continue
        try:
            os.kill(int(w.pid or 0), 0)
            alive = bool(w.pid)
        except (ProcessLookupError, PermissionError):
            alive = False
        if not alive:
            log.warning("worker %s: clearing the record of its dead predecessor (pid %s)", name, w.pid)
            w.register_death()  # type: ignore[no-untyped-call]
            conn.delete(w.key)


def work(config: Config) -> int:
    """Run the host worker until SIGTERM/SIGINT; 0 on a clean stop."""
    global _HOST
    if config.engine != "redis":
        raise RunnerError(f'{config.path}: service.engine is "{config.engine}": a host worker needs '
                          'service.engine = "redis" and WARMCI_REDIS_URL')
    conn = engine.connect(config.secrets.redis_url or redis_url(os.environ))
    try:
        conn.ping()
    except redis.RedisError as exc:
        raise RunnerError(f"Redis (WARMCI_REDIS_URL) does not answer: {exc}") from None
    _clear_dead_namesake(conn, config.host_name)
    note = check_concurrency(conn, config)
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    _HOST = _Host(config, conn)
    every = engine.heartbeat_every(config.lease)
    worker = HostWorker([engine.queue(conn, config.host_name)], connection=conn, name=config.host_name,
                        serializer=JSONSerializer, job_monitoring_interval=every, worker_ttl=every + 15)
    worker.lease = config.lease
    worker.heartbeat_file = config.state_dir / "worker.heartbeat"
    config.state_dir.mkdir(parents=True, exist_ok=True)
    log.info("host worker %s: queue %s, lease %.0f s (heartbeat every %d s); %s; %d repositories",
             config.host_name, engine.QUEUE_PREFIX + config.host_name, config.lease, every, note, len(config.repos))
    worker.work(logging_level=config.log_level.upper(), with_scheduler=False)
    return 0
