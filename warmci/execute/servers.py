"""Servers a job needs while it runs: start, probe until ready, end whole."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import psutil

from warmci.errors import WarmciError
from warmci.execute import proc
from warmci.execute.logs import tail

if TYPE_CHECKING:
    import urllib.request


@lru_cache(maxsize=1)
def _opener() -> urllib.request.OpenerDirector:
    # Imported here: urllib pulls in http.client, ssl and email (~9 ms), which
    # only a job with servers needs, not every `doit` that loads the task list.
    import urllib.request

    # Probes go straight to loopback, never through a proxy from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerFailed(WarmciError):
    pass


def probe(ready: str) -> bool:
    """One readiness probe: an HTTP answer below 500, or an accepted TCP connection."""
    if ready.startswith("tcp:"):
        host, _, port = ready[4:].rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                return True
        except OSError:
            return False
    import urllib.error

    try:
        with _opener().open(ready, timeout=2) as resp:
            status: int = resp.status
            return status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


class _RestartCounter:
    """Spot a supervisor that keeps restarting a crashing child.

    The top process stays alive, so only the exits of the same command line
    inside its tree show the loop.
    """

    limit = 5

    def __init__(self, child: proc.Child) -> None:
        self.child = child
        self.seen: dict[int, str] = {}
        self.exits: dict[str, int] = {}

    def check(self) -> str | None:
        now: dict[int, str] = {}
        try:
            kids = psutil.Process(self.child.pid).children(recursive=True)
        except psutil.Error:
            kids = []
        for p in kids:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    now[p.pid] = " ".join(p.cmdline())
            except psutil.Error:
                continue
        for pid, cmd in self.seen.items():
            if pid not in now:
                self.exits[cmd] = self.exits.get(cmd, 0) + 1
                if self.exits[cmd] >= self.limit:
                    return cmd[:200]
        self.seen = now
        return None


def start(argv: Sequence[str], *, ready: str, cwd: str, env: Mapping[str, str], log: str,
          timeout: float, label: str, registry: proc.Registry | None = None,
          meta: Mapping[str, object] | None = None, probe_with: Callable[[str], bool] = probe) -> proc.Child:
    """Start a server and return once `ready` answers.

    If the server exits while we wait, fail at once with its log's tail:
    a crash-looping server must not hold the job for its whole timeout.
    `probe_with` probes from where the server listens (inside the job's
    network namespace, when it has one).
    """
    try:
        child = proc.Child(argv, cwd=cwd, env=env, log=log, label=label, registry=registry, meta=meta)
    except FileNotFoundError:
        raise ServerFailed(f"server command not found: {argv[0]!r} ({' '.join(argv)})") from None
    deadline = time.monotonic() + timeout
    delay = 0.05
    restarts = _RestartCounter(child)
    while True:
        code = child.poll()
        if code is not None:
            child.end()
            raise ServerFailed(f"server `{' '.join(argv)}` exited with code {code} before it was ready "
                               f"({ready}); last lines of {log}:\n{tail(log)}")
        looping = restarts.check()
        if looping:
            child.end()
            raise ServerFailed(f"server `{' '.join(argv)}` is crash-looping: `{looping}` exited "
                               f"{restarts.limit} times before {ready} was ready; last lines of {log}:\n{tail(log)}")
        if probe_with(ready):
            return child
        if time.monotonic() >= deadline:
            child.end()
            raise ServerFailed(f"server `{' '.join(argv)}` was not ready at {ready} after {timeout:.0f} s; "
                               f"last lines of {log}:\n{tail(log)}")
        time.sleep(delay)  # poll interval between probes, not a wait for readiness
        delay = min(delay * 1.5, 0.1)
