"""Section 6: switching branches, with results kept by content against doit alone.

- **return**: the target at A (green), at B (green), back at A: the wall
  time of the return and the jobs it reran (goal: none, ≤ 0.5 s), then the
  same to B. Against the same series with the result store off
  (WARMCI_STORE=off: doit's last-state-per-task alone), where every return
  reruns what the switch touched.
- **series**: a series of checkouts alternating between three branches
  (main, a Python change, a JS change): total job-seconds (the durations of
  the jobs that ran, summed) and total wall, with the store and without.
- **clone**: the no-op after a fresh clone at N files (bench/synth.py): the
  target is removed and cloned again at the same path (every file new:
  inode, mtime, ctime), the first run (each file hashed once, nothing
  rerun) and the no-ops after it, against the no-op before the clone; and a
  clone in another directory with the same state dir (nothing rerun).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import incremental, stats, synth, targets
from bench.runs import Doit, Result
from bench.session import Session

RETURN_GOAL = 0.5  # seconds
SERIES = ["main", "b-python", "b-js", "main", "b-js", "b-python", "main", "b-python", "b-js", "main"]


def measure(s: Session, sizes: list[int], quick: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = s.work / "switching"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    repo = _branches(s, base / "target")
    out["branches"] = {"b-python": _edited(s, "python-source"), "b-js": _edited(s, "js-source")}
    out["return"] = {mode: _returns(s, repo, base / f"state-return-{mode}", mode) for mode in ("store", "off")}
    series = SERIES[:5] if quick else SERIES
    out["series"] = {mode: _series(s, repo, base / f"state-series-{mode}", mode, series) for mode in ("store", "off")}
    st, off = out["series"]["store"], out["series"]["off"]
    out["series"]["job_seconds_ratio"] = stats.ratio(st.get("job_seconds"), off.get("job_seconds"))
    out["series"]["wall_ratio"] = stats.ratio(st.get("wall"), off.get("wall"))
    out["clone"] = [_clone(s, base / f"clone-{n}", n) for n in sizes]
    out["goal_seconds"] = RETURN_GOAL
    return out


def _edited(s: Session, scenario: str) -> str:
    return next(sc.path for sc in incremental.scenarios(s) if sc.name == scenario)


def _branches(s: Session, dest: Path) -> Path:
    """A copy of the target with branches b-python and b-js, each one edit away from main."""
    repo = targets.copy_target(s.target, dest)
    for branch, scenario in (("b-python", "python-source"), ("b-js", "js-source")):
        sc = next(x for x in incremental.scenarios(s) if x.name == scenario)
        targets.git(repo, "checkout", "-q", "-b", branch, "main")
        path = repo / sc.path
        path.write_text(sc.edit(path.read_text(), 7))
        targets.commit_all(repo, f"bench: {scenario} edit on {branch}")
    targets.git(repo, "checkout", "-q", "main")
    return repo


class _StoreOff(Doit):
    """doit alone: warmci with its result store off (each job's last state only, as doit keeps it)."""

    def run(self, *doit_args: str, **kw: Any) -> Result:
        with _env(WARMCI_STORE="off"):
            return super().run(*doit_args, **kw)


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _doit(s: Session, repo: Path, state: Path, mode: str) -> Doit:
    return (_StoreOff if mode == "off" else Doit)(repo, state, s.pipeline)


def _at(d: Doit, repo: Path, branch: str, tag: str) -> Result:
    targets.git(repo, "checkout", "-q", branch)
    return d.run(tag=tag)


def _row(res: Result, branch: str) -> dict[str, Any]:
    ran = res.executed
    return {"branch": branch, "wall": round(res.wall, 3), "rc": res.rc, "ran": sorted(ran),
            "restored": sorted(res.with_status("restored")),
            "flaky": sorted(n for n, j in res.jobs.items() if isinstance(j, dict) and j.get("flaky")),
            "job_seconds": round(sum(float(res.jobs[n].get("duration") or 0) for n in ran), 3)}


def _returns(s: Session, repo: Path, state: Path, mode: str) -> dict[str, Any]:
    """main, b-python (both green), then back and forth: each return measured."""
    s.say(f"switching: returns ({'store' if mode == 'store' else 'doit alone'})")
    d = _doit(s, repo, state, mode)
    first = [_row(_at(d, repo, b, f"switch-{mode}-first"), b) for b in ("main", "b-python")]
    rows = [_row(_at(d, repo, b, f"switch-{mode}-return"), b)
            for b in ["main", "b-python"] * max(1, s.reps.incremental)]
    walls = [r["wall"] for r in rows if r["rc"] == 0]
    return {"first": first, "returns": rows, "wall": stats.summary(walls),
            "reran_nothing": all(not r["ran"] for r in rows),
            "meets_goal": bool(walls) and all(not r["ran"] for r in rows)
            and (stats.median_of(stats.summary(walls)) or 99) <= RETURN_GOAL}


def _series(s: Session, repo: Path, state: Path, mode: str, series: list[str]) -> dict[str, Any]:
    s.say(f"switching: series of {len(series)} checkouts ({'store' if mode == 'store' else 'doit alone'})")
    d = _doit(s, repo, state, mode)
    rows = [_row(_at(d, repo, b, f"series-{mode}"), b) for b in series]
    return {"order": series, "runs": rows, "wall": round(sum(r["wall"] for r in rows), 3),
            "job_seconds": round(sum(r["job_seconds"] for r in rows), 3),
            "jobs_ran": sum(len(r["ran"]) for r in rows), "jobs_restored": sum(len(r["restored"]) for r in rows),
            "failed_runs": [r for r in rows if r["rc"] != 0]}


def _clone(s: Session, base: Path, n: int) -> dict[str, Any]:
    s.say(f"switching: fresh clone at {n} files")
    shutil.rmtree(base, ignore_errors=True)
    origin = synth.generate(base / "origin", n, speed=0.05)
    target, state = base / "target", base / "state"
    _git_clone(origin, target)
    d = Doit(target, state, None)
    cold = d.run(tag="clone-cold")
    before = [d.run(tag="clone-noop-before") for _ in range(max(2, s.reps.scaling))]
    shutil.rmtree(target)
    _git_clone(origin, target)  # same path, every file new
    after = [d.run(tag="clone-after") for _ in range(1 + max(2, s.reps.scaling))]
    elsewhere = base / "elsewhere"
    _git_clone(origin, elsewhere)
    e = Doit(elsewhere, state, None)
    other = [e.run(tag="clone-elsewhere") for _ in range(2)]
    row = {"files": n, "cold_s": round(cold.wall, 3), "cold_rc": cold.rc,
           "noop_before": stats.summary([r.wall for r in before if r.rc == 0 and not r.executed]),
           "first_after_clone": _row(after[0], "main"),
           "noop_after": stats.summary([r.wall for r in after[1:] if r.rc == 0 and not r.executed]),
           "not_noops_after": [_row(r, "main") for r in after[1:] if r.rc != 0 or r.executed],
           "elsewhere_first": _row(other[0], "main"), "elsewhere_noop": _row(other[1], "main")}
    row["after_vs_before"] = stats.ratio(stats.median_of(row["noop_after"]), stats.median_of(row["noop_before"]))
    shutil.rmtree(base, ignore_errors=True)
    return row


def _git_clone(origin: Path, dest: Path) -> None:
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(origin), str(dest)], check=True,
                   capture_output=True, env={**os.environ, **targets.GIT_ENV})
