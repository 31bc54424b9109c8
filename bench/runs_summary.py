"""Runs of a real target summarised: wall against its lower bound, where the time goes, medians and spread.

    python -m bench.runs_summary RESULTS... [--title T] [--out FILE.md] [--json FILE.json]

RESULTS are results.json files, run dirs, or replay.json files (their runs'
copies next to them: `--which warm|fresh|all`). For each run: wall, critical
path, job-seconds, the lower bound on its worker count
max(critical path, job-seconds / workers) and wall / bound; then each job's
duration (median, min-max over the runs where it ran) and its steps' and
phases' medians, and the critical path of the median run with each job's
share. Nothing here runs anything: it reads what runs recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.stats import summary


def load(paths: Sequence[str], which: str = "all") -> list[dict[str, Any]]:
    runs = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            path = path / "results.json" if (path / "results.json").exists() else path / "replay.json"
        data = json.loads(path.read_text())
        if "commits" in data:  # a replay: its runs' results.json copies are in logs/
            for c in data["commits"]:
                runs_of = [("warm", c)] + ([("fresh", c["check"])] if c.get("check") else [])
                for kind, r in runs_of:
                    copy = path.parent / "logs" / f"{r['run_id']}.results.json"
                    if which in ("all", kind) and copy.exists():
                        run = json.loads(copy.read_text())
                        run["_label"] = f"{kind} {c['sha'][:10]}"
                        run["_load"] = r.get("load_before")
                        runs.append(run)
        else:
            data["_label"] = data.get("run_id", str(path))
            runs.append(data)
    return runs


def workers(run: dict[str, Any]) -> int:
    """doit's -n: what the run's argv says, else one per core (warmci's default)."""
    argv = run.get("argv") or []
    for i, a in enumerate(argv):
        if a in ("-n", "--process") and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("-n") and a[2:].isdigit():
            return int(a[2:])
    return int((run.get("resources") or {}).get("cpu_count") or os.cpu_count() or 1)


def bound(run: dict[str, Any]) -> tuple[float, float, float, float]:
    """(wall, critical path, job-seconds, lower bound)."""
    cp = float((run.get("critical_path") or {}).get("duration") or 0.0)
    js = float(run.get("job_seconds") or 0.0)
    return float(run["duration"]), cp, js, max(cp, js / workers(run))


def _fmt(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "-"
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})" if s["n"] > 1 else f"{s['median']:.1f}"


def markdown(runs: list[dict[str, Any]], title: str) -> str:
    lines = [f"## {title}", "",
             "| run | status | wall (s) | critical path (s) | job-seconds | bound (s) | wall / bound | load before |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        wall, cp, js, lb = bound(r)
        load = r.get("_load")
        lines.append(f"| {r['_label']} | {r.get('status')} | {wall:.1f} | {cp:.1f} | {js:.1f} | {lb:.1f} "
                     f"| {f'{wall / lb:.2f}' if lb else '-'} | {' '.join(f'{x:.1f}' for x in load) if load else '-'} |")
    walls = summary([bound(r)[0] for r in runs], 2)
    ratios = summary([bound(r)[0] / bound(r)[3] for r in runs if bound(r)[3]], 3)
    lines += ["", f"Wall: median {_fmt(walls)} s over {walls['n']} runs; wall / bound: median "
              f"{ratios['median']} ({ratios['min']}–{ratios['max']}).", ""]
    per_job: dict[str, list[float]] = {}
    per_step: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        for name, j in r["jobs"].items():
            if j.get("status") in ("passed", "failed") and j.get("duration") is not None:
                per_job.setdefault(name, []).append(j["duration"])
                for s in j.get("steps") or []:
                    per_step.setdefault((name, s["name"]), []).append(s["duration"])
                    for ph in s.get("phases") or []:
                        per_step.setdefault((name, f"{s['name']} / {ph['name']}"), []).append(ph["seconds"])
    total = sum(statistics.median(v) for v in per_job.values()) or 1.0
    lines += ["| job | runs | duration (s): median (min–max) | share of job-seconds |", "|---|---:|---:|---:|"]
    for name, vals in sorted(per_job.items(), key=lambda kv: -statistics.median(kv[1])):
        s = summary(vals, 2)
        lines.append(f"| `{name}` | {s['n']} | {_fmt(s)} | {100 * s['median'] / total:.0f} % |")
    lines += ["", "<details><summary>steps and phases (median, min–max)</summary>", "",
              "| job | step / phase | runs | seconds |", "|---|---|---:|---:|"]
    for (job, step), vals in sorted(per_step.items()):
        s = summary(vals, 2)
        lines.append(f"| `{job}` | {step} | {s['n']} | {_fmt(s)} |")
    lines += ["", "</details>", ""]
    median_run = sorted(runs, key=lambda r: bound(r)[0])[len(runs) // 2] if runs else None
    if median_run:
        cp = median_run.get("critical_path") or {}
        chain = cp.get("jobs") or []
        lines.append(f"Critical path of the median run ({median_run['_label']}): "
                     + " → ".join(f"`{c['job']}` {c.get('duration', 0):.0f} s" + (
                         f" (+{c['wait']:.0f} s waiting)" if c.get("wait") else "") for c in chain)
                     + f" = {cp.get('duration', 0):.0f} s.")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.runs_summary", description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+")
    p.add_argument("--which", choices=("warm", "fresh", "all"), default="all", help="runs of a replay to include")
    p.add_argument("--title", default="Runs")
    p.add_argument("--out", help="append the Markdown here (default: print it)")
    opts = p.parse_args(argv)
    text = markdown(load(opts.results, opts.which), opts.title)
    if opts.out:
        with open(opts.out, "a") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
