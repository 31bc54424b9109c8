"""The task dict every job family starts from: inputs, deps, skip key, action."""
from __future__ import annotations

import bisect
import os
from typing import Any

from warmci import files, jobenv
from warmci.context import RUNNER_ROOT, Context
from warmci.errors import PipelineError
from warmci.jobrun import run_job
from warmci.pipeline import Job, Pipeline
from warmci.uptodate import InputsKey


class FileIndex:
    """The target's files, walked once, and each job's inputs among them."""

    def __init__(self, ctx: Context, pipe: Pipeline) -> None:
        self.ctx, self.pipe = ctx, pipe
        self._files: list[str] | None = None
        self._plain: list[str] | None = None
        self._matches: dict[str, list[str]] = {}
        # Declared outputs are never inputs by pattern: a job gets another's
        # output only through `needs`, so no hidden edges or cycles appear.
        self.outputs = {o for j in pipe.jobs.values() for o in j.outputs}

    @property
    def files(self) -> list[str]:
        if self._files is None:
            self._files = files.walk(self.ctx.target, self.pipe.ignore)
        return self._files

    def matches(self, pattern: str) -> list[str]:
        """Files (not outputs) a pattern matches; patterns repeat across jobs, so each is matched once.

        The pattern's literal directory prefix narrows the sorted file list by
        bisection before any regex runs: at 50k files this is what keeps
        building the task list cheap.
        """
        if pattern not in self._matches:
            if self._plain is None:
                self._plain = [f for f in self.files if f not in self.outputs]
            literal = pattern.strip("/")
            cut = min((i for i in (literal.find(c) for c in "*?[") if i >= 0), default=len(literal))
            prefix = literal[:cut].rpartition("/")[0] + "/" if "/" in literal[:cut] else ""
            lo = bisect.bisect_left(self._plain, prefix)
            hi = bisect.bisect_left(self._plain, prefix + "\uffff") if prefix else len(self._plain)
            rx = files.pattern_regex(pattern)
            self._matches[pattern] = [f for f in self._plain[lo:hi] if rx.match(f)]
        return self._matches[pattern]

    def path(self, rel: str) -> str:
        # One spelling for every path, so a file_dep equals its producer's target string.
        return os.path.normpath(os.path.join(self.ctx.target, rel))

    def inputs(self, job: Job, patterns: tuple[str, ...], key: str = "inputs") -> list[str]:
        out: list[str] = []
        exclude = [files.pattern_regex(p) for p in job.exclude]
        for pattern in patterns:
            hits = [f for f in self.matches(pattern) if not any(r.match(f) for r in exclude)]
            if not hits and not any(files.pattern_regex(pattern).match(o) for o in self.outputs):
                raise PipelineError(self.pipe.path, f"jobs.{job.name}.{key}",
                                    f"pattern {pattern!r} matches no file in {self.ctx.target}; "
                                    "fix or remove it (a typo here would hide changes from the skip check)")
            out += hits
        return sorted(set(out))


def runner_scripts(job: Job) -> list[str]:
    """warmci's own files a job's commands run (`{runner}/...`): editing one reruns the job."""
    args = [a for step in job.steps for a in step.cmd] + [a for srv in job.servers for a in srv.cmd]
    out = []
    for arg in args:
        if arg.startswith("{runner}/"):
            path = os.path.normpath(os.path.join(RUNNER_ROOT, arg[len("{runner}/"):]))
            if os.path.isfile(path):
                out.append(path)
    return out


def env_lockfiles(pipe: Pipeline, job: Job) -> tuple[str, ...]:
    """Lockfiles of the environments a job runs in: a lock change reruns it."""
    locks: tuple[str, ...] = ()
    if (job.python or job.wheel) and pipe.python:
        locks += pipe.python.lockfiles
    if job.js and pipe.js:
        locks += pipe.js.lockfiles
    return locks


def base_task(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex, *,
              tools: tuple[str, ...] = (), doc: str = "") -> dict[str, Any]:
    deps = index.inputs(job, job.inputs)
    if job.kind in ("python-deps", "js-deps"):
        locks = list(deps)
    elif env_lockfiles(pipe, job):
        locks = index.inputs(job, env_lockfiles(pipe, job), "inputs (environment lockfiles)")
        deps += locks
    else:
        locks = []
    file_dep = [index.path(f) for f in deps] + runner_scripts(job)
    for need in job.needs:
        file_dep += [index.path(o) for o in pipe.jobs[need].outputs]
        if pipe.jobs[need].kind == "wheel":
            file_dep.append(ctx.manifest_file(need))
    all_tools = tuple(job.tools) + tools
    if job.js and pipe.js:
        all_tools += pipe.js.tools
    if job.wheel is not None:
        all_tools += ("uv",)
    python = job.python or (job.wheel.python if job.wheel else None)
    key = InputsKey(ctx, job.entry, tuple(dict.fromkeys(all_tools)), python, jobenv.keyed_names(pipe, job))
    return {
        "basename": job.name,
        "doc": job.doc or doc or f"{job.kind} job {job.name}",
        "actions": [(run_job, [job.name, ctx.as_dict()])],
        "file_dep": sorted(set(file_dep)),
        "targets": [index.path(o) for o in job.outputs],
        "task_dep": list(job.needs),
        "uptodate": [key],
        # lockfiles: so that warmci.why can say "lockfile uv.lock changed" rather than "file".
        "meta": {"warmci": {"kind": job.kind, "ports": list(job.ports), "timeout": job.timeout,
                            "lockfiles": sorted({index.path(f) for f in locks})}},
    }
