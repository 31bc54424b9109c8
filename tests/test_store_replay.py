"""Recording a job's outputs and restoring them: all or nothing, verified, under this run's roots."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from warmci.inputs.contenthash import ContentHashes
from warmci.store import api, replay
from warmci.store.api import BlobCorrupt, BlobMissing, RunRef
from warmci.store.local import LocalStore

KEY = hashlib.sha256(b"job key").hexdigest()


def setup(tmp_path: Path) -> tuple[LocalStore, ContentHashes, dict[str, str]]:
    roots = {"target": str(tmp_path / "clone1"), "state": str(tmp_path / "state")}
    for r in roots.values():
        Path(r).mkdir()
    return LocalStore(str(tmp_path / "store")), ContentHashes(str(tmp_path / "hashes")), roots


def write(root: str, rel: str, text: str, mode: int = 0o644) -> None:
    p = Path(root, rel)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)


def test_record_then_restore_into_another_checkout(tmp_path: Path) -> None:
    store, hashes, roots = setup(tmp_path)
    write(roots["target"], "dist/app.js", "bundle\n")
    write(roots["state"], "artifacts/build/x.whl", "wheel bytes", 0o600)
    log = tmp_path / "job.log"
    log.write_text("built\n")
    entry = replay.record(store, hashes, key=KEY, job="build", run=RunRef("r1", "abc"),
                          outputs=[("target", "dist/app.js"), ("state", "artifacts/build/x.whl")],
                          roots=roots, log=str(log), duration=2.0)
    assert store.get(KEY) == entry
    other = {"target": str(tmp_path / "clone2"), "state": roots["state"]}
    Path(other["target"]).mkdir()
    got = replay.restore(store, entry, other, hashes)
    assert (got.files, got.kept) == (1, 1)  # the wheel is still in the state dir
    assert Path(other["target"], "dist/app.js").read_text() == "bundle\n"
    assert Path(roots["state"], "artifacts/build/x.whl").stat().st_mode & 0o777 == 0o600
    assert replay.restore(store, entry, other, hashes).files == 0  # everything in place now


def test_a_changed_output_is_put_back(tmp_path: Path) -> None:
    store, hashes, roots = setup(tmp_path)
    write(roots["target"], "out.txt", "recorded\n")
    entry = replay.record(store, hashes, key=KEY, job="j", run=RunRef("r1"), outputs=[("target", "out.txt")],
                          roots=roots)
    write(roots["target"], "out.txt", "tampered\n")
    assert replay.restore(store, entry, roots, hashes).files == 1
    assert Path(roots["target"], "out.txt").read_text() == "recorded\n"


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_restore_is_all_or_nothing(tmp_path: Path, damage: str) -> None:
    store, hashes, roots = setup(tmp_path)
    write(roots["target"], "a.txt", "first\n")
    write(roots["target"], "b.txt", "second\n")
    entry = replay.record(store, hashes, key=KEY, job="j", run=RunRef("r1"),
                          outputs=[("target", "a.txt"), ("target", "b.txt")], roots=roots)
    blob = tmp_path / "store" / api.blob_name(entry.outputs[1].blob)
    if damage == "corrupt":
        blob.write_text("SECOND\n")
    else:
        blob.unlink()
    clean = {"target": str(tmp_path / "fresh"), "state": roots["state"]}
    with pytest.raises(BlobCorrupt if damage == "corrupt" else BlobMissing):
        replay.restore(store, entry, clean, hashes)
    assert not Path(clean["target"], "a.txt").exists(), "the good blob must not be placed alone"
    assert [p.name for p in Path(clean["target"]).rglob("*") if p.is_file()] == []


def test_unknown_root_is_an_error_not_a_guess(tmp_path: Path) -> None:
    store, hashes, roots = setup(tmp_path)
    write(roots["target"], "a.txt", "x")
    entry = replay.record(store, hashes, key=KEY, job="j", run=RunRef("r1"), outputs=[("target", "a.txt")],
                          roots=roots)
    with pytest.raises(api.StoreError, match="unknown here"):
        replay.restore(store, entry, {"state": roots["state"]}, hashes)
