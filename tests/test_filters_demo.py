"""Every filter on the real demo, in keep-going and fast-fail mode: each job's status and the exit code.

The tree gets a failing unit test and a failing Playwright test; the filters
select them or not (k=, grep=), run them as a first pass (first-k=,
first-grep=), skip jobs (skip=) or run some first (first=). A filtered green
is then followed by an unfiltered run, which runs the jobs and finds the
failures. The scenarios share the warm demo (tests/demo_target.py) and run
in order; the last one restores the tree and leaves the pipeline warm.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .demo_target import Demo
from .helpers import Run

pytestmark = pytest.mark.slow

UNIT = "tests/test_table.py"
E2E = "packages/e2e/tests/table.spec.js"
BROKEN_UNIT = "\n\ndef test_broken_by_filters():\n    assert 1 == 2\n"
BROKEN_E2E = "\ntest('broken by filters', async ({ page }) => {\n  await page.goto('/');\n" \
             "  await expect(page).toHaveTitle('not the title', { timeout: 1000 });\n});\n"
SUITES = ("test-python-3.13", "playwright-app")
FAST = "--no-continue"


@pytest.fixture(scope="module")
def broken(demo: Demo) -> Iterator[Demo]:
    old_unit = demo.change(UNIT, (demo.target / UNIT).read_text() + BROKEN_UNIT)
    old_e2e = demo.change(E2E, (demo.target / E2E).read_text() + BROKEN_E2E)
    yield demo
    demo.change(UNIT, old_unit)
    demo.change(E2E, old_e2e)
    demo.run()
    demo.assert_warm()


def job(r: Run, name: str) -> dict[str, Any]:
    assert r.results is not None, r
    return dict(r.results["jobs"][name])


def steps(r: Run, name: str) -> list[str]:
    return [s["name"] for s in job(r, name).get("steps", [])]


def test_only_matching_tests_a_filtered_green_and_the_unfiltered_run_after_it(broken: Demo) -> None:
    r = broken.run(*SUITES, "k=test_version", "grep=page loads")
    assert r.rc == 0, r
    assert {n: job(r, n)["status"] for n in SUITES} == dict.fromkeys(SUITES, "passed")
    assert job(r, "test-python-3.13")["filter"] == "k=test_version"
    assert job(r, "playwright-app")["filter"] == "grep=page loads"
    assert r.results and r.results["filters"] == {"k": "test_version", "grep": "page loads"}
    log = Path(job(r, "test-python-3.13")["log"]).read_text()
    assert "-k test_version" in log and "1 passed" in log and "testmon" not in steps(r, "test-python-3.13")
    assert "1 passed" in Path(job(r, "playwright-app")["log"]).read_text()
    # The filtered green is not the jobs': the next unfiltered run runs them, and they fail.
    again = broken.run(*SUITES)
    assert again.rc == 1, again
    for name, filt in (("test-python-3.13", "k=test_version"), ("playwright-app", "grep=page loads")):
        assert job(again, name)["status"] == "failed"
        assert {"kind": "filter", "name": "filter", "old": filt, "new": None,
                "text": f"its last success ran only some of its tests ({filt})"} in job(again, name)["why"]
    # The testmon first pass (the new test is what changed) said red before the full suite did.
    first = again.results and again.results["first_failure"]
    assert first, again
    pytest_first = job(again, "test-python-3.13")["first_pass_failed"]
    assert [p["pass"] for p in pytest_first] == ["testmon"]
    assert steps(again, "test-python-3.13")[:2] == ["changed files", "bulk"]


@pytest.mark.parametrize("mode", ["keep-going", "fast-fail"])
def test_filters_that_select_the_failing_tests_fail(broken: Demo, mode: str) -> None:
    r = broken.run(*([FAST] if mode == "fast-fail" else []), *SUITES, "k=broken", "grep=broken")
    assert r.rc == 1, r
    statuses = {n: job(r, n)["status"] for n in SUITES}
    assert statuses["test-python-3.13"] == "failed" or statuses["playwright-app"] == "failed", statuses
    if mode == "keep-going":
        assert statuses == dict.fromkeys(SUITES, "failed")
        assert "1 failed" in Path(job(r, "test-python-3.13")["log"]).read_text()
        # lf=1: only what failed in the job's last run (its pytest cache in the state dir).
        lf = broken.run("test-python-3.13", "lf=1")
        assert lf.rc == 1 and job(lf, "test-python-3.13")["filter"] == "lf=1", lf
        log = Path(job(lf, "test-python-3.13")["log"]).read_text()
        assert "--lf" in log and "1 failed" in log and " passed" not in log.split("--lf")[-1], log
    assert r.results and r.results["status"] == "failed"


def test_first_pass_in_fast_fail_mode_ends_the_job_and_the_run(broken: Demo) -> None:
    r = broken.run(FAST, *SUITES, "first-k=broken", "first-grep=broken")
    assert r.rc == 1, r
    assert r.results and r.results["first_failure"]["where"] == "first pass"
    for name in SUITES:
        j = job(r, name)
        if j["status"] == "not-run":
            continue  # the run stopped before it started
        assert j["status"] == "failed" and "the full suite did not run (fast-fail)" in j["reason"], j
        assert all("(first-" in s for s in steps(r, name) if s not in ("create venv", "export lock",
                                                                          "install wheel"))
    assert "filter" not in job(r, "test-python-3.13")  # a first pass does not make the job filtered


def test_first_pass_in_keep_going_mode_then_the_full_suite_decides(broken: Demo) -> None:
    r = broken.run(*SUITES, "first-k=broken", "first-grep=broken")
    assert r.rc == 1, r
    first = r.results and r.results["first_failure"]
    assert first and first["where"] == "first pass" and first["job"] in SUITES, r
    assert first["seconds"] < min(job(r, n)["end"] for n in SUITES) - r.results["start"]
    for name, filt in (("test-python-3.13", "first-k=broken"), ("playwright-app", "first-grep=broken")):
        j = job(r, name)
        assert j["status"] == "failed" and "(first-" not in j["reason"], j  # the full suite's verdict
        assert filt in [p["pass"] for p in j["first_pass_failed"]]
    assert steps(r, "test-python-3.13")[:3] == ["bulk (first-k=broken)", "timing_dependent (first-k=broken)",
                                                "changed files"]
    assert steps(r, "playwright-app")[-2:] == ["pnpm (first-grep=broken)", "pnpm"]


@pytest.mark.parametrize("mode", ["keep-going", "fast-fail"])
def test_skip_on_the_demo(broken: Demo, mode: str) -> None:
    fast = [FAST] if mode == "fast-fail" else []
    r = broken.run(*fast, "skip=test-python,playwright-app")
    assert r.rc == 0, r  # the broken suites are skipped, everything else passes
    assert {n for n, j in (r.results or {})["jobs"].items() if j["status"] == "filtered"} == {
        "test-python-3.11", "test-python-3.12", "test-python-3.13", "playwright-app"}
    r = broken.run(*fast, "test-python-3.13", "smoke-test", "skip=build-js")
    assert r.rc == 1, r
    assert job(r, "build-js")["status"] == "filtered" and job(r, "test-python-3.13")["status"] == "failed"
    for name in ("build-wheel", "smoke-test"):
        assert job(r, name)["status"] == "not-run" and "needs build-js" in job(r, name)["reason"]


@pytest.mark.parametrize("mode", ["keep-going", "fast-fail"])
def test_first_jobs_on_the_demo(broken: Demo, mode: str) -> None:
    fast = [FAST] if mode == "fast-fail" else []
    r = broken.run(*fast, "test-python-3.13", "lint-python", "test-js", "first=test-python-3.13")
    assert r.rc == 1, r
    assert job(r, "test-python-3.13")["status"] == "failed"
    after = {"lint-python", "test-js"}
    if mode == "fast-fail":
        assert {job(r, n)["status"] for n in after} == {"not-run"}
    else:
        assert {job(r, n)["status"] for n in after} <= {"passed", "up-to-date"}
        end = job(r, "test-python-3.13")["end"]
        assert all(job(r, n)["start"] >= end for n in after)
