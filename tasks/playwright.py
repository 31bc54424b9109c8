"""Playwright suites: a browser against servers the job starts (or the suite starts itself)."""
from __future__ import annotations

from tasks.common import Kind, select_tests
from warmci.filters import Filters
from warmci.pipeline.model import Job, Step


class Playwright(Kind):
    name = "playwright"
    doc = "Playwright suite"
    estimate = 5.0
    tools = ("chromium",)  # the browser's version decides what the suite sees

    def testcases(self, job: Job, f: Filters) -> Job:
        """grep= / first-grep=: `--grep EXPR` on each step that runs `playwright test` (also at the end of a
        wrapper's command, as job_scripts/jupyter_suite.py passes its tail on); lf=1: `--last-failed` (from
        the suite's output dir). No match is not a failure."""
        if f.lf:
            job = select_tests(job, runs_playwright_test, ("--last-failed", "--pass-with-no-tests"), "lf=1",
                               first=False)
        expr = f.grep or f.first_grep
        if not expr:
            return job
        label = f"{'grep' if f.grep else 'first-grep'}={expr}"
        return select_tests(job, runs_playwright_test, ("--grep", expr, "--pass-with-no-tests"), label,
                            first=not f.grep)


def runs_playwright_test(step: Step) -> bool:
    return any(a == "playwright" and b == "test" for a, b in zip(step.cmd, step.cmd[1:], strict=False))
