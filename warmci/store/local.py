"""The result store in a local directory (the default: STATE/store).

Objects live under the relative names of warmci.store.api, so the tree can
be synced to a bucket as it is. Safe with several runs (processes) at once
without a lock on the read or write path: every object is written to a
temporary file in the store and renamed into place, so a reader sees a
whole object or none, and two runs writing the same key or blob write the
same thing. Only pruning takes a lock (one pruner at a time).

Least-recently-used: an entry's mtime is its last use (put, or a restore
touching it), a blob's mtime its last write or read. Pruning drops the
oldest entries until the store fits, then the blobs no entry references
(leaving young ones: a run may have put them for an entry it is about to
write).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from typing import Any

from warmci.store import api
from warmci.store.api import BlobCorrupt, BlobMissing, Entry, RunRef, StoreError

_CHUNK = 1 << 20
# Unreferenced blobs younger than this survive a prune (a run may be about to reference them).
BLOB_GRACE = 3600.0
OUTCOME_DAYS = 90
STATS_KEEP = 1000


class LocalStore:
    """api.Store in a directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._tmp = os.path.join(self.root, "tmp")
        os.makedirs(self._tmp, exist_ok=True)
        marker = os.path.join(self.root, "format.json")
        try:
            with open(marker) as fh:
                found = json.load(fh).get("format")
        except FileNotFoundError:
            self._write(marker, json.dumps({"format": api.FORMAT}).encode())
            found = api.FORMAT
        except (OSError, ValueError, AttributeError) as exc:
            raise StoreError(f"{marker} is unreadable ({exc}); move the store aside or delete it") from None
        if found != api.FORMAT:
            raise StoreError(f"the store {self.root} has format {found!r}; this warmci reads format "
                             f"{api.FORMAT}: point WARMCI_STORE elsewhere or delete it")

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *name.split("/"))

    def _write(self, path: str, data: bytes) -> None:
        """Whole or not at all: a temporary file in the store, renamed into place."""
        tmp = os.path.join(self._tmp, f"{os.getpid()}-{time.monotonic_ns()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(tmp, path)

    # -- entries -------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        path = self._path(api.entry_name(api.check_hex(key, "key")))
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"store entry {path} is unreadable: {exc}") from None
        return api.entry_for(key, data, f"store entry {path}")

    def has(self, key: str) -> bool:
        return os.path.exists(self._path(api.entry_name(api.check_hex(key, "key"))))

    def put(self, entry: Entry) -> None:
        api.check_hex(entry.key, "key")
        if entry.outcome != "passed":
            raise StoreError(f"only successes are entries, not {entry.outcome!r}")
        self._write(self._path(api.entry_name(entry.key)), entry.to_json().encode())

    def touch(self, key: str) -> None:
        try:
            os.utime(self._path(api.entry_name(api.check_hex(key, "key"))))
        except FileNotFoundError:
            pass

    # -- blobs ---------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self._path(api.blob_name(api.check_hex(digest, "blob"))))

    def put_blob(self, path: str, digest: str | None = None) -> tuple[str, int]:
        if digest is not None:
            final = self._path(api.blob_name(api.check_hex(digest, "blob")))
            try:
                if os.stat(final).st_size == os.stat(path).st_size:
                    os.utime(final)  # young again: a prune running now leaves it
                    return digest, os.stat(final).st_size
            except FileNotFoundError:
                pass
        tmp = os.path.join(self._tmp, f"{os.getpid()}-{time.monotonic_ns()}.blob")
        try:
            got, size = _copy_hashing(path, tmp)
            if digest is not None and got != digest:
                raise StoreError(f"{path} changed while it was stored (sha256 {got}, expected {digest})")
            final = self._path(api.blob_name(got))
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
            return got, size
        finally:
            _remove(tmp)

    def get_blob(self, digest: str, dest: str) -> int:
        src = self._path(api.blob_name(api.check_hex(digest, "blob")))
        tmp = f"{dest}.warmci-{os.getpid()}-{time.monotonic_ns()}.tmp"
        try:
            got, size = _copy_hashing(src, tmp)
        except FileNotFoundError as exc:
            _remove(tmp)
            if exc.filename == src or not os.path.exists(src):
                raise BlobMissing(f"blob {digest} is missing from the store {self.root}") from None
            raise
        if got != digest:
            _remove(tmp)
            _remove(src)  # the next success of any job with this content stores it afresh
            raise BlobCorrupt(f"blob {digest} in the store {self.root} is corrupt (its content hashes to "
                              f"{got}); removed it")
        os.replace(tmp, dest)
        try:
            os.utime(src)
        except OSError:
            pass
        return size

    # -- outcomes and stats ----------------------------------------------
    def record_outcome(self, key: str, job: str, outcome: str, run: RunRef) -> None:
        name, data = api.outcome_entry(key, job, outcome, run)
        self._write(self._path(name), data)

    def outcomes(self, key: str) -> list[dict[str, Any]]:
        folder = self._path(api.outcomes_prefix(api.check_hex(key, "key")))
        out = []
        for name in sorted(_listdir(folder)):
            try:
                with open(os.path.join(folder, name)) as fh:
                    doc = json.load(fh)
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def add_stats(self, run_id: str, host: str, counts: dict[str, int]) -> None:
        name, data = api.stats_entry(run_id, host, counts)
        self._write(self._path(name), data)

    def stats(self) -> dict[str, Any]:
        entries = _files(self._path("entries"))
        blobs = _files(self._path("blobs"))
        totals = {"lookups": 0, "hits": 0, "restored_bytes": 0, "stored_bytes": 0, "corrupt": 0}
        stats_dir = self._path("stats")
        runs = 0
        for name in _listdir(stats_dir):
            try:
                with open(os.path.join(stats_dir, name)) as fh:
                    doc = json.load(fh)
            except (OSError, ValueError):
                continue
            runs += 1
            for k in totals:
                if isinstance(doc.get(k), int):
                    totals[k] += doc[k]
        size = sum(s for _, s, _ in entries) + sum(s for _, s, _ in blobs)
        return {"root": self.root, "bytes": size, "entries": len(entries), "blobs": len(blobs), "runs": runs,
                **totals, "hit_rate": round(totals["hits"] / totals["lookups"], 4) if totals["lookups"] else None}

    def size(self) -> int:
        """Bytes held by entries and blobs (what the size limit counts)."""
        return sum(s for _, s, _ in _files(self._path("entries"))) + sum(s for _, s, _ in _files(self._path("blobs")))

    # -- eviction --------------------------------------------------------
    def prune(self, max_bytes: int, blob_grace: float = BLOB_GRACE) -> dict[str, Any]:
        """Least recently used entries first, until entries + blobs fit in max_bytes."""
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, "prune.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._prune(max_bytes, blob_grace)

    def _prune(self, max_bytes: int, blob_grace: float) -> dict[str, Any]:
        now = time.time()
        blobs = {os.path.basename(p): (s, m) for p, s, m in _files(self._path("blobs"))}
        entries = []  # (mtime, path, size, blobs it references)
        for path, size, mtime in _files(self._path("entries")):
            refs = _references(path)
            if refs is None:  # unreadable: it could never be restored
                _remove(path)
                continue
            entries.append((mtime, path, size, refs))
        entries.sort()
        refcount: dict[str, int] = {}
        for _, _, _, refs in entries:
            for d in refs:
                refcount[d] = refcount.get(d, 0) + 1

        def live_size() -> int:
            # What stays: entries, blobs still referenced, and young blobs.
            return (sum(e[2] for e in entries)
                    + sum(s for d, (s, m) in blobs.items() if refcount.get(d) or now - m < blob_grace))

        evicted = 0
        total = live_size()
        while entries and total > max_bytes:
            _, path, size, refs = entries.pop(0)
            _remove(path)
            evicted += 1
            total -= size
            for d in refs:
                refcount[d] -= 1
                if not refcount[d] and d in blobs and now - blobs[d][1] >= blob_grace:
                    total -= blobs[d][0]
        removed_blobs = 0
        for d, (_, mtime) in blobs.items():
            if not refcount.get(d) and now - mtime >= blob_grace:
                path = self._path(api.blob_name(d))
                try:
                    if now - os.stat(path).st_mtime >= blob_grace:  # not put again meanwhile
                        os.remove(path)
                        removed_blobs += 1
                except FileNotFoundError:
                    pass
        self._prune_small(now)
        return {"evicted_entries": evicted, "removed_blobs": removed_blobs, "bytes": self.stats()["bytes"]}

    def _prune_small(self, now: float) -> None:
        """Old outcome records and stats files: small, but they should not grow forever."""
        for path, _, mtime in _files(self._path("outcomes")):
            if now - mtime > OUTCOME_DAYS * 86400:
                _remove(path)
        stats = sorted((m, p) for p, _, m in _files(self._path("stats")))
        for _, path in stats[:max(0, len(stats) - STATS_KEEP)]:
            _remove(path)
        for name in _listdir(self._tmp):  # left by a run that was killed mid-write
            path = os.path.join(self._tmp, name)
            try:
                if now - os.stat(path).st_mtime > 86400:
                    os.remove(path)
            except FileNotFoundError:
                pass


def _copy_hashing(src: str, dest: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _references(entry_path: str) -> list[str] | None:
    try:
        with open(entry_path, "rb") as fh:
            entry = Entry.from_json(fh.read())
    except (OSError, StoreError):
        return None
    return [o.blob for o in entry.outputs] + ([entry.log] if entry.log else [])


def _files(folder: str) -> list[tuple[str, int, float]]:
    """(path, size, mtime) of every file below folder."""
    out = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            out.append((path, st.st_size, st.st_mtime))
    return out


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
