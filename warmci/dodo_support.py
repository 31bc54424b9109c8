"""What dodo.py needs: the context, the validated pipeline, DOIT_CONFIG, the task list.

dodo.py passes in what warmci does not know: how job kinds read their
tables and become tasks (tasks/). Errors here are user errors (a bad
pipeline file, a missing target): printed plainly, exit 3, never a traceback.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from warmci import context, doitapi
from warmci.errors import WarmciError
from warmci.inputs import filestates, key
from warmci.pipeline import reading
from warmci.pipeline.model import Pipeline
from warmci.run import gitinfo, lifecycle, reporter
from warmci.status import EXIT_SETUP

TaskBuilder = Callable[[context.Context, Pipeline], Iterator[dict[str, Any]]]


def _setup_error(exc: WarmciError) -> NoReturn:
    print(f"warmci: error: {exc}", file=sys.stderr)
    raise SystemExit(EXIT_SETUP) from None


def load(get_var: Callable[[str, str | None], str | None],
         kinds: reading.KindReader) -> tuple[context.Context, Pipeline]:
    try:
        ctx = context.resolve(get_var)
        pipe = reading.load(ctx.pipeline, kinds)
        sha, branch = gitinfo.head(ctx.target)
        ctx = dataclasses.replace(ctx, deadline=time.time() + pipe.deadline, sha=sha, branch=branch)
    except WarmciError as exc:
        _setup_error(exc)
    os.makedirs(ctx.state, exist_ok=True)  # doit opens its DB here before any task runs
    return ctx, pipe


def doit_config(ctx: context.Context) -> dict[str, Any]:
    """DOIT_CONFIG; a run of this process goes through warmci's lifecycle (lock, signals, exit code)."""
    life = lifecycle.Lifecycle(ctx)
    doitapi.control_runs(life)
    doitapi.resolve_names()
    doitapi.on_dispatch(key.stamp(ctx))  # each job doit runs carries its whole key to its worker
    return {
        "dep_file": ctx.db_file,
        "backend": "sqlite3",  # pinned: dbm's flavour differs between machines
        # By content, never by mtime (doit's md5 checker trusts an unchanged mtime).
        "check_file_uptodate": doitapi.content_checker(filestates.of(ctx)),
        "num_process": os.cpu_count() or 1,
        "par_type": "process",
        "continue": True,  # every independent job reports; `--no-continue` stops at the first failure
        "reporter": reporter.make_reporter(ctx, life.record),
        "verbosity": 1,
    }


def tasks(ctx: context.Context, pipe: Pipeline, build: TaskBuilder) -> Iterator[dict[str, Any]]:
    try:
        yield from build(ctx, pipe)
    except WarmciError as exc:
        _setup_error(exc)
