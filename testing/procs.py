"""Stopping a server or worker process the tests (or the benchmark) started: SIGTERM, a wait, then SIGKILL."""
from __future__ import annotations

import signal
import subprocess


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> int | None:
    """Its exit code after SIGTERM; None when it had to be killed (it did not stop within `timeout`)."""
    if proc is None:
        return 0
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
