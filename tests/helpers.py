"""Driving real doit runs of warmci against real git repositories."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tasks import registry
from warmci.pipeline import reading
from warmci.pipeline.model import Pipeline

RUNNER = Path(__file__).resolve().parent.parent
DEMO = RUNNER / "examples" / "demo"
GENERATED = ("node_modules", "__pycache__", ".venv", "dist", "test-results", ".pytest_cache",
             ".ruff_cache", "app.js")


def load_pipeline(path: Path | str) -> Pipeline:
    """A pipeline file read as dodo.py reads it: with the job kinds of tasks/."""
    return reading.load(path, registry.READER)


def job_script(name: str) -> ModuleType:
    """One of job_scripts/ (run by jobs in their own venvs, not part of the warmci package), as a module."""
    path = RUNNER / "job_scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"job_scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                              "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    return out.stdout


def make_repo(path: Path, files: dict[str, str] | None = None, copy_from: Path | None = None) -> Path:
    """A real git repository with one commit."""
    if copy_from is not None:
        shutil.copytree(copy_from, path, ignore=shutil.ignore_patterns(*GENERATED))
    path.mkdir(parents=True, exist_ok=True)
    for rel, text in (files or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(repr=False)
class Run:
    rc: int
    out: str
    err: str
    results: dict[str, Any] | None

    def jobs(self, *statuses: str) -> set[str]:
        jobs = (self.results or {}).get("jobs", {})
        return {n for n, j in jobs.items() if j.get("status") in statuses}

    @property
    def executed(self) -> set[str]:
        return self.jobs("passed", "failed", "errored", "timed-out", "skipped")

    @property
    def uptodate(self) -> set[str]:
        return self.jobs("up-to-date")

    def status(self, job: str) -> str | None:
        return (self.results or {}).get("jobs", {}).get(job, {}).get("status")

    def __repr__(self) -> str:
        # What did not pass first: pytest cuts long reprs, and that is what a failing assertion is about.
        bad = [f"{n}: {j.get('status')}: {j.get('message') or j.get('reason')}"
               for n, j in (self.results or {}).get("jobs", {}).items()
               if j.get("status") not in ("passed", "up-to-date", "filtered", "skipped")]
        return (f"rc={self.rc}; not passed: {bad}\n--- stdout ---\n{self.out[-4000:]}\n"
                f"--- stderr ---\n{self.err[-4000:]}")


def run_doit(target: Path, state: Path, *args: str, pipeline: Path | None = None,
             env: dict[str, str] | None = None, timeout: float = 600) -> Run:
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "doit", "-f", str(RUNNER / "dodo.py"), *args,
           f"target={target}", f"state={state}"]
    if pipeline is not None:
        cmd.append(f"pipeline={pipeline}")
    full_env = {**os.environ, "WARMCI_RUN_ID": run_id, **(env or {})}
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    results_file = state / "runs" / run_id / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return Run(p.returncode, p.stdout, p.stderr, results)


HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile.py"


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def children() -> set[tuple[int, float]]:
    """This process's live descendants, as (pid, create time)."""
    import psutil

    out = set()
    for c in psutil.Process().children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE:
                out.add((c.pid, c.create_time()))
        except psutil.Error:
            continue
    return out


def describe(pids: set[tuple[int, float]]) -> str:
    """One line per process: its pid and command line."""
    import psutil

    lines = []
    for pid, _ in sorted(pids):
        try:
            lines.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:200]}")
        except psutil.Error:
            lines.append(f"{pid}: (gone)")
    return "\n".join(lines)
