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
    from tasks import graph, registry
    from warmci import context
    from warmci.pipeline import reading

    vars_ = {"target": str(target), "state": str(state), "pipeline": str(pipeline) if pipeline else None}
    ctx = context.resolve(lambda name, default=None: vars_.get(name) or default, environ={})
    pipe = reading.load(ctx.pipeline, registry.READER)
    out = {name: JobInfo(list(job.needs)) for name, job in pipe.jobs.items()}
    try:

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


def list_schedule(needs: Mapping[str, Iterable[str]], durations: Mapping[str, float], workers: int) -> float:
    """Makespan of a zero-overhead run that starts, whenever a worker is free, the ready job with the
    longest remaining path: what the measured durations allow with a perfect dispatcher."""
    jobs = [n for n in durations]
    deps = {n: [d for d in needs.get(n, ()) if d in durations] for n in jobs}
    dependents: dict[str, list[str]] = {n: [] for n in jobs}
    for n, ds in deps.items():
        for d in ds:
            dependents[d].append(n)
    tail: dict[str, float] = {}

    def remaining(n: str) -> float:
        if n not in tail:
            tail[n] = durations[n] + max((remaining(m) for m in dependents[n]), default=0.0)
        return tail[n]

    done: set[str] = set()
    running: list[tuple[float, str]] = []
    started: set[str] = set()
    now = 0.0
    while len(done) < len(jobs):
        ready = sorted((n for n in jobs if n not in started and all(d in done for d in deps[n])),
                       key=lambda n: -remaining(n))
        while ready and len(running) < workers:
            n = ready.pop(0)
            started.add(n)
            running.append((now + durations[n], n))
        if not running:
            break  # unreachable for an acyclic graph
        running.sort()
        now, finished = running.pop(0)
        done.add(finished)
    return now
