"""Section 2: one file changed — which jobs reran (exactly the dependent ones?) and how long it took.

Each scenario edits one file (a different edit each repetition, so every
run sees a change), runs the pipeline (and right after it the forced run,
its baseline under the same noise), and compares the jobs that ran with
the expected set: exact for the demo and the synthetic target, and for any
other target bounded by the graph — every job keyed on the file must rerun,
and nothing may rerun that is not downstream of it. Then the file is
restored and the pipeline is proven up to date again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cold, graphinfo, stats, synth
from bench.runs import Result
from bench.session import Session, passed_all

PY_SUFFIXES = (".py",)
JS_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".vue", ".svelte")
LOCK_NAMES = ("pnpm-lock.yaml", "uv.lock", "package-lock.json", "yarn.lock", "poetry.lock", "package.json",
              "pyproject.toml")

# The bundled demo: what each change must rerun (the same sets tests/test_demo_pipeline.py asserts).
_DEMO_PYTEST = {"test-python-3.11", "test-python-3.12", "test-python-3.13"}
_DEMO_WHEEL = {"build-wheel", "smoke-test", "playwright-app"}
DEMO_EXPECTED = {
    "python-source": {"lint-python", *_DEMO_PYTEST, *_DEMO_WHEEL},
    "js-source": {"build-js", "test-js", *_DEMO_WHEEL},
    "lockfile": {"install-js-deps", "build-js", "test-js", "playwright-app"},
}
DEMO_FILES = {"python-source": "src/demo_app/table.py", "js-source": "packages/app/src/main.js",
              "lockfile": "packages/pnpm-lock.yaml"}
DEMO_JS_TEXT = "failed to load rows"  # a string that reaches the bundle (a comment would be minified away)


@dataclass
class Scenario:
    name: str
    path: str  # relative to the target
    edit: Callable[[str, int], str]
    expected: set[str] | None  # None: only the graph bounds are checked


def _append(comment: str) -> Callable[[str, int], str]:
    return lambda text, i: text + ("" if text.endswith("\n") else "\n") + f"{comment} bench edit {i}\n"


def _edit_for(path: str) -> Callable[[str, int], str]:
    if path.endswith(".json"):
        return lambda text, i: text + "\n" * (i + 1)  # JSON has no comments; whitespace still changes the bytes
    if path.endswith(JS_SUFFIXES):
        return _append("//")
    return _append("#")


def scenarios(s: Session) -> list[Scenario]:
    if s.kind == "demo":
        out = []
        for name, rel in DEMO_FILES.items():
            edit, expected = _edit_for(rel), set(DEMO_EXPECTED[name])
            if name == "js-source":
                if DEMO_JS_TEXT in (s.target / rel).read_text():
                    edit = lambda text, i: text.replace(DEMO_JS_TEXT, f"could not load rows ({i})")  # noqa: E731
                else:
                    expected = None
            out.append(Scenario(name, rel, edit, expected))
        return out
    if s.kind == "synthetic":
        return [Scenario("python-source", synth.PY_FILE, _append("#"), set(synth.EXPECTED["python-source"])),
                Scenario("js-source", synth.JS_FILE, _append("//"), set(synth.EXPECTED["js-source"])),
                Scenario("lockfile", synth.LOCKFILE, _append("#"), set(synth.EXPECTED["lockfile"]))]
    return _picked(s)


def _picked(s: Session) -> list[Scenario]:
    """Any target: the file of each kind that the most jobs key on."""
    counts: dict[str, int] = {}
    for info in s.jobs.values():
        for f in info.file_dep:
            counts[f] = counts.get(f, 0) + 1
    inside = {f: n for f, n in counts.items() if Path(f).is_relative_to(s.target) and Path(f).is_file()}

    def best(pred: Callable[[str], bool]) -> str | None:
        cands = sorted((-n, f) for f, n in inside.items() if pred(f))
        return str(Path(cands[0][1]).relative_to(s.target)) if cands else None

    lock_rank = {name: i for i, name in enumerate(LOCK_NAMES)}
    locks = sorted((lock_rank[Path(f).name], -n, f) for f, n in inside.items() if Path(f).name in lock_rank)
    picks = {
        "python-source": best(lambda f: f.endswith(PY_SUFFIXES) and "/test" not in f),
        "js-source": best(lambda f: f.endswith(JS_SUFFIXES) and "/test" not in f),
        "lockfile": str(Path(locks[0][2]).relative_to(s.target)) if locks else None,
    }
    return [Scenario(name, rel, _edit_for(rel), None) for name, rel in picks.items() if rel]


def measure(s: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sc in scenarios(s):
        s.say(f"incremental: {sc.name} ({sc.path}), {s.reps.incremental} edits")
        out[sc.name] = _scenario(s, sc)
    missing = {"python-source", "js-source", "lockfile"} - set(out)
    for name in sorted(missing):
        out[name] = {"skipped": "no such input file in this target"}
    return out


def _scenario(s: Session, sc: Scenario) -> dict[str, Any]:
    path = s.target / sc.path
    original = path.read_text()
    abs_path = str(path)
    keyed = graphinfo.keyed_on(s.jobs, abs_path)
    allowed = graphinfo.dependents(s.jobs, keyed)
    walls: list[float] = []
    forced: list[float] = []
    paired: list[float] = []
    vs_bound: list[float] = []
    needs = {name: info.needs for name, info in s.jobs.items()}
    reran: list[list[str]] = []
    verdicts: list[str] = []
    try:
        for i in range(s.reps.incremental):
            edited = sc.edit(original, i)
            if edited == original:
                s.note(f"incremental {sc.name}", "the edit did not change the file")
                break
            path.write_text(edited)
            res = s.attempt(f"incremental {sc.name} #{i}", lambda: s.doit.run(tag=f"inc-{sc.name}"), passed_all,
                            tries=1)
            if res is None:
                s.warm(f"incremental {sc.name} recovery")
                continue
            walls.append(res.wall)
            ratio = cold.assess(res, needs)["ratio"]
            if ratio is not None:
                vs_bound.append(ratio)
            reran.append(sorted(res.executed))
            verdicts.append(_verdict(res, sc.expected, keyed, allowed))
            s.runs.append(res)
            # Its baseline right after it, on the same tree, so that both see the same machine noise.
            base = s.doit.run("--always-execute", tag=f"inc-{sc.name}-forced")
            if passed_all(base) is None:
                forced.append(base.wall)
                paired.append(res.wall / base.wall)
                s.runs.append(base)
            else:
                s.note(f"incremental {sc.name} #{i}: forced baseline", passed_all(base) or "", base)
    finally:
        path.write_text(original)
    restore = s.doit.run(tag=f"inc-{sc.name}-restore")
    warm = s.warm(f"incremental {sc.name} restore")
    wall = stats.summary(walls)
    return {
        "file": sc.path,
        "expected": sorted(sc.expected) if sc.expected is not None else None,
        "keyed_on_file": sorted(keyed),
        "allowed": sorted(allowed),
        "reran": reran,
        "ok": bool(verdicts) and all(v in ("exact", "within bounds") for v in verdicts),
        "verdicts": verdicts,
        "wall": wall,
        "forced": stats.summary(forced),
        # Median of (this run ÷ the forced run right after it).
        "vs_forced": stats.median_of(stats.summary(paired)),
        "vs_forced_pairs": stats.summary(paired),
        # Against the bound of the jobs that reran (section 3's measure, applied to this run).
        "vs_bound": stats.summary(vs_bound),
        "restore_reran": sorted(restore.executed),
        "warm_after": warm,
    }


def _verdict(res: Result, expected: set[str] | None, keyed: set[str], allowed: set[str]) -> str:
    ran = res.executed
    if expected is not None:
        if ran == expected:
            return "exact"
        return f"expected {sorted(expected)}; extra {sorted(ran - expected)}, missing {sorted(expected - ran)}"
    if keyed <= ran <= allowed:
        return "within bounds"  # every job keyed on the file reran, and only jobs downstream of it
    return f"missing {sorted(keyed - ran)}, not downstream {sorted(ran - allowed)}"
