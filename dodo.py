"""warmci: the target repository's CI jobs as doit tasks.

    doit                         run the whole pipeline (parallel, keep going)
    doit list / doit info JOB    the jobs, and whether JOB is up to date
    doit test-python-3.13        one job and only what it needs
    doit target=PATH pipeline=FILE state=DIR ...   another target / profile / state dir
"""
from collections.abc import Iterator
from typing import Any

from doit import get_var

from tasks import graph, registry
from warmci import dodo_support

CTX, PIPELINE = dodo_support.load(get_var, registry.READER)
DOIT_CONFIG = dodo_support.doit_config(CTX)


def task_warmci() -> Iterator[dict[str, Any]]:
    yield from dodo_support.tasks(CTX, PIPELINE, graph.tasks)
