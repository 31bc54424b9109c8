"""Smoke tests: the built wheel in a clean venv, imported and its entry points run."""
from __future__ import annotations

from tasks.common import Kind


class Smoke(Kind):
    name = "smoke"
    doc = "install the wheel into a clean venv and run it"
