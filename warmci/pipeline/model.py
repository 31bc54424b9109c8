"""What a validated pipeline is: jobs, their steps and servers, the [python] and [js] tables.

Plain picklable dataclasses: a doit worker receives its Job as an argument
of the task's action, so everything a job needs at run time is resolved
into it when the file is read (its pipeline's keyed variables, whether its
Python version is optional, which job builds the wheel it installs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Placeholders a command, env value, cwd or server field may use; filled in when the job runs.
PLACEHOLDERS = frozenset({"target", "state", "work", "job", "python", "interpreter", "venv", "out", "wheel",
                          "port", "runner", "source"})
DEFAULT_IGNORE = (
    ".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".pytest_cache",
    ".ruff_cache", ".mypy_cache", "dist", "build", "test-results", "playwright-report",
    "storybook-static", ".ipynb_checkpoints", ".hypothesis", ".warmci",
)
# Keyed by default in every pipeline: they change what a browser job runs.
DEFAULT_KEYED = ("WARMCI_CHROMIUM", "PLAYWRIGHT_BROWSERS_PATH", "CI")

# What a job can provide to others. A job kind (tasks/) declares what its jobs
# provide; a job requires one through the generic keys `python`, `js` and `wheel`.
JS_ENV = "js-env"
WHEEL = "wheel"


def venv_of(version: str) -> str:
    """What the job that builds the Python `version` environment provides."""
    return f"venv-{version}"


@dataclass(frozen=True)
class Step:
    cmd: tuple[str, ...]
    ok_exit: tuple[int, ...] = (0,)
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    name: str = ""
    # A first pass (its label, e.g. "k=EXPR"): some of the tests before the full suite. Its failure is the
    # run's first red at once; in fast-fail mode it ends the job, otherwise the full suite runs and decides.
    first_pass: str = ""
    only_if: str = ""  # run only when this path (placeholders allowed) exists, e.g. data of an earlier run


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
    producer: str = ""  # the job that builds the wheel (resolved after every job is read)
    project: str = "."  # the [python] project whose lockfile constrains the install


@dataclass
class Job:
    name: str
    kind: str
    doc: str
    pipeline: str  # the file it was read from, for messages
    needs: list[str]
    inputs: tuple[str, ...]
    exclude: tuple[str, ...]
    outputs: tuple[str, ...]
    tools: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    keyed_env: tuple[str, ...]  # every variable it is keyed on: the defaults, the pipeline's and its own
    cwd: str | None
    timeout: float
    python: str | None
    js: bool
    wheel: WheelEnv | None
    steps: tuple[Step, ...]
    servers: tuple[Server, ...]
    ports: tuple[int, ...]
    isolate: str | None
    optional: bool = False  # its Python version may be missing here: then it is skipped, not errored
    group: str = ""  # the matrix base name it was expanded from ("" for a job without a matrix)
    # Set by its kind (tasks/): what it makes for other jobs.
    provides: str = ""  # JS_ENV, WHEEL, venv_of(V): jobs that require it need this job
    builds_venv: bool = False  # its commands build the state dir's venv of its Python version
    artifacts: bool = False  # its commands write files into {out}; their manifest is its output
    marker: bool = False  # a marker file records its success (what it makes is outside doit's targets)
    # The job's own table after matrix substitution: part of its skip key.
    entry: dict[str, Any] = field(default_factory=dict)
    # This run's testcase filter when the job runs only some of its tests ("k=EXPR"): part of its key,
    # so such a success never stands for the whole job's (set by its kind, from warmci.filters).
    filtered: str = ""

    @property
    def python_version(self) -> str | None:
        """The Python the job runs: its own, or the one its wheel is installed into."""
        return self.python or (self.wheel.python if self.wheel else None)

    def requires(self) -> list[str]:
        """What other jobs must provide before this one runs."""
        out = []
        if self.python and not self.builds_venv:
            out.append(venv_of(self.python))
        if self.js:
            out.append(JS_ENV)
        if self.wheel is not None:
            out.append(WHEEL)
        return out


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
    timeout: float
    deadline: float
    keyed_env: tuple[str, ...]
    ignore: tuple[str, ...]
    python: PythonSection | None
    js: JsSection | None
    jobs: dict[str, Job]

    def provider(self, what: str) -> Job | None:
        """The job that provides `what` (JS_ENV, WHEEL, venv_of(V)), if any."""
        return next((j for j in self.jobs.values() if j.provides == what), None)

    def groups(self) -> dict[str, list[str]]:
        """Matrix base name -> the jobs expanded from it."""
        out: dict[str, list[str]] = {}
        for job in self.jobs.values():
            if job.group:
                out.setdefault(job.group, []).append(job.name)
        return out
