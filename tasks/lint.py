"""Linters (ruff check and the like): read the sources, write nothing."""
from __future__ import annotations

from tasks.common import Kind


class Lint(Kind):
    name = "lint"
    doc = "lint the sources"
    estimate = 0.5
