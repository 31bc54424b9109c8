"""Run-level hygiene through real doit runs: cancellation, ports, leftovers, timeouts, the lock."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from warmci.execute import proc

from .helpers import HOSTILE, RUNNER, free_port, make_repo, pid_alive, run_doit, wait_for

PY = sys.executable


def pipeline(jobs: str) -> str:
    return "[pipeline]\ntimeout = 120\n" + jobs.replace("{py}", PY).replace("{hostile}", str(HOSTILE))


def repo(tmp_path: Path, jobs: str) -> Path:
    return make_repo(tmp_path / "target", {"src/a.txt": "a\n", "warmci.toml": pipeline(jobs)})


def warmci_processes(state: Path) -> list[int]:
    out = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get("WARMCI_STATE") == str(state):
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


SIGTERM_JOBS = """
[jobs.fast-a]
cmd = ["{py}", "-c", "print('a')"]
inputs = ["src/**"]
[jobs.fast-b]
cmd = ["{py}", "-c", "print('b')"]
inputs = ["src/**"]
[jobs.slow-1]
cmd = ["{py}", "{hostile}", "slow", "{target}/../slow-1.started", "{target}/../fast"]
inputs = ["src/**"]
[jobs.slow-2]
cmd = ["{py}", "{hostile}", "ignore-term", "{target}/../slow-2.started", "{target}/../fast"]
inputs = ["src/**"]
[jobs.after-slow]
needs = ["slow-1"]
cmd = ["{py}", "-c", "print('after')"]
inputs = ["src/**"]
"""


def test_sigterm_mid_run_ends_every_job_tree_and_keeps_earlier_successes(tmp_path: Path) -> None:
    target, state = repo(tmp_path, SIGTERM_JOBS), tmp_path / "state"
    doit = subprocess.Popen(
        [PY, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "-n", "2", f"target={target}", f"state={state}"],
        env={**os.environ, "WARMCI_RUN_ID": "cancelled-run"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "slow-1.started").exists() and (tmp_path / "slow-2.started").exists(),
                 60, "both slow jobs to start")
        ci_log = state / "runs" / "cancelled-run" / "ci.log"
        assert "PASS fast-a" in ci_log.read_text() and "PASS fast-b" in ci_log.read_text()
        # A second run on the same state dir is refused while this one holds it.
        second = run_doit(target, state)
        assert second.rc == 3 and "another warmci run" in second.err and "cancelled-run" in second.err
        sent = time.monotonic()
        doit.send_signal(signal.SIGTERM)
        output = doit.communicate(timeout=30)[0].decode()
        code = doit.returncode
        exited = time.monotonic() - sent
    finally:
        if doit.poll() is None:
            doit.kill()
            doit.wait()
        if doit.stdout:
            doit.stdout.close()
    # Cancelled, and quietly: warmci's summary is the last word, not a KeyboardInterrupt traceback.
    assert code == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "warmci: CANCELLED in" in output, output
    assert warmci_processes(state) == [], "job processes survived the cancellation"
    # slow-2 ignores SIGTERM: it took the grace period and a KILL, no more.
    assert exited < proc.GRACE + 10, f"doit took {exited:.1f} s to exit after SIGTERM"
    run_log = (state / "runs" / "cancelled-run" / "run.log").read_text()
    assert "cancelling: signal SIGTERM" in run_log
    lines = (state / "runs" / "cancelled-run" / "ci.log").read_text().splitlines()
    assert any(re.fullmatch(r"\[\d\d:\d\d:\d\d\] FAIL slow-1 cancelled", line) for line in lines), lines
    assert any(line.endswith("SKIP after-slow not run: the run was cancelled first") for line in lines), lines
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] CANCELLED cancelled-run signal SIGTERM received by pid \d+",
                        lines[-1]), lines
    (tmp_path / "fast").touch()
    rerun = run_doit(target, state)
    assert rerun.rc == 0, rerun
    assert rerun.uptodate == {"fast-a", "fast-b"}, rerun
    assert rerun.executed == {"slow-1", "slow-2", "after-slow"}, rerun


def test_a_foreign_process_on_a_jobs_port_fails_the_job_and_is_left_running(tmp_path: Path) -> None:
    port = free_port()
    target, state = repo(tmp_path, f"""
