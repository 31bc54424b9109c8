"""Who listens on a TCP port, and whether warmci may end it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from warmci.context import RUNNER_ROOT
from warmci.execute import netns, proc


@dataclass(frozen=True)
class Listener:
    port: int
    pid: int | None
    cmdline: str
    token: str | None  # WARMCI_TOKEN of the process: set only if warmci started it

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "an unknown process (not visible to this user)"
        return f"port {self.port} is held by {who}: {self.cmdline or '?'}"


def _listening() -> list[Any]:
    """The machine's listening TCP sockets (one read of the socket table, ~10 ms)."""
    try:
        return [c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr]
    except psutil.Error:
        return []


def ports_by_pid() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for conn in _listening():
        if conn.pid:
            out.setdefault(conn.pid, []).append(conn.laddr.port)
    return out


def listeners(ports: list[int] | tuple[int, ...]) -> list[Listener]:
    wanted = set(ports)
    found: dict[tuple[int, int | None], Listener] = {}
    for conn in _listening():
        if conn.laddr.port not in wanted:
            continue
        cmdline, token = "", None
        if conn.pid:
            try:
                p = psutil.Process(conn.pid)
                cmdline = " ".join(p.cmdline())
                token = p.environ().get(proc.TOKEN_VAR)
            except psutil.Error:
                pass
        found[(conn.laddr.port, conn.pid)] = Listener(conn.laddr.port, conn.pid, cmdline, token)
    return sorted(found.values(), key=lambda listener: listener.port)


def listeners_inside(ns: netns.Namespace, ports: list[int] | tuple[int, ...]) -> list[Listener]:
    """`listeners` as seen from inside a job's network namespace (the same code, run there)."""
    code = f"import sys; sys.path.insert(0, {str(RUNNER_ROOT)!r}); from warmci.execute.ports import main; main()"
    out = subprocess.run(ns.wrap([sys.executable, "-c", code, *map(str, ports)]), capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", os.defpath)})
    if out.returncode != 0:
        raise netns.NetnsError(f"could not list the listeners inside the job's network namespace: "
                               f"{out.stderr.strip()[-500:] or out.returncode}")
    return [Listener(**d) for d in json.loads(out.stdout)]


def main() -> None:
    """Print `listeners(PORT...)` as JSON (what listeners_inside runs inside a namespace)."""
    print(json.dumps([asdict(x) for x in listeners([int(p) for p in sys.argv[1:]])]))
