"""Playwright suites: a browser against servers the job starts (or the suite starts itself)."""
from __future__ import annotations

from tasks.common import Kind


class Playwright(Kind):
    name = "playwright"
    doc = "Playwright suite"
    estimate = 5.0
    tools = ("chromium",)  # the browser's version decides what the suite sees
