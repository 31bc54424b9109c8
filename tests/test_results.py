"""Run results read back after real runs on a small target: results.json, ci.log, versions.txt, why, explain."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import RUNNER, Run, git, make_repo, run_doit
from .small_target import set_tool_version

ALL = {"ja", "jb", "jc"}


def why(run: Run, job: str) -> list[dict[str, Any]]:
    assert run.results is not None, run
    return run.results["jobs"][job]["why"]


def kinds(run: Run, job: str) -> set[tuple[str, str]]:
    return {(r["kind"], r["name"]) for r in why(run, job)}


def ci_log(state: Path, run: Run) -> list[str]:
    assert run.results is not None
    return (state / "runs" / run.results["run_id"] / "ci.log").read_text().splitlines()


def test_results_json_of_a_first_run(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    run = run_doit(target, state, env=tool_env)
    assert run.rc == 0 and run.results, run
    r = run.results
    assert r["schema"] == 3 and r["status"] == "passed" and r["counts"] == {"passed": 3}
    assert r["sha"] == git(target, "rev-parse", "HEAD").strip() and r["branch"] == "main"
    assert r["order"] == "critical-path"
    for name in ALL:
        job = r["jobs"][name]
        assert job["status"] == "passed" and job["exit_code"] == 0
        assert job["why"] == [{"kind": "first-run", "name": "", "text": "first run (no earlier success recorded)"}]
        assert r["start"] <= job["start"] <= job["end"] <= r["end"]
        assert job["duration"] == pytest.approx(job["end"] - job["start"], abs=0.002)
        assert Path(job["log"]).is_file() and f"job {name}" in Path(job["log"]).read_text()
    assert r["jobs"]["jc"]["needs"] == ["ja"]
    assert "one" in Path(r["jobs"]["jc"]["log"]).read_text()  # the job's full output is in its log
    # ci.log in the buckaroo format, one START and one PASS per job.
    lines = ci_log(state, run)
    assert all(re.fullmatch(r"\[\d\d:\d\d:\d\d\] (START|PASS|FAIL|SKIP) \S+( .+)?", line) for line in lines), lines
    assert sorted(line.split()[1:3] for line in lines) == sorted([w, j] for j in ALL for w in ("START", "PASS"))
    # Versions of what ran, and the machine through the run.
    versions = (state / "runs" / r["run_id"] / "versions.txt").read_text()
    assert "faketool 1.0" in versions and "[runner]" in versions and "doit==0.37.0" in versions
    assert r["versions"]["faketool"] == "faketool 1.0"
    samples = r["resources"]["samples"]
    assert len(samples) >= 2 and all(len(s) == 3 and 0 <= s[1] <= 100 and s[2] > 0 for s in samples)
    history = json.loads((state / "history.json").read_text())["jobs"]
    assert set(history) == ALL and history["ja"]["status"] == "passed"
    # The terminal: one line per job and the summary, no live line when not a terminal.
    assert "\033[K" not in run.out
    assert "warmci: PASSED in" in run.out and "critical path:" in run.out


def test_durations_add_up_with_the_wall_time(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    run = run_doit(target, tmp_path / "state", "-n", "1", env=tool_env)
    assert run.rc == 0 and run.results, run
    r = run.results
    jobs = sorted((j for j in r["jobs"].values()), key=lambda j: j["start"])
    # One worker: the jobs follow each other, so their durations fit in the wall time.
    for a, b in zip(jobs, jobs[1:], strict=False):
        assert a["end"] <= b["start"] + 0.01, (a, b)
    assert sum(j["duration"] for j in jobs) == pytest.approx(r["job_seconds"], abs=0.01)
    assert r["job_seconds"] <= r["duration"]
    # The critical path's jobs and waits add up to the wall time exactly.
    cp = r["critical_path"]
    assert cp["wall"] == pytest.approx(r["duration"], abs=0.002)
    assert sum(e["duration"] + e["wait"] for e in cp["jobs"]) <= cp["wall"] + 0.01
    assert cp["duration"] + cp["wait"] == pytest.approx(cp["wall"], abs=0.01)
    assert [e["job"] for e in cp["jobs"]] == ["ja", "jc"]  # two jobs in a row outlast one
    assert all(0 < e["share"] <= 1 for e in cp["jobs"])


def test_why_names_the_changed_file_and_what_else_changed(target: Path, tmp_path: Path,
                                                          tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).rc == 0
    (target / "a/x.txt").write_text("two\n")
    run = run_doit(target, state, env=tool_env)
    assert run.executed == {"ja", "jc"}, run
    assert kinds(run, "ja") == {("file", "a/x.txt")}
    assert why(run, "ja")[0]["text"] == "a/x.txt changed"
    # jc reads ja's output: the output changed, and the reason says whose it is.
    assert [(r["kind"], r["name"], r["job"]) for r in why(run, "jc")] == [("upstream", "gen/a.out", "ja")]
    assert run.results and run.results["jobs"]["jb"]["why"] == []
    assert "because: a/x.txt changed" in run.out
    # A file and a keyed variable at once: doit stops at the first failing check, warmci names both.
    (target / "b/y.txt").write_text("still ok\n")
    run = run_doit(target, state, env={**tool_env, "FOO": "y"})
    assert run.executed == {"jb"}, run
    assert kinds(run, "jb") == {("file", "b/y.txt"), ("env", "FOO")}
    env_reason = next(r for r in why(run, "jb") if r["kind"] == "env")
    assert (env_reason["old"], env_reason["new"]) == ("x", "y")
    # A tool upgrade.
    set_tool_version(tmp_path / "bin", "2.0")
    run = run_doit(target, state, env={**tool_env, "FOO": "y"})
    assert run.executed == {"jc"} and kinds(run, "jc") == {("tool", "faketool")}, run
    # The pipeline entry.
    text = (target / "warmci.toml").read_text().replace('doc = "fail if', 'timeout = 77\ndoc = "fail if')
    (target / "warmci.toml").write_text(text)
    run = run_doit(target, state, env={**tool_env, "FOO": "y"})
    assert run.executed == {"jb"} and kinds(run, "jb") == {("config", "config")}, run


def test_missing_output_forced_and_failed_runs_say_so(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).rc == 0
    (target / "gen/a.out").unlink()
    run = run_doit(target, state, env=tool_env)
    assert kinds(run, "ja") == {("output", "gen/a.out")}, run
    forced = run_doit(target, state, "-a", env=tool_env)
    assert all(kinds(forced, j) == {("forced", "always-execute")} for j in ALL), forced
    subprocess.run([sys.executable, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "forget", "jb",
                    f"target={target}", f"state={state}"], check=True, capture_output=True,
                   env={**os.environ, **tool_env})
    forgotten = run_doit(target, state, env=tool_env)
    # Forgotten by doit, but its key's success is in the result store: restored, and the reason says why.
    assert forgotten.jobs("restored") == {"jb"} and kinds(forgotten, "jb") == {("forced", "forget")}, forgotten
    (target / "b/y.txt").write_text("fail\n")
    assert run_doit(target, state, env=tool_env).status("jb") == "failed"
    again = run_doit(target, state, env=tool_env)
    assert kinds(again, "jb") == {("last-run", "failed")}, again


def test_a_skipped_run_says_why_each_job_skipped(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).rc == 0
    noop = run_doit(target, state, env=tool_env)
    assert noop.results and noop.results["counts"] == {"up-to-date": 3}, noop
    assert {j["reason"] for j in noop.results["jobs"].values()} == {"up to date"}
    assert sorted(line[11:] for line in ci_log(state, noop)) == sorted(f"SKIP {j} up to date" for j in ALL)
    # Jobs the selection left out are "filtered", not silently absent.
    one = run_doit(target, state, "jb", env=tool_env)
    assert one.status("jb") == "up-to-date" and one.status("ja") == "filtered" and one.status("jc") == "filtered"
    assert one.results and one.results["status"] == "passed"
    assert any(line.endswith("SKIP ja filtered") for line in ci_log(state, one))
    # A dependency that failed: its dependents did not run, and say which one.
    (target / "a/x.txt").unlink()
    (target / "a/z.txt").write_text("keeps the pattern matching\n")
    failed = run_doit(target, state, env=tool_env)
    assert failed.status("ja") == "failed" and failed.status("jc") == "not-run", failed
    assert failed.results and failed.results["jobs"]["jc"]["reason"] == "dependency failed: ja"
    assert any(line.endswith("SKIP jc dependency failed: ja") for line in ci_log(state, failed))
    assert f"failed    ja  log: {failed.results['jobs']['ja']['log']}" in failed.out


def test_explain_names_each_changed_input(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    assert run_doit(target, state, env=tool_env).rc == 0
    (target / "b/y.txt").write_text("changed\n")
    (target / "a/x.txt").write_text("two\n")

    def explain(*jobs: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "warmci", "explain", *jobs, f"target={target}",
                               f"state={state}"], capture_output=True, text=True, cwd=RUNNER,
                              env={**os.environ, **tool_env, "FOO": "y"})

    out = explain("jb", "jc")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"explaining {target} (pipeline {target / 'warmci.toml'}, state {state})",
        "jb: would run",
        "  - env.FOO: 'x' -> 'y'",
        "  - b/y.txt changed",
        "jc: up to date now, but it reads outputs of ja, which would or may run first: it reruns if those "
        "outputs change",
    ]
    # Explaining changes nothing: the run afterwards still sees the same changes.
    run = run_doit(target, state, env={**tool_env, "FOO": "y"})
    assert run.executed == {"ja", "jb", "jc"}, run
    everything = explain()
    assert everything.stdout.splitlines()[1:] == ["ja: up to date", "jb: up to date", "jc: up to date"]
    bad = explain("nope")
    assert bad.returncode == 3 and "unknown job 'nope'" in bad.stderr


LONG_CHAIN = """
[jobs.s1]
cmd = ["{py}", "-c", "pass"]
[jobs.s2]
cmd = ["{py}", "-c", "pass"]
[jobs.s3]
cmd = ["{py}", "-c", "pass"]
[jobs.l1]
cmd = ["{py}", "-c", "pass"]
[jobs.l2]
needs = ["l1"]
cmd = ["{py}", "-c", "pass"]
""".replace("{py}", sys.executable)


@pytest.mark.parametrize(("order", "first"), [("critical-path", ["l1", "l2"]), ("definition", ["s1", "s2"])])
def test_critical_path_first_dispatch(tmp_path: Path, order: str, first: list[str]) -> None:
    """With one worker and recorded durations, the long chain goes first; WARMCI_ORDER=definition keeps doit's."""
    target = make_repo(tmp_path / "t", {"warmci.toml": LONG_CHAIN})
    state = tmp_path / "state"
    state.mkdir()
    durations = {"s1": 1.0, "s2": 1.0, "s3": 1.0, "l1": 2.0, "l2": 3.0}
    (state / "history.json").write_text(json.dumps(
        {"jobs": {n: {"status": "passed", "duration": d} for n, d in durations.items()}}))
    run = run_doit(target, state, "-n", "1", env={"WARMCI_ORDER": order})
    assert run.rc == 0, run
    started = [line.split()[2] for line in ci_log(state, run) if line.split()[1] == "START"]
    assert started[:2] == first, started
    assert run.results and run.results["order"] == order
    if order == "critical-path":
        assert run.results["jobs"]["l1"]["priority"] == 5.0 and run.results["jobs"]["s1"]["priority"] == 1.0


def test_unknown_order_is_a_setup_error(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    run = run_doit(target, tmp_path / "state", env={**tool_env, "WARMCI_ORDER": "random"})
    assert run.rc == 3 and "WARMCI_ORDER='random'" in run.err, run


def test_gantt_of_a_run_and_of_two_runs(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    first = run_doit(target, state, env=tool_env)
    (target / "a/x.txt").write_text("two\n")
    second = run_doit(target, state, env=tool_env)
    assert first.results and second.results
    for i, args in enumerate(([str(state / "runs" / first.results["run_id"])], [str(state)],
                              [str(state / "runs" / first.results["run_id"] / "results.json"), str(state)])):
        png = tmp_path / "charts" / f"{i}.png"
        p = subprocess.run([sys.executable, "-m", "warmci", "gantt", *args, "-o", str(png)], cwd=RUNNER,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    missing = subprocess.run([sys.executable, "-m", "warmci", "gantt", str(tmp_path / "nothing")], cwd=RUNNER,
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "no results.json" in missing.stderr
