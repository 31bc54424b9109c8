"""Dependency installs: a venv per Python version, and the JS workspace's node_modules."""
from __future__ import annotations

import os
from typing import Any

from tasks.common import FileIndex, base_task
from warmci.context import Context
from warmci.pipeline import Job, Pipeline
from warmci.uptodate import PathExists, VenvIntact


def python_deps(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    """Keyed on the lockfiles and the interpreter; redone when the venv is gone or broken."""
    task = base_task(job, ctx, pipe, index, tools=("uv",))
    task["targets"] = [ctx.marker_file(job.name)]
    task["uptodate"].append(VenvIntact(ctx.venv_dir(job.python or "")))
    return task


def js_deps(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    """Keyed on the lockfile and package.json files; redone when node_modules is gone."""
    assert pipe.js is not None
    task = base_task(job, ctx, pipe, index, tools=pipe.js.tools)
    task["targets"] = [ctx.marker_file(job.name)]
    task["uptodate"].append(PathExists(os.path.join(ctx.target, pipe.js.marker)))
    return task
