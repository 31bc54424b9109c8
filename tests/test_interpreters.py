"""A Python version missing on this machine: skipped with the reason if optional, an error if not."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from warmci.inputs import interpreters

from .helpers import make_repo, run_doit

PIPELINE = """
[python]
versions = ["{have}", "3.99"]
{optional}
sync = ["uv", "sync", "--locked", "--offline"]

[jobs.check]
matrix = {{ python = ["{have}", "3.99"] }}
python = "{{python}}"
cmd = ["python", "-c", "import sys; print(sys.version)"]
inputs = ["src/**"]
"""

HAVE = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "target"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\nrequires-python = ">=3.11"\n'
                                         "dependencies = []\n[tool.uv]\npackage = false\n")
    (root / "src").mkdir()
    (root / "src" / "m.py").write_text("X = 1\n")
    subprocess.run(["uv", "lock", "--offline", "--quiet"], cwd=root, check=True)
    return root


def test_finds_installed_versions_without_running_them() -> None:
    found = interpreters.find(HAVE)
    assert found and Path(found).name.startswith("python")
    assert interpreters.find("3.99") is None


def test_missing_optional_version_is_a_reported_skip(project: Path, tmp_path: Path) -> None:
    (project / "warmci.toml").write_text(PIPELINE.format(have=HAVE, optional='optional = ["3.99"]'))
    make_repo(project)
    run = run_doit(project, tmp_path / "state")
    assert run.rc == 0, run
    assert run.status(f"check-{HAVE}") == "passed"
    assert run.status("check-3.99") == "skipped" and run.status("install-python-deps-3.99") == "skipped", run
    reason = run.results["jobs"]["check-3.99"]["reason"] if run.results else ""
    assert "Python 3.99 is not installed" in reason and "optional" in reason
    assert "SKIP  check-3.99" in run.out
    again = run_doit(project, tmp_path / "state")
    assert again.status("check-3.99") == "skipped", again  # checked again every run, never "up to date"
    assert again.results
    reasons = again.results["jobs"]["check-3.99"]["why"]
    assert {"kind": "python", "name": "python3.99", "text": "Python 3.99 is not installed: checked again every run"} \
        in reasons, reasons
    assert again.status(f"check-{HAVE}") == "up-to-date"


def test_missing_required_version_is_errored(project: Path, tmp_path: Path) -> None:
    (project / "warmci.toml").write_text(PIPELINE.format(have=HAVE, optional=""))
    make_repo(project)
    run = run_doit(project, tmp_path / "state")
    assert run.rc != 0
    assert run.status("install-python-deps-3.99") == "errored", run
    assert run.status("check-3.99") == "not-run"
    reason = run.results["jobs"]["install-python-deps-3.99"]["reason"] if run.results else ""
    assert "Python 3.99 is not installed" in reason and "[python].optional" in reason
