"""The result store's interface and its format: what a backend keeps, and in what shape.

A backend holds three kinds of objects, each under a relative name that is
the same on a local disk and in an S3-compatible bucket:

    blobs/<d[:2]>/<d>                      file contents, named by their sha256 <d>
    entries/<k[:2]>/<k>.json               one success of the job whose whole key is <k>
    outcomes/<k[:2]>/<k>/<ns>-<run>.json   every outcome of key <k> (flakiness), append-only
    stats/<run>.json                       one run's lookups, hits and bytes, append-only

Nothing in a key or an entry names a machine path: outputs are (root,
relative path) pairs where root is a symbolic name ("target", "state"),
resolved by whoever restores them. Everything is JSON or raw bytes; every
object is written whole (never appended to or rewritten in part), so the
same format works where objects are immutable and reads are unlocked.

Only successes become entries. A failed, errored, timed-out or cancelled
outcome is recorded under outcomes/ (so a key that both passed and failed
is known to be flaky) and is never restored.
"""
from __future__ import annotations

import json
import posixpath
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

FORMAT = 1
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
# Outcomes that say the job's own command said no: with a pass for the same key, the job is flaky.
FLAKY_FAILURES = ("failed", "timed-out")


class StoreError(Exception):
    """The store could not give what was asked; the job runs instead (and the message says why)."""


class BlobMissing(StoreError):
    pass


class BlobCorrupt(StoreError):
    pass


def check_hex(value: str, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise StoreError(f"{what} {value!r} is not a sha256 hex digest")
    return value


def check_relpath(path: str) -> str:
    """A relative POSIX path that stays inside its root (an entry naming '/etc/x' or '../x' is refused)."""
    if (not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or "\0" in path
            or posixpath.normpath(path) != path or path == ".." or path.startswith("../")):
        raise StoreError(f"output path {path!r} is not a plain relative path")
    return path


@dataclass(frozen=True)
class Output:
    """One output file of a job: where it goes (root + relative path) and its content."""

    root: str
    path: str
    blob: str
    size: int
    mode: int = 0o644


@dataclass(frozen=True)
class RunRef:
    """Which run recorded something: shown as 'restored from run R (SHA S)'."""

    id: str
    sha: str | None = None
    branch: str | None = None
    host: str | None = None
    end: float | None = None


@dataclass(frozen=True)
class Entry:
    """A recorded success of one key."""

    key: str
    job: str
    run: RunRef
    outputs: tuple[Output, ...] = ()
    log: str | None = None  # blob of the job's log in that run
    duration: float | None = None
    outcome: str = "passed"
    parts: dict[str, Any] = field(default_factory=dict)  # digests of the key's parts, to show what differs

    def to_json(self) -> str:
        doc = asdict(self)
        doc["format"] = FORMAT
        return json.dumps(doc, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> Entry:
        """Parse and validate; a malformed or foreign entry raises StoreError (it is never half-trusted)."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise StoreError(f"entry format {doc.get('format')!r}, expected {FORMAT}")
            if doc.get("outcome") != "passed":
                raise StoreError(f"entry outcome {doc.get('outcome')!r}: only successes are entries")
            outputs = tuple(Output(root=str(o["root"]), path=check_relpath(o["path"]),
                                   blob=check_hex(o["blob"], "blob"), size=int(o["size"]),
                                   mode=int(o.get("mode", 0o644)) & 0o777) for o in doc.get("outputs", ()))
            run = RunRef(**{k: doc["run"].get(k) for k in ("id", "sha", "branch", "host", "end")})
            log = doc.get("log")
            return cls(key=check_hex(doc["key"], "key"), job=str(doc["job"]), run=run, outputs=outputs,
                       log=check_hex(log, "log blob") if log is not None else None,
                       duration=doc.get("duration"), parts=dict(doc.get("parts") or {}))
        except StoreError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"malformed entry: {type(exc).__name__}: {exc}") from None


def entry_for(key: str, data: str | bytes, where: str) -> Entry:
    """An entry read from `where` for `key`: valid, and filed under its own key (a store error otherwise)."""
    try:
        entry = Entry.from_json(data)
    except StoreError as exc:
        raise StoreError(f"{where}: {exc}") from None
    if entry.key != key:
        raise StoreError(f"{where} is for key {entry.key}, not {key}")
    return entry


class Store(Protocol):
    """What the engine needs from a result store; LocalStore implements it, an S3 backend will too."""

    def get(self, key: str) -> Entry | None:
        """The recorded success of `key`, None when there is none; StoreError when it is unreadable."""

    def has(self, key: str) -> bool: ...

    def put(self, entry: Entry) -> None:
        """Record a success. Its blobs (outputs, log) must be put first."""

    def touch(self, key: str) -> None:
        """Mark `key` used now (least-recently-used eviction)."""

    def has_blob(self, digest: str) -> bool: ...

    def put_blob(self, path: str, digest: str | None = None) -> tuple[str, int]:
        """Store a file's bytes; (digest, size). StoreError if they do not hash to `digest`."""

    def get_blob(self, digest: str, dest: str) -> int:
        """Write the blob to `dest` (whole or not at all), verified by hash; its size.
        BlobMissing / BlobCorrupt when it cannot (a corrupt blob is also removed)."""

    def record_outcome(self, key: str, job: str, outcome: str, run: RunRef) -> None: ...

    def outcomes(self, key: str) -> list[dict[str, Any]]: ...

    def add_stats(self, run_id: str, host: str, counts: dict[str, int]) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def prune(self, max_bytes: int) -> dict[str, Any]: ...


def is_flaky(outcomes: list[dict[str, Any]]) -> bool:
    """Passed and also failed (or timed out) with the very same key: the job, not its inputs, decides."""
    seen = {o.get("outcome") for o in outcomes}
    return "passed" in seen and any(f in seen for f in FLAKY_FAILURES)


def blob_name(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest}"


def entry_name(key: str) -> str:
    return f"entries/{key[:2]}/{key}.json"


def outcomes_prefix(key: str) -> str:
    return f"outcomes/{key[:2]}/{key}/"


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def outcome_entry(key: str, job: str, outcome: str, run: RunRef) -> tuple[str, bytes]:
    """A job's outcome under its key (name, document): in time order, named for its run."""
    name = f"{outcomes_prefix(check_hex(key, 'key'))}{time.time_ns()}-{_SAFE.sub('_', run.id)}.json"
    doc = {"key": key, "job": job, "outcome": outcome, "run": run.__dict__, "time": time.time()}
    return name, json.dumps(doc, sort_keys=True).encode()


def stats_entry(run_id: str, host: str, counts: Mapping[str, int]) -> tuple[str, bytes]:
    """A run's use of the store (name, document)."""
    doc = {"run": run_id, "host": host, "time": time.time(), **counts}
    return f"stats/{_SAFE.sub('_', run_id)}.json", json.dumps(doc, sort_keys=True).encode()
