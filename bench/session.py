"""What every section shares: the target under test, the repetition counts, and what went wrong."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import graphinfo
from bench.runs import Doit, Result


@dataclass
class Reps:
    noop: int = 20
    forced: int = 3
    incremental: int = 3
    cold: int = 3
    scaling: int = 5
    firstred: int = 2


@dataclass
class Session:
    kind: str  # "demo", "synthetic" or "target"
    target: Path
    state: Path
    work: Path  # scratch dir for extra state dirs
    pipeline: Path | None
    reps: Reps
    doit: Doit = field(init=False)
    jobs: dict[str, graphinfo.JobInfo] = field(default_factory=dict)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    runs: list[Result] = field(default_factory=list)  # every run whose results feed the handoff section

    def __post_init__(self) -> None:
        self.doit = Doit(self.target, self.state, self.pipeline)

    def use_state(self, state: Path) -> None:
        self.state = state
        self.doit.state = state

    def say(self, msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def note(self, what: str, problem: str, res: Result | None = None) -> None:
        """An anomaly: a run that was not what it should have been (another process killed a job, ...)."""
        entry: dict[str, Any] = {"what": what, "problem": problem}
        if res is not None:
            entry["rc"] = res.rc
            entry["failed_jobs"] = {n: (res.jobs[n].get("status"), res.jobs[n].get("exit_code"))
                                    for n in sorted(res.failed)}
            entry["tail"] = res.tail(600)
        self.anomalies.append(entry)
        self.say(f"anomaly in {what}: {problem}")

    def attempt(self, what: str, run: Callable[[], Result], check: Callable[[Result], str | None],
                tries: int = 3, before_retry: Callable[[], None] | None = None) -> Result | None:
        """A run that passes `check` (None: fine, else the problem), retried when something interfered."""
        for i in range(tries):
            if i and before_retry is not None:
                before_retry()
            res = run()
            problem = check(res)
            if problem is None:
                return res
            self.note(what, problem, res)
        return None

    def warm(self, what: str = "warm-up") -> bool:
        """Run until a run passes and executes nothing (the pipeline is up to date)."""
        for _ in range(4):
            res = self.doit.run(tag="warm")
            if res.rc == 0 and not res.executed:
                return True
        self.note(what, "the pipeline did not become up to date after 4 runs", res)
        return False


def passed_all(res: Result) -> str | None:
    if res.rc != 0:
        return f"exit status {res.rc}; not passed: {sorted(res.failed)}"
    if res.results is None:
        return "no results.json"
    return None


def noop_ok(res: Result) -> str | None:
    problem = passed_all(res)
    if problem is None and res.executed:
        problem = f"not a no-op: ran {sorted(res.executed)}"
    return problem
