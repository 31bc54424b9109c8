"""What dodo.py needs: the context, the validated pipeline, DOIT_CONFIG.

Errors here are user errors (a bad pipeline file, a missing target): print
them plainly and exit 3 (doit's "setup error"), never a traceback.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from warmci import context, pipeline, reporter
from warmci.errors import WarmciError


def load(get_var: Callable[[str, str | None], str | None]) -> tuple[context.Context, pipeline.Pipeline]:
    try:
        ctx = context.resolve(get_var)
        pipe = pipeline.load(ctx.pipeline)
        ctx = dataclasses.replace(ctx, deadline=time.time() + pipe.deadline)
    except WarmciError as exc:
        print(f"warmci: error: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    os.makedirs(ctx.state, exist_ok=True)  # doit opens its DB here before any task runs
    return ctx, pipe


def doit_config(ctx: context.Context) -> dict[str, Any]:
    return {
        "dep_file": ctx.db_file,
        "backend": "sqlite3",  # pinned: dbm's flavour differs between machines
        "check_file_uptodate": "md5",
        "num_process": os.cpu_count() or 1,
        "par_type": "process",
        "continue": True,  # every independent job reports; `--no-continue` stops at the first failure
        "reporter": reporter.make_reporter(ctx),
        "verbosity": 1,
    }


def tasks(ctx: context.Context, pipe: pipeline.Pipeline) -> Iterator[dict[str, Any]]:
    from tasks import graph  # the runner's own tasks package, not the target's

    try:
        yield from graph.tasks(ctx, pipe)
    except WarmciError as exc:
        print(f"warmci: error: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
