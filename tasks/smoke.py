"""Smoke tests: the built wheel in a clean venv, imported and its entry points run."""
from __future__ import annotations

from typing import Any

from tasks.common import FileIndex, base_task
from warmci.context import Context
from warmci.pipeline import Job, Pipeline


def smoke(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    return base_task(job, ctx, pipe, index, doc="install the wheel into a clean venv and run it")
