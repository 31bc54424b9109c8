"""The result store in an S3-compatible bucket (Hetzner's Object Storage, MinIO, AWS), through boto3.

The same objects under the same relative names as a local store
(warmci.store.api), below `PREFIX/NAMESPACE/` in the bucket. Every blob is
verified by its sha256 when it is read (a blob that does not hash to its
name is deleted and reported corrupt: the job runs, and its success stores
it afresh); entries are validated as on disk. Objects are written whole
(one PUT each) and never appended to, so readers need no lock.

Credentials come only from the environment (WARMCI_S3_ACCESS_KEY_ID and
WARMCI_S3_SECRET_ACCESS_KEY, passed to boto3 explicitly, never read from
files or instance metadata); nothing here prints them. Least-recently-used
eviction is the bucket's: `touch` and `prune` do nothing (set a lifecycle
rule that expires objects not written for N days).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from warmci.store import api
from warmci.store.api import BlobCorrupt, BlobMissing, Entry, RunRef, StoreError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_CHUNK = 1 << 20
ENV = {"endpoint": "WARMCI_S3_ENDPOINT", "bucket": "WARMCI_S3_BUCKET", "prefix": "WARMCI_S3_PREFIX",
       "region": "WARMCI_S3_REGION", "key": "WARMCI_S3_ACCESS_KEY_ID", "secret": "WARMCI_S3_SECRET_ACCESS_KEY"}


@dataclass(frozen=True)
class Remote:
    """Where the shared store is (no credentials: those stay in the environment)."""

    bucket: str
    prefix: str = "warmci"
    endpoint: str | None = None
    region: str = "us-east-1"

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint}" if self.endpoint else "")


def remote_from(env: Mapping[str, str]) -> Remote | None:
    """The shared store the environment names, or None (WARMCI_S3_BUCKET unset)."""
    bucket = env.get(ENV["bucket"], "").strip()
    if not bucket:
        return None
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise StoreError(f"{ENV['bucket']}={bucket!r} is not an S3 bucket name (3-63 lower-case letters, "
                         "digits, '.' and '-')")
    endpoint = env.get(ENV["endpoint"], "").strip() or None
    if endpoint and not re.match(r"https?://[^/@\s]+/?$", endpoint):
        raise StoreError(f"{ENV['endpoint']} must be a plain http(s)://HOST[:PORT] URL without credentials or "
                         "a path")
    prefix = env.get(ENV["prefix"], "warmci").strip().strip("/") or "warmci"
    return Remote(bucket, prefix, endpoint, env.get(ENV["region"], "").strip() or "us-east-1")


def client(remote: Remote, env: Mapping[str, str] | None = None) -> S3Client:
    """A boto3 S3 client with the environment's key (or none: anonymous reads of a public bucket)."""
    import boto3  # ~0.3 s: only a run that uses the shared store pays it
    from botocore.config import Config

    env = os.environ if env is None else env
    key, secret = env.get(ENV["key"]) or None, env.get(ENV["secret"]) or None
    session = boto3.session.Session()
    config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                    signature_version=None if key else "unsigned", s3={"addressing_style": "path"})
    return session.client("s3", endpoint_url=remote.endpoint, region_name=remote.region, aws_access_key_id=key,
                          aws_secret_access_key=secret, config=config)


