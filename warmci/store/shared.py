"""The result store a run uses: this host's, then the shared bucket's namespaces it may trust.

Who may trust whose results in the bucket (the cache-poisoning rule,
docs/scale.md). A run is one of three kinds, said by WARMCI_STORE_TRUST
(the CI service sets it; a maintainer at a terminal is `protected`):

    protected   a protected branch's own runs (main)       restores from: protected/
    branch      the repository's other branches and PRs    restores from: protected/, branch/
    fork        a pull request from a fork                 restores from: protected/, branch/

and records into its own prefix only: protected/ or branch/; a fork's run
never writes the bucket, and its environment holds no key that could
(ci_runner.doitrun). So nothing a fork's code produced is ever restored by
anyone else, and nothing a branch produced by main, on any host.

On one host the local store (STATE/store) is shared, as the checkout and
doit's state are, by the repository's main and branches: that is what
keeps them warm. A fork's run never shares them: the CI service gives it a
checkout and a state dir of its own (`*.fork`), so its local store is its own.

Lookups go local first, then the bucket's prefixes from the most trusted:
read before a local miss runs the job. An entry found in the bucket is
copied into the local store with every blob verified by hash, so the next
lookup on this host is local. Writing the bucket is best effort: a failure
is noted, and the local store keeps the result.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from warmci.errors import WarmciError
from warmci.store import api, s3
from warmci.store.api import Entry, RunRef, StoreError
from warmci.store.local import LocalStore

TRUST_VAR = "WARMCI_STORE_TRUST"
NAMESPACES = ("protected", "branch", "fork")
# The bucket's prefixes each kind restores from, most trusted first; it writes only its own, if it is listed.
TRUSTS = {"protected": ("protected",), "branch": ("protected", "branch"), "fork": ("protected", "branch")}
REMOTE_WRITERS = ("protected", "branch")


def trust_from(env: Mapping[str, str]) -> str:
    value = env.get(TRUST_VAR, "").strip() or "protected"
    if value not in NAMESPACES:
        raise WarmciError(f"{TRUST_VAR}={value!r}: expected one of {', '.join(NAMESPACES)}")
    return value


class SharedStore:
    """api.Store over this host's store and the bucket: reads local then trusted prefixes, writes local then own."""

    def __init__(self, local: str, trust: str, remote: s3.Remote, env: Mapping[str, str] | None = None) -> None:
        self.trust = trust
        self.own = LocalStore(local)
        self.notes: list[str] = []
        self.source: str | None = None  # where the last entry `get` returned was found: "local" or "remote"
        client = s3.client(remote, env)
        self.remotes = {n: s3.S3Store(client, remote, n) for n in TRUSTS[trust]}
        self.reads: list[tuple[str, api.Store]] = [("local", self.own)]
        self.reads += [("remote", r) for r in self.remotes.values()]
        self.write_remote = self.remotes.get(trust) if trust in REMOTE_WRITERS else None

    def __repr__(self) -> str:
        return f"SharedStore({self.trust}: {', '.join(repr(s) for _, s in self.reads)})"

    def _remote_failed(self, what: str, exc: Exception) -> None:
        self.notes.append(f"the shared store could not {what}: {exc}")

    # -- entries -------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        self.source = None
        for where, store in self.reads:
            try:
                entry = store.get(key)
            except StoreError as exc:
                if where == "remote":
                    self._remote_failed("be read", exc)
                    continue
                raise
            if entry is None:
                continue
            if where == "remote":
                self._adopt(entry, store)
            self.source = where
            return entry
        return None

    def _adopt(self, entry: Entry, store: api.Store) -> None:
        """A bucket's entry into this run's own local namespace, each blob verified by hash on the way."""
        for digest in [o.blob for o in entry.outputs] + ([entry.log] if entry.log else []):
            if self.own.has_blob(digest):
                continue
            tmp = os.path.join(self.own.root, "tmp", f"remote-{os.getpid()}-{digest[:16]}")
            try:
                store.get_blob(digest, tmp)
                self.own.put_blob(tmp, digest)
            finally:
                try:
                    os.remove(tmp)
                except FileNotFoundError:
                    pass
        self.own.put(entry)

    def has(self, key: str) -> bool:
        return any(_quiet(lambda s=s: s.has(key)) for _, s in self.reads)

    def put(self, entry: Entry) -> None:
        self.own.put(entry)
        if self.write_remote is not None:
            try:
                self.write_remote.put(entry)
            except StoreError as exc:
                self._remote_failed("keep this result", exc)

    def touch(self, key: str) -> None:
        self.own.touch(key)

    # -- blobs ---------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return self.own.has_blob(digest)

    def put_blob(self, path: str, digest: str | None = None) -> tuple[str, int]:
        got = self.own.put_blob(path, digest)
        if self.write_remote is not None:
            try:
                self.write_remote.put_blob(path, got[0])
            except StoreError as exc:
                self._remote_failed("keep a file", exc)
        return got

    def get_blob(self, digest: str, dest: str) -> int:
        """From the local store: an entry found in the bucket had its blobs copied there first."""
        return self.own.get_blob(digest, dest)

    # -- outcomes and stats ----------------------------------------------
    def record_outcome(self, key: str, job: str, outcome: str, run: RunRef) -> None:
        self.own.record_outcome(key, job, outcome, run)
        if self.write_remote is not None:
            try:
                self.write_remote.record_outcome(key, job, outcome, run)
            except StoreError as exc:
                self._remote_failed("record an outcome", exc)

    def outcomes(self, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for where, store in self.reads:
            try:
                found = store.outcomes(key)
            except StoreError as exc:
                if where != "remote":
                    raise
                self._remote_failed("be read", exc)
                continue
            for o in found:
                ident = (o.get("time"), o.get("outcome"), str(o.get("run")))
                if ident not in seen:
                    seen.add(ident)
                    out.append(o)
        return sorted(out, key=lambda o: o.get("time") or 0)

    def add_stats(self, run_id: str, host: str, counts: dict[str, int]) -> None:
        self.own.add_stats(run_id, host, counts)

    def stats(self) -> dict[str, Any]:
        return self.own.stats()

    def prune(self, max_bytes: int) -> dict[str, Any]:
        return self.own.prune(max_bytes)


def _quiet(check: Any) -> bool:
    try:
        return bool(check())
    except StoreError:
        return False


def open_store(local: str, trust: str, remote: s3.Remote | None) -> api.Store:
    """What a job restores from and records into: this host's store, and the bucket when there is one."""
    if remote is None:
        return LocalStore(local)
    return SharedStore(local, trust, remote)
