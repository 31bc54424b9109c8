"""One doit run of a target: the command, its environment, and its outcome.

doit is a subprocess of the runner's own interpreter, on the runner's
dodo.py, with the repository's checkout as the target and its own state
dir; the service reads only its exit code and results.json (the contract in
docs/results.md): 0 passed, 1 a job failed, 2 a job errored, 3 setup error,
130 cancelled.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_runner import RUNNER_ROOT
from ci_runner.config import SECRET_VARS, RepoConfig

_BY_EXIT = {0: "passed", 1: "failed", 2: "errored", 3: "errored", 130: "cancelled"}
_RUN_STATUS = {"passed": "passed", "failed": "failed", "errored": "errored", "error": "errored",
               "cancelled": "cancelled"}
# Chosen per run by the service; a value from the service's own environment must not leak into doit's.
_OVERRIDDEN = ("WARMCI_TARGET", "WARMCI_PIPELINE", "WARMCI_STATE", "WARMCI_RUN_ID", "WARMCI_SHA",
               "WARMCI_BRANCH")


@dataclass(frozen=True)
class Outcome:
    state: str  # passed | failed | errored | cancelled
    detail: str  # the commit status's description
    results: dict[str, Any] | None


def command(repo: RepoConfig, filters: Sequence[str] = ()) -> list[str]:
    """doit on the repository; `filters` are warmci's filter variables (`skip=JOB,...`, `k=EXPR`, ...)."""
    cmd = [sys.executable, "-m", "doit", "-f", str(RUNNER_ROOT / "dodo.py"), *repo.doit_args,
           f"target={repo.checkout_dir}", f"state={repo.state_dir}", *filters]
    if repo.pipeline:
        cmd.append(f"pipeline={repo.pipeline}")
    return cmd


def first_failure_path(state_dir: Path, run_id: str) -> Path:
    """Where warmci writes the run's first failure the moment it happens (docs/results.md)."""
    return state_dir / "runs" / run_id / "first-failure.json"


def read_first_failure(path: Path) -> dict[str, Any] | None:
    """warmci writes the file whole (a hard link into place): it is there complete, or not at all."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("job") else None
def without_secrets(base: Mapping[str, str]) -> dict[str, str]:
    """The service's environment for a child process: never its secrets."""
    return {k: v for k, v in base.items() if k not in SECRET_VARS}


def environment(base: Mapping[str, str], run_id: str, sha: str, branch: str) -> dict[str, str]:
    """The service's environment without its secrets: the jobs run the target's code."""
    env = {k: v for k, v in without_secrets(base).items() if k not in _OVERRIDDEN}
    env.update(WARMCI_RUN_ID=run_id, WARMCI_SHA=sha, WARMCI_BRANCH=branch)
    return env


def start(cmd: list[str], env: Mapping[str, str], cwd: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """In a session of its own (its process group is what a cancellation signals); output to a file,
    so a doit that outlives a killed service never writes into a closed pipe."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def read_results(path: Path, run_id: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("run_id") == run_id else None


def _seconds(results: dict[str, Any]) -> str:
    d = results.get("duration")
    return f" in {d:.1f} s" if isinstance(d, int | float) else ""


def _filtered(results: dict[str, Any]) -> str:
    f = results.get("filters")
    if not isinstance(f, dict) or not f:
        return ""
    return " [" + " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in f.items()) + "]"


def _last_error(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    found = [ln for ln in lines if "error:" in ln.lower()]
    return found[-1].strip()[:100] if found else ""


def outcome(exit_code: int | None, results: dict[str, Any] | None, log_file: Path,
            cancel_reason: str | None) -> Outcome:
    if cancel_reason:
        return Outcome("cancelled", cancel_reason, results)
    by_exit = _BY_EXIT.get(exit_code if exit_code is not None else -1)
    if exit_code is not None and exit_code < 0:
        by_exit = "cancelled"
    if results is None:
        why = _last_error(log_file)
        if exit_code == 3:
            return Outcome("errored", f"Setup error (doit exit 3){': ' + why if why else ''}", None)
        state = by_exit if by_exit in ("errored", "cancelled") else "errored"
        return Outcome(state, f"doit exited {exit_code} without results.json{': ' + why if why else ''}", None)
    state = _RUN_STATUS.get(str(results.get("status")), by_exit or "errored")
    jobs = {n: j.get("status") for n, j in (results.get("jobs") or {}).items() if isinstance(j, dict)}
    took = _seconds(results) + _filtered(results)
    if state == "passed":
        ran = sum(1 for s in jobs.values() if s == "passed")
        return Outcome(state, f"Passed: {len(jobs)} jobs ({ran} ran, {len(jobs) - ran} up to date){took}", results)
    if state == "cancelled":
        return Outcome(state, f"Cancelled{took}", results)
    bad = sorted(n for n, s in jobs.items() if s in (("errored", "error") if state == "errored"
                                                       else ("failed", "timed-out")))
    names = ", ".join(bad) if bad else "see the run page"
    word = "Errored" if state == "errored" else "Failed"
    return Outcome(state, f"{word}: {names} ({len(bad)} of {len(jobs)} jobs){took}", results)


def results_path(state_dir: Path, run_id: str) -> Path:
    return state_dir / "runs" / run_id / "results.json"
