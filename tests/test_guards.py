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


def test_the_engine_never_imports_tasks_nor_names_a_job_kind() -> None:
    """warmci/ depends downward only: tasks/ (the job kinds) is passed in by dodo.py, never imported."""
    import ast

    from tasks import registry

    offenders = []
    for path in sorted((RUNNER / "warmci").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(RUNNER)}:{node.lineno} imports {n}" for n in names
                          if n == "tasks" or n.startswith("tasks.")]
            # A kind's name as a string constant is a branch on a kind (the `wheel` table is no kind).
            if isinstance(node, ast.Constant) and node.value in set(registry.KINDS) - {"wheel"}:
                offenders.append(f"{path.relative_to(RUNNER)}:{node.lineno} names the kind {node.value!r}")
    assert offenders == []


def test_the_service_never_imports_the_runners_code() -> None:
    """ci_runner runs from ci-runner/ (the container's entrypoint puts only that on sys.path): it asks doit,
    and runs warmci's code in a subprocess, but imports neither warmci nor tasks."""
    import ast

    offenders = []
    for path in sorted((RUNNER / "ci-runner" / "ci_runner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(RUNNER)}:{node.lineno} imports {n}" for n in names
                          if n.split(".")[0] in ("warmci", "tasks", "testing", "bench")]
    assert offenders == []
