"""A small real target shared by the skip-contract and results tests.

Three jobs: ja copies a/x.txt to gen/a.out, jb fails when b/y.txt says so
(and is keyed on FOO), jc reads ja's output with the fake tool `faketool`
whose version a test can change. The fixtures reach tests through conftest.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from .helpers import make_repo

PIPELINE = """
[pipeline]
keyed_env = ["PIPELINE_WIDE"]

[jobs.ja]
doc = "copy a/x.txt to gen/a.out"
cmd = ["{py}", "-c", "import shutil, os; os.makedirs('gen', exist_ok=True); shutil.copy('a/x.txt', 'gen/a.out')"]
inputs = ["a/**"]
outputs = ["gen/a.out"]

[jobs.jb]
doc = "fail if b/y.txt says fail"
cmd = ["{py}", "-c", "import sys; sys.exit('fail' in open('b/y.txt').read())"]
inputs = ["b/**"]
keyed_env = ["FOO"]

[jobs.jc]
doc = "read ja's output"
needs = ["ja"]
cmd = ["{py}", "-c", "print(open('gen/a.out').read())"]
tools = ["faketool"]
""".replace("{py}", sys.executable)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "target", {
        "a/x.txt": "one\n", "b/y.txt": "ok\n", "warmci.toml": PIPELINE, ".gitignore": "gen/\n"})
    return repo


@pytest.fixture
def tool_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    set_tool_version(bin_dir, "1.0")
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FOO": "x", "PIPELINE_WIDE": "p"}


def set_tool_version(bin_dir: Path, version: str) -> None:
    tool = bin_dir / "faketool"
    tool.write_text(f"#!/bin/sh\necho faketool {version}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
