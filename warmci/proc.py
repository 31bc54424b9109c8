"""Every command a job runs goes through here: own session, recorded, ended whole.

A child is started in a new session with a token in its environment
(WARMCI_TOKEN). Ending it means ending every process that is a descendant of
it, or that carries its token (a grandchild that called setsid and was
reparented to init still has it), or that is in its process group: TERM, a
grace period, then KILL. Nothing is ever chosen by matching command lines,
and this process, its parents and PID 1 are never signalled.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

TOKEN_VAR = "WARMCI_TOKEN"
GRACE = 5.0
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Outcome:
    """How a command ended."""

    argv: Sequence[str]
    returncode: int | None
    duration: float
    timed_out: bool = False
    cancelled: bool = False
    killed: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled


def become_subreaper() -> None:
    """Orphans of our children reparent to us, so descendant walks still find them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: tokens and groups still work
        pass


def protected_pids() -> set[int]:
    """This process and its ancestors: never signalled."""
    pids = {0, 1, os.getpid()}
    try:
        for p in psutil.Process().parents():
            pids.add(p.pid)
    except psutil.Error:
        pass
    return pids


def new_token(label: str) -> str:
    return f"{label}:{uuid.uuid4().hex[:12]}"


class Child:
    """A started command: its Popen, token and identity (pid + create time)."""

    def __init__(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str], log: str | None,
                 label: str = "job") -> None:
        self.argv = list(argv)
        self.token = new_token(label)
        full_env = dict(env)
        full_env[TOKEN_VAR] = self.token
        become_subreaper()
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            self.popen = subprocess.Popen(
                self.argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        finally:
            if log:
                out.close()  # the child holds its own descriptor
        self.pid = self.popen.pid
        _POPEN_PIDS.add(self.pid)
        self.started = time.monotonic()
        try:
            self.create_time = psutil.Process(self.pid).create_time()
        except psutil.Error:
            self.create_time = 0.0

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def end(self, grace: float = GRACE) -> list[int]:
        """End the whole tree; return the pids that had to be signalled."""
        killed = end_tree(self.pid, self.create_time, token=self.token, pgid=self.pid, grace=grace)
        try:
            self.popen.wait(timeout=1)
        except subprocess.TimeoutExpired:  # pragma: no cover - KILL was sent
            pass
        _POPEN_PIDS.discard(self.pid)
        return killed


def run(argv: Sequence[str], *, cwd: str, env: Mapping[str, str], log: str | None,
        timeout: float | None, label: str = "job", should_stop: callable | None = None) -> Outcome:
    """Run a command to completion (or timeout), then end whatever it left behind."""
    start = time.monotonic()
    try:
        child = Child(argv, cwd=cwd, env=env, log=log, label=label)
    except FileNotFoundError:
        problem = (f"working directory {cwd} does not exist" if not os.path.isdir(cwd)
                   else f"command not found: {argv[0]!r}; is it installed and on PATH?")
        if log:
            with open(log, "a") as fh:
                fh.write(f"warmci: {problem}\n")
        return Outcome(argv, 127, time.monotonic() - start)
    deadline = None if timeout is None else start + timeout
    code: int | None = None
    timed_out = cancelled = False
    while code is None:
        step = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
        code = child.wait(step)
        if code is None and deadline is not None and time.monotonic() >= deadline:
            timed_out = True
            break
        if code is None and should_stop is not None and should_stop():
            cancelled = True
            break
    killed = child.end()
    if code is None:
        code = child.popen.returncode
    return Outcome(argv, code, time.monotonic() - start, timed_out, cancelled, killed)


def _ident(p: psutil.Process) -> tuple[int, float] | None:
    try:
        return p.pid, p.create_time()
    except psutil.Error:
        return None


def tree(pid: int, create_time: float, *, token: str | None = None, pgid: int | None = None) -> list[psutil.Process]:
    """The process (if it is still the same one), its descendants, its group and its token holders."""
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        if not create_time or abs(root.create_time() - create_time) < 0.01:
            found[root.pid] = root
            for c in root.children(recursive=True):
                found[c.pid] = c
    except psutil.Error:
        pass
    if token is not None or pgid is not None:
        for p in psutil.process_iter():
            if p.pid in found:
                continue
            try:
                if pgid is not None and os.getpgid(p.pid) == pgid:
                    found[p.pid] = p
                    continue
                if token is not None and p.environ().get(TOKEN_VAR) == token:
                    found[p.pid] = p
            except (psutil.Error, OSError):
                continue
    # Descendants of token holders (a daemon's own children) belong to the tree too.
    for p in list(found.values()):
        try:
            for c in p.children(recursive=True):
                found.setdefault(c.pid, c)
        except psutil.Error:
            pass
    keep = protected_pids()
    return [p for pid_, p in found.items() if pid_ not in keep]


def end_tree(pid: int, create_time: float, *, token: str | None = None, pgid: int | None = None,
             grace: float = GRACE) -> list[int]:
    """TERM the tree, wait up to `grace`, KILL what is left; repeat for late forks."""
    signalled: list[int] = []
    for _ in range(3):
        procs = tree(pid, create_time, token=token, pgid=pgid)
        procs = [p for p in procs if _alive(p)]
        if not procs:
            break
        signalled += [p.pid for p in procs]
        signal_all(procs, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace)
        if alive:
            signal_all(alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=2)
    reap_children()
    return sorted(set(signalled))


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    keep = protected_pids()
    for p in procs:
        if p.pid in keep:
            continue
        try:
            p.send_signal(sig)
        except psutil.Error:
            pass


_POPEN_PIDS: set[int] = set()


def reap_children() -> None:
    """Collect exit statuses of orphans reparented to us as subreaper.

    Only pids we hold no Popen for: reaping a Popen's own child would make
    Popen report exit code 0 for a process that crashed.
    """
    try:
        kids = psutil.Process().children()
    except psutil.Error:
        return
    for k in kids:
        if k.pid in _POPEN_PIDS:
            continue
        try:
            if k.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(k.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass
