"""Checks across jobs, after each table was read: needs, providers, cycles, ports, placeholders."""
from __future__ import annotations

import string
from collections.abc import Mapping

from warmci.errors import PipelineError
from warmci.pipeline.model import PLACEHOLDERS, WHEEL, Job, Pipeline
from warmci.pipeline.table import Table


def resolve_needs(pipe: Pipeline) -> None:
    """Each job's needs as job names: what it requires first, then its own, a matrix base name expanded."""
    groups = pipe.groups()
    for job in pipe.jobs.values():
        implicit = [p.name for what in job.requires() for p in pipe.jobs.values()
                    if p.provides == what and p is not job]
        resolved: list[str] = []
        for i, need in enumerate(job.needs):
            if need in pipe.jobs:
                resolved.append(need)
            elif need in groups:
                resolved += groups[need]
            else:
                known = ", ".join(sorted(set(pipe.jobs) | set(groups)))
                raise PipelineError(pipe.path, f"jobs.{job.group or job.name}.needs[{i}]",
                                    f"unknown job {need!r}; known jobs: {known}")
        if job.name in resolved:
            raise PipelineError(pipe.path, f"jobs.{job.group or job.name}.needs", f"job {job.name!r} needs itself")
        job.needs = list(dict.fromkeys(implicit + resolved))


def check(pipe: Pipeline, makers: Mapping[str, str]) -> None:
    _check_providers(pipe, makers)
    _check_cycles(pipe)
    _check_ports(pipe)


def _check_providers(pipe: Pipeline, makers: Mapping[str, str]) -> None:
    """One job per thing provided, and one for everything a job requires."""
    seen: dict[str, str] = {}
    for job in pipe.jobs.values():
        if job.provides and job.provides in seen:
            raise PipelineError(pipe.path, f"jobs.{job.group or job.name}.kind",
                                f"only one job may build the {job.provides}; {seen[job.provides]!r} already does")
        if job.provides:
            seen[job.provides] = job.name
    for job in pipe.jobs.values():
        if job.wheel is not None and WHEEL not in seen:
            raise PipelineError(pipe.path, f"jobs.{job.group or job.name}.wheel",
                                f"installs the wheel, but no job has kind = \"{makers.get(WHEEL, WHEEL)}\" "
                                "to build it")


def _check_cycles(pipe: Pipeline) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise PipelineError(pipe.path, f"jobs.{name}.needs", "dependency cycle: " + " -> ".join(cycle))
        state[name] = 1
        for dep in pipe.jobs[name].needs:
            visit(dep, trail + [name])
        state[name] = 2

    for name in pipe.jobs:
        visit(name, [])


def _check_ports(pipe: Pipeline) -> None:
    """Two jobs that may run at once must not share a port: order them or move one."""
    owners: dict[int, str] = {}
    ancestors = {name: ancestors_of(pipe.jobs, name) for name in pipe.jobs}
    for job in pipe.jobs.values():
        for port in job.ports:
            other = owners.get(port)
            if other and other not in ancestors[job.name] and job.name not in ancestors[other]:
                raise PipelineError(pipe.path, f"jobs.{job.name}.ports",
                                    f"port {port} is also used by {other!r}, which can run at the same time; "
                                    "give each job its own ports or make one need the other")
            owners[port] = job.name


def ancestors_of(jobs: Mapping[str, Job], name: str) -> set[str]:
    """Every job `name` needs, directly or through others."""
    seen: set[str] = set()
    todo = list(jobs[name].needs)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += jobs[n].needs
    return seen


def placeholders(t: Table, job: Job, makers: Mapping[str, str]) -> None:
    """Every {placeholder} in the job's commands, env, cwd and servers is known and defined for this job."""
    texts: list[tuple[str, str]] = []
    for i, step in enumerate(job.steps):
        texts += [(f"steps[{i}].cmd", a) for a in step.cmd] + [(f"steps[{i}].env", v) for _, v in step.env]
        if step.cwd:
            texts.append((f"steps[{i}].cwd", step.cwd))
    for i, srv in enumerate(job.servers):
        texts += [(f"servers[{i}].cmd", a) for a in srv.cmd] + [(f"servers[{i}].ready", srv.ready)]
        texts += [(f"servers[{i}].env", v) for _, v in srv.env]
    texts += [(f"env.{k}", v) for k, v in job.env]
    for key, text in texts:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            raise t.fail(key, f"bad placeholder in {text!r}: {exc}; write a literal brace as {{{{ or }}}}") from None
        for n in names:
            problem = _undefined(n, job, makers)
            if problem:
                raise t.fail(key, problem.replace("TEXT", repr(text)))


def _undefined(name: str, job: Job, makers: Mapping[str, str]) -> str | None:
    """Why {name} cannot be used in this job, or None."""
    if name not in PLACEHOLDERS:
        return (f"unknown placeholder {{{name}}} in TEXT; known: "
                + ", ".join("{" + k + "}" for k in sorted(PLACEHOLDERS)))
    if name == "wheel" and job.wheel is None:
        return "{wheel} needs a `wheel = { python = ... }` table on this job"
    if name in ("venv", "python", "interpreter") and job.python_version is None:
        return f"{{{name}}} needs `python = ...` or a `wheel` table on this job"
    if name == "port" and not job.ports:
        return "{port} needs `ports = [...]` on this job"
    if name == "out" and not job.artifacts:
        return f"{{out}} is only defined for kind = \"{makers.get(WHEEL, WHEEL)}\" jobs"
    return None
