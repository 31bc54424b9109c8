"""Python test suites: pytest in the per-version venv, xdist bulk plus a timing-dependent run."""
from __future__ import annotations

from typing import Any

from tasks.common import FileIndex, base_task
from warmci.context import Context
from warmci.pipeline import Job, Pipeline


def pytest(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    return base_task(job, ctx, pipe, index, doc=f"pytest on Python {job.python}")
