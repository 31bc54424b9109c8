"""The guards that keep the code as it is: ruff on the whole repository, mypy (strict) on the engine."""
from __future__ import annotations

import subprocess
import sys

import pytest

from .helpers import RUNNER


@pytest.mark.parametrize("tool", [["ruff", "check", "."], ["mypy"]], ids=["ruff", "mypy"])
def test_tool_finds_nothing(tool: list[str]) -> None:
    """ruff with the rules of pyproject.toml; mypy on the files and strictness pyproject.toml names."""
    p = subprocess.run([sys.executable, "-m", *tool], cwd=RUNNER, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"`{' '.join(tool)}` exited {p.returncode}:\n{p.stdout}{p.stderr}"
