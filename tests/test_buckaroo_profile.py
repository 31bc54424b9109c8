"""The shipped buckaroo profile: it loads, validates and builds the expected task graph.

CI cannot fetch buckaroo, so the graph is built against a fake target: a tree
holding one file for each input pattern of the profile, nothing else.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks import graph
from warmci import context
from warmci.pipeline.checks import ancestors_of
from warmci.pipeline.model import Pipeline

from .helpers import RUNNER, load_pipeline, run_doit

PROFILE = RUNNER / "profiles" / "buckaroo.toml"
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
JOBS = {
    "static-stubs", "pyodide-cdn", "lint-python", "build-js", "test-js", "build-wheel", "test-mcp-wheel",
    "smoke-test-extras",
    "playwright-storybook", "playwright-server", "playwright-marimo", "playwright-wasm-marimo",
    "playwright-jupyter", *(f"test-python-{v}" for v in PYTHONS),
}
INSTALLS = {"install-js-deps", *(f"install-python-deps-{v}" for v in PYTHONS)}
PORTS = {
    "playwright-storybook": (6006,), "playwright-server": (8701,), "playwright-marimo": (2718,),
    "playwright-wasm-marimo": (8765,), "playwright-jupyter": tuple(range(8889, 8898)),
    "test-mcp-wheel": (8700,),
}
WHEEL_USERS = {"test-mcp-wheel", "smoke-test-extras", "playwright-server", "playwright-marimo", "playwright-jupyter"}


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return load_pipeline(PROFILE)


def fake_file(pattern: str) -> str:
    """A path that `pattern` matches: every wildcard becomes a plain name."""
    return re.sub(r"\*+", "x", pattern.replace("**/", "")).strip("/") or "x"


@pytest.fixture(scope="module")
def fake_target(pipe: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake-buckaroo") / "buckaroo"
    patterns = {p for j in pipe.jobs.values() for p in j.inputs}
    patterns |= set(pipe.python.lockfiles if pipe.python else ()) | set(pipe.js.lockfiles if pipe.js else ())
    for pattern in patterns:
        path = root / fake_file(pattern)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"matches {pattern}\n")
    return root


def test_profile_has_every_buckaroo_job_with_a_doc(pipe: Pipeline) -> None:
    assert set(pipe.jobs) == JOBS | INSTALLS
    for name in JOBS:
        assert pipe.jobs[name].doc.strip(), name


def test_needs(pipe: Pipeline) -> None:
    needs = {name: set(job.needs) for name, job in pipe.jobs.items()}
    assert needs["build-js"] == {"install-js-deps"}
    assert needs["build-wheel"] == {"install-js-deps", "build-js"}
    assert needs["test-js"] == {"install-js-deps"}
    assert needs["lint-python"] == {"install-python-deps-3.13"}
    for v in PYTHONS:
        assert needs[f"test-python-{v}"] == {f"install-python-deps-{v}", "static-stubs"}
    # What imports buckaroo from the checkout (or lets tests/unit/__init__.py write there) has its stubs first.
    assert "static-stubs" in needs["test-mcp-wheel"]
    # The jobs that need the real JS bundle install the wheel; none reads the checkout's stubs.
    for name in WHEEL_USERS:
        assert "build-wheel" in needs[name] and pipe.jobs[name].wheel is not None, name
    assert needs["playwright-storybook"] == {"install-js-deps"}  # the dev server builds from src/
    assert needs["playwright-wasm-marimo"] == {"install-python-deps-3.13", "install-js-deps", "pyodide-cdn"}
    assert needs["pyodide-cdn"] == set()


def test_ports_and_no_collision_between_jobs_that_can_run_together(pipe: Pipeline) -> None:
    assert {n: j.ports for n, j in pipe.jobs.items() if j.ports} == PORTS
    ancestors = {n: ancestors_of(pipe.jobs, n) for n in pipe.jobs}
    for a in pipe.jobs.values():
        for b in pipe.jobs.values():
            concurrent = a.name != b.name and a.name not in ancestors[b.name] and b.name not in ancestors[a.name]
            if concurrent:
                assert not set(a.ports) & set(b.ports), (a.name, b.name)


def test_python_versions_and_the_missing_one(pipe: Pipeline) -> None:
    assert pipe.python is not None
    assert set(pipe.python.versions) == set(PYTHONS) and pipe.python.optional == ("3.14",)
    assert pipe.python.sync == ("uv", "sync", "--locked", "--dev", "--all-extras")
    # pytest-xdist is not in buckaroo's lock: pinned, and installed into the venv, not the base interpreter.
    (after,) = [s for s in pipe.jobs["install-python-deps-3.13"].steps if s.name == "after_sync"]
    assert "pytest-xdist==3.8.0" in after.cmd and dict(after.env)["UV_PYTHON"] == "{venv}/bin/python"


def test_pytest_jobs_match_the_container_ci(pipe: Pipeline) -> None:
    for v in PYTHONS:
        bulk, timing, timed = pipe.jobs[f"test-python-{v}"].steps
        assert timed.name == "timing_tests" and timed.ok_exit == (0,) and "-n" not in timed.cmd
        assert "tests/unit/perf_regression_test.py" in timed.cmd
        assert bulk.cmd[bulk.cmd.index("tests/unit/perf_regression_test.py") - 1] == "--deselect"
        assert bulk.cmd[-4:] == ("-n", "2", "-m", "(not slow) and not timing_dependent")
        assert timing.cmd[-2:] == ("-m", "(not slow) and timing_dependent") and "-n" not in timing.cmd
        assert bulk.ok_exit == (0,) and timing.ok_exit == (0, 5)  # exit 5 only for the marker run
        for cmd in (bulk.cmd, timing.cmd):
            assert "--ignore=tests/unit/file_cache/mp_timeout_decorator_test.py" in cmd
            assert "--ignore=tests/unit/file_cache/multiprocessing_executor_test.py" in cmd
            assert "--ignore=tests/unit/server/test_mcp_server_integration.py" in cmd
            assert ("tests/unit/server/test_mcp_tool_cleanup.py::TestServerMonitor::"
                    "test_server_killed_on_parent_death") in cmd
        assert "buckaroo/static/**" in pipe.jobs[f"test-python-{v}"].exclude


def test_jobs_that_write_into_the_tree_get_their_own(pipe: Pipeline) -> None:
    isolated = {n for n, j in pipe.jobs.items() if j.isolate == "worktree"}
    assert isolated == {"build-wheel", "playwright-wasm-marimo"}
    seed, build, _ = pipe.jobs["build-wheel"].steps
    assert "{source}/packages/buckaroo-js-core/dist" in seed.cmd
    assert build.cmd == ("python3", "{runner}/job_scripts/buckaroo_build.py")


def test_playwright_jobs_use_linked_browsers_and_own_output_dirs(pipe: Pipeline) -> None:
    playwright = {n for n, j in pipe.jobs.items() if j.kind == "playwright"}
    assert playwright == set(PORTS) - {"test-mcp-wheel"}
    for name in playwright:
        job = pipe.jobs[name]
        names = [s.name for s in job.steps]
        assert "browsers" in names, name
        runner = job.steps[-1]
        assert dict(runner.env)["PLAYWRIGHT_BROWSERS_PATH"] == "{work}/ms-playwright", name
        assert dict(job.env)["CI"] == "true", name
        assert any("{work}" in a or "{{out}}" in a for a in runner.cmd), name  # never the shared test-results/
    # Where the CDN is out of reach, a job of its own fails saying so and the WASM suite does not run.
    (check,) = pipe.jobs["pyodide-cdn"].steps
    assert "https://cdn.jsdelivr.net/pyodide/" in check.cmd and check.cmd[1] == "{runner}/job_scripts/reachable.py"


def test_smoke_covers_every_extra(pipe: Pipeline) -> None:
    names = [s.name for s in pipe.jobs["smoke-test-extras"].steps]
    for extra in ("base", "polars", "mcp", "marimo", "jupyterlab", "notebook"):
        assert any(n == extra or n == f"{extra}: smoke" for n in names), extra
    for step in pipe.jobs["smoke-test-extras"].steps:
        if "venv" in step.cmd:
            assert "--clear" in step.cmd, step  # its work dir, and the venvs in it, outlive a run
        if "install" in step.cmd:
            assert step.cmd[-2:] == ("-c", "{work}/lock.txt"), step  # the lockfile constrains every install


def test_task_graph_on_a_fake_checkout(pipe: Pipeline, fake_target: Path, tmp_path: Path) -> None:
    ctx = context.Context(str(fake_target), str(PROFILE), str(tmp_path / "state"), "t")
    tasks = {t["basename"]: t for t in graph.tasks(ctx, pipe)}
    assert set(tasks) == JOBS | INSTALLS
    for name, task in tasks.items():
        assert set(task["task_dep"]) == set(pipe.jobs[name].needs), name
        assert task["meta"]["warmci"]["ports"] == list(pipe.jobs[name].ports), name
    manifest, key = ctx.manifest_file("build-wheel"), ctx.key_file("build-wheel")
    assert manifest in tasks["build-wheel"]["targets"] and key in tasks["build-wheel"]["targets"]
    for name in WHEEL_USERS:  # the wheel's normalized content, not its bytes (a new commit's version)
        assert key in tasks[name]["file_dep"] and manifest not in tasks[name]["file_dep"], name
    stub = str(fake_target / "buckaroo/static/widget.js")
    assert stub in tasks["static-stubs"]["targets"] and stub in tasks["test-python-3.12"]["file_dep"]
    assert stub not in tasks["build-wheel"]["file_dep"]  # the wheel gets the real bundle, never a stub
    dist = str(fake_target / "packages/buckaroo-js-core/dist/index.esm.js")
    assert dist in tasks["build-js"]["targets"] and dist in tasks["build-wheel"]["file_dep"]
    py_file = str(fake_target / fake_file("buckaroo/**"))
    assert py_file in tasks["test-python-3.11"]["file_dep"] and py_file in tasks["build-wheel"]["file_dep"]
    assert py_file not in tasks["test-js"]["file_dep"]
    js_file = str(fake_target / fake_file("packages/buckaroo-js-core/src/**"))
    assert js_file in tasks["build-js"]["file_dep"] and js_file not in tasks["test-python-3.13"]["file_dep"]


def test_doit_list_on_a_fake_checkout(fake_target: Path, tmp_path: Path) -> None:
    run = run_doit(fake_target, tmp_path / "state", "list", pipeline=PROFILE)
    assert run.rc == 0, run
    listed = dict(line.split(None, 1) for line in run.out.splitlines() if line.strip())
    assert set(listed) == JOBS | INSTALLS
    assert "8889-8897" in listed["playwright-jupyter"] and "full_build.sh" in listed["build-wheel"]
