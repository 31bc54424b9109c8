"""The real demo pipeline on a temporary git copy: cold run, no-op, and what each change reruns.

One cold run is shared by the module; every scenario restores the tree and
proves the pipeline is warm again before the next one starts.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import DEMO, RUNNER, Run, free_port, make_repo, run_doit

pytestmark = pytest.mark.slow

ALL = {
    "install-python-deps-3.11", "install-python-deps-3.12", "install-python-deps-3.13", "install-js-deps",
    "lint-python", "build-js", "test-js", "build-wheel", "test-python-3.11", "test-python-3.12",
    "test-python-3.13", "smoke-test", "playwright-app",
}
DOWNSTREAM_OF_WHEEL = {"build-wheel", "smoke-test", "playwright-app"}
PYTEST_JOBS = {"test-python-3.11", "test-python-3.12", "test-python-3.13"}


@dataclass
class Demo:
    target: Path
    state: Path
    cold: Run

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return run_doit(self.target, self.state, *args, env=env)

    def assert_warm(self) -> None:
        run = self.run()
        assert run.rc == 0 and run.executed == set(), run

    def change(self, rel: str, text: str) -> str:
        path = self.target / rel
        old = path.read_text()
        path.write_text(text)
        return old


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("demo")
    target = make_repo(base / "demo", copy_from=DEMO)
    # A port of our own, so a developer's running demo cannot collide with the test.
    toml = target / "warmci.toml"
    toml.write_text(toml.read_text().replace("8765", str(free_port())))
    subprocess.run(["git", "-C", str(target), "commit", "-qam", "test port"], check=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})
    state = base / "state"
    cold = run_doit(target, state)
    yield Demo(target, state, cold)


def test_cold_run_passes_every_job(demo: Demo) -> None:
    assert demo.cold.rc == 0, demo.cold
    assert demo.cold.jobs("passed") == ALL
    assert demo.cold.results and demo.cold.results["status"] == "passed"


def test_cold_run_results_explain_themselves(demo: Demo, tmp_path: Path) -> None:
    r = demo.cold.results
    assert r is not None
    assert all(j["why"][0]["kind"] == "first-run" for j in r["jobs"].values())
    versions = (demo.state / "runs" / r["run_id"] / "versions.txt").read_text()
    for tool in ("python3.11", "python3.12", "python3.13", "node", "pnpm", "uv", "ruff", "chromium"):
        assert re.search(rf"^{re.escape(tool)} +\S", versions, re.M), (tool, versions)
    assert "[venv py3.13]" in versions and "pytest==" in versions
    assert len(r["resources"]["samples"]) >= 4
    cp = r["critical_path"]
    assert "playwright-app" in [e["job"] for e in cp["jobs"]]  # the longest job, at the end of the longest chain
    assert cp["duration"] + cp["wait"] == pytest.approx(r["duration"], abs=0.01)
    # The chart of this real run.
    png = tmp_path / "demo-gantt.png"
    p = subprocess.run([sys.executable, "-m", "warmci", "gantt", str(demo.state / "runs" / r["run_id"]),
                        "-o", str(png)], cwd=RUNNER, capture_output=True, text=True)
    assert p.returncode == 0 and png.read_bytes()[:4] == b"\x89PNG", p.stderr


def test_warm_rerun_executes_nothing_and_says_up_to_date(demo: Demo) -> None:
    run = demo.run()
    assert run.rc == 0 and run.executed == set() and run.uptodate == ALL, run
    assert all(f"{job}  (up to date)" in run.out for job in ALL)
    assert run.results and {j["reason"] for j in run.results["jobs"].values()} == {"up to date"}


def test_python_source_change_reruns_python_jobs_not_js(demo: Demo) -> None:
    old = demo.change("src/demo_app/table.py", demo.target.joinpath("src/demo_app/table.py").read_text()
                      + "\n\nCHANGED_BY_TEST = True\n")
    run = demo.run()
    assert run.rc == 0, run
    assert run.executed == {"lint-python", *PYTEST_JOBS, *DOWNSTREAM_OF_WHEEL}, run
    assert run.results
    for job in ("lint-python", *PYTEST_JOBS, "build-wheel"):
        assert [(w["kind"], w["name"]) for w in run.results["jobs"][job]["why"]] == [
            ("file", "src/demo_app/table.py")], job
    assert {(w["kind"], w.get("job")) for w in run.results["jobs"]["smoke-test"]["why"]} == {
        ("upstream", "build-wheel")}
    # Back to what passed before: every one of them is restored from the result store, none reruns.
    demo.change("src/demo_app/table.py", old)
    back = demo.run()
    assert back.rc == 0 and back.executed == set(), back
    assert back.jobs("restored") == {"lint-python", *PYTEST_JOBS, *DOWNSTREAM_OF_WHEEL}, back
    demo.assert_warm()


def test_js_source_change_reruns_js_build_and_everything_downstream_of_the_wheel(demo: Demo) -> None:
    rel = "packages/app/src/main.js"
    # A change that reaches the bundle (an unused export would be tree-shaken away).
    old = demo.change(rel, (demo.target / rel).read_text().replace("failed to load rows", "could not load rows"))
    assert old != (demo.target / rel).read_text()
    run = demo.run()
    assert run.rc == 0, run
    assert run.executed == {"build-js", "test-js", *DOWNSTREAM_OF_WHEEL}, run
    demo.change(rel, old)
    back = demo.run()
    assert back.executed == set() and back.jobs("restored") == {"build-js", "test-js", *DOWNSTREAM_OF_WHEEL}, back
    demo.assert_warm()


def test_identical_rebuilt_wheel_does_not_rerun_the_suites(demo: Demo) -> None:
    forget = subprocess.run([sys.executable, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "forget", "build-wheel",
                             f"target={demo.target}", f"state={demo.state}"], capture_output=True, text=True)
    assert forget.returncode == 0, forget.stderr
    run = demo.run(env={"WARMCI_STORE": "off"})  # with the store, its recorded wheel would be restored
    assert run.executed == {"build-wheel"}, run
    assert {"smoke-test", "playwright-app"} <= run.uptodate


def test_js_lockfile_change_reinstalls_js_only(demo: Demo) -> None:
    rel = "packages/pnpm-lock.yaml"
    modules = demo.target / "packages" / "node_modules"
    at_a = modules.stat().st_ino
    old = demo.change(rel, (demo.target / rel).read_text() + "\n# changed by test\n")
    run = demo.run()
    assert run.rc == 0, run
    # build-js reruns and writes an identical bundle, so the wheel and smoke test stay up to date.
    assert run.executed == {"install-js-deps", "build-js", "test-js", "playwright-app"}, run
    assert run.results
    for job in ("install-js-deps", "build-js", "test-js", "playwright-app"):
        assert ("lockfile", rel) in {(w["kind"], w["name"]) for w in run.results["jobs"][job]["why"]}, job
    at_b = modules.stat().st_ino
    assert at_b != at_a  # A's install was moved aside, kept, and B's made anew
    # Back to A's lockfile: A's node_modules are moved back, not installed; B's are kept in turn.
    demo.change(rel, old)
    back = demo.run()
    assert back.rc == 0 and back.executed == set(), back
    assert back.jobs("restored") == {"install-js-deps", "build-js", "test-js", "playwright-app"}, back
    assert modules.stat().st_ino == at_a
    demo.change(rel, (demo.target / rel).read_text() + "\n# changed by test\n")
    again = demo.run()
    assert again.executed == set() and modules.stat().st_ino == at_b, again
    demo.change(rel, old)
    assert demo.run().executed == set()
    demo.assert_warm()


def test_deleted_venv_is_reinstalled(demo: Demo) -> None:
    venv = demo.state / "venvs" / "py3.12"
    kept = venv.resolve()  # the venv is one of the environments kept per key (STATE/envs)
    assert venv.is_symlink() and kept.parent == demo.state / "envs" / "py3.12"
    venv.unlink()
    run = demo.run()
    assert run.rc == 0 and run.executed == set() and run.jobs("restored") == {"install-python-deps-3.12"}, run
    assert venv.resolve() == kept
    shutil.rmtree(kept)
    run = demo.run()
    assert run.rc == 0 and run.executed == {"install-python-deps-3.12"}, run
    assert run.results and "environment is not kept here" in " ".join(
        run.results["jobs"]["install-python-deps-3.12"]["store"]["notes"])
    demo.assert_warm()


def test_broken_venv_is_reinstalled(demo: Demo) -> None:
    (demo.state / "venvs" / "py3.11" / "bin" / "python").unlink()
    run = demo.run()
    assert run.rc == 0 and run.executed == {"install-python-deps-3.11"}, run


def test_failing_test_fails_its_jobs_and_reruns_next_time(demo: Demo) -> None:
    rel = "tests/test_table.py"
    old = demo.change(rel, (demo.target / rel).read_text() + "\n\ndef test_broken_by_test():\n    assert 1 == 2\n")
    run = demo.run()
    assert run.rc == 1, run
    assert run.jobs("failed") == PYTEST_JOBS, run
    assert run.results and run.results["status"] == "failed"
    log = Path(run.results["jobs"]["test-python-3.13"]["log"]).read_text()
    assert "test_broken_by_test" in log and "1 failed" in log
    assert run.executed == PYTEST_JOBS | {"lint-python"}  # lint reads tests too; nothing else does
    again = demo.run()
    assert again.jobs("failed") == PYTEST_JOBS, again
    demo.change(rel, old)
    back = demo.run()
    assert back.executed == set() and back.jobs("restored") == PYTEST_JOBS | {"lint-python"}, back
    demo.assert_warm()


def test_switching_python_lockfiles_keeps_each_venv(demo: Demo) -> None:
    """A→B→A→B where B's pyproject.toml differs: each venv is kept per key, and a return only relinks it."""
    links = {v: demo.state / "venvs" / f"py{v}" for v in ("3.11", "3.12", "3.13")}
    at_a = {v: link.resolve() for v, link in links.items()}
    old = demo.change("pyproject.toml", (demo.target / "pyproject.toml").read_text() + "\n# branch b\n")
    b = demo.run()
    assert b.rc == 0 and {f"install-python-deps-{v}" for v in links} <= b.executed, b
    at_b = {v: link.resolve() for v, link in links.items()}
    assert all(at_b[v] != at_a[v] and at_a[v].is_dir() for v in links)
    for text, envs in ((old, at_a), (old + "\n# branch b\n", at_b), (old, at_a)):
        demo.change("pyproject.toml", text)
        back = demo.run()
        assert back.rc == 0 and back.executed == set(), back
        assert {f"install-python-deps-{v}" for v in links} <= back.jobs("restored"), back
        assert {v: link.resolve() for v, link in links.items()} == envs
    demo.assert_warm()


def test_info_names_the_changed_input(demo: Demo) -> None:
    rel = "tests/test_cli.py"
    old = demo.change(rel, (demo.target / rel).read_text() + "\n# touched\n")
    info = subprocess.run([sys.executable, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "info", "test-python-3.13",
                           f"target={demo.target}", f"state={demo.state}"], capture_output=True, text=True)
    demo.change(rel, old)
    assert info.returncode == 1, info.stderr  # doit info: 1 means "would run"
    assert "status     : run" in info.stdout
    changed = info.stdout.split("file dependencies have changed:")[1].split("file_dep")[0]
    assert changed.split() == ["-", str(demo.target / rel)], info.stdout


def test_one_job_runs_with_only_its_dependencies(demo: Demo, tmp_path: Path) -> None:
    run = run_doit(demo.target, tmp_path / "fresh-state", "test-python-3.13")
    assert run.rc == 0, run
    assert run.executed == {"install-python-deps-3.13", "test-python-3.13"}, run