[jobs.serve]
ports = [{port}]
cmd = ["{{py}}", "-c", "print('would listen on {port}')"]
inputs = ["src/**"]
"""), tmp_path / "state"
    foreign = subprocess.Popen([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                             for c in psutil.net_connections("tcp")), 15, "the foreign server to listen")
        run = run_doit(target, state, env={"WARMCI_NETNS": "off"})  # the machine's ports (tests/test_netns.py)
        assert run.rc != 0 and run.status("serve") == "errored", run
        reason = run.results["jobs"]["serve"]["reason"] if run.results else ""
        assert f"port {port} is held by pid {foreign.pid}" in reason and "http.server" in reason, reason
        assert "left running" in reason
        assert foreign.poll() is None, "warmci killed a process it did not start"
    finally:
        foreign.terminate()
        foreign.wait()


def test_processes_named_like_the_job_are_never_killed(tmp_path: Path) -> None:
    """What `pkill -f playwright-app` would have killed survives; the job's own tree does not."""
    target, state = repo(tmp_path, """
[jobs.playwright-app]
cmd = ["{py}", "{hostile}", "fork-grandchild", "{work}/grandchild.pid"]
inputs = ["src/**"]
"""), tmp_path / "state"
    decoy = subprocess.Popen([PY, "-c", "import time; time.sleep(120)", "playwright-app", str(state)])
    try:
        run = run_doit(target, state)
        assert run.rc == 0, run
        grandchild = int((state / "work" / "playwright-app" / "grandchild.pid").read_text())
        assert not pid_alive(grandchild)
        assert decoy.poll() is None, "a process whose command line names the job was killed"
        assert pid_alive(os.getpid())
    finally:
        decoy.terminate()
        decoy.wait()


def test_leftovers_of_a_killed_earlier_run_are_ended_and_reported(tmp_path: Path) -> None:
    target, state = repo(tmp_path, """
[jobs.a]
cmd = ["{py}", "-c", "print('a')"]
inputs = ["src/**"]
"""), tmp_path / "state"
    # What a SIGKILLed runner leaves: a recorded server whose grandchild holds a port.
    port = free_port()
    registry = proc.Registry(str(state / "procs"))
    left = proc.Child([PY, str(HOSTILE), "daemon-port", str(port)], cwd=str(tmp_path), env=dict(os.environ),
                      log=None, registry=registry, meta={"run": "old-run", "job": "server-job"})
    wait_for(lambda: left.poll() is not None, 15, "the daemon's parent to exit")
    daemon = wait_for(lambda: [c.pid for c in psutil.net_connections("tcp")
                               if c.laddr.port == port and c.status == psutil.CONN_LISTEN], 15, "the daemon")[0]
    run = run_doit(target, state, env={"WARMCI_RUN_ID": "next-run"})
    assert run.rc == 0, run
    assert not pid_alive(daemon)
    log = (state / "runs" / "next-run" / "run.log").read_text()
    assert "ended leftover from run old-run (job server-job)" in log and str(daemon) in log
    assert registry.records() == []


def test_a_timed_out_job_is_reported_as_such_and_never_up_to_date(tmp_path: Path) -> None:
    target, state = repo(tmp_path, """
[jobs.hangs]
timeout = 1
cmd = ["{py}", "{hostile}", "ignore-term", "{work}/started"]
inputs = ["src/**"]
[jobs.fine]
cmd = ["{py}", "-c", "print('fine')"]
inputs = ["src/**"]
"""), tmp_path / "state"
    run = run_doit(target, state)
    assert run.rc == 1 and run.status("hangs") == "timed-out" and run.status("fine") == "passed", run
    assert "timed out (job timeout 1 s)" in run.results["jobs"]["hangs"]["reason"]
    assert run.results["jobs"]["hangs"]["exit_code"] == -9  # it ignored SIGTERM: KILL ended it (docs/results.md)
    again = run_doit(target, state)
    assert again.status("hangs") == "timed-out" and again.status("fine") == "up-to-date", again


