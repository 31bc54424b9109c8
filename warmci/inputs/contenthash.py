"""What a file's content is: its sha256, remembered across runs.

An unchanged mtime is never proof of an unchanged file (`cp -p`, `rsync -a`,
`tar` and `os.utime` keep it), so a remembered hash is reused only while the
file's stat signature is the one it was hashed under: mtime and ctime in
nanoseconds, size, inode, device and mode. The kernel sets ctime on every
write, rename and utime, so a content change cannot keep that signature;
only a second write within the same timestamp tick as the one before could.
That is git's "racy" case, handled git's way: an entry whose file changed
less than RACY_NS before it was hashed is hashed again on its next use (and,
once the file has been quiet that long, remembered for good).

The hashes are persisted per root (one file per target checkout) in a cache
directory of the state dir, so a fresh clone of the same content hashes each
file once and every no-op after it only stats. Two runs may share the cache:
a save merges with what is on disk under an exclusive lock and replaces the
file whole, so a reader never sees half of one and nothing written by
another run is lost.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import sys
import time
from array import array
from collections.abc import Callable, Iterable

# A file changed less than this before it was hashed is hashed again on its
# next use. Covers file systems with one-second timestamps and the coarse
# kernel clock that stamps ctime (a few ms behind time.time_ns()).
RACY_NS = 2_000_000_000
# Entries no run looked at for this many days are dropped when a shard is saved.
KEEP_DAYS = 30

_MAGIC = b"WARMCI-HASHES 1\n"
# Per entry: mtime_ns, ctime_ns, size, ino, dev, mode, recorded_ns, seen_day.
_FIELDS = 8
_DIGEST = 32
_CHUNK = 1 << 20


def sha256_of(path: str) -> str:
    """The sha256 of a file's bytes, read in chunks (no cache)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def signature(st: os.stat_result) -> tuple[int, int, int, int, int, int]:
    """The stat fields a content change cannot keep unchanged (outside the racy tick)."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev, st.st_mode)


def identity(digest: str, st: os.stat_result) -> str:
    """A file as a job sees it: its content, and whether it is executable (a script losing +x fails)."""
    return digest + ("+x" if st.st_mode & 0o111 else "")


class _Shard:
    """The remembered hashes of the files under one root (relative paths), as loaded plus this run's changes."""

    def __init__(self, root: str, file: str) -> None:
        self.root, self.file = root, file
        self.index: dict[str, int] = {}
        self.ints = array("q")
        self.digests = b""
        self.changed: dict[str, tuple[tuple[int, ...], bytes]] = {}
        self.load()

    def load(self) -> None:
        loaded = _read(self.file, self.root)
        if loaded is not None:
            paths, self.ints, self.digests = loaded
            self.index = {p: i for i, p in enumerate(paths)}

    def get(self, rel: str) -> tuple[tuple[int, ...], bytes] | None:
        hit = self.changed.get(rel)
        if hit is not None:
            return hit
        i = self.index.get(rel)
        if i is None:
            return None
        return tuple(self.ints[i * _FIELDS:(i + 1) * _FIELDS]), self.digests[i * _DIGEST:(i + 1) * _DIGEST]

    def entries(self) -> dict[str, tuple[tuple[int, ...], bytes]]:
        out = {p: (tuple(self.ints[i * _FIELDS:(i + 1) * _FIELDS]), self.digests[i * _DIGEST:(i + 1) * _DIGEST])
               for p, i in self.index.items()}
        out.update(self.changed)
        return out


