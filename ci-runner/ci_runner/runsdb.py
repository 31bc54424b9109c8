"""The persistent queue: runs, seen deliveries and the statuses still to post, in SQLite (WAL).

Every change is one short transaction, so a `kill -9` at any point leaves
either the old or the new state, never half of one: a run is inserted
together with its pending status, and a finished run together with its
final one. WAL lets the operator CLI read and write while the service runs.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 3  # 2: runs.filters (first red), runs.job_counts (run pages) or the Redis engine's columns; 3: all
ACTIVE = ("queued", "waiting", "running")
FINISHED = ("passed", "failed", "errored", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL, sha TEXT NOT NULL, branch TEXT NOT NULL, ref TEXT NOT NULL, lane TEXT NOT NULL,
    pr INTEGER, trigger TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
    untrusted INTEGER NOT NULL DEFAULT 0, protected INTEGER NOT NULL DEFAULT 0, approved_by TEXT,
    delivery TEXT, rerun_of INTEGER,
    state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
    queued_at REAL NOT NULL, started_at REAL, doit_started_at REAL, finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    pid INTEGER, pid_created REAL, run_id TEXT, state_dir TEXT, checkout_dir TEXT, log_file TEXT,
    exit_code INTEGER, results_file TEXT, cancel_reason TEXT, superseded_by INTEGER,
    filters TEXT NOT NULL DEFAULT '[]',
    job_counts TEXT,
    fork INTEGER NOT NULL DEFAULT 0, host TEXT, placement TEXT, engine_job TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state, id);
CREATE INDEX IF NOT EXISTS runs_by_sha ON runs (repo, sha);
CREATE INDEX IF NOT EXISTS runs_by_lane ON runs (repo, lane, state);
CREATE INDEX IF NOT EXISTS runs_by_branch ON runs (branch, id);
CREATE INDEX IF NOT EXISTS runs_by_host ON runs (repo, branch, host);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, received_at REAL NOT NULL, outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER, repo TEXT NOT NULL, sha TEXT NOT NULL,
    context TEXT NOT NULL, state TEXT NOT NULL, description TEXT NOT NULL, target_url TEXT NOT NULL,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,
    sent_at REAL, outcome TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (sent_at, id);
"""


@dataclass(frozen=True)
class Run:
    """One row of `runs`: what a run page and the worker need."""

    id: int
    repo: str
    sha: str
    branch: str
    ref: str
    lane: str
    pr: int | None
    trigger: str
    author: str
    message: str
    untrusted: int
    protected: int
    approved_by: str | None
    delivery: str | None
    rerun_of: int | None
    state: str
    detail: str
    queued_at: float
    started_at: float | None
    doit_started_at: float | None
    finished_at: float | None
    attempts: int
    pid: int | None
    pid_created: float | None
    run_id: str | None
    state_dir: str | None
    checkout_dir: str | None
    log_file: str | None
    exit_code: int | None
    results_file: str | None
    cancel_reason: str | None
    superseded_by: int | None
    fork: int = 0  # a pull request whose head is in another repository
    host: str | None = None  # the Redis engine's host that ran it (None: this service's own worker)
    placement: str | None = None  # why it went to that host (warm affinity, or what it fell back from)
    engine_job: str | None = None  # the engine's job id of the current attempt
    filters: str = "[]"  # JSON list of warmci's filter variables for doit, e.g. ["skip=test-js", "k=table"]
    job_counts: str | None = None  # JSON: status -> number of jobs (results.json `counts`), when the run finished

    @property
    def counts(self) -> dict[str, int]:
        try:
            data = json.loads(self.job_counts or "{}")
        except ValueError:
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @property
    def doit_filters(self) -> list[str]:
        value = json.loads(self.filters or "[]")
        return [str(v) for v in value] if isinstance(value, list) else []

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Outgoing:
    """A commit status waiting in the outbox."""

    id: int
    run: int | None
    repo: str
    sha: str
    context: str
    state: str
    description: str
    target_url: str
    attempts: int


