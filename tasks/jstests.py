"""JS unit tests, run in the installed JS workspace."""
from __future__ import annotations

from tasks.common import Kind


class JsTest(Kind):
    name = "js-test"
    doc = "JS unit tests"
