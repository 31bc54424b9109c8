"""What deliveries become in the queue: runs, supersedes, approvals, replays, and their statuses.

GitHub-shaped payloads through the real decision functions into a real
SQLite queue; the statuses are read back from the outbox.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ci_runner import cli, config, doitrun, events, runsdb, worker
from ci_runner.errors import RunnerError
from ci_runner.intake import Intake
from ci_runner.runsdb import RunsDB
from ci_runner.statuses import StatusBook
from testing import github_payloads as gp
from testing.ci_service import SECRET, TOKEN, ServiceConfig, schema_1

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)


@pytest.fixture
def intake(tmp_path: Path) -> Intake:
    path = ServiceConfig(tmp_path / "ci.toml", tmp_path / "svc", repos={"o/demo": {
        "clone_url": "https://github.com/o/demo.git", "checkout_dir": tmp_path / "co", "state_dir": tmp_path / "st",
        "protected_branches": ["main"], "trusted_authors": ["carol"], "approval_label": "ok-to-test"}}).write()
    cfg = config.load(path, {"WARMCI_WEBHOOK_SECRET": SECRET, "WARMCI_GITHUB_TOKEN": TOKEN})
    return Intake(RunsDB(cfg.db_file), cfg)


def deliver(intake: Intake, event: str, payload: dict[str, object], delivery: str | None = None) -> int | None:
    action = events.decide(event, payload, intake.config)
    return intake.delivery(delivery or f"d-{id(payload)}-{event}", event, action).run


def state(intake: Intake, run: int | None) -> str:
    assert run is not None
    with intake.db.read() as c:
        r = runsdb.run(c, run)
    assert r is not None
    return r.state


def outbox(intake: Intake, sha: str) -> list[tuple[str, str]]:
    with intake.db.read() as c:
        rows = c.execute("SELECT state, description FROM outbox WHERE sha = ? ORDER BY id", (sha,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_a_push_is_queued_with_a_pending_status_naming_its_position(intake: Intake) -> None:
    r1 = deliver(intake, "push", gp.push("o/demo", A, "feature-1"))
    r2 = deliver(intake, "push", gp.push("o/demo", B, "feature-2"))
    assert state(intake, r1) == state(intake, r2) == "queued"
    assert outbox(intake, A) == [("pending", "Queued (next in line)")]
    assert outbox(intake, B) == [("pending", "Queued (position 2 of 2)")]
    with intake.db.read() as c:
        run = runsdb.run(c, r1 or 0)
    assert run and (run.branch, run.ref, run.trigger, run.author, run.message) == (
        "feature-1", "refs/heads/feature-1", "push", "alice", "a commit")


def test_a_newer_push_supersedes_the_branchs_queued_run_but_never_a_protected_one(intake: Intake) -> None:
    old = deliver(intake, "push", gp.push("o/demo", A, "topic"))
    new = deliver(intake, "push", gp.push("o/demo", B, "topic"))
    assert (state(intake, old), state(intake, new)) == ("cancelled", "queued")
    assert outbox(intake, A)[-1] == ("error", f"Superseded by {B[:7]} (run {new})")
    main1 = deliver(intake, "push", gp.push("o/demo", C, "main"))
    main2 = deliver(intake, "push", gp.push("o/demo", D, "main"))
    assert state(intake, main1) == state(intake, main2) == "queued"


def test_a_running_run_is_asked_to_cancel_and_the_worker_reports_it(intake: Intake) -> None:
    old = deliver(intake, "push", gp.push("o/demo", A, "topic"))
    with intake.db.write() as c:
        runsdb.update(c, old or 0, state="running")
    new = deliver(intake, "push", gp.push("o/demo", B, "topic"))
    with intake.db.read() as c:
        run = runsdb.run(c, old or 0)
    assert run and run.state == "running" and run.cancel_reason == f"Superseded by {B[:7]} (run {new})"
    third = deliver(intake, "push", gp.push("o/demo", C, "topic"))
    with intake.db.read() as c:
        run = runsdb.run(c, old or 0)
    assert run and run.cancel_reason == f"Superseded by {B[:7]} (run {new})" and state(intake, new) == "cancelled"
    assert state(intake, third) == "queued"
    assert outbox(intake, A) == [("pending", "Queued (next in line)")]  # the worker posts the final one


def test_a_replayed_delivery_and_a_second_event_for_a_built_sha_enqueue_nothing(intake: Intake) -> None:
    payload = gp.push("o/demo", A, "topic")
    first = deliver(intake, "push", payload, "delivery-1")
    reply = intake.delivery("delivery-1", "push", events.decide("push", payload, intake.config))
    assert first is not None and reply.run is None and "received before" in reply.message
    # The same SHA as a same-repository pull request: one run per commit.
    reply2 = intake.delivery("delivery-2", "pull_request", events.decide(
        "pull_request", gp.pull_request("o/demo", 3, A, head_repo="o/demo"), intake.config))
    assert reply2.run == first and "already has run" in reply2.message
    with intake.db.read() as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_deleted_branches_cancel_their_runs_and_tags_are_not_built(intake: Intake) -> None:
    queued = deliver(intake, "push", gp.push("o/demo", A, "gone"))
    reply = intake.delivery("x1", "push", events.decide("push", gp.push("o/demo", A, "gone", deleted=True),
                                                         intake.config))
    assert state(intake, queued) == "cancelled" and "branch gone was deleted" in reply.message
    assert outbox(intake, A)[-1] == ("error", "Cancelled: branch gone was deleted")
    tag = events.decide("push", gp.push("o/demo", B, ref="refs/tags/v1.0"), intake.config)
    assert isinstance(tag, events.Ignore) and "tag" in tag.reason


def test_a_forks_pull_request_waits_for_approval_unless_its_author_is_trusted(intake: Intake) -> None:
    waiting = deliver(intake, "pull_request", gp.pull_request("o/demo", 7, A, author="mallory",
                                                              head_repo="mallory/demo"))
    assert state(intake, waiting) == "waiting"
    (st, text), = outbox(intake, A)
    assert st == "pending" and "needs approval" in text and "ok-to-test" in text and "@mallory" in text
    # Another label approves nothing; the configured one queues exactly the waiting run.
    other = gp.pull_request("o/demo", 7, A, action="labeled", label="bug", head_repo="mallory/demo")
    assert isinstance(events.decide("pull_request", other, intake.config), events.Ignore)
    deliver(intake, "pull_request", gp.pull_request("o/demo", 7, A, action="labeled", label="ok-to-test",
                                                    head_repo="mallory/demo", author="mallory", sender="owner"))
    assert state(intake, waiting) == "queued"
    with intake.db.read() as c:
        run = runsdb.run(c, waiting or 0)
    assert run and run.approved_by == "owner"
    trusted = deliver(intake, "pull_request", gp.pull_request("o/demo", 8, B, author="carol", head_repo="carol/demo"))
    assert state(intake, trusted) == "queued"
    # A new push to the fork's pull request supersedes its waiting run, and waits again.
    w2 = deliver(intake, "pull_request", gp.pull_request("o/demo", 9, C, author="mallory", head_repo="mallory/demo"))
    w3 = deliver(intake, "pull_request", gp.pull_request("o/demo", 9, D, action="synchronize", author="mallory",
                                                         head_repo="mallory/demo"))
    assert (state(intake, w2), state(intake, w3)) == ("cancelled", "waiting")
    assert intake.approve(w3 or 0).message.startswith(f"run {w3} approved")
    assert state(intake, w3) == "queued"


def test_operator_commands_check_what_they_are_given(intake: Intake) -> None:
    with pytest.raises(RunnerError, match="not in the config"):
        intake.enqueue("x/y", A)
    with pytest.raises(RunnerError, match="full 40-character"):
        intake.enqueue("o/demo", "abc123")
    run = intake.enqueue("o/demo", A, "main").run
    with pytest.raises(RunnerError, match="only a finished run"):
        intake.rerun(run or 0)
    with pytest.raises(RunnerError, match="not waiting"):
        intake.approve(run or 0)
    intake.cancel(run or 0)
    assert state(intake, run) == "cancelled" and outbox(intake, A)[-1] == ("error", "Cancelled by an operator")
    with pytest.raises(RunnerError, match="already finished"):
        intake.cancel(run or 0)
    again = intake.rerun(run or 0).run
    assert state(intake, again) == "queued"
    with pytest.raises(RunnerError, match="no run 999"):
        intake.cancel(999)


@pytest.mark.parametrize(("event", "payload", "words"), [
    ("push", {"ref": "refs/heads/x"}, "repository.full_name"),
    ("push", {**gp.push("o/demo", A), "after": "not-a-sha"}, "push.after"),
    ("pull_request", {**gp.pull_request("o/demo", 1, A), "number": "1"}, "pull_request.number"),
    ("push", ["a", "list"], "JSON object"),
])
def test_a_payload_without_what_it_needs_is_a_payload_error(intake: Intake, event: str, payload: object,
                                                             words: str) -> None:
    with pytest.raises(events.PayloadError, match=words.replace(".", r"\.")):
        events.decide(event, payload, intake.config)


def test_events_the_runner_does_not_build_are_ignored_with_the_reason(intake: Intake) -> None:
    cases = {("issues", "issues"): {"action": "opened"},
             ("push", "not configured"): gp.push("someone/else", A),
             ("pull_request", "'edited' is not built"): gp.pull_request("o/demo", 1, A, action="edited")}
    for (event, words), payload in cases.items():
        action = events.decide(event, payload, intake.config)
        assert isinstance(action, events.Ignore) and words in action.reason, action
    assert events.decide("ping", gp.ping("o/demo"), intake.config) == events.Pong("Keep it logically awesome.")


@pytest.mark.parametrize(("code", "results", "state", "words"), [
    (0, {"status": "passed", "jobs": {"a": {"status": "passed"}, "b": {"status": "up-to-date"}}}, "passed",
     "Passed: 2 jobs (1 ran, 1 up to date)"),
    (1, {"status": "failed", "jobs": {"a": {"status": "failed"}, "b": {"status": "timed-out"},
                                      "c": {"status": "passed"}}}, "failed", "Failed: a, b (2 of 3 jobs)"),
    (2, {"status": "errored", "jobs": {"a": {"status": "errored"}}}, "errored", "Errored: a (1 of 1 jobs)"),
    (2, {"status": "error", "jobs": {"a": {"status": "error"}}}, "errored", "Errored: a"),  # before issue 9's rename
    (130, {"status": "cancelled", "jobs": {}}, "cancelled", "Cancelled"),
    (3, None, "errored", "Setup error (doit exit 3)"),
    (1, None, "errored", "doit exited 1 without results.json"),
    (-9, None, "cancelled", "doit exited -9"),
])
def test_doits_outcome_maps_to_a_run_state(tmp_path: Path, code: int, results: dict[str, object] | None,
                                           state: str, words: str) -> None:
    out = doitrun.outcome(code, results, tmp_path / "no.log", None)
    assert out.state == state and out.detail.startswith(words), out


def test_a_cancellation_reason_wins_over_doits_own_words(tmp_path: Path) -> None:
    out = doitrun.outcome(130, {"status": "cancelled"}, tmp_path / "x", "Superseded by abc (run 3)")
    assert (out.state, out.detail) == ("cancelled", "Superseded by abc (run 3)")


def test_doit_never_sees_the_services_secrets() -> None:
    spec = doitrun.Spec(1, "ci-1-1", "o/demo", A, "main", "refs/heads/main", "protected")
    env = doitrun.environment({"WARMCI_WEBHOOK_SECRET": "s", "WARMCI_GITHUB_TOKEN": "t", "PATH": "/bin",
                               "WARMCI_REDIS_URL": "redis://:pw@h/0", "WARMCI_STATE": "/elsewhere"}, spec)
    assert env == {"PATH": "/bin", "WARMCI_RUN_ID": "ci-1-1", "WARMCI_SHA": A, "WARMCI_BRANCH": "main",
                   "WARMCI_STORE_TRUST": "protected"}


def test_filters_from_the_cli_reach_doit_and_a_filtered_run_reports_beside_the_commits_context(
        intake: Intake, tmp_path: Path) -> None:
    args = cli.parser().parse_args(["rerun", "--config", "x", "7", "--skip", "playwright-app,lint-python", "-k",
                                    "table and not slow", "--first-grep", "sorts", "--failed-tests"])
    assert cli.filter_args(args) == ["skip=playwright-app,lint-python", "k=table and not slow",
                                     "first-grep=sorts", "lf=1"]
    with pytest.raises(RunnerError, match="--grep: empty value"):
        cli.filter_args(cli.parser().parse_args(["enqueue", "--config", "x", "o/demo", A, "--grep", " "]))
    run_id = intake.enqueue("o/demo", A, "main", ["skip=test-js", "k=table"]).run
    plain_id = intake.enqueue("o/demo", B, "main").run
    with intake.db.read() as c:
        run, plain = runsdb.run(c, run_id or 0), runsdb.run(c, plain_id or 0)
    assert run is not None and plain is not None
    assert run.doit_filters == ["skip=test-js", "k=table"] and plain.doit_filters == []
    repo = intake.config.repo("o/demo")
    assert repo is not None
    assert doitrun.command(repo, run.doit_filters)[-2:] == ["skip=test-js", "k=table"]
    book = StatusBook("warmci", "https://ci.example.org")
    assert book.queued(run, 1, 1).context == "warmci/filtered" and book.queued(plain, 1, 1).context == "warmci"
    assert book.job_groups(run, {"jobs": {"a": {"kind": "pytest", "status": "passed"}}}) == []
    first = {"job": "lint-python", "status": "failed", "where": "job", "at": 1.0}
    failing = book.failing(plain, first, 3.14)
    assert (failing.state, failing.context) == ("failure", "warmci")
    assert failing.description == ("Failing: lint-python failed after 3.1 s; the run goes on to report every "
                                   "failure")
    out = doitrun.outcome(0, {"status": "passed", "jobs": {"a": {"status": "passed"}},
                              "filters": {"skip": ["test-js"], "k": "table"}}, tmp_path / "x", None)
    assert out.detail == "Passed: 1 jobs (1 ran, 0 up to date) [skip=test-js k=table]"
    # The first failure file as warmci writes it, read back by the worker's watcher, once.
    path = doitrun.first_failure_path(tmp_path / "st", "ci-1-1")
    red = worker.FirstRed(path, 0.0)
    assert red.check() is None
    path.parent.mkdir(parents=True)
    path.write_text('{"job": "lint-python", "status": "failed", "at": 2.5, "where": "job"}')
    assert red.check() == {"job": "lint-python", "status": "failed", "at": 2.5, "where": "job"}
    assert red.check() is None


def test_a_queue_of_the_first_schema_gets_the_filters_column(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "q.sqlite3"
    old = schema_1()
    with sqlite3.connect(db) as c:
        c.executescript(old)
        c.execute("INSERT INTO runs (repo, sha, branch, ref, lane, trigger, state, queued_at) VALUES "
                  "('o/demo', ?, 'main', '', 'l', 'push', 'passed', 1.0)", (A,))
        c.execute("PRAGMA user_version=1")
    q = RunsDB(db)
    with q.read() as c:
        (run,) = runsdb.runs(c)
        assert run.doit_filters == [] and c.execute("PRAGMA user_version").fetchone()[0] == runsdb.SCHEMA_VERSION


KEYS = {"WARMCI_S3_BUCKET": "b", "WARMCI_S3_ACCESS_KEY_ID": "rw", "WARMCI_S3_SECRET_ACCESS_KEY": "rw-s",
        "WARMCI_S3_BRANCH_ACCESS_KEY_ID": "br", "WARMCI_S3_BRANCH_SECRET_ACCESS_KEY": "br-s",
        "WARMCI_S3_READ_ACCESS_KEY_ID": "ro", "WARMCI_S3_READ_SECRET_ACCESS_KEY": "ro-s"}


@pytest.mark.parametrize(("trust", "base", "key"), [
    ("protected", KEYS, ("rw", "rw-s")),
    ("branch", KEYS, ("br", "br-s")),
    ("fork", KEYS, ("ro", "ro-s")),
    ("branch", {k: v for k, v in KEYS.items() if "BRANCH" not in k}, ("rw", "rw-s")),
    ("fork", {k: v for k, v in KEYS.items() if "READ" not in k}, None),
])
def test_each_kind_of_run_gets_its_own_key_to_the_shared_cache_and_a_fork_never_a_writing_one(
        trust: str, base: dict[str, str], key: tuple[str, str] | None) -> None:
    env = doitrun.environment(base, doitrun.Spec(1, "ci-1-1", "o/demo", A, "x", "refs/heads/x", trust))
    s3 = {k: v for k, v in env.items() if k.startswith("WARMCI_S3_")}
    if key is None:  # a fork without a read-only key does without the bucket
        assert s3 == {}
    else:
        assert s3 == {"WARMCI_S3_BUCKET": "b", "WARMCI_S3_ACCESS_KEY_ID": key[0],
                      "WARMCI_S3_SECRET_ACCESS_KEY": key[1]}
    assert env["WARMCI_STORE_TRUST"] == trust
