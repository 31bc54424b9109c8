"""A JupyterLab notebook suite: servers up and kernels warm before the first test.

For each port a JupyterLab server is started, serving a directory of its own
(under --root, never the target's tree); a trusted copy of a notebook is put
there only while its test runs. Once every server answers, one kernel per server is started and
driven over its WebSocket until it reports `idle` (a kernel stays "starting"
until a client connects), then shut down: the first notebook of the suite no
longer pays for the cold start. Then the test command runs once per
notebook, with the notebook's server in its environment
(JUPYTER_BASE_URL, JUPYTER_TOKEN, JUPYTER_PORT, TEST_NOTEBOOK), up to
--parallel servers at a time; notebooks that share a server run one after
another, with its kernels, sessions and saved workspace cleared in between.

A test that hard-codes its server URL instead of reading --url-env cannot be
pointed at another server: if a spec does not mention that variable, every
notebook runs on the first port, one after another, and the output says so.

Stdlib only; run with the Python of the environment that has JupyterLab:

    python jupyter_suite.py --ports 8889-8897 --token T --notebooks-dir DIR --root DIR \\
        --notebook a.ipynb --notebook b.ipynb=pw-tests/b.spec.ts@45000 \\
        --default-spec pw-tests/integration.spec.ts --default-timeout 30000 \\
        -- npx playwright test {spec} --timeout={timeout} --output={out}

The command's {notebook}, {spec}, {timeout}, {port} and {out} (a fresh
directory per notebook) are filled in per notebook.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

# Sibling helpers, found even under PYTHONSAFEPATH (which keeps a script's own directory off sys.path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phases import record as phase  # noqa: E402

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SuiteError(Exception):
    pass


@dataclass
class Notebook:
    name: str
    spec: str
    timeout: str


@dataclass
class Slot:
    port: int
    root: str
    notebooks: list[Notebook] = field(default_factory=list)
    popen: subprocess.Popen[bytes] | None = None
    log: str = ""

    @property
    def workspaces(self) -> str:
        return os.path.join(os.path.dirname(self.root), f"workspaces-{self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def say(text: str) -> None:
    print(f"[jupyter-suite {time.strftime('%H:%M:%S')}] {text}", flush=True)


def parse_ports(specs: list[str]) -> list[int]:
    ports: list[int] = []
    for spec in specs:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi or lo)
            if not (1 <= first <= last <= 65535):
                raise SuiteError(f"bad port range {part!r}")
            ports += range(first, last + 1)
    if len(set(ports)) != len(ports):
        raise SuiteError(f"ports listed twice: {ports}")
    return ports


def parse_notebook(text: str, default_spec: str, default_timeout: str) -> Notebook:
    """NAME, NAME=SPEC or NAME=SPEC@TIMEOUT."""
    name, _, rest = text.partition("=")
    spec, _, timeout = rest.partition("@")
    return Notebook(name, spec or default_spec, timeout or default_timeout)


def reads_url_env(cwd: str, spec: str, var: str) -> bool:
    """Does the (JS/TS) spec read `var` from the environment? A constant of that name does not count."""
    try:
        with open(os.path.join(cwd, spec), encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return False
    return any(form in text for form in (f"process.env.{var}", f"process.env['{var}']", f'process.env["{var}"]'))


# -- HTTP and WebSocket against one server ------------------------------------------
def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    """The JSON answer of one request to the server's REST API."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with _OPENER.open(req, timeout=timeout) as resp:
        text = resp.read().decode() or "null"
    return json.loads(text)


class _Socket(Protocol):
    def recv(self, n: int, /) -> bytes: ...

    def sendall(self, data: bytes, /) -> None: ...


