"""A network namespace of its own for a job that declares ports.

Two warmci runs on one machine (two state dirs, two host workers) would
otherwise fight over a pipeline's fixed ports (the demo's 8765). A job with
`ports` gets a fresh network namespace with only a loopback, held by a
small process (`unshare --net`, its loopback brought up) that warmci starts,
records and ends like any server of the job; its servers and steps join it
(`nsenter --net=/proc/HOLDER/ns/net`, which execs the command itself, so
process trees and tokens are unchanged). Readiness probes run in a thread
that joined the namespace, and the check for listeners on the job's ports
looks inside it.

The steps that install the job's wheel run outside (they may download);
everything the job starts after that sees only its own loopback.

WARMCI_NETNS: `auto` (default) uses namespaces where they can be made
(root, or CAP_SYS_ADMIN, on Linux with util-linux); `on` requires them (a
job with ports errors, saying why, where they cannot be made); `off` never
uses them (the ports are the machine's, as before).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TypeVar

from warmci.errors import WarmciError

VAR = "WARMCI_NETNS"
CHOICES = ("auto", "on", "off")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")

# The holder: bring the new namespace's loopback up (SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP; no iproute2
# needed), say so with a marker file, then wait to be ended.
_HOLDER = """
import fcntl, signal, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
s.close()
open(sys.argv[1], "w").close()
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    signal.pause()
"""


class NetnsError(WarmciError):
    pass


def choice(environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(VAR, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise NetnsError(f"{VAR}={value!r}: expected one of {', '.join(CHOICES)}")
    return value


@lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why this process cannot give a job a network namespace, or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux's ({sys.platform})"
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (util-linux)"
    try:
        out = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`unshare --net` could not run: {exc}"
    if out.returncode != 0:
        why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        return f"`unshare --net` failed ({why}); it needs root or CAP_SYS_ADMIN"
    return None


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a job with ports gets a namespace here; `on` where none can be made is an error."""
    mode = choice(environ)
    if mode == "off":
        return False
    why = unavailable()
    if why and mode == "on":
        raise NetnsError(f"{VAR}=on, but a network namespace cannot be made here: {why}")
    return why is None


class Namespace:
    """A held network namespace: `wrap` a command to run it inside, `call` a function inside."""

    def __init__(self, holder_pid: int) -> None:
        self.pid = holder_pid
        self.path = f"/proc/{holder_pid}/ns/net"

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """fn(*args) in a thread that joined the namespace (a thread's network namespace is its own)."""
        box: dict[str, object] = {}

        def inside() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if _libc().setns(fd, _CLONE_NEWNET) != 0:
                        raise NetnsError(f"setns({self.path}) failed: {os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(fd)
                box["value"] = fn(*args)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        t = threading.Thread(target=inside, name="netns-call", daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]


def holder_argv(marker: str) -> list[str]:
    return ["unshare", "--net", "--", sys.executable, "-c", _HOLDER, marker]


def wait_ready(pid: int, marker: str, poll: Callable[[], int | None], timeout: float = 30.0) -> Namespace:
    """Until the holder says its loopback is up (its marker file); a holder that exits is an error."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(marker):
        code = poll()
        if code is not None:
            raise NetnsError(f"the network namespace holder exited {code} before its loopback was up "
                             f"({unavailable() or 'see the job log'})")
        if time.monotonic() > deadline:
            raise NetnsError(f"the network namespace holder was not ready after {timeout:.0f} s")
        time.sleep(0.01)  # polling a file the holder writes: nothing to wait on
    return Namespace(pid)


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)
