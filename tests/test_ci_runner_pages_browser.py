"""The run pages in a real browser (Playwright for Python driving Debian's chromium) on real demo runs.

The service, the demo remote and the fake GitHub are the session's
(tests/ci_world.py, shared with test_ci_runner_e2e.py, so the demo's cold
run is paid once). Each test has a chromium of its own (its helper
processes start when a page needs them; closing the browser ends them all).
Each scenario pushes a commit of its own to a branch of its own.
"""
from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from testing import github_payloads as gp
from testing.browser import chromium
from testing.ci_service import ADMIN_TOKEN, SECRET, TOKEN

from .ci_world import REPO, World
from .helpers import children, describe, wait_for

pytestmark = pytest.mark.slow
RUN_TIMEOUT_MS = 600_000  # a run of the demo on a loaded 2-core machine
EVIL_BRANCH = 'pages/<i>fail</i>&"x"'
EVIL_MESSAGE = "break the JS tests <script>window.__pwned = 1</script>"
LEAKY_TEST = """import assert from 'node:assert/strict';
import { test } from 'node:test';

test('draws progress like a terminal reporter, prints secrets, then fails', () => {
  process.stdout.write('Running 2 tests\\n\\n\\x1b[1A\\x1b[2K[1/2] first\\n\\x1b[1A\\x1b[2K[2/2] second\\n');
  process.stdout.write('\\x1b[31mtoken TOKEN secret SECRET admin ADMIN '
                       + '<script>window.__pwned = 2</script>\\x1b[39m\\n');
  assert.strictEqual('<b>got</b>', 'expected', 'leaked TOKEN');
});
""".replace("TOKEN", TOKEN).replace("SECRET", SECRET).replace("ADMIN", ADMIN_TOKEN)


@pytest.fixture(scope="module")
def world(ci_world: World) -> World:
    return ci_world


@pytest.fixture
def page() -> Iterator[Any]:
    """A page of a browser of its own: closing it ends every chromium process the test started."""
    before = children()
    dialogs: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(60_000)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        yield page
    try:
        wait_for(lambda: not children() - before, 60, "the browser's processes to exit")
    except AssertionError:
        raise AssertionError(f"left running:\n{describe(children() - before)}") from None
    assert dialogs == [], "a page opened a dialog: something ran that should have been text"


def reloads_not(page: Any) -> None:
    """Marks the document: the mark survives only if the page is never reloaded or left."""
    page.evaluate("window.__same_document = 1")


def same_document(page: Any) -> bool:
    return bool(page.evaluate("window.__same_document === 1"))


def test_a_running_job_turns_to_pass_on_the_page_without_a_reload(world: World, page: Any) -> None:
    sha = world.commit(world.py_change("pages-live"), "pages: watch me run")
    run_id = world.push(sha, "pages-live", message="pages: watch me run")
    page.goto(f"{world.service.url}/runs/{run_id}")
    reloads_not(page)
    running = page.wait_for_selector('tr[data-job][data-status="running"]', timeout=RUN_TIMEOUT_MS)
    job = running.get_attribute("data-job")
    assert job and page.locator(f'tr[data-job="{job}"] .badge').inner_text() == "running"
    page.wait_for_selector(f'tr[data-job="{job}"][data-status="passed"]', timeout=RUN_TIMEOUT_MS)
    assert same_document(page)
    # The run ends on the same page: state, Gantt chart (drawn on demand), comparison with main's run.
    page.wait_for_selector('.live-state[data-live="0"]', state="attached", timeout=RUN_TIMEOUT_MS)
    assert page.locator("h1 .badge").inner_text() == "passed" and same_document(page)
    page.locator(".gantt img").scroll_into_view_if_needed()  # it loads lazily
    page.wait_for_function("() => { const i = document.querySelector('.gantt img'); "
                           "return i && i.complete && i.naturalWidth > 300; }", timeout=180_000)
    statuses = dict(re.findall(r'data-job="([^"]+)" data-status="([^"]+)"', page.content()))
    assert statuses[job] == "passed" and len(statuses) == 13
    # The list shows it; a branch filter keeps only that branch.
    page.goto(f"{world.service.url}/?branch=pages-live")
    assert page.locator("section:not(.queue) tr[data-run]").count() == 1
    row = page.locator(f'tr[data-run="{run_id}"]').last
    assert "passed" in row.inner_text() and sha[:7] in row.inner_text() and "pages: watch me run" in row.inner_text()


