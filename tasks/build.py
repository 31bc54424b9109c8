"""Builds: the JS bundle (outputs in the tree) and the wheel (an artifact in the state dir)."""
from __future__ import annotations

from typing import Any

from tasks.common import FileIndex, Kind, base_task
from warmci.context import Context
from warmci.inputs.uptodate import ArtifactsIntact
from warmci.pipeline.model import WHEEL, Job, Pipeline
from warmci.pipeline.table import Table


class JsBuild(Kind):
    name = "js-build"
    doc = "build the JS bundle"


class Wheel(Kind):
    """Downstream jobs key on the wheel's normalized content (warmci.inputs.wheelkey), not its bytes.

    A rebuild whose files are the same, whatever version git gave it, leaves
    the key file identical, so the suites downstream of the wheel are not
    rerun; the manifest (file names + sha256) finds the wheel and checks it is intact.
    """

    name = "wheel"
    doc = "build the wheel"
    provides = WHEEL
    tools = ("uv",)

    def read(self, t: Table, job: Job) -> None:
        super().read(t, job)
        job.artifacts = True

    def task(self, job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
        task = base_task(job, ctx, pipe, index, self)
        task["targets"] = task["targets"] + [ctx.manifest_file(job.name), ctx.key_file(job.name)]
        task["uptodate"].append(ArtifactsIntact(ctx.manifest_file(job.name), ctx.artifacts_dir(job.name)))
        return task
