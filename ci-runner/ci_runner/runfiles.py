"""A run's files, from the host that ran it to the service's run pages, through Redis.

The host ships `STATE/runs/RUN_ID/` (results.json, ci.log, run.log,
logs/, jobs/, gantt.png, versions.txt) and doit's own output while the run
goes on and once more at its end, each file only when it changed; the
service writes them under its own state dir, where the run pages read a
run's files whichever host ran it. Redis is the channel because every host
already reaches it (no port to open on the service, no other credential).

A file over MAX_BYTES ships its last MAX_BYTES, after a line saying so.
Relative paths are checked on both sides: nothing is written outside the
run's directory.
"""
from __future__ import annotations

import logging
import os
import posixpath
import zlib
from pathlib import Path

import redis

from ci_runner import engine

log = logging.getLogger("ci_runner.runfiles")
MAX_BYTES = 32 * 2**20
DOIT_LOG = "::doit.log"  # doit's own output (the service's logs/RUN_ID.log), not a file of the run dir


def safe_relpath(rel: str) -> bool:
    return (bool(rel) and not rel.startswith("/") and "\\" not in rel and "\0" not in rel
            and posixpath.normpath(rel) == rel and rel != ".." and not rel.startswith("../"))


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= MAX_BYTES:
            return fh.read()
        fh.seek(size - MAX_BYTES)
        return f"[warmci: the first {size - MAX_BYTES} bytes were cut]\n".encode() + fh.read()


class Shipper:
    """The host's side: what changed since the last call goes into the run's keys."""

    def __init__(self, conn: redis.Redis, job_id: str, run_dir: Path, doit_log: Path) -> None:
        self.conn, self.job_id, self.run_dir, self.doit_log = conn, job_id, run_dir, doit_log
        self.sent: dict[str, str] = {}

    def _files(self) -> dict[str, Path]:
        out = {DOIT_LOG: self.doit_log}
        for dirpath, dirnames, names in os.walk(self.run_dir):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in names:
                path = Path(dirpath, name)
                if not path.is_symlink() and path.is_file():
                    out[path.relative_to(self.run_dir).as_posix()] = path
        return out

    def ship(self) -> int:
        """Send what changed; how many files."""
        data: dict[str, bytes] = {}
        versions: dict[str, str] = {}
        for rel, path in self._files().items():
            try:
                st = path.stat()
                version = f"{st.st_size}:{st.st_mtime_ns}"
                if self.sent.get(rel) == version:
                    continue
                data[rel] = zlib.compress(_read(path), 6)
            except OSError:  # gone meanwhile (a temporary file): the next call sees the new state
                continue
            versions[rel] = version
        if not data:
            return 0
        files, vers = engine.files_key(self.job_id), engine.versions_key(self.job_id)
        with self.conn.pipeline(transaction=True) as p:
            p.hset(files, mapping=data)  # type: ignore[arg-type]
            p.hset(vers, mapping=versions)  # type: ignore[arg-type]
            p.expire(files, engine.KEY_TTL)
            p.expire(vers, engine.KEY_TTL)
            p.execute()
        self.sent.update(versions)
        return len(data)


class Receiver:
    """The service's side: writes what changed into the run's directory (and doit's log)."""

    def __init__(self, conn: redis.Redis, job_id: str, run_dir: Path, doit_log: Path) -> None:
        self.conn, self.job_id, self.run_dir, self.doit_log = conn, job_id, run_dir, doit_log
        self.have: dict[str, str] = {}

    def pull(self) -> int:
        raw = self.conn.hgetall(engine.versions_key(self.job_id))
        versions = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
        changed = [rel for rel, v in versions.items() if self.have.get(rel) != v]
        if not changed:
            return 0
        blobs = self.conn.hmget(engine.files_key(self.job_id), changed)
        written = 0
        for rel, blob in zip(changed, blobs, strict=True):
            if not isinstance(blob, bytes):
                continue
            dest = self.doit_log if rel == DOIT_LOG else self.run_dir / rel if safe_relpath(rel) else None
            if dest is None:
                log.warning("run files of %s: refused the path %r (it would leave the run's directory)",
                            self.job_id, rel[:200])
                self.have[rel] = versions[rel]
                continue
            try:
                _write(dest, zlib.decompress(blob))
            except (OSError, zlib.error) as exc:
                log.warning("run files of %s: could not write %s: %s", self.job_id, rel, exc)
                continue
            self.have[rel] = versions[rel]
            written += 1
        return written

    def drop(self) -> None:
        self.conn.delete(engine.files_key(self.job_id), engine.versions_key(self.job_id))


def _write(dest: Path, data: bytes) -> None:
    """Whole or not at all: a page never reads half a results.json."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
