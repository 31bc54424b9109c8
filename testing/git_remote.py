"""A real git remote for the CI service to fetch from: a bare copy of the demo and a work clone that pushes.

The demo's Playwright port is moved to a free one (as every demo run in the
suite does), so a developer's running demo cannot collide with the test.
"""
from __future__ import annotations

from pathlib import Path

from bench.targets import DEMO, commit_all, copy_target, git, move_ports


class Remote:
    def __init__(self, work: Path, bare: Path) -> None:
        self.work, self.bare = work, bare

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD").strip()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or, for None, delete) files and commit them on the current HEAD; the new SHA."""
        for rel, text in files.items():
            path = self.work / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        commit_all(self.work, message)
        return self.head()

    def push(self, sha: str, ref: str = "refs/heads/main") -> None:
        git(self.work, "push", "-q", "--force", str(self.bare), f"{sha}:{ref}")

    def checkout(self, sha: str) -> None:
        git(self.work, "checkout", "-q", "--detach", sha)


def demo_remote(base: Path) -> Remote:
    work = copy_target(DEMO, base / "work")
    move_ports(work / "warmci.toml", [8765])
    commit_all(work, "test: a free port for the Playwright suite")
    bare = base / "remote.git"
    git(base, "clone", "-q", "--bare", str(work), str(bare))
    return Remote(work, bare)
