"""Plain commands: a job whose table says what to run and nothing more (the default kind)."""
from __future__ import annotations

from tasks.common import Kind


class Command(Kind):
    name = "command"
