"""Targets to measure: a git copy of a real target, or a synthetic one of N files.

A run never touches the original: the target is copied (its tracked and
untracked-but-not-ignored files, as a fresh checkout has them) into a new git
repository, and its ports are moved to free ones so a developer's running
demo cannot collide with the benchmark.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

RUNNER = Path(__file__).resolve().parent.parent
DEMO = RUNNER / "examples" / "demo"
# Never copied when the source is not a git checkout (what the test helpers skip too).
GENERATED = ("node_modules", "__pycache__", ".venv", "dist", "test-results", ".pytest_cache",
             ".ruff_cache", ".git")
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def shown(path: Path | str) -> str:
    """A path as results files record it: relative to the runner, or under ~, never this machine's layout."""
    p = Path(path)
    for base, label in ((RUNNER, ""), (Path.home(), "~/")):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return f"{label}{rel}" if label or str(rel) != "." else "."
    return p.name


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                         env={**os.environ, **GIT_ENV})
    return out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tracked(src: Path) -> list[str] | None:
    """Files a fresh checkout of src would have (None: src is not in a git work tree)."""
    try:
        out = subprocess.run(["git", "-C", str(src), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [p for p in out.stdout.decode().split("\0") if p]


def copy_target(src: Path, dest: Path) -> Path:
    """A new one-commit git repository holding what a checkout of src holds."""
    files = _tracked(src)
    if files is None:
        shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(*GENERATED))
    else:
        dest.mkdir(parents=True)
        for rel in files:
            s = src / rel
            if not (s.is_file() or s.is_symlink()):
                continue  # a submodule or a file deleted but still in the index
            d = dest / rel
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d, follow_symlinks=False)
    commit_all(dest, init=True)
    return dest


def commit_all(repo: Path, message: str = "bench", init: bool = False) -> None:
    if init:
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def move_ports(pipeline_file: Path, ports: list[int]) -> dict[int, int]:
    """Rewrite each listed port number in the pipeline file to a free port; {old: new}."""
    text = pipeline_file.read_text()
    moved: dict[int, int] = {}
    for port in sorted(set(ports)):
        new = free_port()
        text, n = re.subn(rf"(?<![\d.]){port}(?![\d.])", str(new), text)
        if n:
            moved[port] = new
    pipeline_file.write_text(text)
    return moved


def clean_checkout(repo: Path) -> None:
    """What a new CI box gets: the committed tree and nothing else (no node_modules, no outputs)."""
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "clean", "-q", "-fdx")
