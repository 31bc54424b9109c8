"""Running warmci (and its baselines) as a user would, timing each command from outside."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmci.status import Status

RUNNER = Path(__file__).resolve().parent.parent
VENV_PY = RUNNER / ".venv" / "bin" / "python"
VENV_DOIT = RUNNER / ".venv" / "bin" / "doit"
BOOTSTRAP = RUNNER / "bootstrap"


def _passing(job: dict[str, Any]) -> bool:
    status = Status.of(job.get("status"))
    return status is not None and status.ok


def ran(job: object) -> bool:
    """The job's command ran in its run (read leniently: older results files are read too)."""
    status = Status.of(job.get("status")) if isinstance(job, dict) else None
    return status is not None and status.ran


def python() -> str:
    return str(VENV_PY if VENV_PY.exists() else Path(sys.executable))


@dataclass
class Result:
    cmd: list[str]
    wall: float
    rc: int
    out: str
    err: str
    results: dict[str, Any] | None = None
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        jobs = (self.results or {}).get("jobs")
        return jobs if isinstance(jobs, dict) else {}

    def with_status(self, *statuses: str) -> set[str]:
        return {n for n, j in self.jobs.items() if isinstance(j, dict) and j.get("status") in statuses}

    @property
    def executed(self) -> set[str]:
        return {n for n, j in self.jobs.items() if ran(j)}

    @property
    def failed(self) -> set[str]:
        return {n for n, j in self.jobs.items() if isinstance(j, dict) and not _passing(j)}

    def tail(self, n: int = 1500) -> str:
        return f"rc={self.rc}\n--- stdout ---\n{self.out[-n:]}\n--- stderr ---\n{self.err[-n:]}"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without warmci choices that would redirect a run."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WARMCI_TARGET", "WARMCI_PIPELINE", "WARMCI_STATE", "WARMCI_RUN_ID")}
    # What ./bootstrap puts first on PATH, so `doit` means the runner's doit.
    parts = [str(RUNNER / ".venv" / "bin"), str(RUNNER / ".tools" / "bin")]
    env["PATH"] = os.pathsep.join(parts + [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in parts])
    env.update(extra or {})
    return env


def timed(cmd: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None,
          timeout: float = 1800) -> Result:
    """Run a command to completion; wall time measured around the whole process."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env if env is not None else clean_env(), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    wall = time.perf_counter() - t0
    return Result(cmd, wall, p.returncode, p.stdout, p.stderr)


class Doit:
    """warmci on one target and state dir, through one of the commands a user types."""

    # How `doit` is started: the name is what the report shows.
    LAUNCHERS = {
        "doit": lambda: [str(VENV_DOIT)],  # `doit` with the venv first on PATH (what ./bootstrap sets up)
        "python -m doit": lambda: [python(), "-m", "doit"],
        "./bootstrap doit": lambda: [str(BOOTSTRAP), "doit"],
    }

    def __init__(self, target: Path, state: Path, pipeline: Path | None = None) -> None:
        self.target, self.state, self.pipeline = target, state, pipeline
        self.counter = 0

    def args(self) -> list[str]:
        out = [f"target={self.target}", f"state={self.state}"]
        if self.pipeline is not None:
            out.append(f"pipeline={self.pipeline}")
        return out

    def run(self, *doit_args: str, launcher: str = "doit", tag: str = "run", timeout: float = 1800,
            state: Path | None = None, env: dict[str, str] | None = None) -> Result:
        self.counter += 1
        run_id = f"bench-{tag}-{self.counter:03d}-{os.getpid()}"
        st = state or self.state
        args = [f"target={self.target}", f"state={st}"] + ([f"pipeline={self.pipeline}"] if self.pipeline else [])
        # From the runner's root, as a maintainer types it: doit finds dodo.py there.
        cmd = self.LAUNCHERS[launcher]() + list(doit_args) + args
        res = timed(cmd, cwd=RUNNER, env=clean_env({**(env or {}), "WARMCI_RUN_ID": run_id}), timeout=timeout)
        res.run_id = run_id
        res.extra["tag"] = tag
        path = st / "runs" / run_id / "results.json"
        try:
            res.results = json.loads(path.read_text())
        except (OSError, ValueError):
            res.results = None
        return res

