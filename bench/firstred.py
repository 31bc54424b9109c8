"""Section 6: time to the first red — an injected failure, how soon the run reports it, against its wall time.

Each scenario breaks the warm demo in one way a push could (an unused
import the linter rejects, a failing unit test, a page title the Playwright
suite checks, and a unit test that failed in the last run and still fails
after a source change), runs the pipeline and measures, from the command's start:
the moment of the run's first failure (results.json `first_failure.at`,
the failing job's FAIL line) and the whole run's wall time. Each run in the
default order (`first-red`) is paired with one in `critical-path` order
(the order before this change) on the same change, alternating which goes
first, so that both see the same machine noise. Between runs the tree is
restored and the pipeline made warm again. Only the demo has these
scenarios; another target skips the section.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.runs import Result
from bench.session import Session

ORDERS = ("first-red", "critical-path")


@dataclass(frozen=True)
class Scenario:
    name: str
    edits: dict[str, Callable[[str], str]]  # path (relative to the target) -> its edit, in the measured run
    fails: frozenset[str]  # the jobs the change makes fail
    # Of the edits, those made first for an unmeasured run (its failures are then in history.json).
    primed: tuple[str, ...] = ()


def _after_future(line: str) -> Callable[[str], str]:
    """`line` right after the module's `from __future__` import (which must come first)."""
    future = "from __future__ import annotations\n"
    return lambda text: text.replace(future, future + line, 1) if future in text else line + text


def _append(block: str) -> Callable[[str], str]:
    return lambda text: text + block


PY, UNIT, HTML = "src/demo_app/table.py", "tests/test_table.py", "src/demo_app/static/index.html"
PYTEST = frozenset({"test-python-3.11", "test-python-3.12", "test-python-3.13"})
FAILING_TEST = _append("\n\ndef test_injected_by_the_bench():\n    assert 1 == 2\n")
DEMO = (
    # Reruns lint, the three pytest jobs, the wheel, the smoke test and the Playwright suite; only lint fails.
    Scenario("lint error", {PY: _after_future("import os  # unused: ruff F401\n")}, frozenset({"lint-python"})),
    # Reruns lint and the pytest jobs; the pytest jobs fail.
    Scenario("failing unit test", {UNIT: FAILING_TEST}, PYTEST),
    # Reruns the wheel, the smoke test and the Playwright suite, which checks the page title.
    Scenario("Playwright failure",
             {HTML: lambda text: text.replace("<title>warmci demo table</title>", "<title>broken</title>")},
             frozenset({"playwright-app"})),
    # The unit test failed in the last run; a source change now reruns everything downstream of the
    # Python sources, and the test still fails: the jobs that failed last time may go first.
    Scenario("still failing after a source change", {UNIT: FAILING_TEST, PY: _append("\n# edited by the bench\n")},
             PYTEST, primed=(UNIT,)),
)


def measure(s: Session) -> dict[str, Any]:
    if s.kind != "demo":
        return {"skipped": "the scenarios are written for the bundled demo"}
    out: dict[str, Any] = {"orders": list(ORDERS), "reps": s.reps.firstred, "scenarios": {}}
    for sc in DEMO:
        s.say(f"first red: {sc.name} ({', '.join(sc.edits)}), {s.reps.firstred}× each order")
        out["scenarios"][sc.name] = _scenario(s, sc)
    return out


def _scenario(s: Session, sc: Scenario) -> dict[str, Any]:
    originals = {rel: (s.target / rel).read_text() for rel in sc.edits}
    for rel, edit in sc.edits.items():
        assert edit(originals[rel]) != originals[rel], f"the {sc.name} edit changed nothing in {rel}"
    runs: dict[str, list[dict[str, Any]]] = {o: [] for o in ORDERS}

    def write(rels: Sequence[str]) -> None:
        for rel in rels:
            (s.target / rel).write_text(sc.edits[rel](originals[rel]))

    for rep in range(s.reps.firstred):
        for order in (ORDERS if rep % 2 == 0 else ORDERS[::-1]):
            if not s.warm(f"first red {sc.name}: warm before {order}"):
                continue
            try:
                if sc.primed:
                    write(sc.primed)
                    s.doit.run(tag=f"red-primed-{order}", env={"WARMCI_ORDER": order})
                write(list(sc.edits))
                t0 = time.time()
                res = s.doit.run(tag=f"red-{order}", env={"WARMCI_ORDER": order})
            finally:
                for rel, text in originals.items():
                    (s.target / rel).write_text(text)
            runs[order].append(_one(s, sc, order, res, t0))
            s.runs.append(res)
    s.warm(f"first red {sc.name}: restore")
    red = {o: stats.summary([r["first_red_s"] for r in runs[o] if r["first_red_s"] is not None]) for o in ORDERS}
    wall = {o: stats.summary([r["wall_s"] for r in runs[o]]) for o in ORDERS}
    return {
        "file": ", ".join(sc.edits),
        "primed": list(sc.primed),
        "expected_failing": sorted(sc.fails),
        "runs": runs,
        "first_red": red,
        "wall": wall,
        # first-red order against critical-path order, medians: < 1 is sooner / shorter.
        "red_vs_critical_path": stats.ratio(stats.median_of(red["first-red"]), stats.median_of(red["critical-path"])),
        "wall_vs_critical_path": stats.ratio(stats.median_of(wall["first-red"]),
                                             stats.median_of(wall["critical-path"])),
    }


def _one(s: Session, sc: Scenario, order: str, res: Result, t0: float) -> dict[str, Any]:
    first = (res.results or {}).get("first_failure") or {}
    at = first.get("at")
    entry = {
        "order": order,
        "rc": res.rc,
        "wall_s": round(res.wall, 3),
        "first_red_s": round(at - t0, 3) if isinstance(at, (int, float)) else None,
        "first_red_in_run_s": first.get("seconds"),  # from the run's start, after doit loaded the pipeline
        "first_job": first.get("job"),
        "failed": sorted(res.with_status("failed")),
        "ran": sorted(res.executed),
        "run_id": res.run_id,
    }
    entry["red_share"] = stats.ratio(entry["first_red_s"], entry["wall_s"])
    if res.rc != 1 or not set(entry["failed"]) or not set(entry["failed"]) <= sc.fails:
        s.note(f"first red {sc.name} ({order})", f"expected exit 1 with only {sorted(sc.fails)} failing", res)
    return entry
