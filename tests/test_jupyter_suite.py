"""The JupyterLab suite helper: argument parsing, URL detection and the kernel warm-up WebSocket."""
from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path

import pytest

from .helpers import job_script

js = job_script("jupyter_suite")



def test_ports_and_notebooks_parse() -> None:
    assert js.parse_ports(["8889-8891", "9000"]) == [8889, 8890, 8891, 9000]
    with pytest.raises(js.SuiteError):
        js.parse_ports(["8889-8890", "8890"])
    nb = js.parse_notebook("t.ipynb", "pw/a.spec.ts", "30000")
    assert (nb.name, nb.spec, nb.timeout) == ("t.ipynb", "pw/a.spec.ts", "30000")
    nb = js.parse_notebook("x.ipynb=pw/x.spec.ts@60000", "pw/a.spec.ts", "30000")
    assert (nb.spec, nb.timeout) == ("pw/x.spec.ts", "60000")


def test_a_spec_that_hard_codes_its_url_is_detected(tmp_path: Path) -> None:
    (tmp_path / "fixed.spec.ts").write_text("const JUPYTER_BASE_URL = 'http://localhost:8889';\n")
    (tmp_path / "env.spec.ts").write_text("const u = process.env.JUPYTER_BASE_URL ?? 'x';\n")
    assert js.reads_url_env(str(tmp_path), "env.spec.ts", "JUPYTER_BASE_URL")
    assert not js.reads_url_env(str(tmp_path), "fixed.spec.ts", "JUPYTER_BASE_URL")


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        return head + bytes([n]) + payload
    if n < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", n) + payload
    return head + bytes([127]) + struct.pack("!Q", n) + payload


def _status(state: str, pad: int = 0) -> bytes:
    return json.dumps({"header": {"msg_type": "status"}, "content": {"execution_state": state},
                       "pad": "x" * pad}).encode()


def fake_kernel_socket(frames: list[bytes], status: str = "101 Switching Protocols") -> tuple[int, threading.Thread]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            req = b""
            while b"\r\n\r\n" not in req:
                req += conn.recv(4096)
            assert req.startswith(b"GET /api/kernels/k1/channels?token=t HTTP/1.1")
            # The first frame arrives in the same packet as the handshake answer.
            conn.sendall(f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\n\r\n".encode() + frames[0])
            for f in frames[1:]:
                conn.sendall(f)
            try:
                conn.recv(1024)  # the client's close frame
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv.getsockname()[1], t


def test_warm_up_reads_frames_until_the_kernel_is_idle() -> None:
    frames = [_frame(0x1, _status("starting")), _frame(0x9, b"ping"), _frame(0x2, b"\x00binary"),
              _frame(0x1, _status("busy", pad=300)), _frame(0x1, _status("idle", pad=70000))]
    port, t = fake_kernel_socket(frames)
    js.wait_kernel_idle(port, "/api/kernels/k1/channels?token=t", timeout=10)
    t.join(5)


def test_warm_up_fails_when_the_socket_closes_before_idle() -> None:
    port, t = fake_kernel_socket([_frame(0x1, _status("busy")), _frame(0x8, b"")])
    with pytest.raises(js.SuiteError, match="did not report idle"):
        js.wait_kernel_idle(port, "/api/kernels/k1/channels?token=t", timeout=10)
    t.join(5)


def test_warm_up_fails_on_a_refused_handshake() -> None:
    port, t = fake_kernel_socket([b""], status="403 Forbidden")
    with pytest.raises(js.SuiteError, match="403"):
        js.wait_kernel_idle(port, "/api/kernels/k1/channels?token=t", timeout=10)
    t.join(5)


def test_phases_go_to_the_file_warmci_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "phases.jsonl"
    monkeypatch.delenv("WARMCI_PHASES", raising=False)
    js.phase("server start", 1.0)  # not asked for: nothing written, no error
    monkeypatch.setenv("WARMCI_PHASES", str(out))
    js.phase("server start", 1.23456)
    js.phase("notebook a.ipynb", 2)
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"name": "server start", "seconds": 1.235}, {"name": "notebook a.ipynb", "seconds": 2}]
