"""Results kept by content, on real git repositories of the small target: every success is kept and
restored when its whole key comes back; nothing else is ever restored.

ja copies a/x.txt to gen/a.out, jb fails when b/y.txt says so, jc reads ja's output (tests/small_target.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from warmci.inputs.contenthash import RACY_NS
from warmci.store import api
from warmci.store.local import LocalStore

from .helpers import RUNNER, Run, git, make_repo, run_doit, wait_for
from .small_target import PIPELINE

ALL = {"ja", "jb", "jc"}


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def branch_b(target: Path) -> tuple[str, str]:
    """(sha of main, sha of b): b changes a/x.txt, so ja and jc differ between them."""
    main = git(target, "rev-parse", "HEAD").strip()
    git(target, "checkout", "-q", "-b", "b")
    (target / "a/x.txt").write_text("two\n")
    b = commit(target, "b: a/x.txt says two")
    return main, b


def ci_log(state: Path, run: Run) -> list[str]:
    assert run.results is not None, run
    return [line[11:] for line in (state / "runs" / run.results["run_id"] / "ci.log").read_text().splitlines()]


def test_a_b_a_and_b_a_b_the_return_reruns_nothing(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    main, b = branch_b(target)
    git(target, "checkout", "-q", "main")
    assert run_doit(target, state, env=tool_env).executed == ALL
    git(target, "checkout", "-q", "b")
    at_b = run_doit(target, state, env=tool_env)
    assert at_b.rc == 0 and at_b.executed == {"ja", "jc"}, at_b
    for back, sha, out in (("main", main, "one\n"), ("b", b, "two\n"), ("main", main, "one\n")):
        git(target, "checkout", "-q", back)
        run = run_doit(target, state, env=tool_env)
        assert run.rc == 0 and run.executed == set(), run
        assert run.jobs("restored") == {"ja", "jc"} and run.uptodate == {"jb"}, run
        assert (target / "gen/a.out").read_text() == out
        assert run.results is not None
        ja = run.results["jobs"]["ja"]
        assert ja["restored_from"]["sha"] == sha and ja["restored_from"]["branch"] == back
        assert ja["restored"]["files"] == 1
        assert f"SKIP ja restored: passed in run {ja['restored_from']['run']} at {sha[:10]}, branch {back}" \
            in ci_log(state, run)
        assert not any(line.startswith("START") for line in ci_log(state, run))
        assert f"REST  ja  (passed in run {ja['restored_from']['run']}" in run.out
        assert run.results["status"] == "passed" and run.results["counts"] == {"restored": 2, "up-to-date": 1}
        assert run.results["store"]["hits"] == 2 and run.results["store"]["lookups"] == 2
        log = Path(ja["log"]).read_text()
        assert "restored: key" in log and "--- its log in that run ---" in log
    # Restored, doit recorded the success: the next run is a plain no-op.
    noop = run_doit(target, state, env=tool_env)
    assert noop.rc == 0 and noop.uptodate == ALL, noop


def test_clone_elsewhere_with_the_same_state_dir_reruns_nothing(target: Path, tmp_path: Path,
                                                                tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).executed == ALL
    clone = tmp_path / "elsewhere" / "clone"
    subprocess.run(["git", "clone", "-q", str(target), str(clone)], check=True, capture_output=True)
    run = run_doit(clone, state, env=tool_env)
    assert run.rc == 0 and run.executed == set() and run.jobs("restored") == ALL, run
    assert (clone / "gen/a.out").read_text() == "one\n"
    assert run_doit(clone, state, env=tool_env).uptodate == ALL
    # And back: the first checkout's results are the same key too.
    back = run_doit(target, state, env=tool_env)
    assert back.rc == 0 and back.executed == set(), back


def _quiet(*paths: Path) -> None:
    """Until the files changed long enough ago that their stat signature is trusted (contenthash.RACY_NS)."""
    newest = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in paths)
    wait_for(lambda: time.time_ns() > newest + RACY_NS + 50_000_000, timeout=10, what="the racy window to pass")


def _same_size_same_mtime(path: Path, text: str, how: str, tmp_path: Path) -> None:
    before = path.stat()
    assert len(text.encode()) == before.st_size
    if how == "utime":
        path.write_text(text)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        other = tmp_path / "same-size.txt"
        other.write_text(text)
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        subprocess.run(["cp", "-p", str(other), str(path)], check=True)
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)


def test_change_that_keeps_mtime_and_size_is_seen(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    """doit's md5 checker calls these files unchanged (same mtime): a false green. Contents are compared."""
    state = tmp_path / "state"
    env = {**tool_env, "WARMCI_STORE": "off"}  # what is measured is the file check, not a restore
    _quiet(target / "a/x.txt", target / "b/y.txt")
    assert run_doit(target, state, env=env).executed == ALL
    assert run_doit(target, state, env=env).uptodate == ALL  # the hashes are remembered: only stats now
    for how, text in (("utime", "uno\n"), ("cp -p", "eins")):
        _same_size_same_mtime(target / "a/x.txt", text, how, tmp_path)
        run = run_doit(target, state, env=env)
        assert run.rc == 0 and run.executed == {"ja", "jc"} and run.uptodate == {"jb"}, (how, run)
        assert run.results and [w["name"] for w in run.results["jobs"]["ja"]["why"]] == ["a/x.txt"]
        assert (target / "gen/a.out").read_text() == text
        info = subprocess.run([sys.executable, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "info", "ja",
                               f"target={target}", f"state={state}"], capture_output=True, text=True,
                              env={**os.environ, **env})
        assert info.returncode == 0 and "status     : up-to-date" in info.stdout, info.stdout
        _quiet(target / "a/x.txt")
    # The same for a lockfile-like input of jb, with the store on: not restored, since never seen.
    _same_size_same_mtime(target / "b/y.txt", "ko\n", "utime", tmp_path)
    run = run_doit(target, state, env=tool_env)
    assert run.executed == {"jb"} and run.uptodate == {"ja", "jc"}, run


