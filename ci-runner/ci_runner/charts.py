"""Gantt charts for the run pages: warmci's own renderer (`python -m warmci gantt`), on demand, cached.

A chart is drawn the first time a page asks for it and kept in the run's
directory (`gantt.png`, and `compare-<previous run id>.png` for the
comparison with the previous run of the branch); it is drawn again only if
a results.json is newer than it. matplotlib runs in a child process: it is
slow to import, not thread-safe, and the service's memory stays small.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

from ci_runner import RUNNER_ROOT
from ci_runner.doitrun import without_secrets
from ci_runner.errors import RunnerError

TIMEOUT = 180.0


class Charts:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir  # matplotlib's font cache, built once
        self._locks: defaultdict[Path, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def gantt(self, results: Path) -> Path:
        return self._draw(results.parent / "gantt.png", [results])

    def compare(self, previous: Path, results: Path) -> Path:
        return self._draw(results.parent / f"compare-{previous.parent.name}.png", [previous, results])

    def _draw(self, out: Path, inputs: list[Path]) -> Path:
        with self._guard:
            lock = self._locks[out]
        with lock:
            if _fresh(out, inputs):
                return out
            tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.png")
            env = {**without_secrets(os.environ), "MPLCONFIGDIR": str(self.cache_dir)}
            cmd = [sys.executable, "-m", "warmci", "gantt", *map(str, inputs), "-o", str(tmp)]
            try:
                proc = subprocess.run(cmd, cwd=RUNNER_ROOT, env=env, capture_output=True, text=True,
                                      timeout=TIMEOUT, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                tmp.unlink(missing_ok=True)
                raise RunnerError(f"drawing {out.name} took over {TIMEOUT:.0f} s") from None
            if proc.returncode != 0 or not tmp.is_file():
                tmp.unlink(missing_ok=True)
                raise RunnerError(f"drawing {out.name} failed (exit {proc.returncode}): "
                                  f"{(proc.stderr or proc.stdout).strip()[-500:]}")
            os.replace(tmp, out)
            return out


def _fresh(out: Path, inputs: list[Path]) -> bool:
    try:
        made = out.stat().st_mtime_ns
        return all(made >= p.stat().st_mtime_ns for p in inputs)
    except OSError:
        return False
