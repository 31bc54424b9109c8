"""The Redis engine end to end: the real webhook, a real redis-server, two host workers on one machine.

One world for the module (the set-up is the expensive part): redis-server
on a free loopback port, the service with `service.engine = "redis"`, a
loopback fake of GitHub, and two host workers (`h1`, `h2`) with separate
checkouts and state dirs, acting as two hosts. The target is small
(testing/scale_world.py); its `serve` job holds a fixed port, which both
hosts use at once (network namespaces).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from testing import github_payloads as gp
from testing.ci_service import Service, ServiceConfig
from testing.fake_github import FakeGitHub
from testing.redis_server import RedisServer
from testing.scale_world import REPO, HostProc, commit, push, small_remote

pytestmark = pytest.mark.slow
LEASE = 6.0
CONTEXT = "warmci"


@dataclass
class World:
    base: Path
    work: Path
    bare: Path
    first: str
    redis: RedisServer
    conn: redis.Redis
    gh: FakeGitHub
    service: Service
    hosts: dict[str, HostProc]
    hold: Path
    runs: list[int] = field(default_factory=list)

    def push(self, sha: str, branch: str) -> int:
        push(self.work, self.bare, sha, branch)
        r = self.service.send("push", gp.push(REPO, sha, branch))
        assert r.status_code == 202, r.text
        self.runs.append(int(r.json()["run"]))
        return self.runs[-1]

    def commit(self, files: dict[str, str], parent: str | None = None) -> str:
        return commit(self.work, parent or self.first, files)

    def results(self, run: dict[str, Any]) -> dict[str, Any]:
        return json.loads(Path(run["results_file"]).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("scale")
    work, bare = small_remote(base)
    first = commit(work, "HEAD", {})
    server = RedisServer(base / "redis").start()
    gh = FakeGitHub()
    hold = base / "hold"
    cfg = ServiceConfig(base / "ci.toml", base / "svc", service={"engine": "redis", "lease": LEASE,
                                                                   "cancel_grace": 20, "max_attempts": 2},
                        repos={REPO: {"clone_url": str(bare), "checkout_dir": base / "svc-checkout",
                                      "state_dir": base / "svc-state"}})
    service = Service(cfg, gh.url, base / "service.log", extra_env={"WARMCI_REDIS_URL": server.url})
    hosts = {n: HostProc(n, base / n, server.url, bare, LEASE, env={"HOLD_FILE": str(hold)}) for n in ("h1", "h2")}
    conn = server.client()
    try:
        service.start()
        for h in hosts.values():
            h.start()
        for h in hosts.values():
            h.wait_alive(conn)
        yield World(base, work, bare, first, server, conn, gh, service, hosts, hold)
        assert service.stop() == 0, service.log_text()[-3000:]
        for h in hosts.values():
            assert h.stop() == 0, h.log_text()
    finally:
        for h in hosts.values():
            if h.proc is not None and h.proc.poll() is None:
                h.kill_tree()
        service.stop()
        gh.close()
        conn.close()
        server.stop()


def test_a_push_runs_on_a_host_and_its_files_and_status_reach_the_service(world: World) -> None:
    run_id = world.push(world.first, "main")
    final = world.gh.final_status(world.first, CONTEXT, timeout=180)
    run = world.service.wait_finished(run_id)
    assert final["state"] == "success" and run["state"] == "passed", (final, run, world.service.log_text()[-3000:])
    assert run["host"] in world.hosts and run["placement"].startswith("no host has run main yet"), run
    assert Path(run["results_file"]).is_relative_to(world.base / "svc"), run
    results = world.results(run)
    on_host = world.hosts[run["host"]].state_dir / "runs" / run["run_id"] / "results.json"
    assert results == json.loads(on_host.read_text())
    assert (Path(run["state_dir"]) / "runs" / run["run_id"] / "ci.log").read_text().count("PASS") >= 4
    assert "doit" in Path(run["log_file"]).read_text() or Path(run["log_file"]).stat().st_size > 0
    statuses = world.gh.statuses(world.first, CONTEXT)
    assert [s["state"] for s in statuses].count("success") == 1
    assert any(f"Running on {run['host']}" in s["description"] for s in statuses if s["state"] == "pending")
