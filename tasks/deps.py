"""Dependency installs: a venv per Python version, and the JS workspace's node_modules.

Nobody writes these jobs: every pipeline gets them from its [python] and
[js] tables (`derived`), and every job with `python = "X.Y"` or `js = true`
needs the one that builds its environment.
"""
from __future__ import annotations

import os
from typing import Any

from tasks.common import FileIndex, Kind, base_task
from warmci.context import Context
from warmci.inputs.uptodate import PathExists, VenvIntact
from warmci.pipeline.model import JS_ENV, Job, JsSection, Pipeline, PythonSection, Step, venv_of

PYTHON_PREFIX = "install-python-deps"
JS_NAME = "install-js-deps"


class PythonDeps(Kind):
    """Keyed on the lockfiles and the interpreter; redone when the venv is gone or broken."""

    name = "python-deps"
    in_files = False
    tools = ("uv",)

    def task(self, job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
        task = base_task(job, ctx, pipe, index, self, inputs_are_locks=True)
        task["targets"] = [ctx.marker_file(job.name)]
        task["uptodate"].append(VenvIntact(ctx.venv_dir(job.python or "")))
        return task


class JsDeps(Kind):
    """Keyed on the lockfile and package.json files; redone when node_modules is gone."""

    name = "js-deps"
    in_files = False
    provides = JS_ENV

    def task(self, job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
        assert pipe.js is not None
        task = base_task(job, ctx, pipe, index, self, tools=pipe.js.tools, inputs_are_locks=True)
        task["targets"] = [ctx.marker_file(job.name)]
        task["uptodate"].append(PathExists(os.path.join(ctx.target, pipe.js.marker)))
        # What it makes lives in the checkout: the workspace's node_modules and each package's. They are
        # kept per key in the state dir (warmci.execute.reuse), so a return to a lockfile seen before
        # moves them back instead of installing.
        packages = {os.path.dirname(p) for p in index.inputs(job, job.inputs) if os.path.basename(p) == "package.json"}
        task["meta"]["warmci"]["env_dirs"] = sorted({os.path.normpath(os.path.join(d, "node_modules"))
                                                     for d in packages | {pipe.js.dir}})
        return task


def derived(python: PythonSection | None, js: JsSection | None, timeout: float, path: str) -> list[Job]:
    """The installs a pipeline gets from its [python] and [js] tables."""
    out: list[Job] = []
    common: dict[str, Any] = dict(pipeline=path, needs=[], exclude=(), outputs=(), tools=(), keyed_env=(),
                                  timeout=timeout, wheel=None, servers=(), ports=(), isolate=None, marker=True)
    if python is not None:
        for v in python.versions:
            # The sync gets UV_PYTHON (the interpreter the venv is made from); after_sync commands
            # must not: `uv pip install` would install into that base interpreter instead of the venv.
            after = (("UV_PYTHON", "{venv}/bin/python"),)
            steps = (Step(python.sync, name="sync"),) + tuple(Step(c, env=after, name="after_sync")
                                                              for c in python.after_sync)
            env = (("UV_COMPILE_BYTECODE", "1"), ("UV_PROJECT_ENVIRONMENT", "{venv}"), ("UV_PYTHON", "{interpreter}"))
            out.append(Job(
                name=f"{PYTHON_PREFIX}-{v}", kind=PythonDeps.name,
                doc=f"uv sync the locked Python dependencies into the Python {v} venv",
                inputs=python.lockfiles, cwd=python.project, python=v, js=False, steps=steps, env=env,
                provides=venv_of(v), builds_venv=True, entry={"python": python.entry, "version": v}, **common))
    if js is not None:
        out.append(Job(
            name=JS_NAME, kind=JsDeps.name, doc=f"install the locked JS dependencies in {js.dir}/",
            inputs=js.lockfiles, cwd=js.dir, python=None, js=False, steps=(Step(js.install, name="install"),),
            env=(), provides=JS_ENV, entry={"js": js.entry}, **common))
    return out