class ContentHashes:
    """sha256 of files, re-read only when their stat signature says they may have changed.

    `roots` are the directories (target checkouts) whose files get a shard
    of their own, keyed by relative path; any other file is remembered in a
    shared shard by absolute path. `hashed` counts the files actually read.
    """

    def __init__(self, cache_dir: str, roots: Iterable[str] = (),
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.cache_dir = cache_dir
        self.roots = sorted({os.path.abspath(r) for r in roots}, key=len, reverse=True)
        self._prefixes = [(r.rstrip(os.sep) + os.sep, r) for r in self.roots]
        self.clock = clock
        self.hashed = 0
        self._shards: dict[str, _Shard] = {}
        # path -> (signature..., digest) of files whose entry was trusted in this process. Only trusted
        # ones: a racy entry is hashed again on every ask, as the file could still change unseen.
        self._seen: dict[str, tuple[int, int, int, int, int, int, str]] = {}
        self._today = int(time.time() // 86400)

    # -- lookups -------------------------------------------------------
    def digest(self, path: str, st: os.stat_result | None = None) -> str:
        """The sha256 (hex) of the file's content now. Raises OSError if it cannot be read."""
        if st is None:
            st = os.stat(path)
        seen = self._known(path, st)
        if seen is not None:
            return seen
        if not os.path.isabs(path):
            path = os.path.abspath(path)
        shard, rel = self._shard_of(path)
        # The hot path of every no-op (50k files): compare fields in place, build nothing.
        i = shard.index.get(rel) if rel not in shard.changed else None
        if i is not None:
            a, b = shard.ints, i * _FIELDS
            if (a[b] == st.st_mtime_ns and a[b + 1] == st.st_ctime_ns and a[b + 2] == st.st_size
                    and a[b + 3] == st.st_ino and a[b + 4] == st.st_dev and a[b + 5] == st.st_mode
                    and max(a[b], a[b + 1]) + RACY_NS <= a[b + 6]):
                digest = shard.digests[i * _DIGEST:(i + 1) * _DIGEST]
                if a[b + 7] < self._today:  # keep it from being pruned as unused
                    shard.changed[rel] = (tuple(a[b:b + 6]) + (a[b + 6], self._today), digest)
                hexdigest = digest.hex()
                self._seen[path] = (a[b], a[b + 1], a[b + 2], a[b + 3], a[b + 4], a[b + 5], hexdigest)
                return hexdigest
        else:
            known = shard.changed.get(rel)
            if known is not None:
                fields, digest = known
                if fields[:6] == signature(st) and max(fields[0], fields[1]) + RACY_NS <= fields[6]:
                    self._seen[path] = (*signature(st), digest.hex())
                    return digest.hex()
        return self._hash(shard, rel, path, st)

    def identity(self, path: str, st: os.stat_result | None = None) -> str:
        """digest(path), plus "+x" when the file is executable."""
        if st is None:
            st = os.stat(path)
        return identity(self._known(path, st) or self.digest(path, st), st)

    def _known(self, path: str, st: os.stat_result) -> str | None:
        """The digest if the file was asked for before in this process and its entry trusted, unchanged since.

        Each job that reads a file asks for it: from the second ask on, one dict get and a few compares."""
        seen = self._seen.get(path)
        if (seen is not None and seen[0] == st.st_mtime_ns and seen[1] == st.st_ctime_ns and seen[2] == st.st_size
                and seen[3] == st.st_ino and seen[4] == st.st_dev and seen[5] == st.st_mode):
            return seen[6]
        return None

    def _hash(self, shard: _Shard, rel: str, path: str, st: os.stat_result) -> str:
        for _ in range(3):
            recorded = self.clock()  # before reading: a write we could miss comes later than this
            digest = sha256_of(path)
            self.hashed += 1
            after = os.stat(path)
            if signature(after) == signature(st):
                shard.changed[rel] = (signature(st) + (recorded, self._today), bytes.fromhex(digest))
                return digest
            st = after  # it changed while we read it: read it again
        return digest  # still changing: the content we read, remembered for nothing

    def _shard_of(self, path: str) -> tuple[_Shard, str]:
        for prefix, root in self._prefixes:
            if path.startswith(prefix):
                return self._shard(root), path[len(prefix):]
        return self._shard(""), path

    def _shard(self, root: str) -> _Shard:
        shard = self._shards.get(root)
        if shard is None:
            name = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:16]
            shard = self._shards[root] = _Shard(root, os.path.join(self.cache_dir, f"{name}.bin"))
        return shard

    # -- persistence ---------------------------------------------------
    def save(self) -> None:
        """Write what this run learned, merged with what other runs saved meanwhile."""
        for shard in self._shards.values():
            if shard.changed:
                self._save(shard)

    def _save(self, shard: _Shard) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        with open(shard.file + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = _Shard(shard.root, shard.file).entries()  # as another run may have left it
            for rel, (fields, digest) in shard.changed.items():
                old = merged.get(rel)
                if old is None or old[0][6] <= fields[6]:  # the later observation of the file wins
                    merged[rel] = (fields, digest)
            oldest = self._today - KEEP_DAYS
            _write(shard.file, shard.root, {p: e for p, e in merged.items() if e[0][7] >= oldest})
        shard.changed.clear()
        shard.load()


def _read(file: str, root: str) -> tuple[list[str], array[int], bytes] | None:
    """A shard's (paths, fields, digests), or None when missing, foreign or damaged (then all is re-hashed)."""
    try:
        with open(file, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    try:
        if not data.startswith(_MAGIC):
            return None
        pos = len(_MAGIC)
        end = data.index(b"\n", pos)
        if data[pos:end].decode("utf-8", "surrogateescape") != root:
            return None
        n, plen = struct.unpack_from("<QQ", data, end + 1)
        pos = end + 1 + 16
        paths = data[pos:pos + plen].decode("utf-8", "surrogateescape").split("\0") if n else []
        pos += plen
        ints = array("q")
        ints.frombytes(data[pos:pos + n * _FIELDS * 8])
        if sys.byteorder == "big":
            ints.byteswap()
        pos += n * _FIELDS * 8
        digests = data[pos:pos + n * _DIGEST]
        if len(paths) != n or len(ints) != n * _FIELDS or len(digests) != n * _DIGEST:
            return None
        return paths, ints, digests
    except (ValueError, struct.error, UnicodeDecodeError):
        return None


def _write(file: str, root: str, entries: dict[str, tuple[tuple[int, ...], bytes]]) -> None:
    paths = sorted(entries)
    ints = array("q", [v for p in paths for v in entries[p][0]])
    if sys.byteorder == "big":
        ints.byteswap()
    blob = "\0".join(paths).encode("utf-8", "surrogateescape")
    tmp = f"{file}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC + root.encode("utf-8", "surrogateescape") + b"\n")
        fh.write(struct.pack("<QQ", len(paths), len(blob)))
        fh.write(blob)
        fh.write(ints.tobytes())
        fh.write(b"".join(entries[p][1] for p in paths))
    os.replace(tmp, file)
