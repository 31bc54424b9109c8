"""The content-addressed result store: format, verification, eviction, flakiness, two processes at once."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warmci.store import api
from warmci.store.api import BlobCorrupt, BlobMissing, Entry, Output, RunRef, StoreError
from warmci.store.local import LocalStore

RUNNER = Path(__file__).resolve().parent.parent


def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def success(store: LocalStore, tmp: Path, job: str, contents: dict[str, str], run: str = "r1") -> Entry:
    """Put a job's outputs and log as blobs, then its entry (the order a run uses)."""
    outputs = []
    for rel, text in contents.items():
        f = tmp / "src" / job / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        digest, size = store.put_blob(str(f))
        outputs.append(Output("target", rel, digest, size, 0o644))
    log = tmp / "src" / f"{job}.log"
    log.write_text(f"log of {job}\n")
    entry = Entry(key=key_of(job + json.dumps(contents)), job=job, run=RunRef(run, "abc123", "main"),
                  outputs=tuple(outputs), log=store.put_blob(str(log))[0], duration=1.5)
    store.put(entry)
    return entry


def test_put_get_and_restore_verified(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    entry = success(store, tmp_path, "build", {"dist/app.js": "console.log(1)\n"})
    got = store.get(entry.key)
    assert got == entry and store.has(entry.key)
    dest = tmp_path / "restored.js"
    assert store.get_blob(got.outputs[0].blob, str(dest)) == len("console.log(1)\n")
    assert dest.read_text() == "console.log(1)\n"
    assert store.get(key_of("never")) is None and not store.has(key_of("never"))


def test_format_has_no_machine_paths(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    entry = success(store, tmp_path, "build", {"dist/app.js": "x"})
    raw = (tmp_path / "store" / api.entry_name(entry.key)).read_text()
    assert str(tmp_path) not in raw
    doc = json.loads(raw)
    assert doc["format"] == api.FORMAT and doc["outputs"][0]["path"] == "dist/app.js"
    names = sorted(str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert f"entries/{entry.key[:2]}/{entry.key}.json" in names
    assert all(n.startswith(("blobs/", "entries/", "format.json")) for n in names), names


def test_corrupt_blob_is_refused_and_removed(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    entry = success(store, tmp_path, "build", {"a.txt": "good content\n"})
    blob = tmp_path / "store" / api.blob_name(entry.outputs[0].blob)
    blob.write_text("evil content\n")  # same size, other bytes
    dest = tmp_path / "out" / "a.txt"
    dest.parent.mkdir()
    dest.write_text("what was there")
    with pytest.raises(BlobCorrupt, match="corrupt"):
        store.get_blob(entry.outputs[0].blob, str(dest))
    assert dest.read_text() == "what was there", "a failed restore must not touch the destination"
    assert not blob.exists()
    assert os.listdir(dest.parent) == ["a.txt"], "no temporary file left behind"
    with pytest.raises(BlobMissing):
        store.get_blob(entry.outputs[0].blob, str(dest))


def test_malformed_or_hostile_entries_are_errors(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    entry = success(store, tmp_path, "build", {"a.txt": "x"})
    path = tmp_path / "store" / api.entry_name(entry.key)
    path.write_text("{not json")
    with pytest.raises(StoreError, match="malformed"):
        store.get(entry.key)
    doc = json.loads(entry.to_json())
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b"):
        doc["outputs"][0]["path"] = bad
        path.write_text(json.dumps(doc))
        with pytest.raises(StoreError, match="relative path"):
            store.get(entry.key)
    doc["outputs"][0]["path"] = "a.txt"
    doc["outcome"] = "failed"
    path.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="only successes"):
        store.get(entry.key)


def test_only_successes_are_entries(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    with pytest.raises(StoreError):
        store.put(Entry(key=key_of("k"), job="j", run=RunRef("r"), outcome="failed"))
    assert not store.has(key_of("k"))


def test_put_blob_checks_the_claimed_digest(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    f = tmp_path / "f"
    f.write_text("actual")
    with pytest.raises(StoreError, match="changed while it was stored"):
        store.put_blob(str(f), key_of("something else"))
    assert not list((tmp_path / "store").glob("blobs/*/*"))
    assert store.put_blob(str(f), key_of("actual")) == (key_of("actual"), 6)


def test_flaky_key(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    k = key_of("job inputs")
    store.record_outcome(k, "test", "passed", RunRef("r1"))
    assert not api.is_flaky(store.outcomes(k))
    store.record_outcome(k, "test", "errored", RunRef("r2"))
    assert not api.is_flaky(store.outcomes(k)), "an errored job (could not run) says nothing about flakiness"
    store.record_outcome(k, "test", "failed", RunRef("r3"))
    assert api.is_flaky(store.outcomes(k))
    assert [o["run"]["id"] for o in store.outcomes(k)] == ["r1", "r2", "r3"]
    assert not store.has(k), "recording outcomes never makes an entry"


def test_lru_eviction(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    entries = [success(store, tmp_path, f"job{i}", {"out.bin": f"{i}" * 1000}) for i in range(4)]
    old = time.time() - 7200
    for i, e in enumerate(entries):  # job0 least recently used ... job3 most
        os.utime(tmp_path / "store" / api.entry_name(e.key), (old + i, old + i))
        for d in [o.blob for o in e.outputs] + [e.log]:
            os.utime(tmp_path / "store" / api.blob_name(d), (old, old))
    store.touch(entries[0].key)  # used just now: the most recent
    full = store.stats()["bytes"]
    one = full // 4  # the four entries are of nearly the same size
    result = store.prune(full - one - 100)
    assert result["evicted_entries"] == 2
    assert {e.job for e in entries if store.has(e.key)} == {"job0", "job3"}
    assert not store.has_blob(entries[1].outputs[0].blob) and store.has_blob(entries[0].outputs[0].blob)
    assert store.stats()["bytes"] <= full - one - 100
    survivor = store.get(entries[3].key)
    assert survivor is not None
    store.get_blob(survivor.outputs[0].blob, str(tmp_path / "check"))  # what stays is whole


def test_young_unreferenced_blobs_survive_a_prune(tmp_path: Path) -> None:
    """A run puts its blobs before its entry: a prune in between must not take them."""
    store = LocalStore(str(tmp_path / "store"))
    f = tmp_path / "f"
    f.write_text("in flight")
    digest, _ = store.put_blob(str(f))
    store.prune(0)
    assert store.has_blob(digest)
    store.prune(0, blob_grace=0)
    assert not store.has_blob(digest)


def test_stats_hit_rate(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "store"))
    store.add_stats("run-1", "h1", {"lookups": 4, "hits": 1})
    store.add_stats("run-2", "h2", {"lookups": 4, "hits": 3})
    s = store.stats()
    assert (s["lookups"], s["hits"], s["hit_rate"], s["runs"]) == (8, 4, 0.5, 2)
    # Each run's figures name the host that ran it (WARMCI_HOST on a host worker, as kept results do).
    assert json.loads((tmp_path / "store" / "stats" / "run-1.json").read_text())["host"] == "h1"


def test_foreign_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "format.json").write_text('{"format": 99}')
    with pytest.raises(StoreError, match="format 99"):
        LocalStore(str(tmp_path / "store"))


WORKER = """
import hashlib, os, sys
sys.path.insert(0, {runner!r})
from warmci.store.api import Entry, Output, RunRef, BlobMissing
from warmci.store.local import LocalStore
store = LocalStore({store!r})
me, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
for i in range(60):
    text = f"shared {{i % 10}}\\n" * 200   # both workers store the same contents
    src = os.path.join(work, f"src{{i}}")
    with open(src, "w") as fh:
        fh.write(text)
    digest, size = store.put_blob(src)
    key = hashlib.sha256(f"key {{i % 20}}".encode()).hexdigest()  # and the same keys
    store.put(Entry(key=key, job=f"job{{i % 20}}", run=RunRef(me), outputs=(Output("target", "o.txt", digest, size),)))
    got = store.get(key)
    dest = os.path.join(work, f"restored{{i}}")
    try:
        store.get_blob(got.outputs[0].blob, dest)
    except BlobMissing:
        pass  # evicted by the other process's prune: the job would run; never wrong content
    else:
        assert hashlib.sha256(open(dest, "rb").read()).hexdigest() == got.outputs[0].blob
    if i % 15 == 0:
        store.prune(30_000, blob_grace=0)
"""


def test_two_processes_at_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    LocalStore(str(root))
    script = WORKER.format(runner=str(RUNNER), store=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", script, name, str(tmp_path / name)],
                              stderr=subprocess.PIPE, text=True) for name in ("w1", "w2")]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    store = LocalStore(str(root))
    for path in root.glob("entries/*/*.json"):
        entry = Entry.from_json(path.read_bytes())  # every entry is whole
        if store.has_blob(entry.outputs[0].blob):
            store.get_blob(entry.outputs[0].blob, str(tmp_path / "verify"))
    assert not list((root / "tmp").iterdir()), "temporary files left in the store"
