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

import psutil
import pytest
import redis

from testing import github_payloads as gp
from testing.ci_service import Service, ServiceConfig
from testing.fake_github import FakeGitHub
from testing.git_remote import Remote
from testing.redis_server import RedisServer
from testing.s3_server import SECRET, S3Server
from testing.scale_world import REPO, HostProc, commit, small_remote

pytestmark = pytest.mark.slow
LEASE = 6.0
CONTEXT = "warmci"


@dataclass
class World:
    base: Path
    remote: Remote
    first: str
    redis: RedisServer
    s3: S3Server
    conn: redis.Redis
    gh: FakeGitHub
    service: Service
    hosts: dict[str, HostProc]
    hold: Path
    runs: list[int] = field(default_factory=list)

    def push(self, sha: str, branch: str) -> int:
        self.remote.push(sha, f"refs/heads/{branch}")
        r = self.service.send("push", gp.push(REPO, sha, branch))
        assert r.status_code == 202, r.text
        self.runs.append(int(r.json()["run"]))
        return self.runs[-1]

    def commit(self, files: dict[str, str], parent: str | None = None, message: str = "change") -> str:
        return commit(self.remote, parent or self.first, files, message)

    def results(self, run: dict[str, Any]) -> dict[str, Any]:
        return json.loads(Path(run["results_file"]).read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("scale")
    remote = small_remote(base)
    first = commit(remote, "HEAD", {})
    server = RedisServer(base / "redis").start()
    bucket = S3Server(base / "moto").start()
    gh = FakeGitHub()
    hold = base / "hold"
    cfg = ServiceConfig(base / "ci.toml", base / "svc", service={"engine": "redis", "lease": LEASE,
                                                                   "cancel_grace": 20, "max_attempts": 2},
                        repos={REPO: {"clone_url": str(remote.bare), "checkout_dir": base / "svc-checkout",
                                      "state_dir": base / "svc-state", "trusted_authors": ["carol"]}})
    service = Service(cfg, gh.url, base / "service.log", extra_env={"WARMCI_REDIS_URL": server.url})
    hosts = {n: HostProc(n, base / n, server.url, remote.bare, LEASE, env={"HOLD_FILE": str(hold), **bucket.env()})
             for n in ("h1", "h2")}
    conn = server.client()
    try:
        service.start()
        for h in hosts.values():
            h.start()
        for h in hosts.values():
            h.wait_alive(conn)
        yield World(base, remote, first, server, bucket, conn, gh, service, hosts, hold)
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
        bucket.stop()


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
    assert results["host"] == {"name": run["host"], "placement": run["placement"]}, results["host"]
    health = world.service.get("/health")
    assert health["engine"] == "redis" and set(health["hosts"]) == set(world.hosts), health
    assert (Path(run["state_dir"]) / "runs" / run["run_id"] / "ci.log").read_text().count("PASS") >= 4
    assert "doit" in Path(run["log_file"]).read_text() or Path(run["log_file"]).stat().st_size > 0
    statuses = world.gh.statuses(world.first, CONTEXT)
    assert [s["state"] for s in statuses].count("success") == 1
    assert any(f"Running on {run['host']}" in s["description"] for s in statuses if s["state"] == "pending")


def finished(world: World, ids: list[int], timeout: float = 300) -> dict[int, dict[str, Any]]:
    return {i: world.service.wait_finished(i, timeout) for i in ids}


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    """Each job's verdict, whatever made it: a restored or up-to-date job passed before with these inputs."""
    ok = ("passed", "up-to-date", "restored")
    return {n: "ok" if j["status"] in ok else j["status"] for n, j in results["jobs"].items()}


def forced(world: World, sha: str, where: Path) -> dict[str, Any]:
    """A forced run (doit -a) of the SHA in a fresh clone and state: the reference result."""
    from bench.targets import git

    from .helpers import run_doit

    git(world.base, "clone", "-q", str(world.remote.bare), str(where / "clone"))
    git(where / "clone", "checkout", "-q", "--detach", sha)
    run = run_doit(where / "clone", where / "state", "-a", env={"HOLD_FILE": str(world.hold)})
    assert run.results is not None, run
    return run.results


def test_a_burst_on_three_branches_loses_nothing_keeps_affinity_and_matches_forced_runs(world: World,
                                                                                     tmp_path: Path) -> None:
    m2 = world.commit({"src/b.txt": "beta\n"})
    a1 = world.commit({"web/a.txt": "served by a\n"})
    b1 = world.commit({"src/flag.txt": "fail\n"})
    a2 = world.commit({"src/c.txt": "gamma\n"}, parent=a1)
    m3 = world.commit({"web/a.txt": "served by main\n"}, parent=m2)
    ids = {sha: world.push(sha, branch) for branch, sha in
           (("main", m2), ("feat-a", a1), ("feat-b", b1), ("feat-a", a2), ("main", m3))}
    runs = finished(world, list(ids.values()))
    # No run lost: each is final, and each SHA got exactly one final status.
    for sha, run_id in ids.items():
        world.gh.final_status(sha, CONTEXT, 60)
        finals = world.gh.final_statuses(sha, CONTEXT)
        assert len(finals) == 1, (sha, finals, runs[run_id])
    assert runs[ids[b1]]["state"] == "failed" and runs[ids[m2]]["state"] == runs[ids[m3]]["state"] == "passed"
    assert runs[ids[a2]]["state"] == "passed" and runs[ids[a1]]["state"] in ("passed", "cancelled"), runs[ids[a1]]
    # Affinity held where a host was free: every placement that is not warm says why, and says the truth.
    every = {r["id"]: r for r in world.service.get("/")["runs"]}
    for run in runs.values():
        why = run["placement"]
        assert run["host"] in world.hosts and why, run
        if why.startswith("warm:"):
            assert why.startswith(f"warm: {run['host']} ran {run['branch']} last"), why
        elif "but is busy with run" in why:
            other = every[int(why.split("busy with run ")[1].split(";")[0])]
            assert other["host"] != run["host"] and other["started_at"] <= run["started_at"], (run, other)
            assert other["finished_at"] is None or other["finished_at"] >= run["started_at"] - 1, (run, other)
        else:
            assert why.startswith(f"no host has run {run['branch']} yet"), why
    assert any(r["placement"].startswith("warm:") for r in runs.values()), runs
    # Results identical to a forced run of each SHA.
    for n, (sha, i) in enumerate(ids.items()):
        if runs[i]["state"] == "cancelled":
            continue
        reference = forced(world, sha, tmp_path / f"forced-{n}")
        got = world.results(runs[i])
        assert verdicts(got) == verdicts(reference) and got["status"] == reference["status"], (sha, got, reference)
    # Main's last tree on two new branches at once: both hosts are free, so one of them is not the host that
    # ran it, and restores main's results from the bucket (verified), instead of running them.
    x = world.commit({"src/b.txt": "beta\n", "web/a.txt": "served by main\n"}, message="x")
    y = world.commit({"src/b.txt": "beta\n", "web/a.txt": "served by main\n"}, message="y")
    both = finished(world, [world.push(x, "cross-x"), world.push(y, "cross-y")])
    assert {r["host"] for r in both.values()} == set(world.hosts), both
    across = [(r["id"], n) for r in both.values() for n, j in world.results(r)["jobs"].items()
              if j["status"] == "restored" and j["restored_from"]["store"] == "remote"
              and j["restored_from"]["host"] != r["host"]]
    assert across, [world.results(r)["jobs"] for r in both.values()]
    assert all(world.results(r)["store"]["remote_hits"] >= 1 for r in both.values() if r["host"] != runs[ids[m3]][
        "host"]), both
    print(f"restores across workers: {len(across)} jobs in runs {sorted({i for i, _ in across})}")


def test_a_fork_pull_request_runs_in_a_sandbox_and_writes_nothing_to_the_shared_cache(world: World) -> None:
    sha = world.commit({"src/fork.txt": "from a fork\n"}, message="a fork's change")
    world.remote.push(sha, "refs/pull/7/head")  # as GitHub keeps a PR's head
    before = set(world.s3.keys())
    r = world.service.send("pull_request", gp.pull_request(REPO, 7, sha, author="carol", head_repo="carol/small",
                                                           branch="fork-head"))
    assert r.status_code == 202, r.text  # carol is a trusted author: no approval needed
    run = world.service.wait_finished(int(r.json()["run"]))
    assert run["sha"] == sha and run["state"] == "passed", run
    host = world.hosts[run["host"]]
    assert (host.base / "state.fork" / "runs" / run["run_id"] / "results.json").exists()
    assert not (host.state_dir / "runs" / run["run_id"]).exists()
    assert set(world.s3.keys()) == before, "a fork's run wrote to the shared cache"
    assert world.results(run)["store"]["trust"] == "fork"


def running_on(world: World, run_id: int, job: str = "hold") -> dict[str, Any]:
    """Wait until the run's `job` has started on a host (its ci.log, shipped to the service, says so)."""
    def started(run: dict[str, Any]) -> bool:
        if run["state"] != "running" or not run["run_id"]:
            return False
        ci_log = Path(run["state_dir"]) / "runs" / run["run_id"] / "ci.log"
        return ci_log.exists() and f"START {job}" in ci_log.read_text()
    return world.service.wait_run(run_id, started, 120, f"{job} to start")


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def only_the_restarted_host_is_new(before: set[int], host: HostProc) -> None:
    """What the leak check would say, less the host worker the test started again on purpose."""
    assert host.proc is not None
    new = descendants() - before - {host.proc.pid}
    assert not new, [psutil.Process(p).cmdline() for p in new if psutil.pid_exists(p)]
    for h in world_hosts(host):
        tokens = [p.pid for p in psutil.process_iter() if _env(p).get("WARMCI_STATE", "").startswith(str(h))]
        assert tokens == [], f"processes of a run on {h} are left: {tokens}"


def world_hosts(host: HostProc) -> list[Path]:
    return [host.state_dir]


def _env(p: psutil.Process) -> dict[str, str]:
    try:
        return p.environ()
    except psutil.Error:
        return {}


@pytest.mark.allow_leftovers  # the host worker started again stays up for the module; the rest is checked here
def test_a_host_killed_mid_run_loses_the_run_to_the_lease_and_another_host_finishes_it(world: World) -> None:
    before = descendants()
    world.hold.touch()
    sha = world.commit({"hold/n.txt": "killed\n"})
    run_id = world.push(sha, "slow")
    run = running_on(world, run_id)
    victim = world.hosts[run["host"]]
    victim.kill_tree()  # the host dies: worker, work horse, doit and the job, all at once
    world.hold.unlink()
    done = world.service.wait_finished(run_id, timeout=180)
    assert done["state"] == "passed" and done["attempts"] == 2, done
    assert done["host"] != victim.name and f"{victim.name} ran slow last (run {run_id}) but is gone" in \
        done["placement"], done
    assert world.gh.final_status(sha, CONTEXT, 60)["state"] == "success"
    statuses = world.gh.statuses(sha, CONTEXT)
    assert [s["state"] for s in statuses].count("success") == 1 and statuses[-1]["state"] == "success"
    assert f"run {run_id}: host {victim.name} stopped heartbeating for 6 s; queued again" in \
        world.service.log_text()
    # The host comes back under its name (its dead record cleared) and takes runs again.
    victim.proc = None
    victim.start().wait_alive(world.conn)
    only_the_restarted_host_is_new(before, victim)


def test_a_newer_push_and_an_operator_cancel_a_run_on_another_host(world: World) -> None:
    from testing.ci_service import cli

    world.hold.touch()
    try:
        s1 = world.commit({"hold/n.txt": "superseded\n"})
        first = world.push(s1, "sup")
        running_on(world, first)
        s2 = world.commit({"hold/n.txt": "superseding\n"})
        second = world.push(s2, "sup")
        gone = world.service.wait_finished(first, timeout=120)
        assert gone["state"] == "cancelled" and gone["detail"] == f"Superseded by {s2[:7]} (run {second})", gone
        results = world.results(gone)
        assert results["status"] == "cancelled" and results["jobs"]["hold"]["status"] == "cancelled", results
        o1 = world.commit({"hold/n.txt": "operator\n"})
        op = world.push(o1, "op")
        running_on(world, op)
        out = cli(world.service.config.path, "cancel", str(op))
        assert out.returncode == 0 and "cancelling" in out.stdout, out
        cancelled = world.service.wait_finished(op, timeout=120)
        assert cancelled["state"] == "cancelled" and cancelled["detail"] == "Cancelled by an operator", cancelled
    finally:
        world.hold.unlink()
    assert world.service.wait_finished(second, timeout=120)["state"] == "passed"
    for sha, words in ((s1, "Superseded by"), (o1, "Cancelled by an operator")):
        world.gh.final_status(sha, CONTEXT, 60)
        (final,) = world.gh.final_statuses(sha, CONTEXT)
        assert final["state"] == "error" and final["description"].startswith(words), final


def test_the_first_failure_on_a_host_turns_the_commit_red_while_the_run_goes_on(world: World) -> None:
    world.hold.touch()
    try:
        sha = world.commit({"src/flag.txt": "fail\n", "hold/n.txt": "red early\n"})
        run_id = world.push(sha, "red")
        early = world.gh.wait_for(lambda g: [s for s in g.statuses(sha, CONTEXT) if s["state"] == "failure"], 120,
                                  "the early failure status")
        assert early[0]["description"].startswith("Failing: check failed after"), early
        assert world.service.run(run_id)["state"] == "running"  # `hold` holds the run: it went on
    finally:
        world.hold.unlink()
    assert world.service.wait_finished(run_id, timeout=120)["state"] == "failed"
    final = world.gh.final_status(sha, CONTEXT, 60)
    assert final["state"] == "failure" and final["description"].startswith("Failed: check"), final
    assert len(world.gh.final_statuses(sha, CONTEXT)) == 1


@pytest.mark.allow_leftovers  # as above
def test_a_host_stopped_mid_run_hands_the_run_back_without_counting_an_attempt(world: World) -> None:
    before = descendants()
    world.hold.touch()
    sha = world.commit({"hold/n.txt": "stopped\n"})
    run_id = world.push(sha, "stop")
    run = running_on(world, run_id)
    host = world.hosts[run["host"]]
    world.hold.unlink()  # the next attempt, elsewhere, passes at once
    assert host.stop() == 0, host.log_text()  # SIGTERM: warmci's cancellation, files shipped, job handed back
    done = world.service.wait_finished(run_id, timeout=180)
    assert done["state"] == "passed" and done["attempts"] == 1 and done["host"] != host.name, done
    assert world.gh.final_status(sha, CONTEXT, 60)["state"] == "success"
    assert f"run {run_id}: host {host.name} was stopped mid-run; queued again" in world.service.log_text()
    host.proc = None
    host.start().wait_alive(world.conn)
    only_the_restarted_host_is_new(before, host)


def test_no_secret_reaches_a_log_a_page_or_a_run_file(world: World) -> None:
    texts = [world.service.log_text(), json.dumps(world.service.get("/")), json.dumps(world.service.get("/health"))]
    texts += [h.log.read_text(errors="replace") for h in world.hosts.values()]
    for path in (world.base / "svc").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log", ".txt"):
            texts.append(path.read_text(errors="replace"))
    assert len(texts) > 10 and not [t[:200] for t in texts if SECRET in t]


def test_a_second_worker_on_a_machine_without_namespaces_refuses_to_start_and_says_why(world: World,
                                                                                      tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()  # no util-linux on this PATH: no network namespaces for jobs with ports
    third = HostProc("h3", tmp_path / "h3", world.redis.url, world.remote.bare, LEASE,
                     env={"PATH": str(empty)}).start()
    assert third.proc is not None
    assert third.proc.wait(timeout=120) == 1
    log = third.log_text()
    assert "another worker (h1, h2) runs on this machine" in log or "another worker (h2, h1)" in log, log
    assert "cannot get a network namespace of their own here (`unshare` is not installed" in log, log
    assert "h3" not in world.service.get("/health")["hosts"]
