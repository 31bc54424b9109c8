"""The real GitHub client (requests + urllib3 Retry) against a loopback fake of the API, and the poster."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_runner import poster, runsdb
from ci_runner.github import GitHubError, RequestsGitHub, make_retry
from ci_runner.runsdb import RunsDB
from ci_runner.statuses import CommitStatus
from testing.ci_service import TOKEN
from testing.fake_github import FakeGitHub

SHA = "f" * 40
STATUS = CommitStatus("pending", "warmci", "Queued (next in line)", "https://ci.example.org/runs/1")


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def client(gh: FakeGitHub, **retry: float) -> RequestsGitHub:
    return RequestsGitHub(gh.url, TOKEN, retry=make_retry(backoff_factor=0.01, **retry), timeout=5)  # type: ignore[arg-type]


def test_a_status_is_posted_where_github_expects_it_with_the_token_in_the_header(gh: FakeGitHub) -> None:
    client(gh).post_status("o/demo", SHA, STATUS)
    (req,) = gh.requests
    assert (req.method, req.path) == ("POST", f"/repos/o/demo/statuses/{SHA}")
    assert req.headers["authorization"] == f"Bearer {TOKEN}" and "github" in req.headers["accept"]
    assert req.body == {"state": "pending", "context": "warmci", "description": "Queued (next in line)",
                        "target_url": "https://ci.example.org/runs/1"}


def test_server_errors_are_retried_with_backoff(gh: FakeGitHub) -> None:
    gh.fail_next(502, times=2)
    client(gh).post_status("o/demo", SHA, STATUS)
    assert [r.answered for r in gh.requests] == [502, 502, 201]


def test_a_rate_limit_waits_for_its_reset_header_then_succeeds(gh: FakeGitHub) -> None:
    reset = time.time() + 1.0
    gh.fail_next(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{reset:.3f}"},
                 body={"message": "API rate limit exceeded"})
    client(gh).post_status("o/demo", SHA, STATUS)
    assert [r.answered for r in gh.requests] == [403, 201]
    assert gh.requests[1].at >= reset  # not before GitHub said the limit resets


def test_a_secondary_limit_honours_retry_after(gh: FakeGitHub) -> None:
    gh.fail_next(429, headers={"Retry-After": "1"})
    client(gh).post_status("o/demo", SHA, STATUS)
    assert [r.answered for r in gh.requests] == [429, 201]
    assert gh.requests[1].at - gh.requests[0].at >= 0.9


def test_a_permission_error_is_not_retried_and_is_permanent(gh: FakeGitHub) -> None:
    gh.fail_next(403, body={"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError) as err:
        client(gh).post_status("o/demo", SHA, STATUS)
    assert err.value.permanent and "HTTP 403" in str(err.value) and TOKEN not in str(err.value)
    assert len(gh.requests) == 1


def test_a_limit_resetting_too_late_is_left_for_later_not_slept_through(gh: FakeGitHub) -> None:
    gh.fail_next(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{time.time() + 3600:.0f}"})
    with pytest.raises(GitHubError) as err:
        client(gh, max_wait=5).post_status("o/demo", SHA, STATUS)
    assert not err.value.permanent and len(gh.requests) == 1


def test_an_unreachable_api_is_a_transient_error_without_the_token(gh: FakeGitHub) -> None:
    dead = RequestsGitHub("http://127.0.0.1:9", TOKEN, retry=make_retry(total=1, backoff_factor=0.01), timeout=2)
    with pytest.raises(GitHubError) as err:
        dead.post_status("o/demo", SHA, STATUS)
    assert not err.value.permanent and TOKEN not in str(err.value)


def _queue(db: RunsDB, *states: str) -> None:
    with db.write() as c:
        run_id = runsdb.insert_run(c, repo="o/demo", sha=SHA, branch="b", ref="", lane="l", trigger="push",
                                   state="queued")
        run = runsdb.run(c, run_id)
        assert run is not None
        for st in states:
            runsdb.add_status(c, run, st, "warmci", f"now {st}", "https://ci.example.org/runs/1")


def test_the_poster_sends_only_the_newest_status_of_a_context_and_keeps_failures_for_later(
        gh: FakeGitHub, tmp_path: Path) -> None:
    db = RunsDB(tmp_path / "q.sqlite3")
    _queue(db, "pending", "success")
    assert poster.send_due(db, client(gh)) == 1
    assert [s["state"] for s in gh.statuses(SHA)] == ["success"]
    gh.fail_next(503, times=10)
    _queue(db, "failure")
    assert poster.send_due(db, client(gh, total=1)) == 0
    with db.read() as c:
        row = c.execute("SELECT attempts, next_at, outcome, sent_at FROM outbox ORDER BY id DESC").fetchone()
    assert row[0] == 1 and row[1] > time.time() and row[2].startswith("retrying") and row[3] is None
    gh.clear_script()
    with db.write() as c:
        c.execute("UPDATE outbox SET next_at = 0")
    assert poster.send_due(db, client(gh)) == 1 and gh.statuses(SHA)[-1]["state"] == "failure"
