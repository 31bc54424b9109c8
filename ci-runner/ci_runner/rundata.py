"""What a run page shows, read from the run's own files (docs/results.md is the contract).

A finished run has its results.json. While doit runs there is none yet: the
jobs come from ci.log (`START`, `PASS`, `FAIL`, `SKIP` lines, written as
they happen) and from the job files the workers write when a job ends
(`jobs/JOB.json`: its exact status and times); jobs that have not started
are listed from the previous run of the branch, as waiting. results.json is
parsed once per version of the file (keyed by mtime and size).
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_runner import logfiles, runsdb
from ci_runner.runsdb import Run

BAD = ("failed", "errored", "timed-out")
GOOD = ("passed", "restored", "up-to-date", "skipped", "filtered")
RAN = ("passed", "failed", "errored", "timed-out", "cancelled", "running")
# Failed jobs first, then what runs now, then the run's own order (by start); the rest by name.
_RANK = {"failed": 0, "errored": 0, "timed-out": 0, "running": 1, "cancelled": 2, "not-run": 3}
_CI_LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] ([A-Z]+) (\S+)(?: (.*))?$")
_SKIP_STATUS = (("up to date", "up-to-date"), ("filtered", "filtered"), ("ignored", "filtered"),
                ("restored", "restored"), ("dependency failed", "not-run"), ("not run", "not-run"))


@dataclass
class JobRow:
    name: str
    status: str
    kind: str = ""
    start: float | None = None
    end: float | None = None
    duration: float | None = None
    exit_code: int | None = None
    reason: str = ""
    why: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    critical: bool = False
    has_log: bool = False
    servers: list[int] = field(default_factory=list)

    @property
    def bad(self) -> bool:
        return self.status in BAD

    @property
    def took(self) -> float | None:
        """Its duration, when it ran (an up-to-date or skipped job took no time worth showing)."""
        return self.duration if self.status in RAN else None

    def explanation(self) -> str:
        """Why it ran (each changed input), or why it did not."""
        if self.status == "running":
            return "running; " + "; ".join(self.why) if self.why else "running"
        if self.why and self.status in RAN:
            return "; ".join(self.why)
        return self.reason


@dataclass
class Comparison:
    """This run against the previous finished run of its branch."""

    other: Run
    wall: tuple[float | None, float | None]  # (previous, this)
    rows: list[tuple[str, str, str, float | None, float | None]]  # job, status before, now, seconds before, now
    alike: int  # jobs whose status is the same and whose duration changed by less than a fifth


@dataclass
class RunView:
    run: Run
    run_dir: Path | None
    results: dict[str, Any] | None
    jobs: list[JobRow]
    live: bool
    previous: Run | None = None
    comparison: Comparison | None = None

    @property
    def failed(self) -> list[JobRow]:
        return [j for j in self.jobs if j.bad]

    @property
    def critical_path(self) -> list[dict[str, Any]]:
        cp = (self.results or {}).get("critical_path") or {}
        return [e for e in cp.get("jobs") or [] if isinstance(e, dict)]

    @property
    def versions(self) -> dict[str, str]:
        v = (self.results or {}).get("versions") or {}
        return {str(k): str(val) for k, val in v.items()} if isinstance(v, dict) else {}

    @property
    def counts(self) -> dict[str, int]:
        if self.results is None:
            counts: dict[str, int] = {}
            for j in self.jobs:
                counts[j.status] = counts.get(j.status, 0) + 1
            return counts
        c = self.results.get("counts") or {}
        return {str(k): v for k, v in c.items() if isinstance(v, int)} if isinstance(c, dict) else {}

    def file(self, name: str) -> Path | None:
        """One of the run's own files (ci.log, versions.txt, results.json, run.log), if it is there."""
        if self.run_dir is None or name not in ("ci.log", "versions.txt", "results.json", "run.log"):
            return None
        return logfiles.inside(self.run_dir / name, self.run_dir)


class ResultsCache:
    """Parsed results.json files, each kept until it changes (a run page and the list read them often)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[tuple[int, int], dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path | str | None) -> dict[str, Any] | None:
        if not path:
            return None
        try:
            st = Path(path).stat()
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._items.get(str(path))
            if hit and hit[0] == key:
                self._items.move_to_end(str(path))
                return hit[1]
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
            return None
        with self._lock:
            self._items[str(path)] = (key, data)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return data


def run_dir(run: Run) -> Path | None:
    """STATE/runs/<run-id>/ of the run's latest attempt (the worker recorded where results.json goes)."""
    return Path(run.results_file).parent if run.results_file else None


def view(c: sqlite3.Connection, run: Run, cache: ResultsCache) -> RunView:
    directory = run_dir(run)
    results = cache.load(run.results_file)
    if results is not None and results.get("run_id") != run.run_id:
        results = None
    previous = _previous(c, run, cache)
    prev_results = cache.load(previous.results_file) if previous else None
    if results is not None:
        jobs = _from_results(results)
    elif directory is not None:
        jobs = _from_files(directory, run.doit_started_at or run.started_at or run.queued_at, prev_results)
    else:
        jobs = []
    if directory is not None:
        for j in jobs:
            j.has_log = logfiles.job_log(directory, j.name) is not None
            j.servers = logfiles.server_logs(directory, j.name) if j.has_log else []
    jobs.sort(key=_order)
    v = RunView(run, directory, results, jobs, live=run.state in runsdb.ACTIVE, previous=previous)
    if results is not None and previous is not None and prev_results is not None:
        v.comparison = compare(previous, prev_results, results)
    return v


