"""The Redis engine's shared names: RQ queues per host, the keys beside them, and who is alive.

RQ (on Redis) is the engine: each host worker is an RQ worker listening on
the queue of its own name, `warmci-host-NAME`, so the service chooses the
host by choosing the queue (warm affinity). RQ keeps the job's lifecycle,
the result and the lease: a worker heartbeats every `lease / 3` seconds,
and a started job whose host went silent for `lease` seconds is found by
RQ's StartedJobRegistry cleanup and failed as abandoned, which the service
turns into a new attempt elsewhere. Jobs are JSON (RQ's JSONSerializer),
never pickles. Beside RQ's own keys, the service and the hosts share:

    warmci:cancel:JOB     a cancellation's reason, set by the service, read by the host
    warmci:files:JOB      the run's files (relative path -> zlib bytes), shipped by the host
    warmci:filever:JOB    their versions (relative path -> "size:mtime_ns"), to ship only what changed
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

QUEUE_PREFIX = "warmci-host-"
KEY_TTL = 7 * 86400  # keys the service did not collect (it was gone for a week) expire
JOB_FUNCTION = "ci_runner.hostwork.perform"


def connect(url: str) -> redis.Redis:
    # Short socket timeouts: a Redis that went away must not hang the service's dispatcher.
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)


def queue(conn: redis.Redis, host: str) -> Queue:
    return Queue(QUEUE_PREFIX + host, connection=conn, serializer=JSONSerializer, default_timeout=-1)


def fetch(conn: redis.Redis, job_id: str) -> Job | None:
    jobs = Job.fetch_many([job_id], connection=conn, serializer=JSONSerializer)
    return jobs[0] if jobs else None


def cancel_key(job_id: str) -> str:
    return f"warmci:cancel:{job_id}"


def files_key(job_id: str) -> str:
    return f"warmci:files:{job_id}"


def versions_key(job_id: str) -> str:
    return f"warmci:filever:{job_id}"


def heartbeat_every(lease: float) -> int:
    """Seconds between a worker's heartbeats: three chances before its lease runs out."""
    return max(1, int(lease / 3))


@dataclass(frozen=True)
class Host:
    """A host worker as Redis sees it."""

    name: str
    state: str  # RQ's: idle, busy, started, suspended
    machine: str  # the machine it runs on (several workers may share one)
    pid: int
    seen: float  # its last heartbeat (epoch seconds)


def hosts(conn: redis.Redis, lease: float, now: float | None = None) -> dict[str, Host]:
    """The host workers that heartbeat within the lease (a killed one is gone after it, not before)."""
    now = time.time() if now is None else now
    out = {}
    for w in Worker.all(connection=conn, serializer=JSONSerializer):
        names = [q.name for q in w.queues if q.name.startswith(QUEUE_PREFIX)]
        beat = w.last_heartbeat
        if not names or beat is None or w.death_date is not None:
            continue
        seen = beat.replace(tzinfo=UTC).timestamp() if beat.tzinfo is None else beat.timestamp()
        if now - seen > lease:
            continue
        name = names[0].removeprefix(QUEUE_PREFIX)
        out[name] = Host(name, str(w.get_state()), w.hostname or "", int(w.pid or 0), seen)
    return out


def utc(t: datetime | None) -> float | None:
    if t is None:
        return None
    return (t.replace(tzinfo=UTC) if t.tzinfo is None else t).timestamp()
