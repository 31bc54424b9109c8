"""Python test suites: pytest in the per-version venv, an xdist bulk plus a timing-dependent run.

A pytest job's table holds what to test (args, mark, ignore, deselect,
xdist, timing_marker, timing_tests, testmon); the commands are built from it.

Each job keeps pytest's cache in the state dir (STATE/pytest-cache/JOB, never
in the shared source tree) and runs the tests that failed last time first
(`--failed-first`). With `testmon = true` (the target's environment must
have pytest-testmon), a first pass runs the tests that exercise the files
changed since the last full run (testmon's data, STATE/work/JOB/testmondata.sqlite,
written by the full suite), before the full suite, which alone decides.
"""
from __future__ import annotations

from tasks.common import Kind, select_tests
from warmci.filters import Filters
from warmci.pipeline.model import Job, Step
from warmci.pipeline.table import Table

CACHE = ("-o", "cache_dir={state}/pytest-cache/{job}", "--failed-first")
TESTMON_DATA = (("TESTMON_DATAFILE", "{work}/testmondata.sqlite"),)  # the job's work dir is kept between runs
TESTMON_FIRST = "testmon"
TESTMON_COLLECT = "--testmon-noselect"  # the full suite runs everything and records what each test executes


class Pytest(Kind):
    name = "pytest"
    estimate = 2.0

    def read(self, t: Table, job: Job) -> None:
        _read(t, job)

    def describe(self, job: Job) -> str:
        return job.doc or f"pytest on Python {job.python}"

    def testcases(self, job: Job, f: Filters) -> Job:
        """k= / first-k=: `-k EXPR` on each pytest command; lf=1: `--lf` (only what failed last time, from
        the job's cache; nothing when nothing failed). "No test matched" (exit 5) is not a failure."""
        if f.lf:
            job = select_tests(job, runs_pytest, ("--lf", "--lfnf=none"), "lf=1", first=False, no_match_ok=5,
                               strip=(TESTMON_COLLECT, "--failed-first"))
        expr = f.k or f.first_k
        if not expr:
            return job
        label = f"{'k' if f.k else 'first-k'}={expr}"
        return select_tests(job, runs_pytest, ("-k", expr), label, first=not f.k, no_match_ok=5,
                            strip=(TESTMON_COLLECT,))


def runs_pytest(step: Step) -> bool:
    return step.cmd[:3] == ("python", "-m", "pytest")


def _read(t: Table, job: Job) -> None:
    if job.python is None and job.wheel is None:
        raise t.fail("python", "a pytest job runs in a Python environment: set python = \"3.x\"")
    args = t.strings("args")
    xdist = t.get("xdist", (int, str), 0)
    if isinstance(xdist, str) and xdist != "auto":
        raise t.fail("xdist", f"expected a number of workers or \"auto\", got {xdist!r}")
    marker = t.get("timing_marker", str, "")
    mark = t.get("mark", str, "")
    ignore = t.strings("ignore")
    deselect = t.strings("deselect")
    timing_tests = t.strings("timing_tests")
    testmon = t.get("testmon", bool, False)
    if "cmd" in t.data or "steps" in t.data:
        raise t.fail("cmd", "a pytest job builds its own commands; use args, xdist, timing_marker, ignore, deselect")
    if "-m" in args or any(a.startswith("-m") and len(a) > 2 and not a.startswith("--") for a in args):
        raise t.fail("args", "select tests by marker with `mark = \"EXPR\"`, not -m in args: pytest keeps only "
                     "the last -m, so the timing_marker split would silently drop it")
    base = ["python", "-m", "pytest", *CACHE, *args]
    base += [f"--ignore={p}" for p in ignore]
    for node in deselect:
        base += ["--deselect", node]
    bulk = list(base)
    for node in timing_tests:
        bulk += ["--deselect", node]
    if xdist:
        bulk += ["-n", str(xdist)]
    steps = []
    bulk_mark = f"({mark}) and not {marker}" if marker and mark else f"not {marker}" if marker else mark
    if testmon:
        # Only the tests the changed files reach (and the bulk's marks select); none at all is fine (exit 5).
        # Before any full suite recorded testmon's data there is nothing to select from: then it does not run.
        first = [*base, "--testmon-forceselect", "--testmon-nocollect", *(["-m", bulk_mark] if bulk_mark else [])]
        steps.append(Step(tuple(first), (0, 5), env=TESTMON_DATA, name="changed files",
                          first_pass=TESTMON_FIRST, only_if=TESTMON_DATA[0][1]))
        bulk += [TESTMON_COLLECT]
    bulk_env = TESTMON_DATA if testmon else ()
    if marker:
        bulk += ["-m", bulk_mark]
        steps.append(Step(tuple(bulk), (0,), env=bulk_env, name="bulk"))
        # Timing-dependent tests get a process of their own, without xdist's
        # contention; "no test carries the marker" (exit 5) is not a failure.
        steps.append(Step((*base, "-m", f"({mark}) and {marker}" if mark else marker), (0, 5), name=marker))
    else:
        if mark:
            bulk += ["-m", mark]
        steps.append(Step(tuple(bulk), (0,), env=bulk_env, name="bulk"))
    if timing_tests:
        # Named wall-clock-sensitive tests (for a checkout whose tests lack the marker): their
        # own process after the bulk, without xdist; every one must exist and run (exit 0 only).
        timed = ["python", "-m", "pytest", *CACHE, *timing_tests]
        timed += [f"--ignore={p}" for p in ignore]
        for node in deselect:
            timed += ["--deselect", node]
        steps.append(Step(tuple(timed + (["-m", mark] if mark else [])), (0,), name="timing_tests"))
    job.steps = tuple(steps)
