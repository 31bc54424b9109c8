"""The target's commit and branch, read from its .git files (no `git` process),
and whether it has uncommitted changes (`git status`, in the background).

Reading HEAD, the loose ref and packed-refs is enough for the commit; a
worktree's `.git` file and `commondir` are followed. The CI
service, which knows what it checked out, can say so with WARMCI_SHA and
WARMCI_BRANCH instead.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping


def head(target: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(commit sha, branch); None for what is unknown (not a git checkout, a detached HEAD's branch)."""
    env = os.environ if environ is None else environ
    sha, branch = env.get("WARMCI_SHA") or None, env.get("WARMCI_BRANCH") or None
    if sha and branch:
        return sha, branch
    gitdir = _gitdir(target)
    if gitdir is None:
        return sha, branch
    common = gitdir
    text = _read(os.path.join(gitdir, "commondir"))
    if text:
        common = os.path.normpath(os.path.join(gitdir, text))
    head_text = _read(os.path.join(gitdir, "HEAD")) or ""
    if head_text.startswith("ref: "):
        ref = head_text[5:]
        found = _read(os.path.join(gitdir, ref)) or _read(os.path.join(common, ref)) or _packed(common, ref)
        return sha or found, branch or ref.removeprefix("refs/heads/")
    return sha or (head_text or None), branch


def _gitdir(start: str) -> str | None:
    """The .git directory of the checkout holding `start` (a worktree's .git file points to it)."""
    d = os.path.abspath(start)
    while True:
        dot = os.path.join(d, ".git")
        if os.path.isdir(dot):
            return dot
        if os.path.isfile(dot):
            text = _read(dot) or ""
            if text.startswith("gitdir: "):
                return os.path.normpath(os.path.join(d, text[8:]))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _packed(common: str, ref: str) -> str | None:
    for line in (_read(os.path.join(common, "packed-refs")) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and not line.startswith(("#", "^")):
            return parts[0]
    return None


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


class Dirty:
    """Whether the target has uncommitted changes, asked of git while the run goes on.

    `git status` costs tens of milliseconds on a large checkout: it runs as a
    child process from the start of the run (no thread: doit forks its
    workers after this) and is read at the end.
    """

    def __init__(self, target: str) -> None:
        self.popen: subprocess.Popen[bytes] | None
        try:
            # --no-optional-locks: never write the index while jobs read the tree.
            self.popen = subprocess.Popen(
                ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=normal", "--", "."],
                cwd=target, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        except OSError:
            self.popen = None

    def result(self, timeout: float = 10.0) -> bool | None:
        """True: the run tested uncommitted changes; None: unknown (not a git checkout, no git)."""
        if self.popen is None:
            return None
        try:
            out, _ = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.communicate()
            return None
        return bool(out.strip()) if self.popen.returncode == 0 else None
