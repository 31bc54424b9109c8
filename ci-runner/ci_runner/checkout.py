"""The target's checkout: one per repository, outside the runner's tree, at exactly the run's SHA.

`git checkout --force` puts every tracked file at the SHA and `git clean`
removes untracked files; ignored files (node_modules, build outputs) are
kept unless the repository sets `clean_ignored`, because warmci's skip
checks (content hashes, install markers) decide whether they are still
good, and keeping them is what makes a warm run cheap.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ci_runner.errors import RunnerError


class CheckoutError(RunnerError):
    """The SHA could not be fetched or checked out; the run is reported `error`."""


def git(cwd: Path, args: list[str], env: Mapping[str, str], timeout: float) -> str:
    try:
        p = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, env=dict(env),
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CheckoutError("git is not installed (it is needed to check targets out)") from None
    except subprocess.TimeoutExpired:
        raise CheckoutError(f"`git {' '.join(args)}` did not finish in {timeout:.0f} s") from None
    if p.returncode != 0:
        raise CheckoutError(f"`git {' '.join(args)}` exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p.stdout


def _has_commit(cwd: Path, sha: str, env: Mapping[str, str], timeout: float) -> bool:
    try:
        git(cwd, ["cat-file", "-e", f"{sha}^{{commit}}"], env, timeout)
        return True
    except CheckoutError:
        return False


def prepare(checkout: Path, clone_url: str, sha: str, ref: str, *, env: Mapping[str, str], timeout: float,
            clean_ignored: bool = False) -> None:
    """Fetch `ref` (or the SHA itself) from clone_url and check the SHA out cleanly in `checkout`."""
    checkout.mkdir(parents=True, exist_ok=True)
    if not (checkout / ".git").exists():
        git(checkout, ["init", "-q"], env, timeout)
    # A git killed with the service (kill -9) leaves its lock behind; this worker is the only writer here.
    (checkout / ".git" / "index.lock").unlink(missing_ok=True)
    remotes = git(checkout, ["remote"], env, timeout).split()
    git(checkout, ["remote", "set-url" if "origin" in remotes else "add", "origin", clone_url], env, timeout)
    if not _has_commit(checkout, sha, env, timeout):
        if ref:
            git(checkout, ["fetch", "-q", "--no-tags", "--force", "origin", f"+{ref}:refs/warmci/fetched"], env,
                timeout)
        if not _has_commit(checkout, sha, env, timeout):
            # The ref moved on since the delivery (or there was none): ask for the commit itself.
            try:
                git(checkout, ["fetch", "-q", "--no-tags", "origin", sha], env, timeout)
            except CheckoutError as exc:
                raise CheckoutError(f"commit {sha} is not at {clone_url} (force-pushed away?): {exc}") from None
    git(checkout, ["checkout", "-q", "--force", "--detach", sha], env, timeout)
    git(checkout, ["clean", "-q", "-ffd" + ("x" if clean_ignored else "")], env, timeout)
    head = git(checkout, ["rev-parse", "HEAD"], env, timeout).strip()
    if head != sha:
        raise CheckoutError(f"checked out {head}, expected {sha}")


def git_env(base: Mapping[str, str]) -> dict[str, str]:
    """No prompts (a service has no terminal), no user or system config surprises."""
    return {**base, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "LC_ALL": "C",
            "HOME": base.get("HOME", os.path.expanduser("~"))}
