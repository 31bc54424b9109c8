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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci_runner import RUNNER_ROOT
from ci_runner.config import SECRET_VARS, RepoConfig
from ci_runner.runsdb import Run

_BY_EXIT = {0: "passed", 1: "failed", 2: "errored", 3: "errored", 130: "cancelled"}
_RUN_STATUS = {"passed": "passed", "failed": "failed", "errored": "errored", "error": "errored",
               "cancelled": "cancelled"}
# Chosen per run by the service; a value from the service's own environment must not leak into doit's.
_OVERRIDDEN = ("WARMCI_TARGET", "WARMCI_PIPELINE", "WARMCI_STATE", "WARMCI_RUN_ID", "WARMCI_SHA",
               "WARMCI_BRANCH", "WARMCI_STORE_TRUST", "WARMCI_PLACEMENT")
# The shared result cache's keys (docs/scale.md, the cache rule). doit sees one pair, under the first names:
# the read-write key for a protected branch's runs, the branch key (when set) for other branches, the
# read-only key (when set) for a fork's runs; a fork without a read-only key gets no bucket at all.
WRITE_KEY_VARS = ("WARMCI_S3_ACCESS_KEY_ID", "WARMCI_S3_SECRET_ACCESS_KEY")
ROLE_KEY_VARS = {"branch": ("WARMCI_S3_BRANCH_ACCESS_KEY_ID", "WARMCI_S3_BRANCH_SECRET_ACCESS_KEY"),
                 "fork": ("WARMCI_S3_READ_ACCESS_KEY_ID", "WARMCI_S3_READ_SECRET_ACCESS_KEY")}
ALL_KEY_VARS = WRITE_KEY_VARS + tuple(v for pair in ROLE_KEY_VARS.values() for v in pair)


# Who may read what a run stores in the result cache (docs/scale.md, "The cache rule"): `protected`, `branch`
# or `fork` (trust_of).
TRUST_VAR = "WARMCI_STORE_TRUST"


@dataclass(frozen=True)
class Spec:
    """What a host needs to know of a run to run it (the Redis engine sends it as JSON)."""

    run: int  # the service's run number
    run_id: str  # warmci's run id, ci-RUN-ATTEMPT: STATE/runs/<run_id>/
    repo: str
    sha: str
    branch: str
    ref: str
    trust: str = "protected"
    placement: str = ""  # why the Redis engine's service sent it to this host (results.json `host`)
    filters: tuple[str, ...] = ()  # warmci's filter variables for doit (`skip=JOB`, `k=EXPR`, ...)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spec:
        """A spec as the Redis engine sends it (dataclasses.asdict through JSON: the filters come back a list)."""
        return cls(**{**data, "filters": tuple(data.get("filters", ()))})


def trust_of(run: Run, repo: RepoConfig) -> str:
    """A protected branch's own runs (a push, an operator's enqueue or rerun) are trusted; a pull request
    never is, and one from a fork (its head in another repository) least of all."""
    if run.fork or run.untrusted:
        return "fork"
    if run.pr is None and run.branch in repo.protected_branches:
        return "protected"
    return "branch"


def spec_of(run: Run, repo: RepoConfig) -> Spec:
    assert run.run_id is not None
    return Spec(run.id, run.run_id, run.repo, run.sha, run.branch, run.ref, trust_of(run, repo), run.placement or "",
                tuple(run.doit_filters))


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
    """The service's environment for a child process: never its secrets nor a key to the shared cache."""
    return {k: v for k, v in base.items() if k not in SECRET_VARS + ALL_KEY_VARS}


def environment(base: Mapping[str, str], spec: Spec) -> dict[str, str]:
    """The service's environment without its secrets: the jobs run the target's code. A fork's run gets
    no key that may write the shared result cache (it may get a read-only one)."""
    env = {k: v for k, v in without_secrets(base).items() if k not in _OVERRIDDEN}
    env.update(WARMCI_RUN_ID=spec.run_id, WARMCI_SHA=spec.sha, WARMCI_BRANCH=spec.branch)
    env[TRUST_VAR] = spec.trust
    if spec.placement:
        env["WARMCI_PLACEMENT"] = spec.placement
    role = ROLE_KEY_VARS.get(spec.trust)
    key = role if role and base.get(role[0]) else WRITE_KEY_VARS
    if spec.trust == "fork" and key == WRITE_KEY_VARS:
        env.pop("WARMCI_S3_BUCKET", None)  # no read-only key: a fork's run does without the bucket
    else:
        env.update({name: base[var] for name, var in zip(WRITE_KEY_VARS, key, strict=True) if var in base})
    return env


def sandboxed(path: Path) -> Path:
    return path.with_name(path.name + ".fork")


def workplace(repo: RepoConfig, trust: str) -> RepoConfig:
    """Where a run works: a fork's run gets a checkout and a state dir of its own (`*.fork`; unless the
    repository's `fork_sandbox` is false), so nothing it leaves there (doit's records, venvs, node_modules,
    the local result store) is trusted by other runs."""
    if trust != "fork" or not repo.fork_sandbox:
        return repo
    return replace(repo, checkout_dir=sandboxed(repo.checkout_dir), state_dir=sandboxed(repo.state_dir))


def repo_for(run: Run, repo: RepoConfig) -> RepoConfig:
    return workplace(repo, trust_of(run, repo))


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


def namespaces_unavailable() -> str | None:
    """Why doit could not give a job with ports a network namespace here (warmci.execute.netns says, in the
    runner's interpreter: the service does not import warmci), or None when it can."""
    code = (f"import sys; sys.path.insert(0, {str(RUNNER_ROOT)!r}); "
            "from warmci.execute.netns import unavailable; print(unavailable() or '')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        return f"the check failed: {out.stderr.strip()[-300:]}"
    return out.stdout.strip() or None


def results_path(state_dir: Path, run_id: str) -> Path:
    return state_dir / "runs" / run_id / "results.json"
