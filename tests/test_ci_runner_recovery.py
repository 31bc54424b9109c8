"""Crash recovery with real processes: a dead service's run is ended, then rerun or reported — never pending.

The "doit" here ignores SIGTERM and its "job" escaped into a session of its
own, as a killed service can leave them; recovery must end both, and only
them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from ci_runner import config, procs, runsdb
from ci_runner.recovery import recover
from ci_runner.runsdb import RunsDB
from testing.ci_service import SECRET, TOKEN, ServiceConfig

from .helpers import HOSTILE, pid_alive, wait_for

SHA = "e" * 40


def start(mode: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(HOSTILE), mode, *args], env={**os.environ, **env},
                            start_new_session=True, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("attempts", "expected"), [(1, "queued"), (2, "errored")])
def test_a_run_left_running_is_ended_then_queued_again_or_reported(tmp_path: Path, attempts: int,
                                                                   expected: str) -> None:
    path = ServiceConfig(tmp_path / "ci.toml", tmp_path / "svc", service={"cancel_grace": 1, "max_attempts": 2},
                         repos={"o/demo": {"clone_url": "https://github.com/o/demo.git",
                                           "checkout_dir": tmp_path / "co", "state_dir": tmp_path / "st"}}).write()
    cfg = config.load(path, {"WARMCI_WEBHOOK_SECRET": SECRET, "WARMCI_GITHUB_TOKEN": TOKEN})
    token = {"WARMCI_RUN": "ci-1-1", "WARMCI_STATE": str(cfg.repos["o/demo"].state_dir)}
    doit = start("ignore-term", str(tmp_path / "doit.started"), env=token)
    pidfile = tmp_path / "job.pid"
    job_parent = start("fork-grandchild", str(pidfile), env=token)
    job_parent.wait(timeout=30)
    job = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 30, "the escaped job"))
    innocent = start("ignore-term", str(tmp_path / "innocent"), env={**token, "WARMCI_STATE": str(tmp_path / "other")})
    wait_for(lambda: (tmp_path / "doit.started").exists() and (tmp_path / "innocent").exists(), 30, "markers")
    try:
        db = RunsDB(cfg.db_file)
        with db.write() as c:
            run_id = runsdb.insert_run(c, repo="o/demo", sha=SHA, branch="topic", ref="refs/heads/topic",
                                       lane="branch:topic", trigger="push", state="running", attempts=attempts,
                                       pid=doit.pid, pid_created=procs.started(doit.pid), run_id="ci-1-1",
                                       state_dir=token["WARMCI_STATE"])
        (line,) = recover(db, cfg)
        assert f"ended pids [{doit.pid}" in line or str(doit.pid) in line, line
        assert doit.poll() is not None and not pid_alive(job), "the dead run's processes survived"
        assert pid_alive(innocent.pid), "a process of another state dir was touched"
        with db.read() as c:
            run = runsdb.run(c, run_id)
            statuses = c.execute("SELECT state, description FROM outbox").fetchall()
        assert run is not None and run.state == expected
        if expected == "queued":
            assert [tuple(s) for s in statuses] == [("pending", "Queued (next in line)")]
        else:
            assert [s[0] for s in statuses] == ["error"]
            assert "Interrupted by a service restart 2 times" in statuses[0][1]
        assert recover(db, cfg) == []  # settled once, for good
    finally:
        for p in (doit, innocent):
            p.kill()
            p.wait()
        if pid_alive(job):
            psutil.Process(job).kill()
