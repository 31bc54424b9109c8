"""Reading a pipeline file: TOML into validated jobs.

Every problem is a PipelineError naming the file, the dotted key and what
was expected, before any job runs. What a job kind adds to its table is not
known here: the caller passes a KindReader (tasks/ has the one registry).
"""
from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from warmci.errors import PipelineError
from warmci.pipeline import checks
from warmci.pipeline.model import (
    DEFAULT_IGNORE,
    DEFAULT_KEYED,
    WHEEL,
    Job,
    JsSection,
    Pipeline,
    PythonSection,
    Server,
    Step,
    WheelEnv,
)
from warmci.pipeline.table import Table


class KindReader(Protocol):
    """What the reader needs to know about job kinds."""

    default: str  # the kind of a job whose table names none
    makers: Mapping[str, str]  # what a job can provide (WHEEL, ...) -> the kind that provides it, for messages

    def names(self) -> Sequence[str]:
        """The kinds a pipeline file may name."""
        ...

    def read(self, kind: str, table: Table, job: Job) -> None:
        """Read the keys that belong to `kind` (set job.steps and what the kind provides)."""
        ...

    def derived(self, python: PythonSection | None, js: JsSection | None, timeout: float,
                path: str) -> list[Job]:
        """The jobs every pipeline gets from its [python] and [js] tables (the installs)."""
        ...

    def reserved(self) -> tuple[str, ...]:
        """Name prefixes of derived jobs, which the file's own jobs may not use."""
        ...


