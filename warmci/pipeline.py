"""The pipeline file: TOML describing a target's jobs, validated on load.

Every problem is reported as a PipelineError naming the file, the dotted key
and what was expected, before any job runs.
"""
from __future__ import annotations

import itertools
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmci.errors import PipelineError

KINDS = ("command", "lint", "js-build", "js-test", "wheel", "pytest", "smoke", "playwright")
PLACEHOLDERS = {"target", "state", "work", "job", "python", "venv", "out", "wheel", "port", "runner", "source"}
DEFAULT_IGNORE = (
    ".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".pytest_cache",
    ".ruff_cache", ".mypy_cache", "dist", "build", "test-results", "playwright-report",
    "storybook-static", ".ipynb_checkpoints", ".hypothesis", ".warmci",
)


@dataclass(frozen=True)
class Step:
    cmd: tuple[str, ...]
    ok_exit: tuple[int, ...] = (0,)
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    name: str = ""


@dataclass(frozen=True)
class Server:
    cmd: tuple[str, ...]
    ready: str
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0


@dataclass(frozen=True)
class WheelEnv:
    python: str
    extras: tuple[str, ...] = ()
    with_packages: tuple[str, ...] = ()
    constrain: bool = True


@dataclass
class Job:
    name: str
    kind: str
    doc: str
    needs: list[str]
    inputs: tuple[str, ...]
    exclude: tuple[str, ...]
    outputs: tuple[str, ...]
    tools: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    keyed_env: tuple[str, ...]
    cwd: str | None
    timeout: float
    python: str | None
    js: bool
    wheel: WheelEnv | None
    steps: tuple[Step, ...]
    servers: tuple[Server, ...]
    ports: tuple[int, ...]
    isolate: str | None
    options: dict[str, Any] = field(default_factory=dict)
    # The job's own table after matrix substitution: part of its skip key.
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PythonSection:
    versions: tuple[str, ...]
    optional: tuple[str, ...]
    project: str
    sync: tuple[str, ...]
    lockfiles: tuple[str, ...]
    after_sync: tuple[tuple[str, ...], ...]
    entry: dict[str, Any]


@dataclass(frozen=True)
class JsSection:
    dir: str
    install: tuple[str, ...]
    lockfiles: tuple[str, ...]
    tools: tuple[str, ...]
    marker: str
    entry: dict[str, Any]


@dataclass
class Pipeline:
    path: str
    name: str
    timeout: float
    deadline: float
    keyed_env: tuple[str, ...]
    ignore: tuple[str, ...]
    python: PythonSection | None
    js: JsSection | None
    jobs: dict[str, Job]

    def wheel_job(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.kind == "wheel"), None)


