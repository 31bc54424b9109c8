"""isolate = "worktree": a job that writes into the source tree gets a tree of its own,
holding exactly the target's current content (uncommitted changes included)."""
from __future__ import annotations

from pathlib import Path

import pytest

from warmci.execute import worktree

from .helpers import RUNNER, make_repo, run_doit


def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "target", {
        "src/a.txt": "a at HEAD\n", "src/gone.txt": "deleted later\n", "keep.txt": "unchanged\n",
        ".gitignore": "out/\n",
    })


def test_worktree_mirrors_uncommitted_changes_and_keeps_ignored_outputs(tmp_path: Path) -> None:
    target = repo(tmp_path)
    (target / "src/a.txt").write_text("a, edited\n")
    (target / "src/gone.txt").unlink()
    (target / "new.txt").write_text("untracked\n")
    (target / "out").mkdir()
    (target / "out/ignored.txt").write_text("ignored in the target\n")
    dest = tmp_path / "state/worktrees/job"
    lines: list[str] = []
    root = Path(worktree.prepare(str(target), str(dest), lines.append))
    assert root == dest
    assert (root / "src/a.txt").read_text() == "a, edited\n"
    assert not (root / "src/gone.txt").exists()
    assert (root / "new.txt").read_text() == "untracked\n"
    assert (root / "keep.txt").read_text() == "unchanged\n"
    assert not (root / "out").exists()  # ignored files of the target are not source
    assert any("created" in line for line in lines)
    # The job writes build outputs (ignored) and junk (untracked) into its tree.
    (root / "out").mkdir()
    (root / "out/bundle.js").write_text("built\n")
    (root / "junk.txt").write_text("left by the job\n")
    (root / "src/a.txt").write_text("scribbled by the job\n")
    # The target goes back to HEAD: the next prepare follows, and keeps the ignored output.
    (target / "src/a.txt").write_text("a at HEAD\n")
    (target / "src/gone.txt").write_text("deleted later\n")
    (target / "new.txt").unlink()
    lines.clear()
    assert Path(worktree.prepare(str(target), str(dest), lines.append)) == dest
    assert (root / "src/a.txt").read_text() == "a at HEAD\n"
    assert (root / "src/gone.txt").exists() and not (root / "new.txt").exists() and not (root / "junk.txt").exists()
    assert (root / "out/bundle.js").read_text() == "built\n"
    assert any("reset" in line for line in lines)
    # Nothing of this reached the target's working tree.
    assert not (target / "out/bundle.js").exists() and not (target / "junk.txt").exists()


def test_worktree_of_a_subdirectory_target_and_a_removed_worktree(tmp_path: Path) -> None:
    top = make_repo(tmp_path / "mono", {"proj/x.txt": "x\n", "other/y.txt": "y\n"})
    dest = tmp_path / "wt"
    root = Path(worktree.prepare(str(top / "proj"), str(dest)))
    assert root == dest / "proj" and (root / "x.txt").read_text() == "x\n"
    import shutil

    shutil.rmtree(dest)  # a deleted state dir leaves a stale registration in .git/worktrees
    assert Path(worktree.prepare(str(top / "proj"), str(dest))) == dest / "proj"


def test_not_a_git_checkout_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(worktree.WorktreeError, match="not inside a git checkout"):
        worktree.prepare(str(tmp_path / "plain"), str(tmp_path / "wt"))


PIPELINE = """
[jobs.build]
doc = "writes into its tree"
isolate = "worktree"
inputs = ["src/**"]
steps = [
  { name = "where", cmd = ["sh", "-c",
    '''pwd > built.txt; cat src/a.txt >> built.txt; cp built.txt "$0"; echo "$1" >> "$0"; echo "$2" >> "$0"''',
                           "{work}/seen.txt", "{runner}", "{source}"] },
]
"""


def test_a_worktree_job_leaves_the_target_untouched(tmp_path: Path) -> None:
    target = repo(tmp_path)
    (target / "src/a.txt").write_text("uncommitted edit\n")
    (tmp_path / "warmci.toml").write_text(PIPELINE)
    state = tmp_path / "state"
    run = run_doit(target, state, pipeline=tmp_path / "warmci.toml")
    assert run.rc == 0 and run.status("build") == "passed", run
    seen = (state / "work/build/seen.txt").read_text().splitlines()
    assert seen == [str(state / "worktrees/build"), "uncommitted edit", str(RUNNER), str(target)]
    assert not (target / "built.txt").exists()
    assert (state / "worktrees/build/built.txt").exists()
