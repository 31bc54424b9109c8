"""The protocol every job kind follows, and the task dict every kind starts from.

A kind (one class per kind, in the module of its family) says what its
table in a pipeline file may hold (`read`), what its jobs provide to
others, and what doit task a job of it becomes (`task`). tasks.registry
lists them all; nothing outside tasks/ branches on a kind.
"""
from __future__ import annotations

import ast
import bisect
import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any, ClassVar

from warmci.context import RUNNER_ROOT, Context
from warmci.errors import PipelineError
from warmci.execute.jobrun import run_job
from warmci.filters import Filters
from warmci.inputs import files
from warmci.inputs.uptodate import InputsKey
from warmci.pipeline.model import Job, Pipeline, Step
from warmci.pipeline.reading import read_steps
from warmci.pipeline.table import Table


class Kind:
    """A job kind; subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    doc: ClassVar[str] = ""  # what `doit list` shows for a job without a doc of its own
    estimate: ClassVar[float] = 1.0  # its usual seconds on the demo: orders a run that has no history yet
    in_files: ClassVar[bool] = True  # a pipeline file may name it (the installs are derived instead)
    provides: ClassVar[str] = ""  # what its jobs provide to others (warmci.pipeline.model)
    tools: ClassVar[tuple[str, ...]] = ()  # tools whose version is part of its jobs' key

    def read(self, t: Table, job: Job) -> None:
        """The keys of its table beyond the common ones; sets the job's steps and what it provides."""
        job.steps = read_steps(t)
        job.provides = self.provides

    def describe(self, job: Job) -> str:
        return job.doc or self.doc or f"{self.name} job {job.name}"

    def task(self, job: Job, ctx: Context, pipe: Pipeline, index: FileIndex) -> dict[str, Any]:
        return base_task(job, ctx, pipe, index, self)

    def testcases(self, job: Job, f: Filters) -> Job:
        """The job as this run's testcase filters (k=, grep=, first-k=, first-grep=, lf=) make it; most kinds
        run no test cases a filter could select, and stay as they are."""
        return job


def select_tests(job: Job, is_suite: Callable[[Step], bool], args: tuple[str, ...], label: str, *,
                 first: bool, no_match_ok: int | None = None, strip: tuple[str, ...] = ()) -> Job:
    """A job's suite steps with `args` added (e.g. ("-k", EXPR)).

    `first`: as a first pass, a filtered copy of each suite step goes before the
    first suite step, and the full suite follows and decides (the job is not
    filtered). Otherwise the suite steps themselves are filtered, and so is the
    job (`label` enters its key: such a success is never the job's). A first
    pass of the kind's own (testmon's) is dropped from a filtered job.
    `no_match_ok`: the exit code meaning "no test matched", which passes.
    `strip`: arguments the copies drop (ones that write data of the full suite).
    """

    def narrowed(step: Step, first_pass: str) -> Step:
        cmd = tuple(a for a in step.cmd if a not in strip) + args
        ok = step.ok_exit + ((no_match_ok,) if no_match_ok is not None and no_match_ok not in step.ok_exit else ())
        return dataclasses.replace(step, cmd=cmd, ok_exit=ok, first_pass=first_pass,
                                   name=f"{step.name or step.cmd[0]} ({label})")

    suites = [s for s in job.steps if is_suite(s) and not s.first_pass]
    if not suites:
        return job
    if not first:
        steps = tuple(narrowed(s, "") if s in suites else s for s in job.steps if not s.first_pass)
        return dataclasses.replace(job, steps=steps, filtered=" ".join(x for x in (job.filtered, label) if x))
    at = next(i for i, s in enumerate(job.steps) if is_suite(s))
    copies = tuple(narrowed(s, label) for s in suites)
    return dataclasses.replace(job, steps=job.steps[:at] + copies + job.steps[at:])


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
    """The runner's own files a job's commands run (`{runner}/job_scripts/...`), and the sibling modules
    those import (`job_scripts/phases.py`): editing one reruns the job."""
    args = [a for step in job.steps for a in step.cmd] + [a for srv in job.servers for a in srv.cmd]
    out = []
    for arg in args:
        if arg.startswith("{runner}/"):
            path = os.path.normpath(os.path.join(RUNNER_ROOT, arg[len("{runner}/"):]))
            if os.path.isfile(path):
                out += [path, *_sibling_imports(path)]
    return sorted(set(out))


@functools.cache
def _sibling_imports(script: str) -> tuple[str, ...]:
    """Modules beside a Python script that it imports (read once per process, never run)."""
    if not script.endswith(".py"):
        return ()
    try:
        with open(script) as fh:
            tree = ast.parse(fh.read(), script)
    except (OSError, SyntaxError, ValueError):
        return ()
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    here = os.path.dirname(script)
    return tuple(sorted(os.path.join(here, f"{m}.py") for m in names
                        if os.path.isfile(os.path.join(here, f"{m}.py"))))


def env_lockfiles(pipe: Pipeline, job: Job) -> tuple[str, ...]:
    """Lockfiles of the environments a job runs in: a lock change reruns it."""
    locks: tuple[str, ...] = ()
    if (job.python or job.wheel) and pipe.python:
        locks += pipe.python.lockfiles
    if job.js and pipe.js:
        locks += pipe.js.lockfiles
    return locks


def base_task(job: Job, ctx: Context, pipe: Pipeline, index: FileIndex, kind: Kind, *,
              tools: tuple[str, ...] = (), inputs_are_locks: bool = False) -> dict[str, Any]:
    """The task of a job: its files, the jobs it needs, its key (InputsKey) and its action (run_job).

    `inputs_are_locks`: the job's own inputs are lockfiles (an install), so
    warmci.inputs.why names a change to one as a lockfile.
    """
    deps = index.inputs(job, job.inputs)
    if inputs_are_locks:
        locks = list(deps)
    elif env_lockfiles(pipe, job):
        locks = index.inputs(job, env_lockfiles(pipe, job), "inputs (environment lockfiles)")
        deps += locks
    else:
        locks = []
    file_dep = [index.path(f) for f in deps] + runner_scripts(job)
    for need in job.needs:
        file_dep += [index.path(o) for o in pipe.jobs[need].outputs]
        if pipe.jobs[need].artifacts:
            # Its normalized content, not its bytes: a wheel whose version alone changed reruns nothing.
            file_dep.append(ctx.key_file(need))
    all_tools = tuple(job.tools) + kind.tools + tools
    if job.js and pipe.js:
        all_tools += pipe.js.tools
    if job.wheel is not None:
        all_tools += ("uv",)
    key = InputsKey(ctx, job.entry, tuple(dict.fromkeys(all_tools)), job.python_version, job.keyed_env,
                    filtered=job.filtered)
    return {
        "basename": job.name,
        "doc": kind.describe(job),
        "actions": [(run_job, [job, ctx])],
        "file_dep": sorted(set(file_dep)),
        "targets": [index.path(o) for o in job.outputs],
        "task_dep": list(job.needs),
        "uptodate": [key],
        # lockfiles: so that warmci.inputs.why can say "lockfile uv.lock changed" rather than "file".
        "meta": {"warmci": {"kind": job.kind, "group": job.group, "ports": list(job.ports), "timeout": job.timeout,
                            "estimate": kind.estimate, "lockfiles": sorted({index.path(f) for f in locks}),
                            **({"filter": job.filtered} if job.filtered else {})}},
    }
