"""Builds: the JS bundle (outputs in the tree) and the wheel (an artifact in the state dir)."""
from __future__ import annotations

from typing import Any

from tasks.common import FileIndex, base_task
from warmci.context import Context
from warmci.pipeline import Job, Pipeline
from warmci.uptodate import ArtifactsIntact


def js_build(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    return base_task(job, ctx, pipe, index, doc="build the JS bundle")


def wheel(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    """The wheel's manifest (file names + sha256) is the target that downstream jobs key on.

    A rebuild that yields identical bytes leaves the manifest identical, so
    the suites downstream of the wheel are not rerun.
    """
    task = base_task(job, ctx, pipe, index, tools=("uv",), doc="build the wheel")
    task["targets"] = task["targets"] + [ctx.manifest_file(job.name)]
    task["uptodate"].append(ArtifactsIntact(ctx.manifest_file(job.name), ctx.artifacts_dir(job.name)))
    return task