# Columns added after schema 1, with their definitions: an older queue gets them at start.
# Columns added since schema 1, as ALTER TABLE declares them.
_ADDED = {"runs": {"filters": "TEXT NOT NULL DEFAULT '[]'", "job_counts": "TEXT", "fork": "INTEGER NOT NULL DEFAULT 0",
                   "host": "TEXT", "placement": "TEXT", "engine_job": "TEXT"}}


def _add_columns(c: sqlite3.Connection, added: dict[str, dict[str, str]]) -> None:
    for table, columns in added.items():
        have = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
        if not have:
            continue  # a new database: the schema creates the table whole
        for name, definition in columns.items():
            if name not in have:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


class RunsDB:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as c:
            c.execute("PRAGMA journal_mode=WAL")
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                from ci_runner.errors import RunnerError

                raise RunnerError(f"{self.path} was written by a newer ci-runner (schema {version}); "
                                  "upgrade the runner or point service.state_dir elsewhere")
            _add_columns(c, _ADDED)
            c.executescript(_SCHEMA)
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL survives a killed process; only a power loss can cost the newest commit.
            c.execute("PRAGMA synchronous=NORMAL")
            yield c
        finally:
            c.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue up instead of failing midway)."""
        with self._connect() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as c:
            yield c


# Queries that run inside a caller's transaction (connection first, like sqlite3's own API).

def run(c: sqlite3.Connection, run_id: int) -> Run | None:
    row = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    return Run(**dict(row)) if row else None


def runs(c: sqlite3.Connection, where: str = "1", params: tuple[Any, ...] = (), order: str = "id",
         limit: int = -1) -> list[Run]:
    rows = c.execute(f"SELECT * FROM runs WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit))
    return [Run(**dict(r)) for r in rows]


def insert_run(c: sqlite3.Connection, **values: Any) -> int:
    values.setdefault("queued_at", time.time())
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    cur = c.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", tuple(values.values()))
    assert cur.lastrowid is not None
    return cur.lastrowid


def update(c: sqlite3.Connection, run_id: int, /, **values: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    c.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), run_id))


def position(c: sqlite3.Connection, run_id: int) -> tuple[int, int]:
    """(1-based place among queued runs, how many are queued); (0, n) when it is not queued."""
    row = c.execute("SELECT (SELECT COUNT(*) FROM runs WHERE state = 'queued' AND id <= ?), "
                    "(SELECT COUNT(*) FROM runs WHERE state = 'queued'), "
                    "(SELECT state FROM runs WHERE id = ?)", (run_id, run_id)).fetchone()
    return (row[0] if row[2] == "queued" else 0), row[1]


def add_delivery(c: sqlite3.Connection, delivery: str, event: str) -> bool:
    """False when this delivery id was seen before (a replay or a redelivery)."""
    cur = c.execute("INSERT OR IGNORE INTO deliveries (id, event, received_at, outcome) VALUES (?, ?, ?, '')",
                    (delivery, event, time.time()))
    return cur.rowcount == 1


def set_delivery_outcome(c: sqlite3.Connection, delivery: str, outcome: str) -> None:
    c.execute("UPDATE deliveries SET outcome = ? WHERE id = ?", (outcome[:500], delivery))


def add_status(c: sqlite3.Connection, run: Run, state: str, context: str, description: str,
               target_url: str) -> None:
    c.execute("INSERT INTO outbox (run, repo, sha, context, state, description, target_url, created_at) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              (run.id, run.repo, run.sha, context, state, description, target_url, time.time()))


def unsent(c: sqlite3.Connection, now: float) -> list[Outgoing]:
    rows = c.execute("SELECT id, run, repo, sha, context, state, description, target_url, attempts FROM outbox "
                     "WHERE sent_at IS NULL AND next_at <= ? ORDER BY id", (now,))
    return [Outgoing(**dict(r)) for r in rows]


def next_status_due(c: sqlite3.Connection) -> float | None:
    row = c.execute("SELECT MIN(next_at) FROM outbox WHERE sent_at IS NULL").fetchone()
    return None if row[0] is None else float(row[0])
