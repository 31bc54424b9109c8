"""skip= and first= on a small real target, in keep-going and fast-fail mode: each job's status, the exit code,
the order, and the run's first failure. (Testcase filters need pytest and Playwright: test_filters_demo.)"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from warmci.context import Context
from warmci.inputs.uptodate import KEY, InputsKey

from .helpers import Run, make_repo, run_doit

# build -> wheel -> suite is the long chain; lint and unit stand alone. A job fails when
# the file fail-JOB exists beside the target (not an input: every test uses a fresh state).
JOB = ["{py}", "-c", "import os, sys, time; time.sleep(0.2); sys.exit(os.path.exists('../fail-NAME'))"]
PIPELINE = "\n".join(f"""
[jobs.{name}]
cmd = {json.dumps([a.replace("NAME", name) for a in JOB])}
inputs = ["src/**"]{extra}
""" for name, extra in [
    ("build", ""), ("wheel", '\nneeds = ["build"]'), ("suite", '\nneeds = ["wheel"]'), ("lint", ""),
    ("unit", ""), ("check", '\nmatrix = { n = ["1", "2"] }')]).replace("{py}", sys.executable)
ALL = {"build", "wheel", "suite", "lint", "unit", "check-1", "check-2"}
MODES = {"keep-going": (), "fast-fail": ("--no-continue",)}


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "target", {"src/a.txt": "a\n", "warmci.toml": PIPELINE})


def run(target: Path, *args: str, fail: tuple[str, ...] = ()) -> Run:
    for name in fail:
        (target.parent / f"fail-{name}").touch()
    return run_doit(target, target.parent / "state", "-n", "2", *args)


def statuses(r: Run) -> dict[str, str]:
    assert r.results is not None, r
    return {n: j["status"] for n, j in r.results["jobs"].items()}


def ci_log(r: Run, target: Path) -> list[str]:
    assert r.results is not None
    return (target.parent / "state" / "runs" / r.results["run_id"] / "ci.log").read_text().splitlines()


@pytest.mark.parametrize("mode", MODES)
def test_skip_reports_what_needs_a_skipped_job_as_not_run_and_passes(target: Path, mode: str) -> None:
    r = run(target, *MODES[mode], "skip=build,check")
    assert r.rc == 0, r
    assert statuses(r) == {"build": "filtered", "check-1": "filtered", "check-2": "filtered",
                           "wheel": "not-run", "suite": "not-run", "lint": "passed", "unit": "passed"}
    assert r.results and r.results["status"] == "passed" and r.results["filters"] == {
        "skip": ["build", "check-1", "check-2"]}
    assert r.results["jobs"]["suite"]["reason"] == "needs build, which this run skips (skip=)"
    assert r.results["jobs"]["build"]["reason"] == "filtered: skipped (skip=)"
    assert r.results["first_failure"] is None
    log = ci_log(r, target)
    assert any(line.endswith("SKIP wheel not run: needs build, which this run skips (skip=)") for line in log)
    assert not (target.parent / "state" / "runs" / r.results["run_id"] / "first-failure.json").exists()


@pytest.mark.parametrize("mode", MODES)
def test_skip_with_a_failure_elsewhere_fails(target: Path, mode: str) -> None:
    r = run(target, *MODES[mode], "skip=wheel", fail=("lint",))
    assert r.rc == 1, r
    s = statuses(r)
    assert s["wheel"] == "filtered" and s["suite"] == "not-run" and s["lint"] == "failed", s
    assert r.results and r.results["first_failure"]["job"] == "lint"
    if mode == "keep-going":
        assert s["build"] == s["unit"] == "passed"


def started_after(r: Run, first: set[str]) -> None:
    assert r.results
    jobs = r.results["jobs"]
    end = max(jobs[n]["end"] for n in first)
    later = [n for n, j in jobs.items() if n not in first and j.get("start") is not None]
    assert later and all(jobs[n]["start"] >= end for n in later), {n: jobs[n]["start"] - end for n in later}


def test_first_jobs_run_before_the_rest_even_with_free_workers(target: Path) -> None:
    r = run(target, "first=wheel")
    assert r.rc == 0 and statuses(r) == dict.fromkeys(ALL, "passed"), r
    started_after(r, {"build", "wheel"})  # wheel and what it needs, then the rest
    assert r.results and r.results["filters"] == {"first": ["wheel"]}


def test_first_job_failing_in_keep_going_mode_the_rest_runs_and_the_run_fails(target: Path) -> None:
    r = run(target, "first=lint", fail=("lint",))
    assert r.rc == 1, r
    assert statuses(r) == {**dict.fromkeys(ALL, "passed"), "lint": "failed"}
    started_after(r, {"lint"})
    assert r.results and r.results["status"] == "failed"
    first = r.results["first_failure"]
    assert first["job"] == "lint" and first["where"] == "job" and 0 < first["seconds"] < r.results["duration"]


def test_first_job_failing_in_fast_fail_mode_ends_the_run(target: Path) -> None:
    r = run(target, "--no-continue", "first=lint", fail=("lint",))
    assert r.rc == 1, r
    assert statuses(r) == {**dict.fromkeys(ALL, "not-run"), "lint": "failed"}
    lines = [line.split()[1:] for line in ci_log(r, target)]
    assert lines[:2] == [["START", "lint"], ["FAIL", "lint"]], lines
    # Nothing else started; each job the stop left out is logged as not run, and why.
    assert sorted(line[1] for line in lines[2:]) == sorted(set(ALL) - {"lint"}), lines
    assert all(line[0] == "SKIP" and " ".join(line[2:]) == "not run: the run stopped first" for line in lines[2:])


@pytest.mark.parametrize("mode", MODES)
def test_the_run_is_never_better_than_a_phase(target: Path, mode: str) -> None:
    """First jobs pass, a later one fails (and the other way round above): the run fails either way."""
    r = run(target, *MODES[mode], "first=lint,unit", fail=("suite",))
    assert r.rc == 1, r
    s = statuses(r)
    assert s["lint"] == s["unit"] == "passed" and s["suite"] == "failed", s
    assert r.results and r.results["first_failure"]["job"] == "suite"


def test_first_and_skip_together(target: Path) -> None:
    r = run(target, "first=unit", "skip=build")
    assert r.rc == 0, r
    assert statuses(r) == {"build": "filtered", "wheel": "not-run", "suite": "not-run", "lint": "passed",
                           "unit": "passed", "check-1": "passed", "check-2": "passed"}
    started_after(r, {"unit"})


def test_first_with_a_job_selection(target: Path) -> None:
    r = run(target, "suite", "lint", "first=lint")
    assert r.rc == 0 and set(statuses(r)) == ALL, r
    assert r.executed == {"lint", "build", "wheel", "suite"}
    started_after(r, {"lint"})


@pytest.mark.parametrize(("args", "message"), [
    (("skip=bulid",), "skip=bulid: unknown job 'bulid'; closest: build"),
    (("first=lnt,unit",), "first=lnt,unit: unknown job 'lnt'; closest: lint"),
    (("skip=lint", "first=lint"), "lint in both skip= and first="),
    (("k=a", "first-k=b"), "k= and first-k= exclude each other"),
    (("grep=a", "first-grep=b"), "grep= and first-grep= exclude each other"),
    (("unit", "first=lint"), "first=lint: lint is not part of this run (it runs unit and what they need)"),
    (("lf=maybe",), "lf=maybe: expected lf=1"),
])
def test_bad_filters_are_setup_errors(target: Path, args: tuple[str, ...], message: str) -> None:
    r = run(target, *args)
    assert r.rc == 3 and message in r.err and "Traceback" not in r.err, r
    assert r.results is None


def test_a_filtered_run_writes_first_failure_json_at_once(target: Path) -> None:
    r = run(target, fail=("unit",))
    assert r.rc == 1 and r.results, r
    path = target.parent / "state" / "runs" / r.results["run_id"] / "first-failure.json"
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["job"] == "unit" and data["status"] == "failed" and data["where"] == "job"
    assert r.results["first_failure"] == {**data, "seconds": r.results["first_failure"]["seconds"]}
    assert r.results["jobs"]["unit"]["end"] == pytest.approx(data["at"], abs=0.5)


class FakeTask:
    def __init__(self) -> None:
        self.value_savers: list[Any] = []


def test_a_filtered_success_is_never_the_jobs_and_a_whole_success_covers_a_filtered_run(tmp_path: Path) -> None:
    ctx = Context(str(tmp_path), str(tmp_path / "warmci.toml"), str(tmp_path / "state"), "r")
    whole = InputsKey(ctx, {"cmd": ["pytest"]}, (), None, ())
    part = InputsKey(ctx, {"cmd": ["pytest"]}, (), None, (), filtered="k=foo")
    other = InputsKey(ctx, {"cmd": ["pytest"]}, (), None, (), filtered="k=bar")

    def check(key: InputsKey, saved: dict[str, Any] | None) -> tuple[bool, dict[str, Any]]:
        task = FakeTask()
        up = key(task, {} if saved is None else {KEY: saved})
        return up, task.value_savers[0]()[KEY]

    up, recorded = check(part, None)
    assert not up and recorded["filter"] == "k=foo"  # what a filtered success records carries its filter
    up, _ = check(whole, recorded)
    assert not up and whole.changes == ["its last success ran only some of its tests (k=foo)"]
    assert not check(other, recorded)[0] and other.changes == ["filter: 'k=foo' -> 'k=bar'"]
    assert check(part, recorded)[0]  # the same filter, the same inputs
    up, recorded_whole = check(whole, None)
    assert "filter" not in recorded_whole
    up, recorded_part = check(part, recorded_whole)
    assert up and recorded_part["filter"] == "k=foo"  # covered; and were it to run, it would record its filter
