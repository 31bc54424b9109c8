"""The process mechanism against hostile programs: nothing they start survives."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from warmci.execute import ports, proc, servers

from .helpers import HOSTILE, free_port, pid_alive

ENV = dict(os.environ)


def hostile(*args: str) -> list[str]:
    return [sys.executable, str(HOSTILE), *args]


def test_a_child_that_ignores_term_is_killed_at_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "log"
    out = proc.run(hostile("ignore-term", str(tmp_path / "started")), cwd=str(tmp_path), env=ENV, log=str(log),
                   timeout=1.0, registry=proc.Registry(str(tmp_path / "procs")), grace=0.5)
    assert out.timed_out and out.returncode == -9  # TERM was ignored, KILL was not
    assert (tmp_path / "started").exists()
    assert proc.Registry(str(tmp_path / "procs")).records() == []


def test_a_grandchild_in_a_new_session_is_ended_with_its_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    out = proc.run(hostile("fork-grandchild", str(pidfile)), cwd=str(tmp_path), env=ENV, log=None, timeout=30)
    assert out.returncode == 0
    grandchild = int(pidfile.read_text())
    assert grandchild in out.killed
    assert not pid_alive(grandchild)


def test_a_daemon_holding_a_port_is_ended_and_the_port_freed(tmp_path: Path) -> None:
    port = free_port()
    out = proc.run(hostile("daemon-port", str(port)), cwd=str(tmp_path), env=ENV, log=None, timeout=30)
    assert out.returncode == 0 and out.killed
    assert ports.listeners([port]) == []


def test_flooding_output_goes_to_the_log_without_blocking(tmp_path: Path) -> None:
    log = tmp_path / "log"
    out = proc.run(hostile("flood", "64"), cwd=str(tmp_path), env=ENV, log=str(log), timeout=120)
    assert out.returncode == 0
    assert log.stat().st_size == 64 * 1024 * 1024


def test_a_server_that_crashes_on_start_fails_at_once_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    started = time.monotonic()
    with pytest.raises(servers.ServerFailed) as info:
        servers.start(hostile("crash-server"), ready=f"http://127.0.0.1:{free_port()}/", cwd=str(tmp_path),
                      env=ENV, log=str(log), timeout=600, label="t")
    assert "exited with code 3 before it was ready" in str(info.value)
    assert "boom: the server cannot find its config file" in str(info.value)
    assert time.monotonic() - started < 600  # did not wait out the readiness timeout


def test_a_crash_looping_supervisor_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(servers.ServerFailed) as info:
        servers.start(hostile("crash-loop"), ready=f"tcp:127.0.0.1:{free_port()}", cwd=str(tmp_path),
                      env=ENV, log=str(tmp_path / "log"), timeout=600, label="t")
    assert "crash-looping" in str(info.value) and "worker crashed" in str(info.value)


def test_own_process_parents_and_pid_1_are_never_signalled() -> None:
    me = psutil.Process()
    parents = [p.pid for p in me.parents()]
    assert {os.getpid(), 1, *parents} <= proc.protected_pids()
    # Asking to end our own tree's root (this process) signals nothing that is protected.
    killed = proc.end_tree(os.getpid(), me.create_time(), grace=0.1)
    assert os.getpid() not in killed and 1 not in killed and not set(parents) & set(killed)


def test_a_reused_pid_is_not_mistaken_for_a_recorded_process(tmp_path: Path) -> None:
    registry = proc.Registry(str(tmp_path / "procs"))
    child = proc.Child(hostile("sleep"), cwd=str(tmp_path), env=ENV, log=None, registry=registry)
    rec = registry.records()[0]
    assert rec.alive()
    child.end()
    # Same pid, another create time: what an unrelated process reusing the pid looks like.
    fake = proc.Record(os.getpid(), rec.create_time, rec.token, rec.argv, {})
    assert not fake.alive()
    assert registry.records() == []
