"""All of a pipeline's tasks, each built by its job family's module, in dispatch order."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tasks import build, common, deps, jstests, lint, playwright, pytests, smoke
from warmci import history, schedule, why
from warmci.context import Context
from warmci.pipeline import Job, Pipeline

Creator = Callable[[Job, Context, Pipeline, common.FileIndex], dict[str, Any]]

FAMILIES: dict[str, Creator] = {
    "python-deps": deps.python_deps,
    "js-deps": deps.js_deps,
    "lint": lint.lint,
    "js-build": build.js_build,
    "wheel": build.wheel,
    "js-test": jstests.js_test,
    "pytest": pytests.pytest,
    "smoke": smoke.smoke,
    "playwright": playwright.playwright,
    "command": common.base_task,
}


def tasks(ctx: Context, pipe: Pipeline) -> Iterator[dict[str, Any]]:
    index = common.FileIndex(ctx, pipe)
    built = [FAMILIES[job.kind](job, ctx, pipe, index) for job in pipe.jobs.values()]
    for task in built:
        # Last on purpose: it runs after the checks that decide, and records why (warmci.why).
        task["uptodate"].append(why.Probe(ctx.target, ctx.state))
    if schedule.mode() == "critical-path":
        schedule.install()
        built = schedule.prioritize(built, history.durations(ctx.state))
    yield from built
