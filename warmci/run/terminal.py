"""What a run prints: one line per finished job, a live line while jobs run, a summary.

The live line ("running: build-js 3.1 s, ...") is redrawn in place and only
when the output is a terminal; logs and captured output get plain lines.
Writes come from doit's main thread and the sampler thread, hence the lock.
"""
from __future__ import annotations

import shutil
import threading
import time
from typing import Any, TextIO

from warmci.status import Status


class Console:
    def __init__(self, out: TextIO, live: bool | None = None) -> None:
        self.out = out
        self.live = _isatty(out) if live is None else live
        self.start = time.time()
        self.running: dict[str, float] = {}
        self._lock = threading.Lock()
        self._shown = False  # a live line is on screen

    def say(self, text: str) -> None:
        """A permanent line (the live line is cleared first and redrawn by the next tick)."""
        with self._lock:
            self._clear()
            self.out.write(text + "\n")
            self.out.flush()

    def started(self, name: str, when: float) -> None:
        with self._lock:
            self.running[name] = when

    def finished(self, name: str) -> None:
        with self._lock:
            self.running.pop(name, None)

    def tick(self) -> None:
        """Redraw the live line (called every sampler interval)."""
        if not self.live:
            return
        with self._lock:
            now = time.time()
            jobs = sorted(self.running.items(), key=lambda kv: kv[1])
            text = f"[{now - self.start:6.1f} s] " + (
                f"running {len(jobs)}: " + ", ".join(f"{n} {now - t:.1f} s" for n, t in jobs) if jobs
                else "waiting")
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.out.write("\r\033[K" + text[:width])
            self.out.flush()
            self._shown = True

    def close(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self._shown:
            self.out.write("\r\033[K")
            self._shown = False


def secs(value: float | None) -> str:
    """Seconds for people: two decimals under a second (a 0.05 s job is not "0.0 s")."""
    v = value or 0.0
    return f"{v:.2f} s" if v < 1 else f"{v:.1f} s"


def _isatty(out: Any) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def summary(results: dict[str, Any]) -> list[str]:
    """The closing lines: counts, failed jobs and their logs, wall time, the critical path and its shares."""
    lines = []
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results["counts"].items()))
    lines.append(f"warmci: {results['status'].upper()} in {results['duration']:.1f} s: {counts}")
    bad = [(n, j) for n, j in results["jobs"].items()
           if j.get("status") in (Status.FAILED, Status.ERRORED, Status.TIMED_OUT, Status.CANCELLED)]
    for name, job in bad:
        lines.append(f"  {job['status']:9} {name}  log: {job.get('log')}")
    if results.get("flaky"):
        lines.append(f"  flaky (passed and failed with the same inputs): {', '.join(results['flaky'])}")
    cp = results.get("critical_path") or {}
    if cp.get("jobs"):
        wall = cp["wall"] or 1.0
        lines.append(f"critical path: {secs(cp['duration'])} of {secs(cp['wall'])} wall "
                     f"({100 * cp['duration'] / wall:.0f} %); waiting/overhead {secs(cp['wait'])}")
        width = max(len(e["job"]) for e in cp["jobs"])
        for e in cp["jobs"]:
            bar = "#" * max(1, round(30 * e["share"]))
            wait = f"  (waited {secs(e['wait'])})" if e["wait"] >= 0.1 else ""
            lines.append(f"  {e['job']:<{width}}  {secs(e['duration']):>8}  {100 * e['share']:3.0f} %  {bar}{wait}")
    return lines
