"""The pieces behind run results, without running doit: critical paths, priorities, git, the terminal."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from warmci.run import critpath, gantt, gitinfo, schedule
from warmci.run.terminal import Console

from .helpers import git, make_repo


def job(status: str, start: float | None, end: float | None, needs: list[str] | None = None) -> dict:
    return {"status": status, "start": start, "end": end, "needs": needs or []}


def test_critical_path_is_the_longest_chain_through_up_to_date_jobs_and_adds_up() -> None:
    jobs = {
        "deps": job("passed", 100.5, 102.0),
        "build": job("up-to-date", 102.0, 102.0, ["deps"]),
        "short": job("passed", 100.5, 101.0),
        "wheel": job("passed", 102.1, 104.0, ["build", "short"]),
        "suite": job("passed", 105.0, 109.0, ["wheel"]),
        "lint": job("passed", 104.0, 108.0, ["short"]),
        # Ends last, but only after waiting for a worker: not on the critical path.
        "late": job("passed", 109.0, 109.5, ["short"]),
    }
    cp = critpath.of_run(jobs, 100.0, 110.0)
    assert [e["job"] for e in cp["jobs"]] == ["deps", "wheel", "suite"]
    assert [e["wait"] for e in cp["jobs"]] == [0.5, 0.1, 1.0]
    assert cp["duration"] == 1.5 + 1.9 + 4.0 and cp["wall"] == 10.0 and cp["wait"] == pytest.approx(2.6)
    assert cp["duration"] + cp["wait"] == pytest.approx(cp["wall"])
    assert cp["jobs"][-1]["share"] == 0.4


def test_critical_path_of_a_run_where_nothing_ran() -> None:
    cp = critpath.of_run({"a": job("up-to-date", 1.0, 1.0)}, 0.0, 2.0)
    assert cp == {"jobs": [], "duration": 0.0, "wait": 2.0, "wall": 2.0}


def test_priorities_are_longest_remaining_paths_and_order_the_tasks() -> None:
    tasks = [{"basename": n, "task_dep": deps} for n, deps in
             [("s1", []), ("s2", []), ("l1", []), ("l2", ["l1"]), ("l3", ["l2"]), ("t", ["l1"])]]
    durations = {"s1": 1.0, "s2": 1.0, "l1": 2.0, "l2": 3.0, "l3": 1.0}
    ordered = schedule.prioritize(tasks, {n: {"status": "passed", "duration": d} for n, d in durations.items()})
    prio = {t["basename"]: t["meta"]["warmci"]["priority"] for t in ordered}
    # t was never seen: it counts as the median known job (1 s).
    assert prio == {"l1": 6.0, "l2": 4.0, "l3": 1.0, "t": 1.0, "s1": 1.0, "s2": 1.0}
    assert [t["basename"] for t in ordered] == ["l1", "l2", "s1", "s2", "l3", "t"]  # ties keep pipeline order


def test_order_mode_from_the_environment() -> None:
    assert schedule.mode({}) == "first-red"
    assert schedule.mode({"WARMCI_ORDER": "definition"}) == "definition"
    assert schedule.mode({"WARMCI_ORDER": "critical-path"}) == "critical-path"
    with pytest.raises(Exception, match="expected one of first-red, critical-path, definition"):
        schedule.mode({"WARMCI_ORDER": "fifo"})


def test_git_head_branch_packed_refs_detached_and_worktree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"f": "x"})
    sha = git(repo, "rev-parse", "HEAD").strip()
    assert gitinfo.head(str(repo), {}) == (sha, "main")
    assert gitinfo.head(str(repo / "sub" / "dir"), {}) == (sha, "main")  # a target inside a checkout
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git/refs/heads/main").exists()
    assert gitinfo.head(str(repo), {}) == (sha, "main")
    git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"))
    assert gitinfo.head(str(tmp_path / "wt"), {}) == (sha, "other")
    git(repo, "checkout", "-q", "--detach")
    assert gitinfo.head(str(repo), {}) == (sha, None)
    assert gitinfo.head(str(tmp_path / "nowhere"), {}) == (None, None)
    assert gitinfo.head(str(repo), {"WARMCI_SHA": "abc", "WARMCI_BRANCH": "pr-1"}) == ("abc", "pr-1")



def test_uncommitted_changes_are_noticed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"f": "x", "sub/g": "y"})
    assert gitinfo.Dirty(str(repo)).result() is False
    (repo / "sub" / "g").write_text("changed")
    assert gitinfo.Dirty(str(repo)).result() is True
    (repo / "sub" / "g").write_text("y")
    (repo / "new").write_text("untracked")
    assert gitinfo.Dirty(str(repo)).result() is True
    assert gitinfo.Dirty(str(repo / "sub")).result() is False  # a target inside a checkout: its own files only
    (tmp_path / "plain").mkdir()
    assert gitinfo.Dirty(str(tmp_path / "plain")).result() is None


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_line_only_on_a_terminal() -> None:
    tty = FakeTTY()
    console = Console(tty)
    console.started("build-js", console.start)
    console.tick()
    assert "\r\033[K" in tty.getvalue() and "running 1: build-js" in tty.getvalue()
    console.say("PASS  build-js  (0.4 s)")
    assert tty.getvalue().endswith("\r\033[KPASS  build-js  (0.4 s)\n")  # the live line is cleared first
    pipe = io.StringIO()
    plain = Console(pipe)
    plain.started("build-js", plain.start)
    plain.tick()
    plain.say("PASS  build-js  (0.4 s)")
    plain.close()
    assert pipe.getvalue() == "PASS  build-js  (0.4 s)\n"


def _results(dirty: bool | None) -> dict[str, Any]:
    jobs = {f"job-{i}": {"status": "passed", "start": 100.0 + i, "end": 101.0 + i, "needs": [], "reason": ""}
            for i in range(6)}
    jobs["late"] = {"status": "up-to-date", "start": 107.0, "end": 107.0, "needs": [], "reason": "up to date"}
    return {"run_id": "r", "status": "passed", "duration": 8.0, "start": 100.0, "sha": "0123456789abcdef",
            "branch": "main", "dirty": dirty, "jobs": jobs, "critical_path": critpath.of_run(jobs, 100.0, 108.0),
            "resources": {"samples": [[100.0, 10.0, 900.0], [108.0, 20.0, 950.0]]}}


def test_gantt_title_says_when_the_run_tested_uncommitted_changes_and_the_legend_hides_no_row() -> None:
    plt = gantt.pyplot()
    fig = gantt.figure(plt, _results(dirty=True))
    try:
        ax = fig.axes[0]
        assert "0123456789 + uncommitted changes main" in ax.get_title(loc="left")
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        assert not legend.overlaps(ax.get_window_extent()), "the legend covers the chart's rows"
    finally:
        plt.close(fig)
    clean = gantt.figure(plt, _results(dirty=False))
    try:
        assert "uncommitted" not in clean.axes[0].get_title(loc="left")
    finally:
        plt.close(clean)
