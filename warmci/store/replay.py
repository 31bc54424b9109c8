"""A job's success into the store, and back into place: outputs by content, verified.

`record` stores the outputs of a job that just passed (and its log) as
blobs, then the entry that names them. `restore` puts an entry's outputs
back under the roots of this run (the target checkout, the state dir):
every blob is fetched and verified into a temporary file beside its
destination first, and only when all of them are whole are they renamed
into place, so a missing or corrupt blob leaves the tree as it was and the
job runs instead.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from warmci.inputs.contenthash import ContentHashes
from warmci.store.api import Entry, Output, RunRef, Store, StoreError


@dataclass(frozen=True)
class Restored:
    files: int  # outputs written
    kept: int  # outputs already in place with the recorded content
    bytes: int


def _place(roots: Mapping[str, str], out: Output) -> str:
    if out.root not in roots:
        raise StoreError(f"output {out.path} is under root {out.root!r}, unknown here (known: {sorted(roots)})")
    return os.path.join(roots[out.root], *out.path.split("/"))


def restore(store: Store, entry: Entry, roots: Mapping[str, str], hashes: ContentHashes) -> Restored:
    """Put the entry's outputs in place, all or none. StoreError (BlobMissing, BlobCorrupt) when it cannot."""
    todo: list[tuple[Output, str]] = []
    kept = 0
    for out in entry.outputs:
        dest = _place(roots, out)
        try:
            st = os.stat(dest)
            if hashes.digest(dest, st) == out.blob and st.st_mode & 0o777 == out.mode:
                kept += 1
                continue
        except OSError:
            pass
        todo.append((out, dest))
    fetched: list[tuple[Output, str, str]] = []
    size = 0
    try:
        for out, dest in todo:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = f"{dest}.warmci-restore-{os.getpid()}"
            size += store.get_blob(out.blob, tmp)
            os.chmod(tmp, out.mode)
            fetched.append((out, dest, tmp))
    except (StoreError, OSError) as exc:
        for _, _, tmp in fetched:
            _remove(tmp)
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"could not restore into place: {exc}") from None
    for _, dest, tmp in fetched:
        os.replace(tmp, dest)
    store.touch(entry.key)
    return Restored(files=len(fetched), kept=kept, bytes=size)


def record(store: Store, hashes: ContentHashes, *, key: str, job: str, run: RunRef,
           outputs: Iterable[tuple[str, str]], roots: Mapping[str, str], log: str | None = None,
           duration: float | None = None, parts: dict[str, Any] | None = None) -> Entry:
    """Store a success: each (root, relative path) output and the log as blobs, then the entry."""
    stored = []
    for root, rel in outputs:
        path = _place(roots, Output(root, rel, "0" * 64, 0))
        st = os.stat(path)
        digest, size = store.put_blob(path, hashes.digest(path, st))
        stored.append(Output(root, rel, digest, size, st.st_mode & 0o777))
    log_blob = store.put_blob(log)[0] if log and os.path.isfile(log) else None
    entry = Entry(key=key, job=job, run=run, outputs=tuple(stored), log=log_blob, duration=duration,
                  parts=dict(parts or {}))
    store.put(entry)
    return entry


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
