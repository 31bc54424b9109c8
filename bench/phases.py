"""Where a warmci run's time goes, measured inside one doit process.

    python -m bench.phases OUT.json [--cprofile] -- DOIT-ARGS...

Runs doit exactly as `doit DOIT-ARGS` would (from the runner's root), with
timers around the steps of a run: importing doit and warmci, reading the
pipeline file, building the task list (walking the target, matching input
patterns), opening doit's DB, the run-start and run-end hooks (process
snapshots, versions.txt, results.json, history), the up-to-date checks,
and writing the DB. Timings are inclusive; a phase's children are listed
under it. Wrapping costs a few microseconds per call: fine for the phases,
not for per-file work, which is counted in calls but not wrapped per file.
"""
from __future__ import annotations

import time

T0 = time.perf_counter()

import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

# (label, parent label or None, module, attribute path): wrapped when the module is importable.
POINTS: list[tuple[str, str | None, str, str]] = [
    ("load dodo.py", None, "doit.loader", "get_module"),
    ("context + pipeline file", "load dodo.py", "warmci.dodo_support", "load"),
    ("build task list", None, "doit.loader", "load_tasks"),
    ("walk target", "build task list", "warmci.inputs.files", "walk"),
    ("match inputs", "build task list", "tasks.common", "FileIndex.inputs"),
    ("history + priorities", "build task list", "warmci.run.schedule", "prioritize"),
    ("open doit DB", None, "doit.dependency", "SqliteDB.__init__"),
    ("run start (lock, leftovers, snapshot)", None, "warmci.run.lifecycle", "start_run"),
    ("end leftovers (registry)", "run start (lock, leftovers, snapshot)", "warmci.run.lifecycle", "end_leftovers"),
    ("reporter: run start", None, "warmci.run.reporter", "WarmciReporter.initialize"),
    ("git HEAD", "reporter: run start", "warmci.run.gitinfo", "head"),
    ("up-to-date checks", None, "doit.dependency", "Dependency.get_status"),
    ("InputsKey (tools, config, env)", "up-to-date checks", "warmci.inputs.uptodate", "InputsKey.__call__"),
    ("why.Probe", "up-to-date checks", "warmci.inputs.why", "Probe.__call__"),
    ("venv/path/artifact checks", "up-to-date checks", "warmci.inputs.uptodate", "VenvIntact.__call__"),
    ("venv/path/artifact checks", "up-to-date checks", "warmci.inputs.uptodate", "PathExists.__call__"),
    ("venv/path/artifact checks", "up-to-date checks", "warmci.inputs.uptodate", "ArtifactsIntact.__call__"),
    ("reporter: skip lines", None, "warmci.run.reporter", "WarmciReporter.skip_uptodate"),
    ("reporter: run end", None, "warmci.run.reporter", "WarmciReporter.complete_run"),
    ("versions.txt", "reporter: run end", "warmci.run.versions", "write"),
    ("critical path", "reporter: run end", "warmci.run.critpath", "of_run"),
    ("history.json", "reporter: run end", "warmci.run.history", "record"),
    ("run end (snapshot, unlock)", None, "warmci.run.lifecycle", "end_run"),
    ("process snapshot", None, "warmci.run.lifecycle", "snapshot"),  # inside run start and end
    # inside InputsKey and versions.txt
    ("tool version lookups", None, "warmci.inputs.toolversions", "VersionCache.version"),
    ("save doit DB", None, "doit.dependency", "Dependency.close"),
]

stats: dict[str, dict[str, float]] = {}
_active: dict[str, int] = {}


def _timer(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps the signature: doit inspects uptodate callables' parameters
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _active.get(label):
            return fn(*args, **kwargs)  # re-entered: the outer call already counts
        _active[label] = 1
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            s = stats.setdefault(label, {"seconds": 0.0, "calls": 0})
            s["seconds"] += time.perf_counter() - t
            s["calls"] += 1
            _active[label] = 0
    return wrapper


def install(only_prefix: str | None = None) -> list[str]:
    """Wrap every point whose module imports; returns the ones that could not be wrapped."""
    import importlib

    missing = []
    for label, _, module, attr in POINTS:
        if only_prefix and not module.startswith(only_prefix):
            continue
        try:
            mod = importlib.import_module(module)
            owner: Any = mod
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part)
            fn = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        except (ImportError, AttributeError, KeyError):
            missing.append(f"{module}.{attr}")
            continue
        setattr(owner, name, _timer(label, fn))
    return missing


def main(argv: list[str]) -> int:
    out_path, rest = argv[0], argv[1:]
    cprofile = "--cprofile" in rest[: rest.index("--")] if "--" in rest else False
    doit_args = rest[rest.index("--") + 1:] if "--" in rest else rest
    marks: dict[str, float] = {"bench.phases started": time.perf_counter() - T0}

    t = time.perf_counter()
    from doit.doit_cmd import DoitMain
    marks["import doit"] = time.perf_counter() - t
    t = time.perf_counter()
    missing = install("doit.")
    import tasks.graph  # noqa: F401
    import tasks.registry  # noqa: F401
    import warmci.dodo_support  # noqa: F401
    marks["import warmci"] = time.perf_counter() - t
    missing += install("warmci.") + install("tasks.")

    profiler = None
    if cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t = time.perf_counter()
    try:
        rc = DoitMain().run(doit_args)
    except SystemExit as exc:  # a setup error exits from inside dodo.py
        rc = exc.code if isinstance(exc.code, int) else 1
    marks["doit run (load, check, report)"] = time.perf_counter() - t
    if profiler is not None:
        profiler.disable()
    total = time.perf_counter() - T0
    data: dict[str, Any] = {
        "total": round(total, 6), "rc": rc, "marks": {k: round(v, 6) for k, v in marks.items()},
        "phases": [{"label": label, "parent": parent, **{k: round(v, 6) for k, v in stats[label].items()}}
                   for label, parent in dict.fromkeys((lbl, par) for lbl, par, _, _ in POINTS) if label in stats],
        "not_wrapped": missing,
    }
    if profiler is not None:
        data["cprofile_top"] = _top(profiler)
    with open(out_path, "w") as fh:
        json.dump(data, fh, indent=1)
    return int(rc or 0)


def _top(profiler: Any, n: int = 25) -> list[dict[str, Any]]:
    import pstats

    st = pstats.Stats(profiler)
    # Module paths without this machine's layout: site-packages/, the stdlib and the runner's checkout.
    prefixes = ("site-packages/", f"{sysconfig.get_paths()['stdlib']}/", f"{Path(__file__).resolve().parent.parent}/")
    rows = []
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in st.stats.items():  # type: ignore[attr-defined]
        for prefix in prefixes:
            file = file.split(prefix)[-1]
        rows.append({"function": f"{file}:{line}({func})", "calls": ncalls,
                     "own_s": round(tottime, 5), "cumulative_s": round(cumtime, 5)})
    rows.sort(key=lambda r: -r["own_s"])
    return rows[:n]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
