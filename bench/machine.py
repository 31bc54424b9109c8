"""What the numbers were taken on: the machine, its load, and the tool versions."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import targets

RUNNER = Path(__file__).resolve().parent.parent


def _first_line(cmd: list[str]) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def processes() -> int | None:
    """How many processes exist: warmci's run-start and run-end snapshots look at each of them."""
    try:
        import psutil

        return len(psutil.pids())
    except Exception:
        return None


def runner_revision() -> dict[str, Any]:
    """The runner's commit and how many paths differed from it (other engineers edit the tree)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(RUNNER), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    dirty = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD") or None, "dirty_paths": len(dirty)}


def describe() -> dict[str, Any]:
    import doit

    return {
        "uname": " ".join(platform.uname()),
        "cpu_model": _cpu_model(),
        "nproc": os.cpu_count(),
        "memory_mb": _memory_mb(),
        "loadavg_at_start": load(),
        "processes_at_start": processes(),
        "python": sys.version.split()[0],
        "python_executable": targets.shown(sys.executable),
        "doit": ".".join(str(p) for p in doit.__version__) if isinstance(doit.__version__, tuple)
        else str(doit.__version__),
        "uv": _first_line(["uv", "--version"]),
        "node": _first_line(["node", "--version"]),
        "pnpm": _first_line(["pnpm", "--version"]),
        "git": _first_line(["git", "--version"]),
        "runner": runner_revision(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
