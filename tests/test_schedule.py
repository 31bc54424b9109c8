"""The first-red dispatch order: which ready job a free worker gets, and why (units; real runs in test_filters)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from warmci.errors import WarmciError
from warmci.run import schedule


@dataclass
class FakeTask:
    name: str
    meta: dict[str, Any] = field(default_factory=dict)


def task(name: str, priority: float, expected: float, red: float | None = None) -> FakeTask:
    meta: dict[str, Any] = {"priority": priority, "expected": expected}
    if red is not None:
        meta["red"] = red
    return FakeTask(name, {"warmci": meta})


def names(tasks: list[FakeTask], order: str = "first-red", bound: float = 0.5,
          running: list[FakeTask] | None = None, sched: schedule.Scheduler | None = None) -> str:
    s = sched or schedule.Scheduler(order, bound)
    return tasks[s.pick(tasks, running or [])].name


CHAIN = task("build-wheel", priority=8.0, expected=3.0)  # the critical path: wheel then a 5 s suite
PYTEST = task("test-python", priority=2.5, expected=2.5)
LINT = task("lint", priority=0.2, expected=0.2)


def test_a_short_job_goes_before_the_critical_path_within_the_bound() -> None:
    assert names([CHAIN, PYTEST, LINT]) == "lint"
    assert names([CHAIN, PYTEST, LINT], order="critical-path") == "build-wheel"
    assert names([CHAIN, PYTEST, LINT], bound=0.1) == "build-wheel"  # 0.2 s would cost the chain too much


def test_a_recently_failed_job_waits_when_it_would_delay_the_critical_path() -> None:
    failed = task("test-python-3.13", priority=2.5, expected=2.5, red=2.5)
    assert names([CHAIN, failed]) == "build-wheel"


def test_a_recently_failed_job_goes_first_into_the_slack_a_running_job_leaves() -> None:
    # The chain is already running and has 8 s ahead of it; the best ready job has a 2.5 s path,
    # so a 1.5 s job that failed last time fits in the slack and goes before the longer one.
    sched = schedule.Scheduler("first-red", 0.5)
    sched.started["build-wheel"] = time.monotonic()
    ok = task("test-python-3.11", priority=2.5, expected=2.5)
    failed = task("test-python-3.13", priority=1.5, expected=1.5, red=1.5)
    assert names([ok, failed], running=[CHAIN], sched=sched) == "test-python-3.13"
    assert names([ok, failed], sched=schedule.Scheduler("first-red", 0.5)) == "test-python-3.11"  # no slack


def test_a_running_job_that_overran_leaves_no_slack() -> None:
    sched = schedule.Scheduler("first-red", 0.5)
    sched.started["build-wheel"] = time.monotonic() - 100  # expected 3 s: only its 5 s tail is left
    ok = task("a", priority=5.0, expected=5.0)
    failed = task("b", priority=3.0, expected=3.0, red=3.0)
    assert names([ok, failed], running=[CHAIN], sched=sched) == "a"


def test_urgent_jobs_rank_failed_before_short_and_sooner_first() -> None:
    slow_red = task("far", priority=1.0, expected=0.3, red=6.0)
    near_red = task("near", priority=1.0, expected=0.4, red=0.4)
    short = task("short", priority=0.1, expected=0.1)
    assert names([CHAIN, short, slow_red, near_red], bound=5.0) == "near"
    assert names([CHAIN, short, slow_red], bound=5.0) == "far"


def test_ties_keep_dispatch_order() -> None:
    a, b = task("a", 1.0, 1.0), task("b", 1.0, 1.0)
    assert names([a, b], order="critical-path") == "a" and names([b, a], order="critical-path") == "b"


def test_jobs_on_the_way_to_a_recently_failed_job_are_urgent() -> None:
    tasks = [{"basename": n, "task_dep": d, "meta": {"warmci": {}}} for n, d in [
        ("install", []), ("lint", ["install"]), ("build", []), ("suite", ["build"]), ("other", [])]]
    last = {"install": {"status": "passed", "duration": 4.0}, "lint": {"status": "failed", "duration": 0.5},
            "build": {"status": "passed", "duration": 2.0}, "suite": {"status": "passed", "duration": 6.0},
            "other": {"status": "errored", "duration": 1.0}}
    meta = {t["basename"]: t["meta"]["warmci"] for t in schedule.prioritize(tasks, last)}
    assert meta["lint"]["red"] == 0.5 and meta["install"]["red"] == 4.5 and meta["other"]["red"] == 1.0
    assert "red" not in meta["build"] and "red" not in meta["suite"]
    assert meta["lint"]["failed_last"] and not meta["install"]["failed_last"]
    assert meta["build"]["priority"] == 8.0 and meta["suite"]["expected"] == 6.0


def test_the_bound_from_the_environment() -> None:
    assert schedule.bound(100.0, {}) == 5.0 and schedule.bound(4.0, {}) == 0.5
    assert schedule.bound(100.0, {"WARMCI_RED_BOUND": "2"}) == 2.0
    assert schedule.bound(100.0, {"WARMCI_RED_BOUND": "0"}) == 0.0
    for bad in ("-1", "soon"):
        with pytest.raises(WarmciError, match="WARMCI_RED_BOUND"):
            schedule.bound(1.0, {"WARMCI_RED_BOUND": bad})