T = TypeVar("T")


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Store:
    """api.Store in a bucket, below PREFIX/NAMESPACE/."""

    def __init__(self, s3: S3Client, remote: Remote, namespace: str) -> None:
        self.s3, self.remote, self.namespace = s3, remote, namespace
        self.base = f"{remote.prefix}/{namespace}/"

    def __repr__(self) -> str:
        return f"S3Store({self.remote.describe()}/{self.namespace})"

    def _name(self, rel: str) -> str:
        return self.base + rel

    def _one(self, doing: str, rel: str, call: Callable[[], T]) -> T | None:
        """A call about one object: None when there is no such object, any other failure a StoreError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StoreError(f"{self}: {doing} {rel}: {_error_code(exc) or exc}") from None

    def _get(self, rel: str) -> bytes | None:
        return self._one("reading", rel,
                         lambda: self.s3.get_object(Bucket=self.remote.bucket, Key=self._name(rel))["Body"].read())

    def _put(self, rel: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.put_object(Bucket=self.remote.bucket, Key=self._name(rel), Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"{self}: writing {rel}: {_error_code(exc) or exc}") from None

    def _exists(self, rel: str) -> int | None:
        """The object's size, or None when there is none."""
        return self._one("looking up", rel, lambda: int(
            self.s3.head_object(Bucket=self.remote.bucket, Key=self._name(rel))["ContentLength"]))

    def _list(self, rel_prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        out = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.remote.bucket,
                                                                           Prefix=self._name(rel_prefix)):
                out += [o["Key"][len(self.base):] for o in page.get("Contents", []) if "Key" in o]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"{self}: listing {rel_prefix}: {_error_code(exc) or exc}") from None
        return out

    # -- entries -------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        name = api.entry_name(api.check_hex(key, "key"))
        data = self._get(name)
        if data is None:
            return None
        return api.entry_for(key, data, f"{self}: entry {name}")

    def has(self, key: str) -> bool:
        return self._exists(api.entry_name(api.check_hex(key, "key"))) is not None

    def put(self, entry: Entry) -> None:
        api.check_hex(entry.key, "key")
        if entry.outcome != "passed":
            raise StoreError(f"only successes are entries, not {entry.outcome!r}")
        self._put(api.entry_name(entry.key), entry.to_json().encode())

    def touch(self, key: str) -> None:
        """Eviction is the bucket's lifecycle rule (objects are immutable; rewriting them would cost a PUT)."""

    # -- blobs ---------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return self._exists(api.blob_name(api.check_hex(digest, "blob"))) is not None

    def put_blob(self, path: str, digest: str | None = None) -> tuple[str, int]:
        got, size = _hash_file(path)
        if digest is not None and got != digest:
            raise StoreError(f"{path} changed while it was stored (sha256 {got}, expected {digest})")
        name = api.blob_name(got)
        if self._exists(name) == size:
            return got, size
        with open(path, "rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != got:
            raise StoreError(f"{path} changed while it was stored")
        self._put(name, data)
        return got, size

    def get_blob(self, digest: str, dest: str) -> int:
        name = api.blob_name(api.check_hex(digest, "blob"))
        data = self._get(name)
        if data is None:
            raise BlobMissing(f"blob {digest} is missing from {self}")
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                self.s3.delete_object(Bucket=self.remote.bucket, Key=self._name(name))
            except (ClientError, BotoCoreError):
                pass  # not ours to delete (a read-only key): it stays corrupt, and is never used
            raise BlobCorrupt(f"blob {digest} in {self} is corrupt (its content hashes to {got}); removed it")
        tmp = f"{dest}.warmci-{os.getpid()}-{time.monotonic_ns()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
        return len(data)

    # -- outcomes and stats ----------------------------------------------
    def record_outcome(self, key: str, job: str, outcome: str, run: RunRef) -> None:
        self._put(*api.outcome_entry(key, job, outcome, run))

    def outcomes(self, key: str) -> list[dict[str, Any]]:
        out = []
        for name in sorted(self._list(api.outcomes_prefix(api.check_hex(key, "key")))):
            data = self._get(name)
            try:
                doc = json.loads(data or b"")
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def add_stats(self, run_id: str, host: str, counts: dict[str, int]) -> None:
        self._put(*api.stats_entry(run_id, host, counts))

    def stats(self) -> dict[str, Any]:
        entries = self._list("entries/")
        return {"root": repr(self), "entries": len(entries), "blobs": len(self._list("blobs/"))}

    def prune(self, max_bytes: int) -> dict[str, Any]:
        return {"evicted_entries": 0, "removed_blobs": 0, "note": "eviction is the bucket's lifecycle rule"}


def _hash_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
