"""The skip contract on a small real target: each input kind reruns exactly its dependents."""
from __future__ import annotations

import os
from pathlib import Path

from .helpers import run_doit
from .small_target import PIPELINE, set_tool_version


def warm(target: Path, state: Path, env: dict[str, str]) -> None:
    first = run_doit(target, state, env=env)
    assert first.rc == 0, first
    assert first.executed == {"ja", "jb", "jc"}
    second = run_doit(target, state, env=env)
    assert second.rc == 0 and second.executed == set(), second
    assert second.uptodate == {"ja", "jb", "jc"}


def test_content_change_reruns_the_job_and_its_dependents_only(target: Path, tmp_path: Path,
                                                               tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    (target / "a/x.txt").write_text("two\n")
    run = run_doit(target, state, env=tool_env)
    assert run.rc == 0 and run.executed == {"ja", "jc"} and run.uptodate == {"jb"}, run


def test_mtime_only_change_reruns_nothing(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    later = os.stat(target / "a/x.txt").st_mtime + 100
    os.utime(target / "a/x.txt", (later, later))
    run = run_doit(target, state, env=tool_env)
    assert run.executed == set(), run


def test_keyed_env_var_reruns_only_jobs_keyed_on_it(target: Path, tmp_path: Path,
                                                     tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    run = run_doit(target, state, env={**tool_env, "FOO": "y"})
    assert run.executed == {"jb"}, run
    unkeyed = run_doit(target, state, env={**tool_env, "FOO": "y", "SOMETHING_ELSE": "1"})
    assert unkeyed.executed == set(), unkeyed
    wide = run_doit(target, state, env={**tool_env, "FOO": "y", "PIPELINE_WIDE": "q"})
    assert wide.executed == {"ja", "jb", "jc"}, wide


def test_tool_version_change_reruns_jobs_using_the_tool(target: Path, tmp_path: Path,
                                                         tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    set_tool_version(tmp_path / "bin", "2.0")
    run = run_doit(target, state, env=tool_env)
    assert run.executed == {"jc"}, run


def test_pipeline_entry_change_reruns_that_job_only(target: Path, tmp_path: Path,
                                                    tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    text = (target / "warmci.toml").read_text().replace('doc = "fail if', 'timeout = 77\ndoc = "fail if')
    (target / "warmci.toml").write_text(text)
    run = run_doit(target, state, env=tool_env)
    assert run.executed == {"jb"}, run
    # A doc change is not an input of the job.
    (target / "warmci.toml").write_text(text.replace('doc = "read ja', 'doc = "reads ja'))
    assert run_doit(target, state, env=tool_env).executed == set()


def test_missing_output_reruns_its_producer_and_identical_output_stops_there(
        target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    (target / "gen/a.out").unlink()
    # Its inputs are those of its recorded success: the output is put back from the result store.
    run = run_doit(target, state, env=tool_env)
    assert run.jobs("restored") == {"ja"} and run.uptodate == {"jb", "jc"}, run
    assert (target / "gen/a.out").read_text() == "one\n"
    # Without the store (doit's last state alone), it reruns; its identical output stops there.
    (target / "gen/a.out").unlink()
    run = run_doit(target, state, env={**tool_env, "WARMCI_STORE": "off"})
    assert run.executed == {"ja"} and run.uptodate == {"jb", "jc"}, run


def test_failure_fails_the_run_is_never_recorded_and_dependents_report_not_run(
        target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    warm(target, state, tool_env)
    (target / "b/y.txt").write_text("fail\n")
    (target / "a/x.txt").write_text("two\n")
    # ja fails too: its command cannot copy a missing file.
    (target / "a/x.txt").unlink()
    (target / "a/z.txt").write_text("keeps the pattern matching\n")
    run = run_doit(target, state, env=tool_env)
    assert run.rc != 0, run
    assert run.status("jb") == "failed" and run.status("ja") == "failed", run
    assert run.status("jc") == "not-run", run
    assert "FAIL  jb" in run.out and "log:" in run.out
    again = run_doit(target, state, env=tool_env)
    assert {"ja", "jb"} <= again.executed, again  # a failure is never up to date
    assert again.results and again.results["status"] == "failed"


def test_fast_fail_stops_at_the_first_failure(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    (target / "b/y.txt").write_text("fail\n")
    run = run_doit(target, tmp_path / "state", "-n", "1", "--no-continue", "jb", "ja", "jc", env=tool_env)
    assert run.rc != 0
    assert run.status("jb") == "failed"
    assert run.status("jc") == "not-run", run


def test_one_job_runs_with_only_what_it_needs(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    run = run_doit(target, tmp_path / "state", "jc", env=tool_env)
    assert run.rc == 0 and run.executed == {"ja", "jc"}, run


def test_invalid_pipeline_file_runs_nothing(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    (target / "warmci.toml").write_text(PIPELINE.replace("needs = [\"ja\"]", "needs = [\"jz\"]"))
    run = run_doit(target, tmp_path / "state", env=tool_env)
    assert run.rc == 3, run
    assert "warmci.toml: jobs.jc.needs[0]: unknown job 'jz'" in run.err
    assert "Traceback" not in run.err
    assert run.results is None and not (target / "gen").exists()


def test_input_pattern_matching_nothing_is_an_error(target: Path, tmp_path: Path, tool_env: dict[str, str]) -> None:
    (target / "warmci.toml").write_text(PIPELINE.replace('inputs = ["b/**"]', 'inputs = ["bb/**"]'))
    run = run_doit(target, tmp_path / "state", "list", env=tool_env)
    assert run.rc == 3 and "jobs.jb.inputs: pattern 'bb/**' matches no file" in run.err, run


def test_state_inside_target_is_refused(target: Path, tool_env: dict[str, str]) -> None:
    run = run_doit(target, target / ".state", env=tool_env)
    assert run.rc == 3 and "inside the target" in run.err


def test_a_runner_script_the_job_runs_is_one_of_its_inputs(tmp_path: Path) -> None:
    from tasks.common import runner_scripts

    from .helpers import load_pipeline

    toml = tmp_path / "warmci.toml"
    toml.write_text('[jobs.a]\ncmd = ["python", "{runner}/job_scripts/playwright_browsers.py", "--x"]\n'
                    '[jobs.b]\ncmd = ["python", "-c", "pass"]\n')
    pipe = load_pipeline(toml)
    scripts = runner_scripts(pipe.jobs["a"])
    assert len(scripts) == 1 and scripts[0].endswith("/job_scripts/playwright_browsers.py")
    assert runner_scripts(pipe.jobs["b"]) == []
