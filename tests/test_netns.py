"""Jobs with ports get a network namespace of their own: two runs on one machine never fight over a port.

Two real doit runs of one small target, with different state dirs (two
host workers on one machine), run the same job on the same fixed port at
the same time: the first one's step waits for a file until the second has
finished. With namespaces both pass; with WARMCI_NETNS=off the second one
errors on the port the first holds, which is what happened before.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from warmci.execute import netns

from .helpers import RUNNER, free_port, make_repo, run_doit, wait_for

PY = sys.executable
pytestmark = pytest.mark.skipif(netns.unavailable() is not None,
                                reason=f"network namespaces unavailable: {netns.unavailable()}")


def target(tmp_path: Path, port: int) -> Path:
    # The server answers on the job's fixed port; the step fetches from it, then waits for `go` (if named).
    step = ("import os, sys, time, urllib.request; "
            f"print('got', urllib.request.urlopen('http://127.0.0.1:{port}/ok.txt').read().decode(), flush=True); "
            "go = os.environ.get('GO_FILE'); "
            "[time.sleep(0.05) for _ in range(2400) if go and not os.path.exists(go)]")
    ready = f"http://127.0.0.1:{port}/ok.txt"
    return make_repo(tmp_path / "target", {"src/ok.txt": "served\n", "warmci.toml": f"""
[pipeline]
keyed_env = ["GO_FILE"]

[jobs.serve]
doc = "a server on a fixed port and a step that fetches from it"
ports = [{port}]
inputs = ["src/**"]
servers = [
  {{ cmd = ["{PY}", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "src"], ready = "{ready}" }},
]
cmd = ["{PY}", "-c", "{step}"]
"""})


def start_doit(target: Path, state: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    run_id = f"t-{uuid.uuid4().hex[:8]}"
    cmd = [PY, "-m", "doit", "-f", str(RUNNER / "dodo.py"), f"target={target}", f"state={state}"]
    proc = subprocess.Popen(cmd, env={**os.environ, "WARMCI_RUN_ID": run_id, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    return proc, state / "runs" / run_id


def overlap(tmp_path: Path, mode: str) -> tuple[str, str, str]:
    """Run A holds the port while run B runs; (A's status, B's status, B's reason)."""
    port = free_port()
    repo = target(tmp_path, port)
    go = tmp_path / "go"
    a, a_dir = start_doit(repo, tmp_path / "state-a", {"WARMCI_NETNS": mode, "GO_FILE": str(go)})
    try:
        wait_for(lambda: "got served" in (a_dir / "logs" / "serve.log").read_text()
                 if (a_dir / "logs" / "serve.log").exists() else False, 120, "run A's step to reach its server")
        b = run_doit(repo, tmp_path / "state-b", env={"WARMCI_NETNS": mode, "GO_FILE": ""})
    finally:
        go.touch()
        out, _ = a.communicate(timeout=300)
    assert a.returncode == 0, out
    assert json.loads((a_dir / "results.json").read_text())["jobs"]["serve"]["status"] == "passed"
    reason = ((b.results or {}).get("jobs", {}).get("serve", {}) or {}).get("reason", "")
    return "passed", str(b.status("serve")), str(reason)


def test_two_runs_on_one_machine_use_one_fixed_port_at_once_in_namespaces_of_their_own(tmp_path: Path) -> None:
    a, b, reason = overlap(tmp_path, "auto")
    assert (a, b) == ("passed", "passed"), reason
    log = next((tmp_path / "state-b" / "runs").glob("t-*/logs/serve.log")).read_text()
    assert "a network namespace of the job's own" in log and "got served" in log
    assert "(in the job's network namespace)" in log


def test_without_namespaces_the_second_run_errors_on_the_port_the_first_holds(tmp_path: Path) -> None:
    a, b, reason = overlap(tmp_path, "off")
    assert a == "passed" and b == "errored", reason
    assert "is held by pid" in reason and "warmci did not start it" in reason, reason


def test_a_foreign_listener_on_the_host_does_not_disturb_a_job_in_its_namespace(tmp_path: Path) -> None:
    port = free_port()
    repo = target(tmp_path, port)
    foreign = subprocess.Popen([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
                             for c in psutil.net_connections("tcp")), 15, "the foreign server to listen")
        run = run_doit(repo, tmp_path / "state", env={"GO_FILE": ""})
        assert run.rc == 0 and run.status("serve") == "passed", run
        assert foreign.poll() is None, "warmci touched a process outside the job's namespace"
    finally:
        foreign.terminate()
        foreign.wait()
    # The holder of the namespace ended with the job: no process of the run is left.
    holders = [p for p in psutil.process_iter(["cmdline"]) if "netns-ready" in " ".join(p.info["cmdline"] or [])
               and str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert holders == []


def test_namespaces_required_where_none_can_be_made_is_a_clear_error(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no util-linux here
    netns.unavailable.cache_clear()
    try:
        assert netns.unavailable() == "`unshare` is not installed (util-linux)"
        assert netns.wanted({"WARMCI_NETNS": "auto"}) is False
        with pytest.raises(netns.NetnsError, match="WARMCI_NETNS=on, but a network namespace cannot be made here"):
            netns.wanted({"WARMCI_NETNS": "on"})
        with pytest.raises(netns.NetnsError, match="expected one of auto, on, off"):
            netns.choice({"WARMCI_NETNS": "yes"})
    finally:
        netns.unavailable.cache_clear()


def test_the_listener_check_and_the_probe_look_inside_the_namespace(tmp_path: Path) -> None:
    from warmci.execute import ports, proc, servers

    port = free_port()
    marker = str(tmp_path / "ready")
    holder = proc.Child(netns.holder_argv(marker), cwd=str(tmp_path), env=dict(os.environ), log=None, label="t")
    server = None
    try:
        ns = netns.wait_ready(holder.pid, marker, holder.poll)
        server = proc.Child(ns.wrap([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"]), cwd=str(tmp_path),
                            env=dict(os.environ), log=None, label="t")
        wait_for(lambda: ns.call(servers.probe, f"http://127.0.0.1:{port}/"), 30, "the server inside to answer")
        inside = ports.listeners_inside(ns, [port])
        assert [(x.port, x.pid) for x in inside] == [(port, server.pid)] and "http.server" in inside[0].cmdline
        assert ports.listeners([port]) == [] and not servers.probe(f"http://127.0.0.1:{port}/")  # not on the host
    finally:
        if server is not None:
            server.end()
        holder.end()