def test_corrupt_blob_makes_the_job_run_and_says_so(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    branch_b(target)
    git(target, "checkout", "-q", "main")
    first = run_doit(target, state, env=tool_env)
    assert first.results is not None
    git(target, "checkout", "-q", "b")
    assert run_doit(target, state, env=tool_env).executed == {"ja", "jc"}
    store = LocalStore(str(state / "store"))
    key = first.results["jobs"]["ja"]["key"]
    entry = store.get(key)
    assert entry is not None
    blob = state / "store" / api.blob_name(entry.outputs[0].blob)
    blob.write_text("ONE\n")  # same size, other bytes
    git(target, "checkout", "-q", "main")
    run = run_doit(target, state, env=tool_env)
    assert run.rc == 0 and run.executed == {"ja"}, run
    # ja's fresh output is what was recorded, so jc, which reads it, is restored.
    assert run.jobs("restored") == {"jc"} and (target / "gen/a.out").read_text() == "one\n"
    assert run.results is not None
    notes = run.results["jobs"]["ja"]["store"]["notes"]
    assert any("corrupt" in n and "it runs" in n for n in notes), notes
    assert "store: could not restore its recorded result" in run.out
    assert "is corrupt" in Path(run.results["jobs"]["ja"]["log"]).read_text()
    assert run.results["store"]["corrupt"] == 1
    assert store.get(key) is not None and store.has_blob(entry.outputs[0].blob), "the rerun healed the store"


def test_a_tiny_store_evicts_and_the_return_reruns(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    env = {**tool_env, "WARMCI_STORE_MAX": "1"}
    branch_b(target)
    git(target, "checkout", "-q", "main")
    first = run_doit(target, state, env=env)
    assert first.results and first.results["store"]["pruned"]["evicted_entries"] == 3, first.results["store"]
    git(target, "checkout", "-q", "b")
    assert run_doit(target, state, env=env).executed == {"ja", "jc"}
    git(target, "checkout", "-q", "main")
    run = run_doit(target, state, env=env)
    assert run.executed == {"ja", "jc"} and not run.jobs("restored"), run
    stats = subprocess.run([sys.executable, "-m", "warmci", "store", f"target={target}", f"state={state}"],
                           capture_output=True, text=True, cwd=RUNNER, env={**os.environ, **env})
    assert stats.returncode == 0 and "in 0 entries" in stats.stdout, stats.stdout + stats.stderr


def test_two_runs_at_once_on_one_store(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    shared = tmp_path / "shared-store"
    env = {**os.environ, **tool_env, "WARMCI_STORE": str(shared)}
    clones = []
    for name in ("one", "two"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(target), str(clone)], check=True, capture_output=True)
        clones.append(clone)
    procs = [subprocess.Popen([sys.executable, "-m", "doit", "-f", str(RUNNER / "dodo.py"), f"target={c}",
                               f"state={tmp_path / ('state-' + c.name)}"], env={**env, "WARMCI_RUN_ID": c.name},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in clones]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for c in clones:
        res = json.loads((tmp_path / f"state-{c.name}" / "runs" / c.name / "results.json").read_text())
        assert {j["status"] for j in res["jobs"].values()} <= {"passed", "restored"}, res["jobs"]
    for path in shared.glob("entries/*/*.json"):
        entry = api.Entry.from_json(path.read_bytes())
        for out in entry.outputs:
            LocalStore(str(shared)).get_blob(out.blob, str(tmp_path / "verify"))
    # A third state dir finds every result in the shared store.
    third = run_doit(target, tmp_path / "state-three", env={**tool_env, "WARMCI_STORE": str(shared)})
    assert third.rc == 0 and third.jobs("restored") == ALL, third


def test_a_failure_is_never_restored(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    (target / "b/y.txt").write_text("fail\n")
    commit(target, "jb fails")
    for _ in range(2):
        run = run_doit(target, state, env=tool_env)
        assert run.rc == 1 and run.status("jb") == "failed", run
    store = LocalStore(str(state / "store"))
    assert run.results is not None
    key = run.results["jobs"]["jb"]["key"]
    assert not store.has(key) and [o["outcome"] for o in store.outcomes(key)] == ["failed", "failed"]


FLIP = PIPELINE + """
[jobs.flip]
doc = "fails while a file outside the target exists, which is not part of its key: a flaky job"
cmd = ["{py}", "-c", "import os, sys; sys.exit(os.path.exists({flag!r}))"]
inputs = ["a/**"]
"""


def test_flaky_job_is_reported_and_never_turned_green(tmp_path: Path, tool_env: dict[str, str]) -> None:
    flag = tmp_path / "flip-fails"
    pipeline = FLIP.replace("{py}", sys.executable).replace("{flag!r}", repr(str(flag)))
    target = make_repo(tmp_path / "t", {"a/x.txt": "one\n", "b/y.txt": "ok\n", "warmci.toml": pipeline,
                                        ".gitignore": "gen/\n"})
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).status("flip") == "passed"
    flag.write_text("")
    failed = run_doit(target, state, "-a", "flip", env=tool_env)
    flag.unlink()
    assert failed.rc == 1 and failed.status("flip") == "failed", failed
    assert failed.results and failed.results["flaky"] == ["flip"]
    assert "FLAKY flip: passed and failed with these very inputs" in failed.out
    assert "flaky (passed and failed with the same inputs): flip" in failed.out
    # Its key has a recorded pass, but also a failure: it runs again instead of being restored.
    again = run_doit(target, state, env=tool_env)
    assert again.rc == 0 and again.status("flip") == "passed" and not again.jobs("restored"), again
    assert again.results and again.results["jobs"]["flip"]["flaky"]
    assert any("flaky" in n for n in again.results["jobs"]["flip"]["store"]["notes"])


def test_dependents_of_a_fixed_failure_are_restored(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    """jc did not run while ja was broken; ja fixed differently but producing the same output: jc is restored."""
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).executed == ALL
    (target / "a/x.txt").unlink()
    (target / "a/z.txt").write_text("keeps the pattern matching\n")
    broken = run_doit(target, state, env=tool_env)
    assert broken.status("ja") == "failed" and broken.status("jc") == "not-run", broken
    (target / "a/x.txt").write_text("one\n")  # ja's key is new (a/z.txt), its output is what it was
    fixed = run_doit(target, state, env=tool_env)
    assert fixed.rc == 0 and fixed.executed == {"ja"} and fixed.jobs("restored") == {"jc"}, fixed
    # doit alone reruns jc: it dropped jc's record when ja failed.
    (target / "a/x.txt").unlink()
    assert run_doit(target, state, env={**tool_env, "WARMCI_STORE": "off"}).status("jc") == "not-run"
    (target / "a/x.txt").write_text("one\n")
    alone = run_doit(target, state, env={**tool_env, "WARMCI_STORE": "off"})
    assert alone.executed == {"ja", "jc"}, alone


def test_explain_says_what_would_be_restored(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    main, _ = branch_b(target)
    git(target, "checkout", "-q", "main")
    first = run_doit(target, state, env=tool_env)
    git(target, "checkout", "-q", "b")
    run_doit(target, state, env=tool_env)
    git(target, "checkout", "-q", "main")
    out = subprocess.run([sys.executable, "-m", "warmci", "explain", "ja", f"target={target}", f"state={state}"],
                         capture_output=True, text=True, cwd=RUNNER, env={**os.environ, **tool_env})
    assert first.results is not None and out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == [
        f"ja: would be restored (passed in run {first.results['run_id']} at {main[:10]}, branch main), not run",
        "  - a/x.txt changed"], out.stdout


def test_store_command_shows_size_hit_rate_and_prunes(target: Path, tmp_path: Path,
                                                      tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    branch_b(target)
    git(target, "checkout", "-q", "main")
    run_doit(target, state, env=tool_env)
    git(target, "checkout", "-q", "b")
    run_doit(target, state, env=tool_env)
    git(target, "checkout", "-q", "main")
    assert run_doit(target, state, env=tool_env).jobs("restored") == {"ja", "jc"}

    def store(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "warmci", "store", *args, f"target={target}", f"state={state}"],
                              capture_output=True, text=True, cwd=RUNNER, env={**os.environ, **tool_env})

    shown = store()
    assert shown.returncode == 0, shown.stderr
    # ja, jb, jc at main, ja and jc at b; every job that was dispatched looked (3 + 2 + 2), the last two hit.
    assert "in 5 entries" in shown.stdout and "(limit 5.0 GiB)" in shown.stdout, shown.stdout
    assert "hit rate: 29 % (2 restored of 7 looked up, over 3 runs)" in shown.stdout, shown.stdout
    pruned = store("prune", "--max", "0")
    assert pruned.returncode == 0 and "5 entries" in pruned.stdout, pruned.stdout
    assert "in 0 entries" in store().stdout
    bad = store("prune", "--max", "lots")
    assert bad.returncode == 3 and "WARMCI_STORE_MAX='lots' is not a size" in bad.stderr, bad.stderr
