"""Python test suites: pytest in the per-version venv, an xdist bulk plus a timing-dependent run.

A pytest job's table holds what to test (args, mark, ignore, deselect,
xdist, timing_marker, timing_tests); the commands are built from it.
"""
from __future__ import annotations

from tasks.common import Kind
from warmci.pipeline.model import Job, Step
from warmci.pipeline.table import Table


class Pytest(Kind):
    name = "pytest"
    estimate = 2.0

    def read(self, t: Table, job: Job) -> None:
        _read(t, job)

    def describe(self, job: Job) -> str:
        return job.doc or f"pytest on Python {job.python}"


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
    if "cmd" in t.data or "steps" in t.data:
        raise t.fail("cmd", "a pytest job builds its own commands; use args, xdist, timing_marker, ignore, deselect")
    if "-m" in args or any(a.startswith("-m") and len(a) > 2 and not a.startswith("--") for a in args):
        raise t.fail("args", "select tests by marker with `mark = \"EXPR\"`, not -m in args: pytest keeps only "
                     "the last -m, so the timing_marker split would silently drop it")
    # The cache plugin writes .pytest_cache into the shared source tree.
    base = ["python", "-m", "pytest", "-p", "no:cacheprovider", *args]
    base += [f"--ignore={p}" for p in ignore]
    for node in deselect:
        base += ["--deselect", node]
    bulk = list(base)
    for node in timing_tests:
        bulk += ["--deselect", node]
    if xdist:
        bulk += ["-n", str(xdist)]
    steps = []
    if marker:
        bulk += ["-m", f"({mark}) and not {marker}" if mark else f"not {marker}"]
        steps.append(Step(tuple(bulk), (0,), name="bulk"))
        # Timing-dependent tests get a process of their own, without xdist's
        # contention; "no test carries the marker" (exit 5) is not a failure.
        steps.append(Step((*base, "-m", f"({mark}) and {marker}" if mark else marker), (0, 5), name=marker))
    else:
        if mark:
            bulk += ["-m", mark]
        steps.append(Step(tuple(bulk), (0,), name="bulk"))
    if timing_tests:
        # Named wall-clock-sensitive tests (for a checkout whose tests lack the marker): their
        # own process after the bulk, without xdist; every one must exist and run (exit 0 only).
        timed = ["python", "-m", "pytest", "-p", "no:cacheprovider", *timing_tests]
        timed += [f"--ignore={p}" for p in ignore]
        for node in deselect:
            timed += ["--deselect", node]
        steps.append(Step(tuple(timed + (["-m", mark] if mark else [])), (0,), name="timing_tests"))
    job.steps = tuple(steps)
