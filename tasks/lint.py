"""Linters (ruff check and the like): read the sources, write nothing."""
from __future__ import annotations

from typing import Any

from tasks.common import FileIndex, base_task
from warmci.context import Context
from warmci.pipeline import Job, Pipeline


def lint(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    return base_task(job, ctx, pipe, index, doc="lint the sources")