def _recv_exact(sock: _Socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SuiteError("WebSocket closed by the server")
        buf += chunk
    return buf


def _send_frame(sock: _Socket, opcode: int, payload: bytes = b"") -> None:
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _messages(sock: _Socket) -> Iterator[str]:
    """Yield the text messages of a WebSocket (client side, RFC 6455)."""
    parts: list[bytes] = []
    while True:
        b0, b1 = _recv_exact(sock, 2)
        opcode, fin = b0 & 0x0F, b0 & 0x80
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", _recv_exact(sock, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", _recv_exact(sock, 8))[0]
        mask = _recv_exact(sock, 4) if b1 & 0x80 else b""
        payload = _recv_exact(sock, n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if opcode == 0x8:
            return
        if opcode == 0x9:
            _send_frame(sock, 0xA, payload)
            continue
        if opcode in (0x0, 0x1, 0x2):
            parts.append(payload)
            if fin:
                data, parts = b"".join(parts), []
                if opcode != 0x2:
                    yield data.decode("utf-8", "replace")


def wait_kernel_idle(port: int, path: str, timeout: float) -> None:
    """Connect to a kernel's channels WebSocket and read until it reports idle."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                     .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise SuiteError("the server closed the WebSocket handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            raise SuiteError(f"WebSocket handshake refused: {status}")
        # Frames that arrived with the handshake are re-read through a small buffer socket.
        rest = head.split(b"\r\n\r\n", 1)[1]
        source = _Buffered(sock, rest)
        for text in _messages(source):
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if (msg.get("header", {}).get("msg_type") == "status"
                    and msg.get("content", {}).get("execution_state") == "idle"):
                _send_frame(sock, 0x8)
                return
            if time.monotonic() > deadline:
                break
            sock.settimeout(max(0.1, deadline - time.monotonic()))
        raise SuiteError(f"the kernel did not report idle within {timeout:.0f} s")


class _Buffered:
    """A socket whose first bytes come from a buffer (what arrived with the handshake)."""

    def __init__(self, sock: socket.socket, buf: bytes) -> None:
        self.sock, self.buf = sock, buf

    def recv(self, n: int) -> bytes:
        if self.buf:
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        return self.sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


# -- servers ---------------------------------------------------------------------------
def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return "(no log)"


def start(slot: Slot, token: str) -> None:
    os.makedirs(slot.root, exist_ok=True)
    slot.log = os.path.join(os.path.dirname(slot.root), f"jupyterlab-{slot.port}.log")
    argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={slot.port}", "--port-retries=0",
            f"--ServerApp.token={token}", "--ServerApp.allow_origin=*", "--ServerApp.disable_check_xsrf=True",
            "--ServerApp.allow_root=True", f"--ServerApp.root_dir={slot.root}",
            f"--LabApp.workspaces_dir={slot.workspaces}"]
    with open(slot.log, "wb") as out:
        slot.popen = subprocess.Popen(argv, cwd=slot.root, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
    say(f"port {slot.port}: started JupyterLab (pid {slot.popen.pid}) serving {slot.root}")


def wait_ready(slot: Slot, token: str, timeout: float) -> float:
    t0 = time.monotonic()
    assert slot.popen is not None
    while True:
        code = slot.popen.poll()
        if code is not None:
            raise SuiteError(f"JupyterLab on port {slot.port} exited with code {code} before it was ready; "
                             f"last lines of {slot.log}:\n{tail(slot.log)}")
        try:
            http("GET", f"{slot.url}/api?token={token}", timeout=2)
            return time.monotonic() - t0
        except (OSError, ValueError):
            pass
        if time.monotonic() - t0 > timeout:
            raise SuiteError(f"JupyterLab on port {slot.port} did not answer within {timeout:.0f} s; "
                             f"last lines of {slot.log}:\n{tail(slot.log)}")
        time.sleep(0.25)  # poll interval between probes


def warm(slot: Slot, token: str, timeout: float) -> float:
    t0 = time.monotonic()
    kernel = http("POST", f"{slot.url}/api/kernels?token={token}", {}, timeout=timeout)
    kid = kernel["id"]
    try:
        wait_kernel_idle(slot.port, f"/api/kernels/{kid}/channels?token={token}", timeout)
    finally:
        try:
            http("DELETE", f"{slot.url}/api/kernels/{kid}?token={token}", timeout=30)
        except (OSError, ValueError):
            pass
    return time.monotonic() - t0


def reset(slot: Slot, token: str) -> None:
    """Shut down the server's sessions and kernels between two notebooks, and forget its workspace
    (JupyterLab would reopen the previous notebook's tab, and its kernel dialog, in the next page)."""
    shutil.rmtree(slot.workspaces, ignore_errors=True)
    for kind in ("sessions", "kernels"):
        try:
            items = http("GET", f"{slot.url}/api/{kind}?token={token}")
            for item in items or []:
                http("DELETE", f"{slot.url}/api/{kind}/{item['id']}?token={token}", timeout=30)
        except (OSError, ValueError, urllib.error.HTTPError) as exc:
            say(f"port {slot.port}: could not shut down {kind}: {exc}")


def stop(slots: list[Slot]) -> None:
    live = [s for s in slots if s.popen is not None and s.popen.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for s in live:
            try:
                os.killpg(s.popen.pid, sig)  # type: ignore[union-attr]
            except (ProcessLookupError, PermissionError):
                pass
        end = time.monotonic() + 10
        for s in live:
            try:
                s.popen.wait(timeout=max(0.1, end - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                pass
        live = [s for s in live if s.popen.poll() is None]  # type: ignore[union-attr]
        if not live:
            break


# -- the suite ---------------------------------------------------------------------------
def run_notebook(slot: Slot, nb: Notebook, args: argparse.Namespace, lock: threading.Lock) -> tuple[bool, float]:
    out = os.path.join(args.root, "results", nb.name.rsplit(".", 1)[0])
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    fill = {"notebook": nb.name, "spec": nb.spec, "timeout": nb.timeout, "port": str(slot.port), "out": out}
    argv = [a.format_map(fill) for a in args.command]
    env = dict(os.environ, TEST_NOTEBOOK=nb.name, JUPYTER_TOKEN=args.token, JUPYTER_PORT=str(slot.port),
               JUPYTER_BASE_URL=f"http://localhost:{slot.port}")
    if args.url_env:
        env[args.url_env] = f"http://localhost:{slot.port}"
    log = os.path.join(args.root, "logs", f"{nb.name}.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    # Only this notebook is in the served dir while its test runs (the trusted copy).
    served = os.path.join(slot.root, nb.name)
    shutil.copy(os.path.join(args.root, "staged", nb.name), served)
    t0 = time.monotonic()
    try:
        with open(log, "wb") as fh:
            code = subprocess.run(argv, cwd=args.cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).returncode
    finally:
        os.remove(served)
    took = time.monotonic() - t0
    with lock:  # one notebook's output at a time in the job's log
        phase(f"notebook {nb.name}", took)
        word = "PASS" if code == 0 else f"FAIL (exit {code})"
        say(f"--- {nb.name} on port {slot.port}: {' '.join(argv)}")
        with open(log, errors="replace") as fh:
            sys.stdout.write(fh.read())
        say(f"{word} {nb.name} ({took:.1f} s)")
    return code == 0, took


def run(args: argparse.Namespace) -> int:
    ports = parse_ports(args.ports)
    notebooks = [parse_notebook(n, args.default_spec, args.default_timeout) for n in args.notebook]
    if not notebooks:
        raise SuiteError("no --notebook given")
    for nb in notebooks:
        if not os.path.isfile(os.path.join(args.notebooks_dir, nb.name)):
            raise SuiteError(f"notebook {nb.name} not found in {args.notebooks_dir}")
        if not os.path.isfile(os.path.join(args.cwd, nb.spec)):
            raise SuiteError(f"spec {nb.spec} (for {nb.name}) not found in {args.cwd}")
    if args.url_env:
        fixed = sorted({nb.spec for nb in notebooks if not reads_url_env(args.cwd, nb.spec, args.url_env)})
        if fixed and len(ports) > 1:
            say(f"NOTE: {', '.join(fixed)} do(es) not read {args.url_env} (the server URL is hard-coded), so "
                f"all {len(notebooks)} notebooks run one after another on the JupyterLab at port {ports[0]}; "
                f"ports {ports[1]}-{ports[-1]} stay unused")
            ports = ports[:1]
    slots = [Slot(p, os.path.join(args.root, f"port-{p}")) for p in ports[:len(notebooks)]]
    for i, nb in enumerate(notebooks):
        slots[i % len(slots)].notebooks.append(nb)
    parallel = len(slots) if args.parallel == "auto" else int(args.parallel)
    if args.parallel == "auto":
        parallel = min(len(slots), max(1, (os.cpu_count() or 1) // 2))
    parallel = max(1, min(parallel, len(slots)))
    shutil.rmtree(args.root, ignore_errors=True)
    staged = os.path.join(args.root, "staged")
    os.makedirs(staged)
    for nb in notebooks:
        shutil.copy(os.path.join(args.notebooks_dir, nb.name), staged)
    for slot in slots:
        os.makedirs(slot.root)
    t_all = time.monotonic()
    try:
        # Trust the copies (their saved outputs may hold widget JS), one process for all.
        trust = [sys.executable, "-m", "jupyter", "trust", *[os.path.join(staged, nb.name) for nb in notebooks]]
        p = subprocess.run(trust, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise SuiteError(f"`jupyter trust` exited {p.returncode}: {p.stderr.strip()[-2000:]}")
        phase("trust notebooks", time.monotonic() - t_all)
        for slot in slots:
            start(slot, args.token)
        with ThreadPoolExecutor(max_workers=len(slots)) as pool:
            t0 = time.monotonic()
            ready = list(pool.map(lambda s: wait_ready(s, args.token, args.server_timeout), slots))
            phase("server start", time.monotonic() - t0)
            say("servers ready: " + ", ".join(f"{s.port} ({t:.1f} s)" for s, t in zip(slots, ready, strict=True)))
            t0 = time.monotonic()
            warmed = list(pool.map(lambda s: warm(s, args.token, args.kernel_timeout), slots))
            phase("kernel warm-up", time.monotonic() - t0)
            say("kernels warmed over WebSocket: "
                + ", ".join(f"{s.port} ({t:.1f} s)" for s, t in zip(slots, warmed, strict=True)))
        say(f"servers up and warm after {time.monotonic() - t_all:.1f} s; running {len(notebooks)} notebook(s) "
            f"on {len(slots)} server(s), {parallel} at a time")
        lock = threading.Lock()

        def run_slot(slot: Slot) -> list[tuple[str, bool, float]]:
            results = []
            for i, nb in enumerate(slot.notebooks):
                if i:
                    t0 = time.monotonic()
                    reset(slot, args.token)
                    phase(f"reset server {slot.port}", time.monotonic() - t0)
                ok, took = run_notebook(slot, nb, args, lock)
                results.append((nb.name, ok, took))
            return results

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            outcome = [r for rs in pool.map(run_slot, slots) for r in rs]
    except (SuiteError, OSError, ValueError, KeyError) as exc:
        say(f"ERROR: {type(exc).__name__}: {exc}")
        return 1
    finally:
        stop(slots)
    failed = [name for name, ok, _ in outcome if not ok]
    say(f"summary after {time.monotonic() - t_all:.1f} s: {len(outcome) - len(failed)} passed, "
        f"{len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    for name, ok, took in outcome:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}  {took:.1f} s")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", action="append", required=True, help="e.g. 8889-8897 (repeatable)")
    ap.add_argument("--token", required=True)
    ap.add_argument("--notebooks-dir", required=True)
    ap.add_argument("--root", required=True, help="scratch dir: served notebooks, logs, results")
    ap.add_argument("--notebook", action="append", default=[], help="NAME[=SPEC[@TIMEOUT]] (repeatable)")
    ap.add_argument("--default-spec", default="")
    ap.add_argument("--default-timeout", default="30000")
    ap.add_argument("--url-env", default="", help="variable a spec must read to be pointed at another server")
    ap.add_argument("--parallel", default="auto", help="servers tested at once (auto: half the cores)")
    ap.add_argument("--cwd", default=".", help="where the command runs")
    ap.add_argument("--server-timeout", type=float, default=90)
    ap.add_argument("--kernel-timeout", type=float, default=90)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser().error("give the test command after --")
    args.root = os.path.abspath(args.root)
    args.notebooks_dir = os.path.abspath(args.notebooks_dir)
    args.cwd = os.path.abspath(args.cwd)
    try:
        return run(args)
    except SuiteError as exc:
        say(f"ERROR: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
