"""The exit-code contract, each code through a real doit run: 0, 1, 2, 3 and 130.

0 everything passed or was up to date; 1 a job failed (its own command said
no, or timed out); 2 a job errored (it could not run); 3 a setup error (bad
pipeline file, unknown job, state dir locked); 130 cancelled. results.json's
`status` says the same.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from warmci.status import Status, exit_code, run_outcome

from .helpers import RUNNER, make_repo, run_doit, wait_for
from .small_target import PIPELINE

PY = sys.executable


def repo(tmp_path: Path, jobs: str) -> Path:
    return make_repo(tmp_path / "target", {"src/a.txt": "a\n", "warmci.toml": jobs.replace("{py}", PY)})


def test_the_run_status_decides_the_code() -> None:
    assert run_outcome([Status.PASSED, Status.UP_TO_DATE, Status.FILTERED, Status.SKIPPED]) == Status.PASSED
    assert run_outcome([Status.PASSED, Status.FAILED, Status.NOT_RUN]) == Status.FAILED
    assert run_outcome([Status.TIMED_OUT]) == Status.FAILED
    assert run_outcome([Status.FAILED, Status.ERRORED]) == Status.ERRORED
    assert run_outcome([Status.PASSED], run_errors=True) == Status.ERRORED
    assert run_outcome([Status.ERRORED, Status.CANCELLED]) == Status.CANCELLED
    assert [exit_code(s) for s in (Status.PASSED, Status.FAILED, Status.ERRORED, Status.CANCELLED)] == [0, 1, 2, 130]
    with pytest.raises(ValueError, match="not a run status"):
        exit_code(Status.UP_TO_DATE)


def test_0_when_everything_passed_or_was_up_to_date(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    first = run_doit(target, tmp_path / "state", env=tool_env)
    assert first.rc == 0 and first.results and first.results["status"] == "passed", first
    again = run_doit(target, tmp_path / "state", env=tool_env)
    assert again.rc == 0 and again.uptodate == {"ja", "jb", "jc"}, again


def test_1_when_a_job_failed_and_its_dependents_did_not_run(tmp_path: Path) -> None:
    """What a JS syntax error in build-js looks like: the build says no, what needs it does not run."""
    target = repo(tmp_path, """
[jobs.build]
cmd = ["{py}", "-c", "import sys; sys.exit('SyntaxError: Unexpected token (3:7)')"]
inputs = ["src/**"]
[jobs.wheel]
needs = ["build"]
cmd = ["{py}", "-c", "pass"]
[jobs.suite]
needs = ["wheel"]
cmd = ["{py}", "-c", "pass"]
""")
    run = run_doit(target, tmp_path / "state")
    assert run.rc == 1, run
    assert run.status("build") == "failed" and run.jobs("not-run") == {"wheel", "suite"}, run
    assert run.results and run.results["status"] == "failed"


def test_2_when_a_jobs_command_does_not_exist(tmp_path: Path) -> None:
    target = repo(tmp_path, """
[jobs.lint]
cmd = ["warmci-no-such-linter", "."]
inputs = ["src/**"]
[jobs.fine]
cmd = ["{py}", "-c", "pass"]
inputs = ["src/**"]
""")
    run = run_doit(target, tmp_path / "state")
    assert run.rc == 2, run
    assert run.status("lint") == "errored" and run.status("fine") == "passed", run
    assert run.results and run.results["status"] == "errored"
    assert "command not found: 'warmci-no-such-linter'" in run.results["jobs"]["lint"]["reason"]


def test_2_beats_1_when_one_job_errored_and_another_failed(tmp_path: Path) -> None:
    target = repo(tmp_path, """
[jobs.missing]
cmd = ["warmci-no-such-tool"]
[jobs.says-no]
cmd = ["{py}", "-c", "raise SystemExit(1)"]
""")
    run = run_doit(target, tmp_path / "state")
    assert run.rc == 2 and run.status("missing") == "errored" and run.status("says-no") == "failed", run


def test_3_for_a_bad_pipeline_file(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    (target / "warmci.toml").write_text(PIPELINE + "\n[jobs.jd]\ncmd = 'not a list'\n")
    run = run_doit(target, tmp_path / "state", env=tool_env)
    assert run.rc == 3 and "jobs.jd.cmd: expected a list" in run.err and "Traceback" not in run.err, run
    assert run.results is None


def test_3_for_an_unknown_job_naming_the_closest(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    run = run_doit(target, tmp_path / "state", "jbb", env=tool_env)
    assert run.rc == 3, run
    assert run.err.strip() == "ERROR: unknown job 'jbb'; closest: jb; `doit list` shows every job", run
    assert run.results is None
    info = run_doit(target, tmp_path / "state", "info", "jbb", env=tool_env)
    assert info.rc == 3 and info.err.strip() == run.err.strip(), info  # one line, no traceback
    nothing = run_doit(target, tmp_path / "state", "zzz", env=tool_env)
    assert nothing.rc == 3 and nothing.err.strip() == "ERROR: unknown job 'zzz'; `doit list` shows every job"


MATRIX = """
[jobs.check]
matrix = { n = ["1", "2"] }
cmd = ["{py}", "-c", "print({n})"]
inputs = ["src/**"]
[jobs.other]
cmd = ["{py}", "-c", "pass"]
"""


def test_a_matrix_base_name_runs_every_variant(tmp_path: Path) -> None:
    target = repo(tmp_path, MATRIX)
    run = run_doit(target, tmp_path / "state", "check")
    assert run.rc == 0, run
    assert run.executed == {"check-1", "check-2"} and run.status("other") == "filtered", run
    info = run_doit(target, tmp_path / "state", "info", "check")
    assert info.rc == 3 and "'check' is a matrix of jobs: check-1, check-2" in info.err, info


def test_130_when_the_run_is_cancelled(tmp_path: Path) -> None:
    target = repo(tmp_path, """
[jobs.waits]
cmd = ["{py}", "-c", "import pathlib, time; pathlib.Path('../started').touch(); time.sleep(600)"]
inputs = ["src/**"]
""")
    state = tmp_path / "state"
    doit = subprocess.Popen([PY, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "-n", "2", f"target={target}",
                             f"state={state}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "WARMCI_RUN_ID": "cancelled"})
    try:
        wait_for(lambda: (tmp_path / "started").exists(), 60, "the job to start")
        doit.send_signal(signal.SIGTERM)
        out, err = doit.communicate(timeout=60)
    finally:
        if doit.poll() is None:
            doit.kill()
            doit.wait()
    assert doit.returncode == 130, (out, err)
    results = (state / "runs" / "cancelled" / "results.json").read_text()
    assert '"status": "cancelled"' in results
