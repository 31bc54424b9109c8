"""All of a pipeline's tasks, each built by its job kind, in dispatch order."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks import common, registry
from warmci.context import Context
from warmci.inputs import filestates, why
from warmci.pipeline.model import Pipeline
from warmci.run import history, schedule


def tasks(ctx: Context, pipe: Pipeline) -> Iterator[dict[str, Any]]:
    index = common.FileIndex(ctx, pipe)
    built = [registry.KINDS[job.kind].task(job, ctx, pipe, index) for job in pipe.jobs.values()]
    last = history.load(ctx.state)  # one read per run: the run itself updates it only at the end
    states = filestates.of(ctx)
    for task in built:
        # Last on purpose: it runs after the checks that decide, and records why (warmci.inputs.why).
        task["uptodate"].append(why.Probe(ctx.target, last, states))
    if schedule.mode() == "critical-path":
        schedule.install()
        built = schedule.prioritize(built, history.durations(last))
    yield from built
