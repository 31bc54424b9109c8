"""The pipeline's jobs as warmci builds them: needs, and the files each one keys on.

Read in this process from the same code dodo.py runs (building the task list
has no side effects), so critical paths, handoff pairs and "which jobs
depend on this file" use exactly the graph doit ran.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JobInfo:
    needs: list[str]
    file_dep: set[str] = field(default_factory=set)


def load(target: Path, state: Path, pipeline: Path | None = None) -> dict[str, JobInfo]:
    """name -> JobInfo; file_dep stays empty when the task list cannot be built here."""
    from warmci import context
    from warmci import pipeline as pipeline_mod

    vars_ = {"target": str(target), "state": str(state), "pipeline": str(pipeline) if pipeline else None}
    ctx = context.resolve(lambda name, default=None: vars_.get(name) or default, environ={})
    pipe = pipeline_mod.load(ctx.pipeline)
    out = {name: JobInfo(list(job.needs)) for name, job in pipe.jobs.items()}
    try:
        from tasks import graph

        for task in graph.tasks(ctx, pipe):
            info = out.get(task["basename"])
            if info is not None:
                info.file_dep = set(task.get("file_dep", ()))
    except Exception:  # the graph is only used to explain results: a failure here must not stop the bench
        pass
    return out


def dependents(jobs: Mapping[str, JobInfo], roots: Iterable[str]) -> set[str]:
    """roots and every job that needs one of them, directly or not."""
    out = set(roots)
    changed = True
    while changed:
        changed = False
        for name, info in jobs.items():
            if name not in out and any(n in out for n in info.needs):
                out.add(name)
                changed = True
    return out


def keyed_on(jobs: Mapping[str, JobInfo], path: str) -> set[str]:
    """Jobs whose own inputs include `path` (absolute)."""
    return {name for name, info in jobs.items() if path in info.file_dep}


def critical_path(needs: Mapping[str, Iterable[str]], durations: Mapping[str, float]) -> tuple[float, list[str]]:
    """Longest chain of `needs` by duration, over the jobs in `durations` (others count 0)."""
    memo: dict[str, tuple[float, list[str]]] = {}

    def longest(name: str, trail: frozenset[str]) -> tuple[float, list[str]]:
        if name in memo:
            return memo[name]
        best: tuple[float, list[str]] = (0.0, [])
        for dep in needs.get(name, ()):
            if dep in trail:
                continue  # a cycle cannot come from a validated pipeline; never loop on one
            cand = longest(dep, trail | {name})
            if cand[0] > best[0]:
                best = cand
        result = (best[0] + durations.get(name, 0.0), best[1] + [name])
        memo[name] = result
        return result

    return max((longest(n, frozenset()) for n in needs), default=(0.0, []), key=lambda r: r[0])
