"""The benchmark command: warmci against its baselines, side by side, in one run.

    ./bootstrap python -m bench.run                 full run on the bundled demo (~10 min on 2 cores)
    ./bootstrap python -m bench.run --quick         a synthetic target, one repetition (the smoke test)
    ./bootstrap python -m bench.run --target PATH [--pipeline FILE]   another target

Writes OUT/latest.json and OUT/latest.md (OUT defaults to bench/results).
See docs/bench.md for what each number means.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import cold, graphinfo, handoff, incremental, machine, noop, report, scaling, switching, synth, targets
from bench.session import Reps, Session

SCHEMA = 1
RUNNER = Path(__file__).resolve().parent.parent
LAUNCHERS = ["doit", "python -m doit", "./bootstrap doit"]
FULL_SIZES = [1000, 10000, 50000]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fastest mode: a synthetic 1k-file target, one repetition, scaling at 1k only")
    p.add_argument("--target", type=Path, help="target to measure instead of the bundled demo (it is copied)")
    p.add_argument("--pipeline", help="its pipeline file or profile name (default: TARGET/warmci.toml)")
    p.add_argument("--out", type=Path, default=RUNNER / "bench" / "results", help="where latest.json/.md go")
    p.add_argument("--sizes", help="comma-separated file counts for the scaling section (default 1000,10000,50000)")
    p.add_argument("--reps", type=int, help="repetitions of every measure (overrides the mode's defaults)")
    p.add_argument("--workdir", type=Path, help="scratch directory (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: cold,noop,breakdown,incremental,"
                                              "scaling,switching")
    return p.parse_args(argv)


def reps_for(args: argparse.Namespace) -> Reps:
    r = Reps(noop=2, forced=1, incremental=1, cold=1, scaling=1) if args.quick else Reps()
    if args.reps:
        r = Reps(noop=args.reps, forced=args.reps, incremental=args.reps, cold=args.reps, scaling=args.reps)
    return r


def _resolve_pipeline(arg: str | None) -> Path | None:
    if not arg:
        return None
    path = Path(arg).expanduser()
    profile = RUNNER / "profiles" / f"{arg}.toml"
    if not path.exists() and profile.is_file():
        return profile
    return path.resolve()


def prepare(args: argparse.Namespace, work: Path) -> tuple[str, Path, Path | None, dict[str, Any]]:
    """(kind, target copy, pipeline file or None, description) — never the original tree."""
    from tasks import registry
    from warmci.pipeline import reading

    if args.quick and not args.target:
        target = synth.generate(work / "target", 1000, speed=0.25)
        return "synthetic", target, None, {"kind": "synthetic", "source": "bench/synth.py, 1000 files",
                                           "files": 1000, "speed": 0.25}
    source = (args.target or targets.DEMO).resolve()
    kind = "target" if args.target else "demo"
    target = targets.copy_target(source, work / "target")
    pipe_src = _resolve_pipeline(args.pipeline)
    if pipe_src is None:
        pipe_file, pipe_arg = target / "warmci.toml", None
    else:
        pipe_file = pipe_arg = work / "pipeline.toml"
        shutil.copy2(pipe_src, pipe_file)
    ports = [p for job in reading.load(pipe_file, registry.READER).jobs.values() for p in job.ports]
    moved = targets.move_ports(pipe_file, ports)
    if pipe_arg is None:
        targets.commit_all(target, "bench: free ports")
    return kind, target, pipe_arg, {"kind": kind, "source": targets.shown(source),
                                    "pipeline": targets.shown(pipe_src or source / "warmci.toml"),
                                    "ports_moved": moved}


def section(s: Session, name: str, fn: Callable[[], Any]) -> Any:
    """One section; an error in it is recorded and the others still run."""
    t0 = time.perf_counter()
    load_before = machine.load()
    try:
        out = fn()
    except Exception:
        s.say(f"{name}: error\n{traceback.format_exc()}")
        out = {"error": traceback.format_exc()}
    if isinstance(out, dict):
        out["section_s"] = round(time.perf_counter() - t0, 1)
        out["loadavg"] = [load_before, machine.load()]  # the machine is shared and noisy: say how noisy
    return out


def leftovers() -> list[str]:
    import psutil

    out = []
    for c in psutil.Process().children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{c.pid}: {' '.join(c.cmdline())[:160]}")
        except psutil.Error:
            continue
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else ([1000] if args.quick else FULL_SIZES)
    started = time.perf_counter()
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "command": shlex.join(["./bootstrap", "python", "-m", "bench.run", *argv]),
        "invoked_as": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "mode": "quick" if args.quick else "full",
        "machine": machine.describe(),
    }
    work = args.workdir or Path(tempfile.mkdtemp(prefix="warmci-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        kind, target, pipe, desc = prepare(args, work)
        reps = reps_for(args)
        s = Session(kind, target, work / "state", work, pipe, reps)
        s.jobs = graphinfo.load(target, s.state, pipe)
        data["target"] = {**desc, "jobs": len(s.jobs), "workers": cold.workers()}
        data["reps"] = vars(reps)
        s.say(f"{kind} target: {len(s.jobs)} jobs, copy at {target}; scratch {work}")
        if "cold" not in skip:
            data["cold"] = section(s, "cold", lambda: cold.measure(s))
        s.jobs = graphinfo.load(target, s.state, pipe)
        if "noop" not in skip:
            # Quick mode leaves ./bootstrap out: it would `uv sync` the runner's venv under a running test suite.
            launchers = [name for name in LAUNCHERS if not (args.quick and "bootstrap" in name)]
            data["noop"] = section(s, "noop", lambda: noop.measure(s, launchers))
        if "breakdown" not in skip:
            data["noop_breakdown"] = section(
                s, "breakdown", lambda: noop.breakdown(s, 1 if args.quick else 10, work, cprofile=not args.quick))
        if "incremental" not in skip:
            data["incremental"] = section(s, "incremental", lambda: incremental.measure(s))
        needs = {n: j.needs for n, j in s.jobs.items()}
        data["handoff"] = section(s, "handoff", lambda: handoff.summarize(
            [p for r in s.runs for p in handoff.pairs(r.results, needs, cold.workers(), r.extra.get("tag", ""))]))
        if "scaling" not in skip:
            data["scaling"] = section(s, "scaling", lambda: scaling.measure(s, sizes, breakdown=True))
        if "switching" not in skip:
            data["switching"] = section(s, "switching", lambda: switching.measure(s, sizes, quick=args.quick))
        data["anomalies"] = s.anomalies
    finally:
        data["leftover_processes"] = leftovers()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            data["workdir"] = str(work)
    data["machine"]["loadavg_at_end"] = machine.load()
    data["duration_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    rc = 0
    try:
        md = report.markdown(data)
    except Exception:  # latest.json is written: never lose the numbers to a rendering bug
        md = ("# warmci benchmark\n\nRendering failed; the numbers are in latest.json.\n\n"
              f"```\n{traceback.format_exc()}```\n")
        rc = 1
    (args.out / "latest.md").write_text(md)
    print(f"bench: wrote {args.out / 'latest.json'} and {args.out / 'latest.md'} in {data['duration_s']} s",
          file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