def test_a_failing_run_shows_its_failed_job_first_and_rerun_needs_the_token(world: World, page: Any) -> None:
    sha = world.commit({"packages/app/test/leak.test.js": LEAKY_TEST}, EVIL_MESSAGE)
    run_id = world.push(sha, EVIL_BRANCH, message=EVIL_MESSAGE)
    page.goto(f"{world.service.url}/runs/{run_id}")
    page.wait_for_selector('.live-state[data-live="0"]', state="attached", timeout=RUN_TIMEOUT_MS)
    assert page.locator("h1 .badge").inner_text() == "failed"
    # The failed job comes first, with the tail of its log: rendered, secrets masked, markup as text.
    sections = page.locator("main h2").all_inner_texts()
    assert sections[:2] == ["Failed", "Jobs"], sections
    failed = page.locator("article.failed-job")
    assert failed.count() == 1 and failed.get_attribute("data-job") == "test-js"
    tail = failed.locator("pre.log").inner_text()
    assert "leaked ***" in tail and "+ '<b>got</b>'" in tail and "exited 1" in tail
    assert page.locator('tr[data-job]').first.get_attribute("data-job") == "test-js"
    assert page.locator("pre.message").inner_text() == EVIL_MESSAGE
    assert EVIL_BRANCH in page.locator("p.commit").inner_text()
    html = page.content()
    for secret in (TOKEN, SECRET, ADMIN_TOKEN):
        assert secret not in html
    assert "\x1b" not in html and "[2K" not in html
    assert page.evaluate("window.__pwned === undefined")
    # The whole log, and its plain-text download.
    page.click("article.failed-job h3 a")
    assert page.locator("h1").inner_text().startswith("test-js")
    log = page.locator("pre#log").inner_text()
    assert re.search(r"not ok \d+ - draws progress like a terminal reporter", log) and "leaked ***" in log
    assert "token *** secret *** admin *** <script>window.__pwned = 2</script>" in log
    assert TOKEN not in log and "\x1b" not in log and "[2K" not in log
    text = world.service.http.get(f"{world.service.url}/runs/{run_id}/jobs/test-js/log.txt", timeout=10).text
    assert "token *** secret *** admin ***" in text and not any(s in text for s in (TOKEN, SECRET, ADMIN_TOKEN))
    # Rerun without the token: refused, nothing queued.
    page.goto(f"{world.service.url}/runs/{run_id}")
    before = len(world.service.get("/api/runs?limit=500")["runs"])
    page.click("form.action button[value=rerun]")
    assert "403" in page.locator("h1").inner_text() and "refused" in page.locator("main").inner_text()
    assert len(world.service.get("/api/runs?limit=500")["runs"]) == before
    # With it: the rerun starts, and only what failed runs again.
    page.goto(f"{world.service.url}/runs/{run_id}")
    page.fill("form.action input[name=token]", ADMIN_TOKEN)
    page.click("form.action button[value=rerun]")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    rerun_id = int(page.url.rsplit("/", 1)[1])
    assert rerun_id != run_id
    reloads_not(page)
    page.wait_for_selector('.live-state[data-live="0"]', state="attached", timeout=RUN_TIMEOUT_MS)
    assert page.locator("h1 .badge").inner_text() == "failed" and same_document(page)
    statuses = dict(re.findall(r'data-job="([^"]+)" data-status="([^"]+)"', page.content()))
    assert {j for j, s in statuses.items() if s not in ("up-to-date", "restored")} == {"test-js"}, statuses
    assert f"rerun of run {run_id}" in page.locator("dl.facts").inner_text()


def test_a_logged_in_maintainer_cancels_a_waiting_run(world: World, page: Any) -> None:
    sha = world.commit({"NOTES.md": "from a fork\n"}, "a fork's change")
    world.remote.push(sha, "refs/pull/31/head")
    r = world.service.send("pull_request", gp.pull_request(REPO, 31, sha, author="mallory", head_repo="m/demo"))
    run_id = r.json()["run"]
    page.goto(f"{world.service.url}/")
    queued = page.locator(f'section.queue tr[data-run="{run_id}"]')
    assert "waiting" in queued.inner_text() and "for approval" in queued.inner_text()
    page.click("text=log in")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("form.login button")
    page.wait_for_url(f"{world.service.url}/")
    assert page.locator("header").inner_text().count("log out") == 1
    page.goto(f"{world.service.url}/runs/{run_id}")
    assert page.locator("form.action input[name=token]").count() == 0  # the session's CSRF token instead
    page.click("form.action button[value=cancel]")
    page.wait_for_selector("h1 .badge.s-cancelled")
    assert world.service.run(run_id)["detail"] == "Cancelled by an operator"


@pytest.mark.parametrize("path", [
    "/runs/{run}/jobs/../log",
    "/runs/{run}/jobs/..%2F..%2F..%2Fsvc%2Fqueue.sqlite3/log",
    "/runs/{run}/jobs/%2e%2e/log.txt",
    "/runs/{run}/jobs/test-js/../../../../../../etc/passwd",
    "/runs/{run}/files/../../../svc/queue.sqlite3",
    "/runs/{run}/files/%2Fetc%2Fpasswd",
    "/static/../pages.py",
    "/static/..%2Fpages.py",
    "//etc/passwd",
    "/runs/{run}/jobs/test-js/log?server=../../etc/passwd",
])
def test_raw_paths_on_the_real_server_never_leave_the_state_dir(world: World, path: str) -> None:
    runs = world.service.get("/api/runs?limit=1")["runs"]
    run = runs[0]["id"] if runs else 1
    url = urlsplit(world.service.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    conn.putrequest("GET", path.format(run=run), skip_accept_encoding=True)  # sent exactly as written
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    conn.close()
    assert resp.status == 404, (path, resp.status, body[:200])
    assert "SQLite format" not in body and "root:" not in body and "import " not in body