def _order(j: JobRow) -> tuple[int, float, str]:
    started = j.start is not None and j.status in RAN
    return _RANK.get(j.status, 4 if started else 5), j.start if started and j.start is not None else 0.0, j.name


def _from_results(results: dict[str, Any]) -> list[JobRow]:
    critical = {e.get("job") for e in ((results.get("critical_path") or {}).get("jobs") or [])
                if isinstance(e, dict)}
    rows = []
    for name, job in results["jobs"].items():
        if not isinstance(job, dict):
            continue
        rows.append(JobRow(
            name=str(name), status=str(job.get("status") or "not-run"), kind=str(job.get("kind") or ""),
            start=_num(job.get("start")), end=_num(job.get("end")), duration=_num(job.get("duration")),
            exit_code=job.get("exit_code") if isinstance(job.get("exit_code"), int) else None,
            reason=str(job.get("reason") or ""),
            why=[str(w.get("text", "")) for w in job.get("why") or [] if isinstance(w, dict)],
            needs=[str(n) for n in job.get("needs") or []], critical=name in critical))
    return rows


def _from_files(directory: Path, started: float, previous: dict[str, Any] | None) -> list[JobRow]:
    rows: dict[str, JobRow] = {}
    try:
        lines = (directory / "ci.log").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        m = _CI_LINE.match(line)
        if m is None:
            continue
        hh, mm, ss, word, name, extra = m.groups()
        when = _clock(int(hh), int(mm), int(ss), started)
        if word == "START":
            rows[name] = JobRow(name, "running", start=when)
        elif word in ("PASS", "FAIL"):
            row = rows.setdefault(name, JobRow(name, "passed"))
            row.status, row.end = ("passed" if word == "PASS" else "failed"), when
            row.duration = when - row.start if row.start is not None else None
        elif word == "SKIP":
            status = next((s for prefix, s in _SKIP_STATUS if (extra or "").startswith(prefix)), "skipped")
            rows[name] = JobRow(name, status, reason=extra or "")
    for row in rows.values():  # the workers' own reports (written when a job ends) are exact
        report = _job_file(directory, row.name)
        if report:
            _apply(row, report)
    for name, job in ((previous or {}).get("jobs") or {}).items():
        if name not in rows and isinstance(job, dict):
            rows[name] = JobRow(str(name), "waiting", kind=str(job.get("kind") or ""),
                                reason="not started yet (it was in the previous run of this branch)")
    return list(rows.values())


def _job_file(directory: Path, name: str) -> dict[str, Any] | None:
    if not logfiles.safe_name(name):
        return None
    try:
        data = json.loads((directory / "jobs" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _apply(row: JobRow, report: dict[str, Any]) -> None:
    if isinstance(report.get("status"), str):
        row.status = report["status"]
    row.kind = str(report.get("kind") or row.kind)
    row.start = _num(report.get("start")) or row.start
    row.end = _num(report.get("end")) or row.end
    row.duration = _num(report.get("duration")) if report.get("duration") is not None else row.duration
    row.exit_code = report.get("exit_code") if isinstance(report.get("exit_code"), int) else row.exit_code
    row.reason = str(report.get("reason") or row.reason)


def _clock(hh: int, mm: int, ss: int, started: float) -> float:
    """ci.log's local HH:MM:SS as epoch seconds, on the day the run started (or the next one)."""
    day = time.localtime(started)
    when = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hh, mm, ss, 0, 0, -1))
    return when + 86400 if when < started - 3600 else when


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _previous(c: sqlite3.Connection, run: Run, cache: ResultsCache) -> Run | None:
    """The last finished run of the same branch before this one whose results are still there."""
    older = runsdb.runs(c, "repo = ? AND branch = ? AND id < ? AND results_file IS NOT NULL AND state IN "
                           "('passed', 'failed', 'errored', 'cancelled')", (run.repo, run.branch, run.id),
                        order="id DESC", limit=5)
    return next((r for r in older if cache.load(r.results_file) is not None), None)


def compare(previous: Run, before: dict[str, Any], now: dict[str, Any]) -> Comparison:
    """The jobs whose status changed, then those whose duration changed by a fifth (and 0.5 s) or more."""
    rows, alike = [], 0
    for name in sorted(set(before["jobs"]) | set(now["jobs"])):
        a, b = before["jobs"].get(name) or {}, now["jobs"].get(name) or {}
        sa, sb = str(a.get("status", "-")), str(b.get("status", "-"))
        da = _num(a.get("duration")) if sa in RAN else None
        db = _num(b.get("duration")) if sb in RAN else None
        slower = da is not None and db is not None and abs(db - da) >= max(0.5, 0.2 * max(da, db))
        if sa != sb or slower:
            rows.append((name, sa, sb, da, db))
        else:
            alike += 1
    rows.sort(key=lambda r: (r[1] == r[2], -abs((r[4] or 0.0) - (r[3] or 0.0))))
    return Comparison(previous, (_num(before.get("duration")), _num(now.get("duration"))), rows, alike)
