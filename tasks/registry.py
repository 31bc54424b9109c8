"""The one registry of job kinds: each kind's class, and what the pipeline reader needs of them.

warmci's engine never imports tasks/: dodo.py hands READER to the pipeline
reader (how each kind reads its table, the installs every pipeline gets)
and tasks.graph turns each job into its kind's task.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from tasks import build, command, deps, jstests, lint, playwright, pytests, smoke
from tasks.common import Kind
from warmci.pipeline.model import Job, JsSection, PythonSection
from warmci.pipeline.table import Table

KINDS: dict[str, Kind] = {k.name: k for k in (
    command.Command(), lint.Lint(), build.JsBuild(), build.Wheel(), jstests.JsTest(), pytests.Pytest(),
    smoke.Smoke(), playwright.Playwright(), deps.PythonDeps(), deps.JsDeps(),
)}


class Reader:
    """What warmci.pipeline.reading needs to know of job kinds (its KindReader)."""

    default = command.Command.name
    makers: Mapping[str, str] = {k.provides: k.name for k in KINDS.values() if k.provides}

    def names(self) -> Sequence[str]:
        return [name for name, kind in KINDS.items() if kind.in_files]

    def read(self, kind: str, table: Table, job: Job) -> None:
        KINDS[kind].read(table, job)

    def derived(self, python: PythonSection | None, js: JsSection | None, timeout: float,
                path: str) -> list[Job]:
        return deps.derived(python, js, timeout, path)

    def reserved(self) -> tuple[str, ...]:
        return (deps.PYTHON_PREFIX, deps.JS_NAME)


READER = Reader()
