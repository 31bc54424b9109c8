"""A run's filters: jobs skipped, jobs run first, testcases selected (doit variables).

    doit skip=lint-python,test-python     these jobs do not run; what needs them is reported not-run
    doit first=build-js,lint-python       these (and what they need) first, then the rest of the run
    doit k=EXPR / grep=EXPR               only the matching tests: pytest -k, Playwright --grep
    doit first-k=EXPR / first-grep=EXPR   the matching tests as a first pass, then the full suites
    doit lf=1                             only the tests that failed last time: pytest --lf, Playwright --last-failed

Dependencies are doit's own graph, never a second scheduler: a skipped job
is ignored the way `doit ignore` ignores one (what needs it does not run),
and the rest of a run waits for the first jobs through edges of doit's
graph whose failure does not stop it (warmci.doitapi.order_after), so in
fast-fail mode (`--no-continue`) a failing first job ends the run, and in
keep-going mode the rest runs anyway. Testcase filters change the commands
of the jobs whose kind knows how (tasks/); a job that ran only some of its
tests is not a success of the job (warmci.inputs.uptodate.InputsKey).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from warmci import doitapi
from warmci.errors import WarmciError

# doit variable -> Filters field; what each means is in the module docstring and the README.
VARS = {"skip": "skip", "first": "first", "k": "k", "grep": "grep", "first-k": "first_k",
        "first-grep": "first_grep", "lf": "lf"}
YES, NO = ("1", "yes", "true", "on"), ("", "0", "no", "false", "off")


@dataclass(frozen=True)
class Filters:
    skip: tuple[str, ...] = ()
    first: tuple[str, ...] = ()
    k: str = ""  # pytest -k: only these tests run, and the job's success is not recorded as one
    grep: str = ""  # Playwright --grep: the same
    first_k: str = ""  # pytest -k as a first pass before the full suite
    first_grep: str = ""  # Playwright --grep as a first pass before the full suite
    lf: bool = False  # only the tests that failed in the job's last run (the "rerun the failed tests" button)

    def __bool__(self) -> bool:
        return any((self.skip, self.first, self.k, self.grep, self.first_k, self.first_grep, self.lf))

    def as_dict(self) -> dict[str, Any]:
        """What results.json records (only what was set), with the command-line names."""
        out: dict[str, Any] = {}
        for var, field in VARS.items():
            value = getattr(self, field)
            if value:
                out[var] = list(value) if isinstance(value, tuple) else "1" if value is True else value
        return out

    def argv(self) -> list[str]:
        """The same filters as doit arguments (what a service passes on)."""
        return [f"{var}={','.join(v) if isinstance(v, list) else v}" for var, v in self.as_dict().items()]


def parse(get_var: Callable[[str, str | None], str | None]) -> Filters:
    """The filters given as doit variables (job lists are comma-separated; names are checked by `resolve`)."""
    values: dict[str, Any] = {}
    for var, field in VARS.items():
        raw = (get_var(var, None) or "").strip()
        if field in ("skip", "first"):
            values[field] = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
        elif field == "lf":
            if raw.lower() not in YES + NO:
                raise WarmciError(f"lf={raw}: expected lf=1 (only the tests that failed last time) or lf=0")
            values[field] = raw.lower() in YES
        else:
            values[field] = raw
    f = Filters(**values)
    for only, first in (("k", "first-k"), ("grep", "first-grep")):
        if getattr(f, VARS[only]) and getattr(f, VARS[first]):
            raise WarmciError(f"{only}= and {first}= exclude each other: {only}=EXPR runs only the matching tests, "
                              f"{first}=EXPR runs them first and then the full suite; give one of them")
    return f


def resolve(f: Filters, jobs: Iterable[str], groups: Mapping[str, Sequence[str]]) -> Filters:
    """Job names checked and matrix base names expanded (`skip=test-python`: every variant)."""
    names = list(jobs)

    def expand(var: str, given: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for name in given:
            if name in groups:
                out += groups[name]
            elif name in names:
                out.append(name)
            else:
                raise WarmciError(f"{var}={','.join(given)}: " + doitapi.unknown_job(name, names + list(groups)))
        return tuple(dict.fromkeys(out))

    skip, first = expand("skip", f.skip), expand("first", f.first)
    both = sorted(set(skip) & set(first))
    if both:
        raise WarmciError(f"{', '.join(both)} in both skip= and first=: a job is either skipped or run first")
    return replace(f, skip=skip, first=first)


@dataclass(frozen=True)
class Plan:
    """What the filters mean for one run's selection (computed when it starts)."""

    skipped: frozenset[str] = frozenset()  # jobs of this run that do not run
    first: frozenset[str] = frozenset()  # the first jobs and everything they need
    rest: frozenset[str] = frozenset()  # the jobs that wait for the first ones


def plan(f: Filters, tasks: Mapping[str, Any], selected: Sequence[str]) -> Plan:
    """Apply skip= and first= to this run through doit's graph; a first job outside the run is an error."""
    wanted = doitapi.closure(tasks, selected)
    skipped = frozenset(n for n in f.skip if n in wanted)
    doitapi.ignore_tasks(skipped)
    outside = [n for n in f.first if n not in wanted]
    if outside:
        raise WarmciError(f"first={','.join(f.first)}: {', '.join(outside)} is not part of this run "
                          f"(it runs {', '.join(sorted(selected))} and what they need); select it too, or drop it "
                          "from first=")
    first = frozenset(doitapi.closure(tasks, list(f.first)))
    rest = frozenset(wanted - first) if first else frozenset()
    doitapi.order_after({name: f.first for name in rest})
    return Plan(skipped, first, rest)


class Planner:
    """The run-start hook (warmci.doitapi.before_dispatch) that applies a run's filters; keeps its Plan."""

    def __init__(self, f: Filters, on_error: Callable[[WarmciError], None]) -> None:
        self.filters, self.on_error = f, on_error
        self.plan = Plan()

    def __call__(self, tasks: Mapping[str, Any], selected: Sequence[str]) -> None:
        try:
            self.plan = plan(self.filters, tasks, selected)
        except WarmciError as exc:
            self.on_error(exc)


def skipped_need(task: Any, tasks: Mapping[str, Any], skipped: Iterable[str]) -> str | None:
    """The skipped job that a task needs (directly or not), if any: why it is not run."""
    skip = set(skipped)
    todo, seen = list(getattr(task, "task_dep", ())), set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name in skip:
            return str(name)
        if name in tasks:
            todo += list(tasks[name].task_dep)
    return None
