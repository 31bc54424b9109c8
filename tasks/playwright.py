"""Playwright suites: a browser against servers the job starts (or the suite starts itself)."""
from __future__ import annotations

from typing import Any

from tasks.common import FileIndex, base_task
from warmci.context import Context
from warmci.pipeline import Job, Pipeline


def playwright(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
    # The browser's version decides what the suite sees, so it is part of the key.
    return base_task(job, ctx, pipe, index, tools=("chromium",), doc="Playwright suite")
