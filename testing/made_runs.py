"""Runs made up for the page tests and the page benchmark, without running doit.

Rows go into the service's real queue DB (through `runsdb`), and run
directories are written the way warmci writes them (docs/results.md:
results.json schema 3, ci.log, logs/JOB.log, versions.txt), so the pages
read them exactly as they read a real run's. The browser tests use real
demo runs; these are for the cases a real run cannot stage cheaply (500
runs, hostile names, a log full of control codes).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ci_runner import runsdb
from ci_runner.runsdb import RunsDB

VERSIONS = {"python3.13": "Python 3.13.0", "node": "v20.20.2", "pnpm": "9.15.9", "uv": "uv 0.13.9",
            "chromium": "Chromium 156.0.8078.114", "git": "git version 2.39.5"}


def results(run_id: str, statuses: dict[str, str], *, start: float, sha: str = "a" * 40, branch: str = "main",
            seconds: float = 2.0, logs_dir: Path | None = None) -> dict[str, Any]:
    """A results.json: jobs in a chain of needs (each job needs the one before), `seconds` each when they ran."""
    jobs: dict[str, Any] = {}
    t = start
    ran = ("passed", "failed", "errored", "timed-out")
    previous: str | None = None
    for name, status in statuses.items():
        did_run = status in ran
        end = t + seconds if did_run else t
        jobs[name] = {
            "name": name, "kind": name.split("-")[0], "status": status, "start": t, "end": end,
            "duration": round(end - t, 3), "exit_code": 0 if status == "passed" else 1 if did_run else None,
            "log": str(logs_dir / f"{name}.log") if logs_dir and did_run else None,
            "reason": {"passed": "", "up-to-date": "up to date", "failed": "step 'test' exited 1",
                       "not-run": f"dependency failed: {previous}"}.get(status, status),
            "why": [{"kind": "file", "name": "src/x.py", "text": "src/x.py changed"}] if did_run else [],
            "needs": [previous] if previous else [], "priority": 1.0, "steps": []}
        if did_run:
            t = end
        previous = name
    chain = [n for n, j in jobs.items() if j["status"] in ran]
    wall = max(t - start, 0.1)
    counts: dict[str, int] = {}
    for j in jobs.values():
        counts[j["status"]] = counts.get(j["status"], 0) + 1
    bad = [s for s in statuses.values() if s in ("failed", "timed-out", "not-run")]
    return {
        "schema": 3, "run_id": run_id, "target": "/tmp/target", "pipeline": "warmci.toml", "state": "/tmp/state",
        "sha": sha, "branch": branch, "argv": [], "order": "critical-path", "start": start, "end": start + wall,
        "duration": round(wall, 3), "status": "failed" if bad else "passed", "counts": counts,
        "job_seconds": round(seconds * len(chain), 3),
        "critical_path": {"jobs": [{"job": n, "start": jobs[n]["start"], "end": jobs[n]["end"],
                                    "duration": jobs[n]["duration"], "wait": 0.0,
                                    "share": round(jobs[n]["duration"] / wall, 4)} for n in chain],
                          "duration": round(seconds * len(chain), 3), "wait": 0.0, "wall": round(wall, 3)},
        "jobs": jobs, "versions": VERSIONS,
        "resources": {"interval": 0.5, "cpu_count": 2, "memory_total_mb": 24000,
                      "samples": [[start + i * 0.5, 50.0 + (i % 7) * 5, 4000.0] for i in range(int(wall * 2) + 1)]},
        "errors": []}


def write_run(state_dir: Path, run_id: str, data: dict[str, Any], logs: dict[str, str] | None = None) -> Path:
    """A run directory like warmci's; its results.json path."""
    run_dir = state_dir / "runs" / run_id
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    for name, text in (logs or {}).items():
        (run_dir / "logs" / f"{name}.log").write_text(text)
    stamp = time.strftime("%H:%M:%S", time.localtime(data["start"]))
    lines = []
    for name, job in data["jobs"].items():
        if job["status"] in ("passed", "failed", "errored", "timed-out"):
            lines += [f"[{stamp}] START {name}", f"[{stamp}] {'PASS' if job['status'] == 'passed' else 'FAIL'} {name}"]
        else:
            lines.append(f"[{stamp}] SKIP {name} {job['reason']}")
    (run_dir / "ci.log").write_text("\n".join(lines) + "\n")
    (run_dir / "versions.txt").write_text("\n".join(f"{k}: {v}" for k, v in data["versions"].items()) + "\n")
    path = run_dir / "results.json"
    path.write_text(json.dumps(data))
    return path


def add_run(db: RunsDB, repo: str, *, state: str, sha: str = "a" * 40, branch: str = "main", message: str = "a change",
            trigger: str = "push", state_dir: Path | None = None, log_dir: Path | None = None,
            results_data: dict[str, Any] | None = None, logs: dict[str, str] | None = None,
            queued_at: float | None = None, **extra: Any) -> int:
    """A row in the queue DB (and, for a run that started, its run directory); its id."""
    now = queued_at if queued_at is not None else time.time()
    with db.write() as c:
        run_id = runsdb.insert_run(c, repo=repo, sha=sha, branch=branch, ref=f"refs/heads/{branch}",
                                   lane=f"branch:{branch}", trigger=trigger, author="t", message=message,
                                   state=state, queued_at=now, **extra)
        if state in ("queued", "waiting") or state_dir is None:
            return run_id
        name = f"ci-{run_id}-1"
        results_file = state_dir / "runs" / name / "results.json"
        values: dict[str, Any] = dict(run_id=name, attempts=1, started_at=now + 0.1, doit_started_at=now + 0.3,
                                      state_dir=str(state_dir), results_file=str(results_file))
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{name}.log").write_text(f"doit output of {name}\n")
            values["log_file"] = str(log_dir / f"{name}.log")
        if results_data is not None:
            data = dict(results_data, run_id=name)
            write_run(state_dir, name, data, logs)
            values.update(finished_at=now + 0.3 + data["duration"], job_counts=json.dumps(data["counts"]))
        elif logs:
            write_run(state_dir, name, {"start": now, "jobs": {}, "versions": {}}, logs)
            results_file.unlink()
        runsdb.update(c, run_id, **values)
    return run_id