def test_the_runs_deadline_caps_every_job(tmp_path: Path) -> None:
    target, state = repo(tmp_path, """
[jobs.hangs]
cmd = ["{py}", "{hostile}", "sleep"]
inputs = ["src/**"]
""").parent / "target", tmp_path / "state"
    toml = target / "warmci.toml"
    toml.write_text(toml.read_text().replace("timeout = 120", "timeout = 120\ndeadline = 2"))
    run = run_doit(target, state)
    assert run.status("hangs") == "timed-out", run
    assert "the run's deadline passed" in run.results["jobs"]["hangs"]["reason"]


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_sigint_cancels_like_sigterm(tmp_path: Path, sig: int) -> None:
    target, state = repo(tmp_path, """
[jobs.waits]
cmd = ["{py}", "{hostile}", "slow", "{target}/../started", "{target}/../never"]
inputs = ["src/**"]
"""), tmp_path / "state"
    doit = subprocess.Popen([PY, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "-n", "2", f"target={target}",
                             f"state={state}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "started").exists(), 60, "the job to start")
        doit.send_signal(sig)
        assert doit.wait(timeout=30) != 0
    finally:
        if doit.poll() is None:
            doit.kill()
            doit.wait()
    assert warmci_processes(state) == []


KILLED_JOBS = """
[jobs.holds-on]
cmd = ["{py}", "{hostile}", "ignore-term", "{target}/../holds-on.started", "{target}/../fast"]
inputs = ["src/**"]
[jobs.quick]
cmd = ["{py}", "-c", "print('quick')"]
inputs = ["src/**"]
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_kill_9_of_the_main_leaves_nothing_behind(tmp_path: Path, workers: str) -> None:
    """Workers die with their main, the lock dies with it, and the next run ends what is left and proceeds."""
    target, state = repo(tmp_path, KILLED_JOBS), tmp_path / "state"
    doit = subprocess.Popen([PY, "-m", "doit", "-f", str(RUNNER / "dodo.py"), "-n", workers, f"target={target}",
                             f"state={state}"], env={**os.environ, "WARMCI_RUN_ID": "killed"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "holds-on.started").exists(), 60, "the job to start")
        recorded = [r.pid for r in proc.Registry(str(state / "procs")).records() if r.meta.get("role") == "doit worker"]
        doit_workers = [p.pid for p in psutil.Process(doit.pid).children()]
        assert sorted(recorded) == sorted(set(recorded) & set(doit_workers)) and len(recorded) == int(workers)
        doit.kill()
        doit.wait()
    finally:
        if doit.poll() is None:
            doit.kill()
            doit.wait()
    (tmp_path / "fast").touch()
    # At once: the job ignores SIGTERM, so what the dead run left is still there.
    after = run_doit(target, state, "-n", workers)
    assert after.rc == 0 and after.status("holds-on") == "passed" and after.results, after
    run_log = (state / "runs" / after.results["run_id"] / "run.log").read_text()
    assert "the previous run (pid " in run_log and "run killed) did not end normally" in run_log, run_log
    assert "ended leftover from run killed" in run_log, run_log
    assert not [pid for pid in recorded if pid_alive(pid)], "a doit worker outlived its main"
    assert warmci_processes(state) == []
    assert proc.Registry(str(state / "procs")).records() == []


def test_run_log_counts_only_this_state_dirs_processes(tmp_path: Path) -> None:
    target, state = repo(tmp_path, """
[jobs.a]
cmd = ["{py}", "-c", "print('a')"]
inputs = ["src/**"]
"""), tmp_path / "state"
    # A warmci process of another state dir on the same machine (it carries a token, as job processes do).
    other = proc.Child([PY, str(HOSTILE), "sleep"], cwd=str(tmp_path),
                       env={**os.environ, "WARMCI_STATE": str(tmp_path / "other-state")}, log=None)
    try:
        run = run_doit(target, state)
        assert run.rc == 0 and run.results, run
        log = (state / "runs" / run.results["run_id"] / "run.log").read_text()
        assert "snapshot before run: 0 warmci processes" in log, log
        assert str(other.pid) not in log
    finally:
        other.end()