class _Table:
    """A TOML table being read: type-checked access, and unknown keys refused."""

    def __init__(self, path: str, keypath: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise PipelineError(path, keypath, f"expected a table, got {_typename(data)}")
        self.path, self.keypath, self.data = path, keypath, data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        if not name:
            return self.keypath
        return f"{self.keypath}.{name}" if self.keypath else name

    def fail(self, name: str, problem: str) -> PipelineError:
        return PipelineError(self.path, self.key(name), problem)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *,
            required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "is required but missing")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python; never accept one for the other.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            want = " or ".join(_typename_of(k) for k in kinds)
            raise self.fail(name, f"expected {want}, got {_typename(value)} {value!r}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = (), *, required: bool = False,
                nonempty: bool = False) -> tuple[str, ...]:
        value = self.get(name, list, None, required=required)
        if value is None:
            return default
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{name}[{i}]", f"expected a string, got {_typename(item)} {item!r}")
        if nonempty and not value:
            raise self.fail(name, "expected a non-empty list of strings")
        return tuple(value)

    def command(self, name: str, *, required: bool = False) -> tuple[str, ...] | None:
        cmd = self.strings(name, (), required=required)
        if name in self.data and not cmd:
            raise self.fail(name, "expected a command as a non-empty list of strings, e.g. [\"pytest\", \"-x\"]")
        if name in self.data and isinstance(self.data[name], str):  # pragma: no cover - get() refuses
            raise self.fail(name, "expected a list of strings, not a shell string")
        return cmd or None

    def env(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self.get(name, dict, {})
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.fail(f"{name}.{k}", f"expected a string, got {_typename(v)} {v!r}")
        return tuple(sorted(value.items()))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            allowed = ", ".join(sorted(self.seen))
            raise self.fail(unknown[0], f"unknown key; allowed keys here: {allowed}")


def _typename_of(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(kind, kind.__name__)


def _typename(value: Any) -> str:
    return _typename_of(type(value))


def load(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file; raise PipelineError on any problem."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PipelineError(path, "", "pipeline file not found; pass pipeline=PATH or set WARMCI_PIPELINE") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(path, "", f"not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict[str, Any], path: str) -> Pipeline:
    root = _Table(path, "", data)
    head = _Table(path, "pipeline", root.get("pipeline", dict, {}))
    name = head.get("name", str, Path(path).parent.name)
    timeout = float(head.get("timeout", (int, float), 900))
    deadline = float(head.get("deadline", (int, float), 3600))
    if timeout <= 0 or deadline <= 0:
        raise head.fail("timeout", "timeouts must be positive numbers of seconds")
    keyed_env = head.strings("keyed_env")
    ignore = DEFAULT_IGNORE + head.strings("ignore")
    head.done()

    python = _python_section(path, root.get("python", dict, None))
    js = _js_section(path, root.get("js", dict, None))
    jobs_table = _Table(path, "jobs", root.get("jobs", dict, {}, required=True))
    root.done()
    if not jobs_table.data:
        raise jobs_table.fail("", "no jobs defined; add at least one [jobs.NAME] table")

    jobs: dict[str, Job] = {}
    groups: dict[str, list[str]] = {}
    for base, raw in jobs_table.data.items():
        jobs_table.seen.add(base)
        _check_name(path, f"jobs.{base}", base)
        if base.startswith(("install-python-deps", "install-js-deps")):
            raise PipelineError(path, f"jobs.{base}", "names starting with install-python-deps or "
                                "install-js-deps are reserved for the installs warmci derives from [python] and [js]")
        for job in _expand_job(path, base, raw, timeout, python, js):
            if job.name in jobs:
                raise PipelineError(path, f"jobs.{base}", f"job name {job.name!r} is defined twice")
            jobs[job.name] = job
            groups.setdefault(base, []).append(job.name)
    jobs = {**_install_jobs(python, js, timeout), **jobs}
    for job in jobs.values():
        job.needs = _implicit_needs(job, jobs) + job.needs
    _resolve_needs(path, jobs, groups, python, js)
    pipe = Pipeline(path, name, timeout, deadline, keyed_env, ignore, python, js, jobs)
    _check_wheel(pipe)
    _check_cycles(path, jobs)
    _check_ports(path, jobs)
    return pipe


def _install_jobs(python: PythonSection | None, js: JsSection | None,
                  timeout: float) -> dict[str, Job]:
    """The dependency installs every pipeline gets from its [python] and [js] tables."""
    out: dict[str, Job] = {}
    common = dict(needs=[], exclude=(), outputs=(), tools=(), env=(), keyed_env=(), timeout=timeout,
                  wheel=None, servers=(), ports=(), isolate=None)
    if python is not None:
        for v in python.versions:
            # The sync gets UV_PYTHON (the interpreter the venv is made from); after_sync commands
            # must not: `uv pip install` would install into that base interpreter instead of the venv.
            after = (("UV_PYTHON", "{venv}/bin/python"),)
            steps = (Step(python.sync, name="sync"),) + tuple(Step(c, env=after, name="after_sync")
                                                              for c in python.after_sync)
            out[f"install-python-deps-{v}"] = Job(
                name=f"install-python-deps-{v}", kind="python-deps",
                doc=f"uv sync the locked Python dependencies into the Python {v} venv",
                inputs=python.lockfiles, cwd=python.project, python=v, js=False, steps=steps,
                entry={"python": python.entry, "version": v}, **common)
    if js is not None:
        out["install-js-deps"] = Job(
            name="install-js-deps", kind="js-deps",
            doc=f"install the locked JS dependencies in {js.dir}/",
            inputs=js.lockfiles, cwd=js.dir, python=None, js=False, steps=(Step(js.install, name="install"),),
            entry={"js": js.entry}, **common)
    return out


def _implicit_needs(job: Job, jobs: dict[str, Job]) -> list[str]:
    """A job that runs in an environment needs the job that builds it."""
    needs = []
    if job.python and job.kind != "python-deps":
        needs.append(f"install-python-deps-{job.python}")
    if job.js:
        needs.append("install-js-deps")
    if job.wheel is not None:
        needs += [j.name for j in jobs.values() if j.kind == "wheel"]
    return needs


def _check_name(path: str, key: str, name: str) -> None:
    ok = name and all(c.isalnum() or c in "-_." for c in name) and not name.startswith("-")
    if not ok:
        raise PipelineError(path, key, f"job name {name!r} may hold only letters, digits, '-', '_' and '.'")


def _python_section(path: str, raw: dict | None) -> PythonSection | None:
    if raw is None:
        return None
    t = _Table(path, "python", raw)
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


def _js_section(path: str, raw: dict | None) -> JsSection | None:
    if raw is None:
        return None
    t = _Table(path, "js", raw)
    d = t.get("dir", str, ".")
    install = t.command("install") or ("pnpm", "install", "--frozen-lockfile")
    lockfiles = t.strings("lockfiles", (_join(d, "pnpm-lock.yaml"), _join(d, "package.json")))
    tools = t.strings("tools", ("node", "pnpm"))
    marker = t.get("marker", str, _join(d, "node_modules/.modules.yaml"))
    t.done()
    return JsSection(d, install, lockfiles, tools, marker, dict(raw))


def _join(a: str, b: str) -> str:
    return b if a in ("", ".") else f"{a.rstrip('/')}/{b}"


def _command_item(t: _Table, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise PipelineError(t.path, t.key(key), f"expected a command as a non-empty list of strings, got {value!r}")
    return tuple(value)


def _expand_job(path: str, base: str, raw: Any, timeout: float, python: PythonSection | None,
                js: JsSection | None) -> list[Job]:
    t = _Table(path, f"jobs.{base}", raw)
    matrix_raw = t.get("matrix", dict, {})
    axes: list[tuple[str, list[str]]] = []
    for axis, values in matrix_raw.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise t.fail(f"matrix.{axis}", f"expected a non-empty list of strings, got {values!r}")
        axes.append((axis, values))
    if not axes:
        return [_job(t, base, {}, timeout, python, js)]
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        subs = dict(zip((a for a, _ in axes), combo, strict=True))
        name = "-".join((base, *combo))
        child = _Table(path, t.keypath, _substitute(raw, subs))
        child.seen.add("matrix")
        out.append(_job(child, name, subs, timeout, python, js))
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


def _job(t: _Table, name: str, subs: dict[str, str], default_timeout: float,
         python: PythonSection | None, js: JsSection | None) -> Job:
    kind = t.get("kind", str, "command")
    if kind not in KINDS:
        raise t.fail("kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
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
        name=name, kind=kind, doc=doc,
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
    from warmci import kinds  # imported here: kinds builds on this module's readers

    kinds.read(t, job)
    if not job.steps:
        raise t.fail("cmd", "is required: give `cmd = [...]` or one or more [[steps]] with a cmd")
    t.done()
    job.entry = {k: v for k, v in t.data.items() if k not in ("doc", "matrix")}
    _check_placeholders(t, job, subs)
    return job


def read_steps(t: _Table) -> tuple[Step, ...]:
    """`cmd = [...]` for one command, or [[steps]] tables for several."""
    cmd = t.command("cmd")
    raw_steps = t.get("steps", list, [])
    if cmd and raw_steps:
        raise t.fail("steps", "give either cmd or steps, not both")
    if cmd:
        return (Step(cmd, tuple(t.get("ok_exit", list, [0]))),)
    steps = []
    for i, raw in enumerate(raw_steps):
        s = _Table(t.path, t.key(f"steps[{i}]"), raw)
        ok = s.get("ok_exit", list, [0])
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in ok):
            raise s.fail("ok_exit", f"expected a list of exit codes, got {ok!r}")
        steps.append(Step(s.command("cmd", required=True) or (), tuple(ok), s.get("cwd", str, None),
                          s.env("env"), s.get("name", str, "")))
        s.done()
    return tuple(steps)


def _servers(t: _Table) -> tuple[Server, ...]:
    out = []
    for i, raw in enumerate(t.get("servers", list, [])):
        s = _Table(t.path, t.key(f"servers[{i}]"), raw)
        cmd = s.command("cmd", required=True) or ()
        ready = s.get("ready", str, required=True)
        if not (ready.startswith(("http://", "https://")) or ready.startswith("tcp:")):
            raise s.fail("ready", f"expected an http:// URL or tcp:PORT to probe, got {ready!r}")
        timeout = float(s.get("timeout", (int, float), 60))
        out.append(Server(cmd, ready, s.get("cwd", str, None), s.env("env"), timeout))
        s.done()
    return tuple(out)


def _wheel_env(t: _Table, python: PythonSection | None) -> WheelEnv | None:
    raw = t.get("wheel", dict, None)
    if raw is None:
        return None
    w = _Table(t.path, t.key("wheel"), raw)
    py = w.get("python", str, required=True)
    if python is None or py not in python.versions:
        known = list(python.versions) if python else []
        raise w.fail("python", f"{py!r} is not one of python.versions {known}")
    env = WheelEnv(py, w.strings("extras"), w.strings("with"), w.get("constrain", bool, True))
    w.done()
    return env


def _check_placeholders(t: _Table, job: Job, subs: dict[str, str]) -> None:
    known = set(PLACEHOLDERS)
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
            if n not in known:
                raise t.fail(key, f"unknown placeholder {{{n}}} in {text!r}; known: "
                             + ", ".join("{" + k + "}" for k in sorted(known)))
            if n == "wheel" and job.wheel is None:
                raise t.fail(key, "{wheel} needs a `wheel = { python = ... }` table on this job")
            if n == "venv" and job.wheel is None and job.python is None:
                raise t.fail(key, "{venv} needs `python = ...` or a `wheel` table on this job")
            if n == "python" and job.python is None and job.wheel is None:
                raise t.fail(key, "{python} needs `python = ...` or a `wheel` table on this job")
            if n == "port" and not job.ports:
                raise t.fail(key, "{port} needs `ports = [...]` on this job")
            if n == "out" and job.kind != "wheel":
                raise t.fail(key, "{out} is only defined for kind = \"wheel\" jobs")


def _resolve_needs(path: str, jobs: dict[str, Job], groups: dict[str, list[str]],
                   python: PythonSection | None, js: JsSection | None) -> None:
    for job in jobs.values():
        resolved: list[str] = []
        for i, need in enumerate(job.needs):
            if need in jobs:
                resolved.append(need)
            elif need in groups:
                resolved += groups[need]
            else:
                known = ", ".join(sorted(set(jobs) | set(groups)))
                raise PipelineError(path, f"jobs.{_base(job, groups)}.needs[{i}]",
                                    f"unknown job {need!r}; known jobs: {known}")
        if job.name in resolved:
            raise PipelineError(path, f"jobs.{_base(job, groups)}.needs", f"job {job.name!r} needs itself")
        job.needs = list(dict.fromkeys(resolved))


def _base(job: Job, groups: dict[str, list[str]]) -> str:
    return next((b for b, names in groups.items() if job.name in names), job.name)


def _check_wheel(pipe: Pipeline) -> None:
    producers = [j.name for j in pipe.jobs.values() if j.kind == "wheel"]
    if len(producers) > 1:
        raise PipelineError(pipe.path, f"jobs.{producers[1]}.kind",
                            f"only one job may build the wheel; {producers[0]!r} already does")
    for job in pipe.jobs.values():
        if job.wheel is not None and not producers:
            raise PipelineError(pipe.path, f"jobs.{job.name}.wheel",
                                "installs the wheel, but no job has kind = \"wheel\" to build it")


def _check_cycles(path: str, jobs: dict[str, Job]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise PipelineError(path, f"jobs.{name}.needs", "dependency cycle: " + " -> ".join(cycle))
        state[name] = 1
        for dep in jobs[name].needs:
            visit(dep, trail + [name])
        state[name] = 2

    for name in jobs:
        visit(name, [])


def _check_ports(path: str, jobs: dict[str, Job]) -> None:
    """Two jobs that may run at once must not share a port: order them or move one."""
    owners: dict[int, str] = {}
    ancestors = {name: _ancestors(jobs, name) for name in jobs}
    for job in jobs.values():
        for port in job.ports:
            other = owners.get(port)
            if other and other not in ancestors[job.name] and job.name not in ancestors[other]:
                raise PipelineError(path, f"jobs.{job.name}.ports",
                                    f"port {port} is also used by {other!r}, which can run at the same time; "
                                    "give each job its own ports or make one need the other")
            owners[port] = job.name


def _ancestors(jobs: dict[str, Job], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(jobs[name].needs)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += jobs[n].needs
    return seen
