"""job_scripts/buckaroo_build.py: full_build.sh's steps minus the core rebuild, or full_build.sh itself.

buckaroo's code is not part of this repository: the tree here is a fake with
a full_build.sh of its own, and `pnpm`/`uv` are stand-ins that log their argv.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from .helpers import job_script

bb = job_script("buckaroo_build")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "buckaroo"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "full_build.sh").write_text("#!/bin/bash\necho full-build >> calls.log\n")
    dist = root / "packages" / "buckaroo-js-core" / "dist"
    dist.mkdir(parents=True)
    (dist / "index.esm.js").write_text("export {}\n")
    (dist / "style.css").write_text(".core {}\n")
    (root / "buckaroo" / "static").mkdir(parents=True)
    (root / "buckaroo" / "static" / "widget.js").write_text("stale\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pnpm", "uv"):
        exe = bin_dir / tool
        exe.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{root}/calls.log"\n')
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return root


def test_a_known_full_build_runs_its_steps_without_the_core_build(tree: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bb.KNOWN, bb.sha256(str(tree / "scripts" / "full_build.sh")), "test")
    phases = tree.parent / "phases.jsonl"
    monkeypatch.setenv("WARMCI_PHASES", str(phases))
    assert bb.main(str(tree)) == 0
    assert (tree / "calls.log").read_text().splitlines() == [
        "pnpm install", "pnpm --filter buckaroo-widget run build", "pnpm --filter buckaroo-widget run build:standalone",
        "pnpm --filter buckaroo-widget run build:static", "uv build --wheel"]
    assert (tree / "buckaroo" / "static" / "compiled.css").read_text() == ".core {}\n"
    assert not (tree / "buckaroo" / "static" / "widget.js").exists()  # the stale bundle went first
    assert len(phases.read_text().splitlines()) == len(bb.STEPS)


def test_an_unknown_full_build_runs_unmodified(tree: Path) -> None:
    assert "is not a version whose steps this script knows" in bb.why_not(str(tree))
    assert bb.main(str(tree)) == 0
    assert (tree / "calls.log").read_text() == "full-build\n"


def test_without_build_js_output_it_runs_full_build(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bb.KNOWN, bb.sha256(str(tree / "scripts" / "full_build.sh")), "test")
    (tree / "packages" / "buckaroo-js-core" / "dist" / "style.css").unlink()
    assert "style.css is missing" in bb.why_not(str(tree))
    assert bb.main(str(tree)) == 0
    assert (tree / "calls.log").read_text() == "full-build\n"


def test_a_failing_step_stops_the_build(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bb.KNOWN, bb.sha256(str(tree / "scripts" / "full_build.sh")), "test")
    pnpm = Path(os.environ["PATH"].split(os.pathsep)[0]) / "pnpm"
    pnpm.write_text("#!/bin/sh\nexit 7\n")
    assert bb.main(str(tree)) == 7
    assert not (tree / "calls.log").exists()
