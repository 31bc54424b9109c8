"""The content hash cache: contents, never mtimes; one hash per file per clone; safe with two runs."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from warmci.inputs import contenthash
from warmci.inputs.contenthash import ContentHashes

from .helpers import wait_for

RUNNER = Path(__file__).resolve().parent.parent


def later() -> int:
    """A clock past the racy window: entries recorded with it are trusted on their signature."""
    return time.time_ns() + 10 * contenthash.RACY_NS


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_files(root: Path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        p = root / f"d{i % 7}" / f"f{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content {i}\n")
        paths.append(str(p))
    return paths


def fs_clock_past(path: Path, probe: Path) -> None:
    """Wait until the file system's clock stamps a new ctime (a later write cannot share the old tick)."""
    old = path.stat().st_ctime_ns

    def moved() -> bool:
        probe.write_text(str(time.monotonic_ns()))
        return probe.stat().st_ctime_ns > old

    wait_for(moved, timeout=10, what="the file system clock to advance")


def test_hashes_each_file_once_then_only_stats(tmp_path: Path) -> None:
    root = tmp_path / "clone"
    paths = make_files(root, 50)
    first = ContentHashes(str(tmp_path / "cache"), [str(root)], clock=later)
    digests = [first.digest(p) for p in paths]
    assert digests == [sha(f"content {i}\n") for i in range(50)]
    assert first.hashed == 50
    first.save()
    again = ContentHashes(str(tmp_path / "cache"), [str(root)], clock=later)
    assert [again.digest(p) for p in paths] == digests
    assert again.hashed == 0


def test_a_copy_elsewhere_is_hashed_once(tmp_path: Path) -> None:
    """A fresh clone has new inodes and mtimes: every file is read once, and the no-op after reads none."""
    a, b = tmp_path / "a", tmp_path / "b"
    paths = make_files(a, 20)
    subprocess.run(["cp", "-r", str(a), str(b)], check=True)
    cache = str(tmp_path / "cache")
    run1 = ContentHashes(cache, [str(a), str(b)], clock=later)
    for p in paths:
        run1.digest(p)
    run1.save()
    run2 = ContentHashes(cache, [str(a), str(b)], clock=later)
    copies = [p.replace(str(a), str(b)) for p in paths]
    assert [run2.digest(p) for p in copies] == [run2.digest(p) for p in paths]
    assert run2.hashed == 20
    run2.save()
    run3 = ContentHashes(cache, [str(a), str(b)], clock=later)
    for p in copies + paths:
        run3.digest(p)
    assert run3.hashed == 0


def test_change_keeping_mtime_and_size_is_seen_utime(tmp_path: Path) -> None:
    f = tmp_path / "t" / "x.txt"
    f.parent.mkdir()
    f.write_text("aaaa\n")
    cache = str(tmp_path / "cache")
    hashes = ContentHashes(cache, [str(tmp_path / "t")], clock=later)
    assert hashes.digest(str(f)) == sha("aaaa\n")
    hashes.save()
    before = f.stat()
    fs_clock_past(f, tmp_path / "probe")
    f.write_text("bbbb\n")
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = f.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (before.st_mtime_ns, before.st_size, before.st_ino)
    again = ContentHashes(cache, [str(tmp_path / "t")], clock=later)
    assert again.digest(str(f)) == sha("bbbb\n")
    assert again.hashed == 1


def test_change_by_cp_p_of_a_same_size_file_is_seen(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    f, other = root / "x.txt", tmp_path / "other.txt"
    f.write_text("1111\n")
    other.write_text("2222\n")
    st = f.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))  # cp -p carries this mtime over
    cache = str(tmp_path / "cache")
    hashes = ContentHashes(cache, [str(root)], clock=later)
    assert hashes.digest(str(f)) == sha("1111\n")
    hashes.save()
    fs_clock_past(f, tmp_path / "probe")
    subprocess.run(["cp", "-p", str(other), str(f)], check=True)
    assert (f.stat().st_mtime_ns, f.stat().st_size) == (st.st_mtime_ns, st.st_size)
    assert ContentHashes(cache, [str(root)], clock=later).digest(str(f)) == sha("2222\n")


def test_racy_entry_is_hashed_again(tmp_path: Path) -> None:
    """With the real clock, a file hashed right after it was written is not trusted on its stat next time:
    a second write in the same timestamp tick, mtime put back, would keep the whole signature."""
    root = tmp_path / "t"
    root.mkdir()
    f = root / "x.txt"
    f.write_text("aaaa\n")
    cache = str(tmp_path / "cache")
    first = ContentHashes(cache, [str(root)])
    assert first.digest(str(f)) == sha("aaaa\n")
    first.save()
    st = f.stat()
    f.write_text("bbbb\n")  # very likely the same tick: nothing but content differs
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = ContentHashes(cache, [str(root)])
    assert second.digest(str(f)) == sha("bbbb\n")
    assert second.hashed == 1


def test_executable_bit_is_part_of_identity(tmp_path: Path) -> None:
    f = tmp_path / "run.sh"
    f.write_text("echo hi\n")
    hashes = ContentHashes(str(tmp_path / "cache"))
    plain = hashes.identity(str(f))
    f.chmod(0o755)
    assert hashes.identity(str(f)) == plain + "+x"


def test_files_outside_the_roots_are_remembered_too(tmp_path: Path) -> None:
    f = tmp_path / "elsewhere.txt"
    f.write_text("z")
    hashes = ContentHashes(str(tmp_path / "cache"), [str(tmp_path / "root")], clock=later)
    hashes.digest(str(f))
    hashes.save()
    again = ContentHashes(str(tmp_path / "cache"), [str(tmp_path / "root")], clock=later)
    assert again.digest(str(f)) == sha("z") and again.hashed == 0


def test_damaged_cache_file_means_hashing_again(tmp_path: Path) -> None:
    root = tmp_path / "t"
    paths = make_files(root, 5)
    cache = tmp_path / "cache"
    hashes = ContentHashes(str(cache), [str(root)], clock=later)
    for p in paths:
        hashes.digest(p)
    hashes.save()
    for shard in cache.glob("*.bin"):
        shard.write_bytes(shard.read_bytes()[:-40])  # cut off the end of the digests
    again = ContentHashes(str(cache), [str(root)], clock=later)
    assert [again.digest(p) for p in paths] == [sha(f"content {i}\n") for i in range(5)]
    assert again.hashed == 5


SAVER = """
import sys, time
sys.path.insert(0, {runner!r})
from warmci.inputs.contenthash import ContentHashes, RACY_NS
h = ContentHashes({cache!r}, [{root!r}], clock=lambda: time.time_ns() + 10 * RACY_NS)
paths = sys.argv[1:]
for round_ in range(5):
    for p in paths[round_::5]:
        h.digest(p)
    h.save()
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "t"
    paths = make_files(root, 400)
    cache = str(tmp_path / "cache")
    script = SAVER.format(runner=str(RUNNER), cache=cache, root=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", script, *half]) for half in (paths[:250], paths[150:])]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    merged = ContentHashes(cache, [str(root)], clock=later)
    assert [merged.digest(p) for p in paths] == [sha(f"content {i}\n") for i in range(400)]
    assert merged.hashed == 0, "a save by one process dropped entries saved by the other"
    assert not [n for n in os.listdir(cache) if n.endswith(".tmp")]
