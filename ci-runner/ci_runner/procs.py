"""Ending a run's processes: doit's process group, then whatever carries the run's token.

doit is started in a session of its own, so its process group is doit and
its forked workers. SIGTERM to that group is warmci's cancellation: it ends
every job tree, keeps the successes recorded so far and writes results.json.
What is still alive after the grace period gets SIGKILL, and so does every
process whose environment names the run (WARMCI_RUN and WARMCI_STATE, which
warmci puts into every job's environment): the safety net for a doit that
was itself killed. A pid is only signalled when its start time matches what
was recorded (pids are reused), never this process or its parents, and
nothing is ever chosen by its command line.
"""
from __future__ import annotations

import os
import signal

import psutil


def started(pid: int) -> float | None:
    """A process's start time: with the pid, what identifies it."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(pid: int | None, created: float | None) -> bool:
    if not pid or created is None:
        return False
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - created) < 0.01 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _protected() -> set[int]:
    pids = {0, 1, os.getpid()}
    try:
        pids.update(p.pid for p in psutil.Process().parents())
    except psutil.Error:
        pass
    return pids


def members(pgid: int, since: float, run_id: str, state_dir: str) -> list[psutil.Process]:
    """Processes of doit's group started after it, and every process carrying the run's token."""
    out = []
    skip = _protected()
    for p in psutil.process_iter():
        if p.pid in skip:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            in_group = os.getpgid(p.pid) == pgid and p.create_time() >= since - 0.01
            env = {} if in_group else p.environ()
            if in_group or (env.get("WARMCI_RUN") == run_id and env.get("WARMCI_STATE") == state_dir):
                out.append(p)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return out


def end(procs: list[psutil.Process], grace: float) -> list[int]:
    """TERM, up to `grace` seconds, then KILL; the pids that were signalled."""
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive_after = psutil.wait_procs(procs, timeout=grace)
    for p in alive_after:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive_after, timeout=5)
    return [p.pid for p in procs]


def end_run(pid: int | None, created: float | None, run_id: str, state_dir: str, grace: float) -> list[int]:
    """End a run whose doit is not our child (the service that started it was killed)."""
    if pid and created is not None and alive(pid, created):
        signal_group(pid, signal.SIGTERM)  # warmci's own cancellation first
        try:
            psutil.wait_procs([psutil.Process(pid)], timeout=grace)
        except psutil.Error:
            pass
    return end(members(pid or -1, created or 0.0, run_id, state_dir), grace=min(5.0, grace))
