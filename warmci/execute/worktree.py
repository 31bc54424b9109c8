"""A tree of its own for a job that writes into the source tree (`isolate = "worktree"`).

buckaroo's wheel build deletes and rewrites files under the checkout while
other jobs import from it. Such a job runs in a git worktree of the target,
kept in the state dir and reused between runs:

- tracked files are checked out at the target's HEAD, then the target's
  uncommitted changes (modified, deleted and untracked, not ignored, files)
  are copied over, so the job sees exactly the content the skip key hashed;
- ignored files in the worktree (node_modules, build outputs) are kept, which
  is what makes a warm rebuild there cheap;
- nothing is written into the target's working tree (git records the
  worktree under the target's .git/worktrees/, outside the working tree).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from warmci.errors import WarmciError

GIT_TIMEOUT = 300.0


class WorktreeError(WarmciError):
    """The target cannot get a worktree (not a git checkout, git failed)."""


def _git(cwd: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        out = subprocess.run(["git", "-C", cwd, *args], capture_output=True, timeout=GIT_TIMEOUT,
                             stdin=subprocess.DEVNULL, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise WorktreeError("isolate = \"worktree\" needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise WorktreeError(f"`git {' '.join(args)}` in {cwd} did not finish in {GIT_TIMEOUT:.0f} s") from None
    if check and out.returncode != 0:
        raise WorktreeError(f"`git {' '.join(args)}` in {cwd} exited {out.returncode}: "
                            f"{out.stderr.decode(errors='replace').strip()}")
    return out


def _lines(out: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [p for p in out.stdout.decode(errors="surrogateescape").split("\0") if p]


def _same_repo(dest: str, common_dir: str) -> bool:
    if not os.path.isfile(os.path.join(dest, ".git")):
        return False
    out = _git(dest, "rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
    return out.returncode == 0 and os.path.realpath(out.stdout.decode().strip()) == common_dir


def prepare(target: str, dest: str, say: Callable[[str], None] = lambda _line: None) -> str:
    """Make `dest` a worktree of `target` whose files equal target's working tree; return the
    directory in it that corresponds to `target` (target may be a subdirectory of its repo)."""
    out = _git(target, "rev-parse", "--show-toplevel", check=False)
    if out.returncode != 0:
        raise WorktreeError(f"isolate = \"worktree\": the target {target} is not inside a git checkout "
                            "(a job that writes into the source tree needs a worktree of it)")
    top = os.path.realpath(out.stdout.decode().strip())
    prefix = os.path.relpath(os.path.realpath(target), top)
    head = _git(top, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise WorktreeError(f"isolate = \"worktree\": {top} has no commit yet; commit the sources first")
    sha = head.stdout.decode().strip()
    common = os.path.realpath(_git(top, "rev-parse", "--path-format=absolute", "--git-common-dir")
                              .stdout.decode().strip())
    if _same_repo(dest, common):
        _git(dest, "checkout", "--quiet", "--force", "--detach", sha)
        _git(dest, "clean", "-fdq")  # untracked, not ignored: last run's overlay; ignored files stay
        say(f"worktree {dest}: reset to {sha[:12]} (kept its ignored files)")
    else:
        if os.path.lexists(dest):
            shutil.rmtree(dest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        _git(top, "worktree", "add", "--quiet", "--force", "--detach", dest, sha)
        say(f"worktree {dest}: created at {sha[:12]}")
    changed = _lines(_git(top, "diff", "--name-only", "--no-renames", "-z", "HEAD", "--"))
    untracked = _lines(_git(top, "ls-files", "--others", "--exclude-standard", "-z"))
    copied = removed = 0
    for rel in sorted(set(changed) | set(untracked)):
        src, dst = os.path.join(top, rel), os.path.join(dest, rel)
        if os.path.lexists(src) and not os.path.isdir(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.lexists(dst) or os.path.isdir(dst):
                _remove(dst)
            shutil.copy2(src, dst, follow_symlinks=False)
            copied += 1
        elif not os.path.lexists(src) and os.path.lexists(dst):
            _remove(dst)
            removed += 1
    if copied or removed:
        say(f"worktree {dest}: copied {copied} uncommitted file(s) from {top}, removed {removed}")
    return os.path.normpath(os.path.join(dest, prefix))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
