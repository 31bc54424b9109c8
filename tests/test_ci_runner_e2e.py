"""The CI service end to end: signed GitHub deliveries in, real doit runs of the demo, statuses out.

The service, its bare git remote of the demo and the loopback fake of
GitHub's API are the session's (tests/ci_world.py, shared with the run
pages' browser tests); the first push is the demo's cold run, later ones
reuse its warm state. Each scenario works on a branch of its own, made from
the first commit, so they do not supersede one another.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import psutil
import pytest

from testing import github_payloads as gp
from testing.ci_service import TOKEN, cli

from .ci_world import REPO, World
from .helpers import pid_alive, wait_for

pytestmark = pytest.mark.slow
CONTEXT = "warmci"


@pytest.fixture(scope="module")
def world(ci_world: World) -> World:
    return ci_world


def test_a_push_gives_pending_then_success_with_the_sha_context_and_run_url(world: World) -> None:
    run_id = world.push(world.first, "main", message="the demo, first commit")
    final = world.gh.final_status(world.first, CONTEXT)
    statuses = world.gh.statuses(world.first, CONTEXT)
    url = f"https://ci.example.org/runs/{run_id}"
    # Pending (queued, then running: the poster sends only the newest if both wait), then success.
    assert [s["state"] for s in statuses][-1] == "success" and len(statuses) >= 2, statuses
    assert all(s["state"] == "pending" and s["description"].startswith(("Queued", "Running")) for s in statuses[:-1])
    assert all(s["target_url"] == url and s["repo"] == REPO and s["authorization"] == f"Bearer {TOKEN}"
               for s in statuses)
    assert final["description"].startswith("Passed: 13 jobs"), final
    run = world.service.run(run_id)
    assert (run["state"], run["sha"], run["branch"], run["trigger"], run["message"]) == (
        "passed", world.first, "main", "push", "the demo, first commit")
    assert run["queued_at"] <= run["started_at"] <= run["doit_started_at"] <= run["finished_at"]
    assert run["state_dir"] == str(world.base / "state") and run["exit_code"] == 0
    results = world.results(run)
    assert results["run_id"] == run["run_id"] and results["sha"] == world.first and results["status"] == "passed"
    # One status per job family, too (service.job_statuses).
    kinds = {f"{CONTEXT}/{j['kind']}" for j in results["jobs"].values()}
    world.gh.wait_for(lambda g: {s["context"] for s in g.statuses(world.first)} >= kinds, 30, "a status per kind")
    groups = {s["context"]: s["state"] for s in world.gh.statuses(world.first) if s["context"] != CONTEXT}
    assert set(groups) == kinds and set(groups.values()) == {"success"} and "warmci/pytest" in groups, groups
    health = world.service.get("/health")
    assert health["last_finished"]["id"] == run_id and health["running"] == [] and health["queue_depth"] == 0
    assert [r["id"] for r in world.service.get("/")["runs"]][0] == run_id


def test_a_failing_commit_gives_failure_and_a_rerun_runs_only_what_failed(world: World) -> None:
    test_js = "packages/app/test/format.test.js"
    broken = world.commit({
        test_js: (world.remote.work / test_js).read_text()
        + "\ntest('broken on purpose', () => { throw new Error('no'); });\n",
        "tests/test_extra.py": "def test_extra():\n    assert True\n",
    }, "break the JS tests")
    run_id = world.push(broken, "broken")
    final = world.gh.final_status(broken, CONTEXT)
    assert final["state"] == "failure" and final["description"].startswith("Failed: test-js (1 of 13 jobs)"), final
    first = world.results(world.service.run(run_id))
    assert {n for n, j in first["jobs"].items() if j["status"] == "passed"} >= {
        "test-python-3.11", "test-python-3.12", "test-python-3.13"}
    p = cli(world.config.path, "rerun", str(run_id))
    assert p.returncode == 0 and "queued run" in p.stdout, p.stderr
    rerun_id = int(p.stdout.split("queued run ")[1].split()[0])
    rerun = world.service.wait_finished(rerun_id)
    assert rerun["state"] == "failed" and rerun["trigger"] == "rerun" and rerun["rerun_of"] == run_id
    jobs = world.results(rerun)["jobs"]
    assert {n for n, j in jobs.items() if j["status"] not in ("up-to-date",)} == {"test-js"}, jobs
    # The rerun's own final status (the poster sends it after the run is recorded finished).
    after = world.gh.wait_for(lambda g: [s for s in g.statuses(broken, CONTEXT) if s["at"] >= rerun["finished_at"]],
                              60, "the rerun's final status")
    assert [s["state"] for s in after] == ["failure"] and after[0]["description"].startswith("Failed: test-js"), after
    listing = cli(world.config.path, "queue", "--all")
    assert listing.returncode == 0 and f"{rerun_id}  failed" in listing.stdout, listing.stdout
    # The first failure turned the commit red the moment warmci recorded it, while the run went on.
    run = world.service.run(run_id)
    red = first["first_failure"]
    assert red["job"] == "test-js", red
    early = [(state, desc, at) for state, desc, at in outbox(world, broken, CONTEXT)
             if desc.startswith("Failing: test-js failed after")]
    assert early and early[0][0] == "failure", outbox(world, broken, CONTEXT)
    assert red["at"] <= early[0][2] < min(red["at"] + 2.0, run["finished_at"]), (red, early, run)
    # A filtered rerun (the operator CLI passes warmci's filters to doit) reports beside the commit's context.
    p = cli(world.config.path, "rerun", str(run_id), "--skip", "test-js")
    assert p.returncode == 0, p.stderr
    filtered = world.service.wait_finished(int(p.stdout.split("queued run ")[1].split()[0]))
    assert filtered["state"] == "passed", filtered
    jobs = world.results(filtered)["jobs"]
    assert jobs["test-js"]["status"] == "filtered" and world.results(filtered)["filters"] == {"skip": ["test-js"]}
    done = world.gh.final_status(broken, f"{CONTEXT}/filtered")
    assert done["state"] == "success" and done["description"].endswith("[skip=test-js]"), done
    assert [s["state"] for s in world.gh.statuses(broken, CONTEXT)][-1] == "failure"  # the commit stays red


def outbox(world: World, sha: str, context: str) -> list[tuple[str, str, float]]:
    """Every status the service queued for a commit (the poster may send only the newest of several)."""
    with sqlite3.connect(world.base / "svc" / "queue.sqlite3") as c:
        rows = c.execute("SELECT state, description, created_at FROM outbox WHERE sha = ? AND context = ? "
                         "ORDER BY id", (sha, context)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_two_quick_pushes_the_first_is_cancelled_as_superseded_the_last_goes_green(world: World) -> None:
    a, b, c = (world.commit(world.py_change(t), f"topic {t}") for t in ("a", "b", "c"))
    run_a = world.push(a, "topic")
    running = world.service.wait_run(run_a, lambda r: r["doit_started_at"] is not None, 120, "doit to start")
    ci_log = Path(running["state_dir"]) / "runs" / running["run_id"] / "ci.log"
    wait_for(lambda: ci_log.exists() and "START" in ci_log.read_text(), 120, "a job of run A to start")
    run_b = world.push(b, "topic")
    run_c = world.push(c, "topic")
    done_a, done_b = world.service.wait_finished(run_a), world.service.wait_finished(run_b)
    assert (done_a["state"], done_a["detail"]) == ("cancelled", f"Superseded by {b[:7]} (run {run_b})")
    assert (done_b["state"], done_b["detail"]) == ("cancelled", f"Superseded by {c[:7]} (run {run_c})")
    assert done_b["started_at"] is None  # superseded while queued: never ran
    assert world.results(done_a)["status"] == "cancelled"  # warmci's own cancellation wrote its results
    assert not pid_alive(done_a["pid"])
    assert world.gh.final_status(a, CONTEXT)["state"] == "error"
    assert world.gh.final_status(a, CONTEXT)["description"] == done_a["detail"]
    assert world.gh.final_status(b, CONTEXT)["description"] == done_b["detail"]
    final_c = world.gh.final_status(c, CONTEXT)
    assert final_c["state"] == "success", final_c


def test_a_forks_pull_request_runs_only_after_approval(world: World) -> None:
    sha = world.commit({"NOTES.md": "a note from a fork\n"}, "a fork's change")
    world.remote.push(sha, "refs/pull/7/head")
    pr = gp.pull_request(REPO, 7, sha, author="mallory", head_repo="mallory/demo", title="please run me")
    r = world.service.send("pull_request", pr)
    assert r.status_code == 202 and "waits for approval" in r.json()["message"], r.text
    run_id = r.json()["run"]
    waiting = world.gh.wait_for(lambda g: g.statuses(sha, CONTEXT), 30, "the waiting status")
    assert waiting[0]["state"] == "pending" and "needs approval" in waiting[0]["description"]
    assert "ok-to-test" in waiting[0]["description"]
    assert world.service.run(run_id)["state"] == "waiting"
    labeled = gp.pull_request(REPO, 7, sha, action="labeled", label="ok-to-test", author="mallory",
                              head_repo="mallory/demo", sender="owner")
    assert world.service.send("pull_request", labeled).status_code == 202
    final = world.gh.final_status(sha, CONTEXT)
    run = world.service.run(run_id)
    assert final["state"] == "success" and run["approved_by"] == "owner" and run["ref"] == "refs/pull/7/head"
    # The operator's way: `approve RUN`.
    sha2 = world.commit({"NOTES.md": "another note\n"}, "another fork change")
    world.remote.push(sha2, "refs/pull/8/head")
    r2 = world.service.send("pull_request", gp.pull_request(REPO, 8, sha2, author="mallory",
                                                            head_repo="mallory/demo"))
    p = cli(world.config.path, "approve", str(r2.json()["run"]))
    assert p.returncode == 0, p.stderr
    assert world.gh.final_status(sha2, CONTEXT)["state"] == "success"


def test_an_operator_can_enqueue_a_sha_and_cancel_a_run(world: World) -> None:
    p = cli(world.config.path, "enqueue", REPO, world.first, "--branch", "main")
    assert p.returncode == 0, p.stderr
    run_id = int(p.stdout.split("queued run ")[1].split()[0])
    done = world.service.wait_finished(run_id)
    assert done["state"] == "passed" and done["trigger"] == "manual"
    assert all(j["status"] == "up-to-date" for j in world.results(done)["jobs"].values())
    slow = world.commit(world.py_change("cancel"), "to be cancelled")
    run2 = world.push(slow, "cancel-me")
    world.service.wait_run(run2, lambda r: r["doit_started_at"] is not None, 60, "doit to start")
    p = cli(world.config.path, "cancel", str(run2))
    assert p.returncode == 0, p.stderr
    done2 = world.service.wait_finished(run2)
    assert done2["state"] == "cancelled" and done2["detail"] == "Cancelled by an operator"
    assert world.gh.final_status(slow, CONTEXT)["state"] == "error"


# Last: it restarts the module's service.
@pytest.mark.allow_leftovers  # the restarted service outlives the test (the module stops it, then checks)
def test_kill_9_mid_run_then_restart_loses_nothing_and_ends_the_dead_runs_processes(world: World) -> None:
    crash = world.commit(world.py_change("crash"), "crash me")
    behind = world.commit({"NOTES.md": "queued behind the crash\n"}, "behind")
    run_crash = world.push(crash, "crash")
    run_behind = world.push(behind, "behind")
    running = world.service.wait_run(run_crash, lambda r: r["doit_started_at"] is not None, 120, "doit to start")
    ci_log = Path(running["state_dir"]) / "runs" / running["run_id"] / "ci.log"
    wait_for(lambda: ci_log.exists() and "START" in ci_log.read_text(), 120, "a job to start")
    world.service.kill9()
    assert pid_alive(running["pid"]), "doit died with the service: nothing to recover"
    dead_run = running["run_id"]
    world.service.start()
    done = world.service.wait_finished(run_crash)
    assert done["state"] == "passed" and done["attempts"] == 2 and done["run_id"] != dead_run, done
    assert not pid_alive(running["pid"])
    assert not [p for p in psutil.process_iter() if _env(p).get("WARMCI_RUN") == dead_run]
    assert "was running when the service died" in world.service.log_text()
    assert world.service.wait_finished(run_behind)["state"] == "passed"
    for sha in (crash, behind):
        assert world.gh.final_status(sha, CONTEXT)["state"] == "success"
    descriptions = [s["description"] for s in world.gh.statuses(crash, CONTEXT)]
    assert any("again, after a service restart" in d for d in descriptions), descriptions


def _env(p: psutil.Process) -> dict[str, str]:
    try:
        return p.environ()
    except psutil.Error:
        return {}
