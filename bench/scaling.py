"""Section 5: what the no-op and the up-to-date checks cost as the target grows.

For each size a synthetic target (bench.synth) is generated and run cold
once; then, round-robin: the no-op run, `doit list` (loading the task list,
no checks) and `doit info lint-py` (one job's full up-to-date check, the
command a maintainer types to ask "would it run?"). Last, every file's mtime
is changed with its content kept — what a fresh clone or checkout of the
same commit looks like to doit — and the no-op is timed twice: doit re-hashes
the files whose mtime differs, and stores the new mtime only when a job
runs, so the cost repeats on every later run.
"""
from __future__ import annotations

import os
import shutil
import time
from typing import Any

from bench import graphinfo, noop, stats, synth, targets
from bench.session import Session, noop_ok, passed_all

INFO_JOB = "lint-py"


def measure(s: Session, sizes: list[int], breakdown: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": []}
    for n in sizes:
        s.say(f"scaling: {n} files")
        out["sizes"].append(_size(s, n, breakdown))
    return out


def _size(s: Session, n: int, breakdown: bool) -> dict[str, Any]:
    base = s.work / f"scaling-{n}"
    shutil.rmtree(base, ignore_errors=True)
    t0 = time.perf_counter()
    target = synth.generate(base / "target", n, speed=0.05)
    generated = time.perf_counter() - t0
    state = base / "state"
    sub = Session("synthetic", target, state, base, None, s.reps)
    d = sub.doit
    jobs = graphinfo.load(target, state)
    pairs = sum(len(j.file_dep) for j in jobs.values())
    files = len(targets.git(target, "ls-files").splitlines())
    row: dict[str, Any] = {"files": files, "requested": n, "job_file_pairs": pairs,
                           "generate_s": round(generated, 2)}
    cold = sub.attempt(f"scaling {n}: cold", lambda: d.run(tag="scale-cold"), passed_all)
    row["cold_s"] = round(cold.wall, 3) if cold else None
    sub.warm(f"scaling {n}: warm-up")
    walls: dict[str, list[float]] = {"noop": [], "list": [], "info": []}
    for _ in range(s.reps.scaling):
        res = sub.attempt(f"scaling {n}: no-op", lambda: d.run(tag="scale-noop"), noop_ok,
                          before_retry=lambda: sub.warm())
        if res is not None:
            walls["noop"].append(res.wall)
        res = d.run("list", tag="scale-list")
        if res.rc == 0:
            walls["list"].append(res.wall)
        res = d.run("info", INFO_JOB, tag="scale-info")
        if res.rc == 0:  # doit info: 0 up to date, 1 would run
            walls["info"].append(res.wall)
        else:
            sub.note(f"scaling {n}: info", f"doit info {INFO_JOB} said it would run", res)
    for key, vals in walls.items():
        row[key] = stats.summary(vals)
    if breakdown:
        phases = noop.phases_run(d, base / "phases.json")
        row["phases"] = {p["label"]: round(p["seconds"], 4) for p in (phases or {}).get("phases", [])}
        row["phases_total"] = (phases or {}).get("total")
    # A fresh checkout of the same commit: same bytes, new mtimes.
    stamp = time.time() + 5
    for p in target.rglob("*"):
        if ".git" not in p.parts and p.is_file():
            os.utime(p, (stamp, stamp))
    touched = [d.run(tag="scale-touched") for _ in range(2)]
    row["touched_noop_s"] = [round(r.wall, 3) if r.rc == 0 and not r.executed else None for r in touched]
    s.anomalies += sub.anomalies
    shutil.rmtree(base, ignore_errors=True)
    return row