def load(path: str | Path, kinds: KindReader) -> Pipeline:
    """Read and validate a pipeline file; raise PipelineError on any problem."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PipelineError(path, "", "pipeline file not found; pass pipeline=PATH or set WARMCI_PIPELINE") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(path, "", f"not valid TOML: {exc}") from None
    return parse(data, path, kinds)


def parse(data: dict[str, Any], path: str, kinds: KindReader) -> Pipeline:
    root = Table(path, "", data)
    head = Table(path, "pipeline", root.get("pipeline", dict, {}))
    timeout = float(head.get("timeout", (int, float), 900))
    deadline = float(head.get("deadline", (int, float), 3600))
    if timeout <= 0 or deadline <= 0:
        raise head.fail("timeout", "timeouts must be positive numbers of seconds")
    keyed_env = head.strings("keyed_env")
    ignore = DEFAULT_IGNORE + head.strings("ignore")
    head.done()

    python = _python_section(path, root.get("python", dict, None))
    js = _js_section(path, root.get("js", dict, None))
    jobs_table = Table(path, "jobs", root.get("jobs", dict, {}, required=True))
    root.done()
    if not jobs_table.data:
        raise jobs_table.fail("", "no jobs defined; add at least one [jobs.NAME] table")

    jobs: dict[str, Job] = {}
    for base, raw in jobs_table.data.items():
        jobs_table.seen.add(base)
        _check_name(path, f"jobs.{base}", base)
        if base.startswith(kinds.reserved()):
            raise PipelineError(path, f"jobs.{base}", f"names starting with {' or '.join(kinds.reserved())} are "
                                "reserved for the installs warmci derives from [python] and [js]")
        for job in _expand_job(Table(path, f"jobs.{base}", raw), base, timeout, python, js, kinds):
            if job.name in jobs:
                raise PipelineError(path, f"jobs.{base}", f"job name {job.name!r} is defined twice")
            jobs[job.name] = job
    jobs = {j.name: j for j in kinds.derived(python, js, timeout, path)} | jobs
    pipe = Pipeline(path, timeout, deadline, keyed_env, ignore, python, js, jobs)
    checks.resolve_needs(pipe)
    checks.check(pipe, kinds.makers)
    _resolve_runtime(pipe)
    return pipe


def _resolve_runtime(pipe: Pipeline) -> None:
    """What each job needs at run time from the rest of the file, put into the job itself."""
    producer = pipe.provider(WHEEL)
    project = pipe.python.project if pipe.python else "."
    optional = pipe.python.optional if pipe.python else ()
    for job in pipe.jobs.values():
        job.keyed_env = tuple(sorted(set(DEFAULT_KEYED) | set(pipe.keyed_env) | set(job.keyed_env)))
        job.optional = job.python_version in optional
        if job.wheel is not None and producer is not None:
            job.wheel = dataclasses.replace(job.wheel, producer=producer.name, project=project,
                                            constrain=job.wheel.constrain and pipe.python is not None)


def _check_name(path: str, key: str, name: str) -> None:
    ok = name and all(c.isalnum() or c in "-_." for c in name) and not name.startswith("-")
    if not ok:
        raise PipelineError(path, key, f"job name {name!r} may hold only letters, digits, '-', '_' and '.'")


def _python_section(path: str, raw: dict[str, Any] | None) -> PythonSection | None:
    if raw is None:
        return None
    t = Table(path, "python", raw)
    versions = t.strings("versions", required=True, nonempty=True)
    optional = t.strings("optional")
    for v in versions + optional:
        parts = v.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise t.fail("versions", f"expected versions like \"3.13\", got {v!r}")
    for v in optional:
        if v not in versions:
            raise t.fail("optional", f"{v!r} is not listed in python.versions")
    project = t.get("project", str, ".")
    sync = t.command("sync") or ("uv", "sync", "--locked")
    lockfiles = t.strings("lockfiles", (f"{_join(project, 'uv.lock')}", f"{_join(project, 'pyproject.toml')}"))
    after = t.get("after_sync", list, [])
    after_sync = tuple(_command_item(t, f"after_sync[{i}]", c) for i, c in enumerate(after))
    t.done()
    return PythonSection(versions, optional, project, sync, lockfiles, after_sync, dict(raw))


def _js_section(path: str, raw: dict[str, Any] | None) -> JsSection | None:
    if raw is None:
        return None
    t = Table(path, "js", raw)
    d = t.get("dir", str, ".")
    install = t.command("install") or ("pnpm", "install", "--frozen-lockfile")
    lockfiles = t.strings("lockfiles", (_join(d, "pnpm-lock.yaml"), _join(d, "package.json")))
    tools = t.strings("tools", ("node", "pnpm"))
    marker = t.get("marker", str, _join(d, "node_modules/.modules.yaml"))
    t.done()
    return JsSection(d, install, lockfiles, tools, marker, dict(raw))


def _join(a: str, b: str) -> str:
    return b if a in ("", ".") else f"{a.rstrip('/')}/{b}"


def _command_item(t: Table, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise PipelineError(t.path, t.key(key), f"expected a command as a non-empty list of strings, got {value!r}")
    return tuple(value)


def _expand_job(t: Table, base: str, timeout: float, python: PythonSection | None, js: JsSection | None,
                kinds: KindReader) -> list[Job]:
    matrix_raw = t.get("matrix", dict, {})
    axes: list[tuple[str, list[str]]] = []
    for axis, values in matrix_raw.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise t.fail(f"matrix.{axis}", f"expected a non-empty list of strings, got {values!r}")
        axes.append((axis, values))
    if not axes:
        return [_job(t, base, "", timeout, python, js, kinds)]
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        subs = dict(zip((a for a, _ in axes), combo, strict=True))
        child = Table(t.path, t.keypath, _substitute(t.data, subs))
        child.seen.add("matrix")
        out.append(_job(child, "-".join((base, *combo)), base, timeout, python, js, kinds))
    return out


def _substitute(value: Any, subs: dict[str, str]) -> Any:
    """Replace matrix placeholders only; runtime placeholders stay for later."""
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [_substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, subs) for k, v in value.items() if k != "matrix"}
    return value


def _job(t: Table, name: str, group: str, default_timeout: float, python: PythonSection | None,
         js: JsSection | None, kinds: KindReader) -> Job:
    kind = t.get("kind", str, kinds.default)
    if kind not in kinds.names():
        raise t.fail("kind", f"unknown kind {kind!r}; expected one of {', '.join(kinds.names())}")
    doc = t.get("doc", str, "")
    py = t.get("python", str, None)
    if py is not None:
        if python is None:
            raise t.fail("python", "needs a [python] section that says how to build the environments")
        if py not in python.versions:
            raise t.fail("python", f"{py!r} is not one of python.versions {list(python.versions)}")
    uses_js = t.get("js", bool, False)
    if uses_js and js is None:
        raise t.fail("js", "needs a [js] section that says how to install the JS dependencies")
    wheel = _wheel_env(t, python)
    timeout = float(t.get("timeout", (int, float), default_timeout))
    if timeout <= 0:
        raise t.fail("timeout", "expected a positive number of seconds")
    isolate = t.get("isolate", str, None)
    if isolate not in (None, "worktree"):
        raise t.fail("isolate", f"expected \"worktree\", got {isolate!r}")
    ports = tuple(t.get("ports", list, []))
    for i, p in enumerate(ports):
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 65535:
            raise t.fail(f"ports[{i}]", f"expected a TCP port number 1-65535, got {p!r}")
    job = Job(
        name=name, kind=kind, doc=doc, pipeline=t.path, group=group,
        needs=list(t.strings("needs")),
        inputs=t.strings("inputs"),
        exclude=t.strings("exclude"),
        outputs=t.strings("outputs"),
        tools=t.strings("tools"),
        env=t.env("env"),
        keyed_env=t.strings("keyed_env"),
        cwd=t.get("cwd", str, None),
        timeout=timeout,
        python=py, js=uses_js, wheel=wheel,
        steps=(), servers=_servers(t), ports=ports, isolate=isolate,
    )
    kinds.read(kind, t, job)
    if not job.steps:
        raise t.fail("cmd", "is required: give `cmd = [...]` or one or more [[steps]] with a cmd")
    t.done()
    job.entry = {k: v for k, v in t.data.items() if k not in ("doc", "matrix")}
    checks.placeholders(t, job, kinds.makers)
    return job


def read_steps(t: Table) -> tuple[Step, ...]:
    """`cmd = [...]` for one command, or [[steps]] tables for several."""
    cmd = t.command("cmd")
    raw_steps = t.get("steps", list, [])
    if cmd and raw_steps:
        raise t.fail("steps", "give either cmd or steps, not both")
    if cmd:
        return (Step(cmd, tuple(t.get("ok_exit", list, [0]))),)
    steps = []
    for i, raw in enumerate(raw_steps):
        s = Table(t.path, t.key(f"steps[{i}]"), raw)
        ok = s.get("ok_exit", list, [0])
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in ok):
            raise s.fail("ok_exit", f"expected a list of exit codes, got {ok!r}")
        steps.append(Step(s.command("cmd", required=True) or (), tuple(ok), s.get("cwd", str, None),
                          s.env("env"), s.get("name", str, "")))
        s.done()
    return tuple(steps)


def _servers(t: Table) -> tuple[Server, ...]:
    out = []
    for i, raw in enumerate(t.get("servers", list, [])):
        s = Table(t.path, t.key(f"servers[{i}]"), raw)
        cmd = s.command("cmd", required=True) or ()
        ready = s.get("ready", str, required=True)
        if not (ready.startswith(("http://", "https://")) or ready.startswith("tcp:")):
            raise s.fail("ready", f"expected an http:// URL or tcp:PORT to probe, got {ready!r}")
        timeout = float(s.get("timeout", (int, float), 60))
        out.append(Server(cmd, ready, s.get("cwd", str, None), s.env("env"), timeout))
        s.done()
    return tuple(out)


def _wheel_env(t: Table, python: PythonSection | None) -> WheelEnv | None:
    raw = t.get("wheel", dict, None)
    if raw is None:
        return None
    w = Table(t.path, t.key("wheel"), raw)
    py = w.get("python", str, required=True)
    if python is None or py not in python.versions:
        known = list(python.versions) if python else []
        raise w.fail("python", f"{py!r} is not one of python.versions {known}")
    env = WheelEnv(py, w.strings("extras"), w.strings("with"), w.get("constrain", bool, True))
    w.done()
    return env
