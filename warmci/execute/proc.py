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

from warmci import statefile

TOKEN_VAR = "WARMCI_TOKEN"
GRACE = 5.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Outcome:
    """How a command ended."""

    argv: Sequence[str]
    returncode: int | None
    duration: float
    timed_out: bool = False
    killed: list[int] = field(default_factory=list)


def become_subreaper() -> None:
    """Orphans of our children reparent to us, so descendant walks still find them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: tokens and groups still work
        pass


def die_with_parent(sig: int) -> None:
    """Have the kernel send `sig` to this process when its parent dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
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


@dataclass(frozen=True)
class Record:
    """What the registry remembers of a started process tree."""

    pid: int
    create_time: float
    token: str
    argv: list[str]
    meta: dict[str, object]

    def alive(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.create_time) < 0.01
        except psutil.Error:
            return False


class Registry:
    """One file per live process tree warmci started, under the state dir.

    It survives a SIGKILLed runner or a reboot mid-run, so the next run can
    end exactly what was started before (pid + create time: a reused pid is
    never mistaken), without ever matching command lines.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _file(self, pid: int, create_time: float) -> str:
        return os.path.join(self.directory, f"{pid}-{int(create_time * 1000)}.json")

    def add(self, child: Child, meta: Mapping[str, object]) -> None:
        self.add_process(child.pid, child.create_time, child.token, child.argv, meta)

    def add_process(self, pid: int, create_time: float, token: str, argv: Sequence[str],
                    meta: Mapping[str, object]) -> None:
        rec = {"pid": pid, "create_time": create_time, "token": token, "argv": list(argv), "meta": dict(meta)}
        statefile.write_json(self._file(pid, create_time), rec)

    def remove(self, pid: int, create_time: float) -> None:
        try:
            os.remove(self._file(pid, create_time))
        except FileNotFoundError:
            pass

    def records(self) -> list[Record]:
        out = []
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        for name in names:
            if not name.endswith(".json"):
                continue
            d = statefile.read_json(os.path.join(self.directory, name))
            try:
                out.append(Record(d["pid"], d["create_time"], d["token"], d["argv"], d.get("meta", {})))
            except (TypeError, KeyError):
                continue
        return out

    def owner_of(self, pid: int) -> Record | None:
        """The record whose tree holds `pid` (the process itself, or a descendant carrying its token)."""
        try:
            p = psutil.Process(pid)
            ctime = p.create_time()
            token = p.environ().get(TOKEN_VAR)
        except psutil.Error:
            return None
        for rec in self.records():
            if (rec.pid == pid and abs(rec.create_time - ctime) < 0.01) or (token and token == rec.token):
                return rec
        return None

    def end(self, rec: Record, grace: float = GRACE) -> list[int]:
        killed = end_tree(rec.pid, rec.create_time, token=rec.token, pgid=rec.pid if rec.alive() else None,
                          grace=grace)
        self.remove(rec.pid, rec.create_time)
        return killed


class Child:
    """A started command: its Popen, token and identity (pid + create time)."""

    def __init__(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str], log: str | None,
                 label: str = "job", registry: Registry | None = None,
                 meta: Mapping[str, object] | None = None) -> None:
        self.argv = list(argv)
        self.token = new_token(label)
        full_env = dict(env)
        full_env[TOKEN_VAR] = self.token
        become_subreaper()
        # The child gets its own descriptor of the log; ours is closed once it started.
        with open(log or os.devnull, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self.pid = self.popen.pid
        _POPENS[self.pid] = self.popen
        self.started = time.monotonic()
        try:
            self.create_time = psutil.Process(self.pid).create_time()
        except psutil.Error:
            self.create_time = 0.0
        self.registry = registry
        if registry is not None:
            registry.add(self, {"label": label, **(meta or {})})

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
        _POPENS.pop(self.pid, None)
        if self.registry is not None:
            self.registry.remove(self.pid, self.create_time)
        return killed


def run(argv: Sequence[str], *, cwd: str, env: Mapping[str, str], log: str | None,
        timeout: float | None, label: str = "job", registry: Registry | None = None,
        meta: Mapping[str, object] | None = None, grace: float = GRACE) -> Outcome:
    """Run a command to completion (or timeout), then end whatever it left behind.

    The tree is ended on every way out, a KeyboardInterrupt (cancellation)
    included.
    """
    start = time.monotonic()
    try:
        child = Child(argv, cwd=cwd, env=env, log=log, label=label, registry=registry, meta=meta)
    except FileNotFoundError:
        problem = (f"working directory {cwd} does not exist" if not os.path.isdir(cwd)
                   else f"command not found: {argv[0]!r}; is it installed and on PATH?")
        if log:
            with open(log, "a") as fh:
                fh.write(f"warmci: {problem}\n")
        return Outcome(argv, 127, time.monotonic() - start)
    deadline = None if timeout is None else start + timeout
    code: int | None = None
    timed_out = False
    try:
        while code is None:
            step = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            code = child.wait(step)
            if code is None and deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                break
    finally:
        killed = child.end(grace)
    if code is None:
        code = child.popen.returncode
    return Outcome(argv, code, time.monotonic() - start, timed_out, killed)


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
    return end_trees([(pid, create_time, token, pgid)], grace=grace)


def end_trees(roots: Sequence[tuple[int, float, str | None, int | None]], grace: float = GRACE) -> list[int]:
    """End several trees at once: one grace period for all, not one each."""
    signalled: list[int] = []
    for _ in range(3):
        procs: dict[int, psutil.Process] = {}
        for pid, ctime, token, pgid in roots:
            for p in tree(pid, ctime, token=token, pgid=pgid):
                procs.setdefault(p.pid, p)
        alive_now = [p for p in procs.values() if _alive(p)]
        if not alive_now:
            break
        signalled += [p.pid for p in alive_now]
        signal_all(alive_now, signal.SIGTERM)
        alive = _wait_gone(alive_now, grace)
        if alive:
            signal_all(alive, signal.SIGKILL)
            _wait_gone(alive, 2)
    reap_children()
    return sorted(set(signalled))


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes are gone; return those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        still = []
        for p in alive:
            popen = _POPENS.get(p.pid)
            if popen is not None:
                if popen.poll() is None:
                    still.append(p)
            elif _alive(p):
                still.append(p)
        alive = still
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return alive


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


# Children we hold a Popen for: only Popen may reap them, or it would report
# exit code 0 for a process that was killed (os.waitpid elsewhere steals the status).
_POPENS: dict[int, subprocess.Popen[bytes]] = {}


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
        if k.pid in _POPENS:
            continue
        try:
            if k.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(k.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass
