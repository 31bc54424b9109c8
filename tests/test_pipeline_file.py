"""The pipeline file: valid files load into jobs; invalid ones name file, key and expectation."""
from __future__ import annotations

from pathlib import Path

import pytest

from warmci.errors import PipelineError
from warmci.pipeline.model import Pipeline

from .helpers import DEMO, load_pipeline

MINIMAL = """
[python]
versions = ["3.11", "3.13"]

[jobs.lint]
kind = "lint"
python = "3.13"
cmd = ["ruff", "check", "."]
"""


def load_text(tmp_path: Path, text: str) -> Pipeline:
    f = tmp_path / "warmci.toml"
    f.write_text(text)
    return load_pipeline(f)


def error_of(tmp_path: Path, text: str) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        load_text(tmp_path, text)
    return info.value


def test_demo_pipeline_loads_with_every_job_and_its_needs() -> None:
    pipe = load_pipeline(DEMO / "warmci.toml")
    assert list(pipe.jobs) == [
        "install-python-deps-3.11", "install-python-deps-3.12", "install-python-deps-3.13", "install-js-deps",
        "lint-python", "build-js", "test-js", "build-wheel",
        "test-python-3.11", "test-python-3.12", "test-python-3.13", "smoke-test", "playwright-app",
    ]
    assert pipe.jobs["test-python-3.12"].needs == ["install-python-deps-3.12"]
    assert pipe.jobs["build-wheel"].needs == ["build-js"]
    assert pipe.jobs["build-js"].needs == ["install-js-deps"]
    assert pipe.jobs["playwright-app"].needs == ["install-js-deps", "build-wheel"]
    assert pipe.jobs["playwright-app"].ports == (8765,)
    changed, bulk, marker_step = pipe.jobs["test-python-3.11"].steps  # testmon = true: a first pass
    assert marker_step.ok_exit == (0, 5) and "timing_dependent" in marker_step.cmd
    assert bulk.ok_exit == (0,) and "-n" in bulk.cmd and "--testmon-noselect" in bulk.cmd and not bulk.first_pass
    assert changed.first_pass == "testmon" and changed.ok_exit == (0, 5) and "-n" not in changed.cmd
    assert "--testmon-forceselect" in changed.cmd and changed.only_if == "{work}/testmondata.sqlite"
    assert all("--failed-first" in s.cmd and "cache_dir={state}/pytest-cache/{job}" in s.cmd
               for s in pipe.jobs["test-python-3.11"].steps)


def test_matrix_substitutes_the_value_everywhere(tmp_path: Path) -> None:
    pipe = load_text(tmp_path, MINIMAL + """
[jobs.t]
kind = "pytest"
matrix = { python = ["3.11", "3.13"] }
python = "{python}"
doc = "tests on {python}"
""")
    assert pipe.jobs["t-3.11"].python == "3.11" and pipe.jobs["t-3.13"].doc == "tests on 3.13"
    assert pipe.jobs["t-3.13"].needs == ["install-python-deps-3.13"]


@pytest.mark.parametrize("text, key, words", [
    ("[jobs.a]\ncmd = [\"true\"]\ncmnd = 1\n", "jobs.a.cmnd", "unknown key"),
    ("[jobs.a]\ncmd = \"make test\"\n", "jobs.a.cmd", "expected a list"),
    ("[jobs.a]\ndoc = \"no command\"\n", "jobs.a.cmd", "is required"),
    ("[jobs.a]\ncmd = [\"true\"]\nneeds = [\"nope\"]\n", "jobs.a.needs[0]", "unknown job 'nope'"),
    ("[jobs.a]\ncmd = [\"true\"]\nneeds = [\"b\"]\n[jobs.b]\ncmd = [\"true\"]\nneeds = [\"a\"]\n",
     "jobs.a.needs", "dependency cycle"),
    ("[jobs.a]\ncmd = [\"true\"]\nkind = \"magic\"\n", "jobs.a.kind", "unknown kind 'magic'"),
    ("[jobs.a]\ncmd = [\"echo\", \"{nope}\"]\n", "jobs.a.steps[0].cmd", "unknown placeholder {nope}"),
    ("[jobs.a]\ncmd = [\"true\"]\ntimeout = \"10\"\n", "jobs.a.timeout", "expected an integer or a number"),
    ("[jobs.a]\ncmd = [\"true\"]\nports = [80, 70000]\n", "jobs.a.ports[1]", "1-65535"),
    ("[jobs.a]\ncmd = [\"true\"]\npython = \"3.13\"\n", "jobs.a.python", "needs a [python] section"),
    ("[jobs.a]\ncmd = [\"true\"]\nports = [9000]\n[jobs.b]\ncmd = [\"true\"]\nports = [9000]\n",
     "jobs.b.ports", "port 9000 is also used by 'a'"),
    ("[pipeline]\ntimeout = 0\n[jobs.a]\ncmd = [\"true\"]\n", "pipeline.timeout", "positive"),
    ("[jobs]\n", "jobs", "no jobs defined"),
    ("[jobs.a]\ncmd = [\"true\"]\n[[jobs.a.servers]]\ncmd = [\"srv\"]\nready = \"localhost:80\"\n",
     "jobs.a.servers[0].ready", "http:// URL or tcp:PORT"),
    ("[jobs.a]\ncmd = [\"true\"]\n[jobs.install-js-deps]\ncmd = [\"true\"]\n", "jobs.install-js-deps", "reserved"),
])
def test_invalid_files_name_file_key_and_expectation(tmp_path: Path, text: str, key: str, words: str) -> None:
    err = error_of(tmp_path, text)
    assert err.key == key, str(err)
    assert words in str(err)
    assert str(tmp_path / "warmci.toml") in str(err)


def test_python_version_must_be_configured(tmp_path: Path) -> None:
    err = error_of(tmp_path, MINIMAL.replace('python = "3.13"', 'python = "3.12"'))
    assert err.key == "jobs.lint.python" and "'3.12' is not one of python.versions" in str(err)


def test_not_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    err = error_of(tmp_path, "[jobs.a\ncmd = 1")
    assert "not valid TOML" in str(err)
    with pytest.raises(PipelineError, match="pipeline file not found"):
        load_pipeline(tmp_path / "absent.toml")


def test_pytest_kind_builds_its_commands(tmp_path: Path) -> None:
    pipe = load_text(tmp_path, MINIMAL + """
[jobs.t]
kind = "pytest"
python = "3.11"
args = ["-q"]
xdist = "auto"
timing_marker = "slow_timing"
ignore = ["tests/a.py"]
deselect = ["tests/b.py::test_x"]
""")
    bulk, marker = pipe.jobs["t"].steps
    assert bulk.cmd[:3] == ("python", "-m", "pytest")
    assert "--ignore=tests/a.py" in bulk.cmd and "tests/b.py::test_x" in bulk.cmd
    assert bulk.cmd[-4:] == ("-n", "auto", "-m", "not slow_timing")
    assert marker.cmd[-2:] == ("-m", "slow_timing") and "-n" not in marker.cmd
    assert marker.ok_exit == (0, 5) and bulk.ok_exit == (0,)


def test_pytest_mark_restricts_both_runs_and_minus_m_in_args_is_refused(tmp_path: Path) -> None:
    pipe = load_text(tmp_path, MINIMAL + """
[jobs.t]
kind = "pytest"
python = "3.11"
mark = "not slow"
timing_marker = "timing_dependent"
""")
    bulk, timing = pipe.jobs["t"].steps
    assert bulk.cmd[-2:] == ("-m", "(not slow) and not timing_dependent")
    assert timing.cmd[-2:] == ("-m", "(not slow) and timing_dependent") and timing.ok_exit == (0, 5)
    err = error_of(tmp_path, MINIMAL + '[jobs.t]\nkind = "pytest"\npython = "3.11"\nargs = ["-m", "not slow"]\n')
    assert err.key == "jobs.t.args" and "mark" in str(err)


def test_after_sync_commands_target_the_venv_not_the_base_interpreter(tmp_path: Path) -> None:
    pipe = load_text(tmp_path, MINIMAL.replace(
        'versions = ["3.11", "3.13"]', 'versions = ["3.11", "3.13"]\nafter_sync = [["uv", "pip", "install", "x"]]'))
    sync, after = pipe.jobs["install-python-deps-3.11"].steps
    assert sync.env == () and dict(after.env) == {"UV_PYTHON": "{venv}/bin/python"}


def test_runner_placeholder_and_escaped_braces(tmp_path: Path) -> None:
    pipe = load_text(tmp_path, '[jobs.a]\ncmd = ["python", "{runner}/x.py", "--out={{out}}"]\n')
    assert pipe.jobs["a"].steps[0].cmd == ("python", "{runner}/x.py", "--out={{out}}")
    err = error_of(tmp_path, '[jobs.a]\ncmd = ["cp", "x", "{out}"]\n')
    assert err.key == "jobs.a.steps[0].cmd" and "only defined for kind = \"wheel\"" in str(err)


def test_pytest_timing_tests_leave_the_bulk_and_run_alone(tmp_path: Path) -> None:
    pipe = load_text(tmp_path, MINIMAL + """
[jobs.t]
kind = "pytest"
python = "3.11"
args = ["tests"]
xdist = 2
mark = "not slow"
timing_tests = ["tests/perf_test.py", "tests/a_test.py::test_fast"]
""")
    bulk, timed = pipe.jobs["t"].steps
    assert ["--deselect", "tests/perf_test.py"] == list(bulk.cmd[bulk.cmd.index("tests/perf_test.py") - 1:][:2])
    assert "tests/a_test.py::test_fast" in bulk.cmd and "-n" in bulk.cmd
    assert timed.name == "timing_tests" and timed.ok_exit == (0,) and "-n" not in timed.cmd
    assert timed.cmd[6:8] == ("tests/perf_test.py", "tests/a_test.py::test_fast") and "tests" not in timed.cmd
    assert timed.cmd[-2:] == ("-m", "not slow")


def test_a_worker_gets_the_validated_job_itself(tmp_path: Path) -> None:
    """The task's action carries the Job and the context, and both survive pickling (forkserver, spawn)."""
    import pickle

    from tasks import graph
    from warmci import context
    from warmci.execute.jobrun import run_job

    pipe = load_pipeline(DEMO / "warmci.toml")
    ctx = context.Context(str(DEMO), str(DEMO / "warmci.toml"), str(tmp_path / "state"), "t")
    for task in graph.tasks(ctx, pipe):
        ((action, (job, job_ctx)),) = task["actions"]
        assert action is run_job and job is pipe.jobs[task["basename"]] and job_ctx == ctx
        again = pickle.loads(pickle.dumps((job, job_ctx)))
        assert again == (job, job_ctx)
