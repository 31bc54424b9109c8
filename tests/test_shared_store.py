"""The shared result store in an S3-compatible bucket (moto's server on loopback), and the cache rule.

Real doit runs of the small target on two "hosts" (two clones, two state
dirs, WARMCI_HOST) sharing one bucket: a result one host kept is restored on
the other, verified by hash; a fork's run writes nothing the others trust,
and a branch's run nothing main trusts.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.s3_server import SECRET, S3Server
from warmci.store import api, s3
from warmci.store.api import BlobCorrupt, BlobMissing, Entry, Output, RunRef, StoreError

from .helpers import git, run_doit


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server
    finally:
        server.stop()


def remote_store(bucket: S3Server, namespace: str = "protected") -> s3.S3Store:
    remote = s3.remote_from(bucket.env(f"t-{uuid.uuid4().hex[:8]}"))
    assert remote is not None
    return s3.S3Store(s3.client(remote, bucket.env()), remote, namespace)


def test_the_bucket_keeps_entries_and_blobs_and_refuses_what_does_not_hash(bucket: S3Server, tmp_path: Path) -> None:
    store = remote_store(bucket)
    data = tmp_path / "out.txt"
    data.write_text("an output\n")
    digest, size = store.put_blob(str(data))
    assert store.has_blob(digest) and size == 10
    with pytest.raises(StoreError, match="changed while it was stored"):
        store.put_blob(str(data), "0" * 64)
    key = "a" * 64
    entry = Entry(key, "build", RunRef("r1", "s" * 40, "main", "h1", 1.0),
                  (Output("target", "gen/out.txt", digest, size),))
    assert store.get(key) is None and not store.has(key)
    store.put(entry)
    assert store.get(key) == entry and store.has(key)
    back = tmp_path / "back.txt"
    assert store.get_blob(digest, str(back)) == size and back.read_text() == "an output\n"
    # A blob whose bytes are not what its name says is refused, deleted, and never written to its destination.
    bucket.client().put_object(Bucket=bucket.bucket, Key=store.base + api.blob_name(digest), Body=b"poison")
    with pytest.raises(BlobCorrupt, match="corrupt"):
        store.get_blob(digest, str(tmp_path / "never.txt"))
    assert not (tmp_path / "never.txt").exists() and not store.has_blob(digest)
    with pytest.raises(BlobMissing):
        store.get_blob(digest, str(tmp_path / "never.txt"))
    # A malformed entry, or one filed under another key, is an error (the job then runs), never half-trusted.
    bucket.client().put_object(Bucket=bucket.bucket, Key=store.base + api.entry_name("b" * 64), Body=b"{}")
    with pytest.raises(StoreError, match="entry"):
        store.get("b" * 64)
    store.record_outcome(key, "build", "failed", RunRef("r2"))
    store.record_outcome(key, "build", "passed", RunRef("r3"))
    assert [o["outcome"] for o in store.outcomes(key)] == ["failed", "passed"]


@pytest.mark.parametrize(("env", "words"), [
    ({"WARMCI_S3_BUCKET": "Bad_Bucket"}, "not an S3 bucket name"),
    ({"WARMCI_S3_BUCKET": "ok-bucket", "WARMCI_S3_ENDPOINT": "https://key:secret@host"}, "without credentials"),
])
def test_a_bad_bucket_setting_is_named(env: dict[str, str], words: str) -> None:
    with pytest.raises(StoreError, match=words):
        s3.remote_from(env)


class Hosts:
    """Two hosts (clones + state dirs) of the small target sharing one bucket prefix."""

    def __init__(self, base: Path, target: Path, env: dict[str, str]) -> None:
        self.base, self.target, self.env = base, target, env

    def clone(self, name: str) -> Path:
        """A host's checkout (a fork's run gets one of its own, as the CI service gives it)."""
        path = self.base / f"clone-{name}"
        if not path.exists():
            git(self.base, "clone", "-q", str(self.target), str(path))
        return path

    def run(self, host: str, trust: str, sha: str = "HEAD", *args: str) -> dict[str, Any]:
        place = f"{host}.fork" if trust == "fork" else host
        clone = self.clone(place)
        git(clone, "fetch", "-q", "origin")
        git(clone, "checkout", "-q", "--detach", sha if sha != "HEAD" else "origin/main")
        run = run_doit(clone, self.base / f"state-{place}", *args,
                       env={**self.env, "WARMCI_HOST": host, "WARMCI_STORE_TRUST": trust})
        assert run.results is not None, run
        assert SECRET not in run.out + run.err + json.dumps(run.results)
        return run.results


@pytest.fixture
def hosts(tmp_path: Path, target: Path, tool_env: dict[str, str], bucket: S3Server) -> Hosts:
    return Hosts(tmp_path, target, {**tool_env, **bucket.env(f"t-{uuid.uuid4().hex[:8]}")})


def statuses(results: dict[str, Any]) -> dict[str, str]:
    return {n: j["status"] for n, j in results["jobs"].items()}


def test_a_result_one_host_kept_is_restored_on_another_verified(hosts: Hosts, bucket: S3Server) -> None:
    first = hosts.run("a", "protected")
    assert statuses(first) == {"ja": "passed", "jb": "passed", "jc": "passed"}
    assert first["store"]["trust"] == "protected" and first["store"]["remote"].startswith("s3://warmci-cache/")
    second = hosts.run("b", "protected")
    assert statuses(second) == {"ja": "restored", "jb": "restored", "jc": "restored"}, second["jobs"]
    src = second["jobs"]["ja"]["restored_from"]
    assert (src["store"], src["host"], src["run"]) == ("remote", "a", first["run_id"])
    assert second["store"]["remote_hits"] == 3 and second["store"]["hits"] == 3
    out = hosts.clone("b") / "gen" / "a.out"
    assert out.read_text() == (hosts.clone("a") / "gen" / "a.out").read_text() == "one\n"
    # Adopted: the next lookup on host b is local.
    third = hosts.run("b", "protected", "HEAD", "ja")
    assert third["jobs"]["ja"]["status"] in ("up-to-date", "restored")
    assert third["store"]["remote_hits"] == 0


def test_a_fork_writes_nothing_anyone_trusts_and_a_branch_nothing_main_trusts(hosts: Hosts,
                                                                              bucket: S3Server) -> None:
    prefix = hosts.env["WARMCI_S3_PREFIX"]
    # A fork's pull request runs first, with the very tree main will have: what it made stays its own.
    fork = hosts.run("a", "fork")
    assert set(statuses(fork).values()) == {"passed"}
    assert bucket.keys(f"{prefix}/") == [], "a fork's run wrote to the shared bucket"
    branch = hosts.run("a", "branch")  # the same tree on the same host: nothing of the fork's is trusted
    assert set(statuses(branch).values()) == {"passed"}, branch["jobs"]
    assert bucket.keys(f"{prefix}/branch/entries/") and not bucket.keys(f"{prefix}/protected/")
    main = hosts.run("b", "protected")  # main on another host does not trust the branch's results either
    assert set(statuses(main).values()) == {"passed"}, main["jobs"]
    assert bucket.keys(f"{prefix}/protected/entries/")
    # A branch on a third host trusts main's results, the most trusted first.
    other = hosts.run("c", "branch")
    assert set(statuses(other).values()) == {"restored"}, other["jobs"]
    assert {(j["restored_from"]["run"], j["restored_from"]["store"]) for j in other["jobs"].values()} == {
        (main["run_id"], "remote")}
    # A fork restores from the bucket too (reading is harmless), and still writes nothing there.
    again = hosts.run("c", "fork")
    assert set(statuses(again).values()) == {"restored"}, again["jobs"]
    assert {j["restored_from"]["run"] for j in again["jobs"].values()} == {main["run_id"]}
    assert not bucket.keys(f"{prefix}/fork/") and not any(fork["run_id"] in k for k in bucket.keys(prefix))
