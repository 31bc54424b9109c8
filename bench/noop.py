"""Section 1: the whole pipeline when everything is up to date, against a forced run and the floor.

Measured round-robin (floor, then each launcher, then now and then a forced
run) so that all of them see the same machine noise.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench import cold, stats
from bench.runs import RUNNER, Doit, Result, clean_env, python, timed
from bench.session import Session, noop_ok, passed_all

GOAL = 0.10  # seconds, the issue's goal for the no-op


def _pyenv_shim() -> str | None:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    shim = Path(root) / "shims" / "python"
    return str(shim) if shim.exists() else None


def measure(s: Session, launchers: list[str]) -> dict[str, Any]:
    s.say(f"no-op: {s.reps.noop} rounds of {', '.join(launchers)}; {s.reps.forced} forced runs")
    s.warm("no-op warm-up")
    floors: dict[str, list[float]] = {"python -c pass": [], "pyenv shim python -c pass": []}
    noops: dict[str, list[float]] = {name: [] for name in launchers}
    forced: list[float] = []
    forced_runs: list[dict[str, Any]] = []
    needs = {name: info.needs for name, info in s.jobs.items()}
    shim = _pyenv_shim()
    all_jobs = set(s.jobs)
    rounds = max(s.reps.noop, s.reps.forced)
    for i in range(rounds):
        if i < s.reps.noop:
            floors["python -c pass"].append(timed([python(), "-c", "pass"], cwd=RUNNER).wall)
            if shim and i < 3:  # a reference: what one pyenv shim costs on this machine
                floors["pyenv shim python -c pass"].append(
                    timed([shim, "-c", "pass"], cwd=RUNNER, env=clean_env()).wall)
            for name in launchers:
                res = s.attempt(f"no-op ({name})", lambda n=name: s.doit.run(launcher=n, tag="noop"), noop_ok,
                                before_retry=lambda: s.warm())
                if res is not None:
                    noops[name].append(res.wall)
        if i < s.reps.forced:
            def check(res: Result) -> str | None:
                problem = passed_all(res)
                missing = all_jobs - res.executed - res.with_status("skipped")
                return problem or (f"forced run did not run {sorted(missing)}" if missing and all_jobs else None)
            res = s.attempt("forced run (--always-execute)", lambda: s.doit.run("--always-execute", tag="forced"),
                            check, before_retry=lambda: s.warm())
            if res is not None:
                forced.append(res.wall)
                s.runs.append(res)
                forced_runs.append(cold.assess(res, needs))
    out: dict[str, Any] = {
        "floor": {k: stats.summary(v) for k, v in floors.items() if v},
        "noop": {k: stats.summary(v) for k, v in noops.items()},
        "forced": stats.summary(forced),
        # The forced runs against their own bound: a warm state dir, with the durations of earlier runs.
        "forced_vs_bound": {"ratio": stats.summary([r["ratio"] for r in forced_runs if r["ratio"] is not None]),
                            "list_schedule": stats.summary([r["list_schedule_s"] for r in forced_runs]),
                            "bound": stats.summary([r["bound_s"] for r in forced_runs]),
                            "timeline_last": forced_runs[-1]["timeline"] if forced_runs else {}},
        "goal_seconds": GOAL,
    }
    floor = stats.median_of(out["floor"].get("python -c pass"))
    forced_med = stats.median_of(out["forced"])
    out["ratios"] = {
        name: {"vs_floor": stats.ratio(stats.median_of(sm), floor),
               "forced_vs_noop": stats.ratio(forced_med, stats.median_of(sm)),
               "noop_vs_forced": stats.ratio(stats.median_of(sm), forced_med, 4),
               "over_floor_s": None if stats.median_of(sm) is None or floor is None
               else round(stats.median_of(sm) - floor, 4),
               "meets_goal": None if stats.median_of(sm) is None else stats.median_of(sm) <= GOAL}
        for name, sm in out["noop"].items()
    }
    return out


def breakdown(s: Session, reps: int, out_dir: Path, cprofile: bool = True) -> dict[str, Any]:
    """Where the no-op's time goes: bench.phases (median of reps), one cProfile, one -X importtime."""
    s.say(f"no-op breakdown: {reps} instrumented runs")
    s.warm("breakdown warm-up")
    runs: list[dict[str, Any]] = []
    for i in range(reps):
        data = phases_run(s.doit, out_dir / f"phases-{i}.json")
        if data is not None:
            runs.append(data)
    result: dict[str, Any] = merge_phases(runs)
    if cprofile:
        prof = phases_run(s.doit, out_dir / "phases-cprofile.json", cprofile=True)
        result["cprofile_top"] = (prof or {}).get("cprofile_top", [])
    result["imports"] = importtime(s.doit)
    return result


def phases_run(d: Doit, out: Path, cprofile: bool = False) -> dict[str, Any] | None:
    import json

    cmd = [python(), "-m", "bench.phases", str(out)] + (["--cprofile"] if cprofile else []) + ["--"] + d.args()
    res = timed(cmd, cwd=RUNNER, env=clean_env({"WARMCI_RUN_ID": f"bench-phases-{out.stem}-{os.getpid()}"}))
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        return None
    data["wall"] = res.wall
    return data


def merge_phases(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each phase and mark over the instrumented runs."""
    if not runs:
        return {"n": 0}
    labels: dict[str, str | None] = {}
    secs: dict[str, list[float]] = {}
    calls: dict[str, int] = {}
    for r in runs:
        for p in r.get("phases", []):
            labels.setdefault(p["label"], p.get("parent"))
            secs.setdefault(p["label"], []).append(p["seconds"])
            calls[p["label"]] = p.get("calls", 0)
    marks: dict[str, list[float]] = {}
    for r in runs:
        for k, v in r.get("marks", {}).items():
            marks.setdefault(k, []).append(v)
    return {
        "n": len(runs),
        "wall": stats.summary([r["wall"] for r in runs]),
        "in_process_total": stats.summary([r["total"] for r in runs]),
        "marks": {k: stats.summary(v)["median"] for k, v in marks.items()},
        "phases": [{"label": k, "parent": labels[k], "median_s": stats.summary(v)["median"], "calls": calls[k]}
                   for k, v in secs.items()],
        "not_wrapped": sorted({m for r in runs for m in r.get("not_wrapped", [])}),
    }


def importtime(d: Doit, top: int = 12) -> dict[str, Any]:
    """What a no-op imports (`python -X importtime`): the biggest top-level imports (cumulative)
    and the modules that cost the most themselves (self), in milliseconds."""
    cmd = [python(), "-X", "importtime", "-m", "doit"] + d.args()
    res = timed(cmd, cwd=RUNNER, env=clean_env({"WARMCI_RUN_ID": f"bench-importtime-{os.getpid()}"}))
    rows = []
    for line in res.err.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        self_us, cum_us, name = parts
        rows.append({"module": name.strip(), "top_level": len(name) - len(name.lstrip()) <= 1,
                     "cumulative_ms": round(int(cum_us) / 1000, 2), "self_ms": round(int(self_us) / 1000, 2)})
    tops = sorted((r for r in rows if r["top_level"]), key=lambda r: -r["cumulative_ms"])
    return {
        "total_ms": round(sum(r["cumulative_ms"] for r in tops), 1),
        "modules": len(rows),
        "top_level": [{k: r[k] for k in ("module", "cumulative_ms")} for r in tops[:top]],
        "heaviest_self": [{k: r[k] for k in ("module", "self_ms")}
                          for r in sorted(rows, key=lambda r: -r["self_ms"])[:top]],
    }
