"""The run pages in process (Starlette's test client on the real app, a real queue DB, run directories
laid out as warmci writes them): what each page shows, the JSON machines read, escaping, paths that try
to leave the state dir, secrets in logs, rerun/cancel authentication and CSRF, pruning.

The same pages against real demo runs, in chromium, are in test_ci_runner_pages_browser.py.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from ci_runner import config as config_mod
from ci_runner import logfiles, prune, runsdb
from ci_runner.app import create_app
from ci_runner.config import Config
from ci_runner.errors import ConfigError
from ci_runner.intake import Intake
from ci_runner.runsdb import RunsDB
from testing import made_runs
from testing.ci_service import ADMIN_TOKEN, SECRET, TOKEN, ServiceConfig, schema_1

REPO = "o/pages"
HTML = {"Accept": "text/html,application/xhtml+xml"}
EVIL_BRANCH = "evil<script>alert(1)</script>"
EVIL_MESSAGE = "fix: <script>document.title='pwned'</script> & <img src=x onerror=alert(1)>"
FAILING_LOG = (
    "[warmci 16:04:25] job test-app (run x)\n"
    "Running 3 tests using 1 worker\n\n"
    "\x1b[1A\x1b[2K[1/3] tests/a.spec.js:1:1 › loads\n"
    "\x1b[1A\x1b[2K[2/3] tests/a.spec.js:2:1 › sorts\n"
    "\x1b[1A\x1b[2K\x1b[31m  1) tests/a.spec.js:2:1 › sorts\x1b[39m\n"
    f"    the service's token is {TOKEN} and its secret {SECRET}\n"
    f"    admin: {ADMIN_TOKEN}\n"
    "    <script>alert('from the log')</script>\n"
    "\x1b[31m  1 failed\x1b[39m\n"
    "[warmci 16:04:53] step 'pnpm' exited 1 after 24.9 s\n")


@dataclass
class Site:
    base: Path
    config: Config
    db: RunsDB
    client: TestClient
    runs: dict[str, int]

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=HTML, **kw)

    def count(self) -> int:
        with self.db.read() as c:
            return int(c.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def make_config(base: Path, admin: str = ADMIN_TOKEN, **service: Any) -> Config:
    sc = ServiceConfig(base / "ci.toml", base / "svc", service=service,
                       repos={REPO: {"clone_url": str(base / "nowhere.git"), "checkout_dir": base / "checkout",
                                     "state_dir": base / "state"}})
    sc.write()
    env = {config_mod.SECRET_VAR: SECRET, config_mod.TOKEN_VAR: TOKEN, config_mod.ADMIN_VAR: admin}
    return config_mod.load(sc.path, env)


def populate(config: Config, db: RunsDB) -> dict[str, int]:
    state, logs = config.repos[REPO].state_dir, config.logs_dir
    t0 = time.time() - 3600
    jobs = {f"job-{i:02d}": "passed" for i in range(20)}
    green = made_runs.results("x", {**jobs, "test-app": "passed", "after": "passed", "lint": "passed"}, start=t0)
    red = made_runs.results("x", {**jobs, "test-app": "failed", "after": "not-run", "lint": "up-to-date"},
                            start=t0 + 100)
    red["jobs"]["test-app"]["reason"] = f"step 'pnpm' exited 1 (token {TOKEN})"
    runs = {
        "green": made_runs.add_run(db, REPO, state="passed", state_dir=state, log_dir=logs, results_data=green,
                                   queued_at=t0, message="the first commit"),
        "red": made_runs.add_run(db, REPO, state="failed", state_dir=state, log_dir=logs, results_data=red,
                                 logs={"test-app": FAILING_LOG, "job-00": "ok\n"}, queued_at=t0 + 100,
                                 message=f"break the app\n\nlong body with the token {TOKEN}",
                                 host="h2", placement="warm <affinity>", filters='["skip=lint", "k=a and not b"]'),
        "evil": made_runs.add_run(db, REPO, state="errored", branch=EVIL_BRANCH, message=EVIL_MESSAGE,
                                  state_dir=state, log_dir=logs, queued_at=t0 + 200, detail="Checkout failed: x"),
        "live": made_runs.add_run(db, REPO, state="running", branch="topic", state_dir=state, log_dir=logs,
                                  queued_at=t0 + 300, logs={"build": "compiling\n", "test-1": "1 passed\n"}),
        "queued1": made_runs.add_run(db, REPO, state="queued", branch="q1", queued_at=t0 + 400),
        "queued2": made_runs.add_run(db, REPO, state="queued", branch="q2", queued_at=t0 + 500),
        "waiting": made_runs.add_run(db, REPO, state="waiting", branch="fork", queued_at=t0 + 600, untrusted=1),
    }
    live_dir = state / "runs" / f"ci-{runs['live']}-1"
    stamp = time.strftime("%H:%M:%S")
    (live_dir / "ci.log").write_text(f"[{stamp}] START build\n[{stamp}] PASS build\n[{stamp}] START test-1\n"
                                     f"[{stamp}] SKIP lint up to date\n")
    return runs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("pages")
    config = make_config(base)
    db = RunsDB(config.db_file)
    runs = populate(config, db)
    with TestClient(create_app(config, db, Intake(db, config))) as client:
        yield Site(base, config, db, client, runs)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-run="(\d+)"', html)


# -- JSON for machines, HTML for people ----------------------------------------------------------------

def test_machines_get_json_and_browsers_get_html(site: Site) -> None:
    red = site.runs["red"]
    plain = site.client.get(f"/runs/{red}")  # requests and urllib send no text/html: the deploy test's way
    assert plain.headers["content-type"] == "application/json"
    data = plain.json()
    assert data["state"] == "failed" and data["sha"] == "a" * 40 and data["results_file"].endswith("results.json")
    assert data["url"] == f"https://ci.example.org/runs/{red}" and data["counts"]["failed"] == 1
    assert TOKEN not in plain.text and "***" in data["message"]  # secrets masked in JSON too
    assert site.client.get(f"/runs/{red}?format=html").headers["content-type"].startswith("text/html")
    assert site.client.get(f"/api/runs/{red}", headers=HTML).json()["id"] == red
    listing = site.client.get("/").json()
    assert [r["id"] for r in listing["runs"]] == sorted(site.runs.values(), reverse=True)
    assert [(q["id"], q["position"]) for q in listing["queue"]] == [
        (site.runs["live"], None), (site.runs["queued1"], 1), (site.runs["queued2"], 2), (site.runs["waiting"], None)]
    assert site.client.get("/runs/99999").status_code == 404
    page = site.get(f"/runs/{red}")
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_list_shows_runs_newest_first_with_their_jobs_and_the_queue_with_positions(site: Site) -> None:
    html = site.get("/").text
    queue, history = html.split("<h2>Runs", 1)
    r = site.runs
    assert rows(queue) == [str(r["live"]), str(r["queued1"]), str(r["queued2"]), str(r["waiting"])]
    assert re.search(rf'data-run="{r["queued1"]}".*?#1</td>', queue, re.S)
    assert re.search(rf'data-run="{r["queued2"]}".*?#2</td>', queue, re.S)
    assert "for approval" in queue
    assert rows(history) == [str(i) for i in sorted(r.values(), reverse=True)]
    red_row = re.search(rf'<tr data-run="{r["red"]}".*?</tr>', history, re.S)
    assert red_row is not None
    assert all(s in red_row.group(0) for s in ("20 passed", "1 failed", "1 up-to-date", "1 not-run", "break the app",
                                               "aaaaaaa", "push"))
    assert "long body" not in red_row.group(0)  # the first line of the message only
    assert 'data-live="1"' in html and 'data-live-url="/?fragment=1"' in html  # runs are active: it follows them


def test_filter_by_branch_and_older_pages(site: Site) -> None:
    html = site.get("/?branch=main").text.split("<h2>Runs", 1)[1]
    assert rows(html) == [str(site.runs["red"]), str(site.runs["green"])]
    first = site.get("/?limit=3").text.split("<h2>Runs", 1)[1]
    assert len(rows(first)) == 3
    older = re.search(r'<a href="(/\?before=\d+&amp;limit=3)">older runs', first)
    assert older is not None
    second = site.get(older.group(1).replace("&amp;", "&")).text.split("<h2>Runs", 1)[1]
    assert not set(rows(first)) & set(rows(second)) and len(rows(second)) == 3
    assert site.client.get("/?branch=main").json()["runs"][0]["id"] == site.runs["red"]


# -- a run ---------------------------------------------------------------------------------------------

def test_a_failed_run_shows_the_failed_job_first_with_its_log_tail_rendered(site: Site) -> None:
    html = site.get(f"/runs/{site.runs['red']}").text
    assert html.index("<h2>Failed</h2>") < html.index("<h2>Jobs</h2>")
    failed = html.split("<h2>Failed</h2>", 1)[1].split("<h2>Jobs</h2>", 1)[0]
    assert 'data-job="test-app"' in failed and "1) tests/a.spec.js:2:1 › sorts" in failed
    assert "step &#39;pnpm&#39; exited 1 after 24.9 s" in failed  # the log's tail
    assert '<span class="fg1">  1 failed</span>' in failed  # colour kept, codes gone
    assert "\x1b" not in html and "[1A" not in html and "[2K" not in html
    assert "[1/3]" not in failed and "[2/3]" not in failed  # the line reporter's redrawn lines are gone
    jobs = re.findall(r'<tr data-job="([^"]+)" data-status="([^"]+)"', html)
    assert jobs[0] == ("test-app", "failed") and jobs[1] == ("after", "not-run")
    assert len(jobs) == 23 and {s for _, s in jobs[2:]} == {"passed", "up-to-date"}
    assert "src/x.py changed" in html and "dependency failed: job-19" not in html.split("<h2>Jobs")[0]
    for section in ("Critical path", "Gantt chart", "Versions", "Against the previous run of main"):
        assert f"<h2>{section}" in html, section
    assert f'<a href="/runs/{site.runs["green"]}">run {site.runs["green"]}</a>' in html
    assert "Chromium 156" in html and f'href="/runs/{site.runs["red"]}/files/ci.log"' in html
    assert 'data-live="0"' in html and "data-live-url" not in html  # finished: nothing to follow
    # Where the Redis engine ran it and why, and the operator's filters (escaped like everything else).
    assert "<dt>host</dt><dd>h2 <span class=\"muted small\">(warm &lt;affinity&gt;)</span>" in html
    assert "<dt>filters</dt><dd><code>skip=lint k=a and not b</code></dd>" in html


def test_a_running_run_lists_its_jobs_from_ci_log_and_is_followed_live(site: Site) -> None:
    live = site.runs["live"]
    html = site.get(f"/runs/{live}").text
    jobs = dict(re.findall(r'<tr data-job="([^"]+)" data-status="([^"]+)"', html))
    assert jobs == {"test-1": "running", "build": "passed", "lint": "up-to-date"}
    assert f'data-live-url="/runs/{live}?fragment=1"' in html and 'data-live="1"' in html
    fragment = site.get(f"/runs/{live}?fragment=1").text
    assert "<html" not in fragment and 'data-job="test-1"' in fragment
    log = site.get(f"/runs/{live}/jobs/test-1/log").text
    assert 'data-live="1"' in log and "1 passed" in log


def test_a_live_log_sends_only_the_lines_that_changed(site: Site) -> None:
    live = site.runs["live"]
    path = site.config.repos[REPO].state_dir / "runs" / f"ci-{live}-1" / "logs" / "build.log"
    path.write_text("line 1\nprogress 10%")
    url = f"/runs/{live}/jobs/build/log?format=json"
    first = site.client.get(url + "&tick=0&epoch=none").json()
    assert first["from"] == 0 and first["lines"] == ["line 1", "progress 10%"]
    with open(path, "a") as fh:
        fh.write("\rprogress 100%\nline 3\n")
    second = site.client.get(url + f"&tick={first['tick']}&epoch={first['epoch']}").json()
    assert second["from"] == 1 and second["lines"] == ["progress 100%", "line 3"] and second["total"] == 3
    third = site.client.get(url + f"&tick={second['tick']}&epoch={second['epoch']}").json()
    assert third["from"] == 3 and third["lines"] == []


def test_commit_messages_branch_names_and_logs_are_escaped(site: Site) -> None:
    pages = [site.get("/").text, site.get(f"/runs/{site.runs['evil']}").text,
             site.get(f"/runs/{site.runs['red']}").text, site.get(f"/runs/{site.runs['red']}/jobs/test-app/log").text,
             site.get(f"/?branch={EVIL_BRANCH}").text]
    for html in pages:
        assert html.count("<script") == 1 and '<script src="/static/live.js" defer></script>' in html
        assert "<img src=x" not in html
    assert "fix: &lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; &amp; &lt;img" in pages[1]
    assert "evil&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "/?branch=evil%3Cscript%3Ealert%281%29%3C/script%3E" in pages[1]
    assert "&lt;script&gt;alert(&#39;from the log&#39;)&lt;/script&gt;" in pages[3]
    assert rows(pages[4].split("<h2>Runs", 1)[1]) == [str(site.runs["evil"])]


def test_secrets_are_masked_in_every_page_log_and_file_served(site: Site) -> None:
    red = site.runs["red"]
    served = [site.get(f"/runs/{red}"), site.get(f"/runs/{red}/jobs/test-app/log"),
              site.client.get(f"/runs/{red}/jobs/test-app/log.txt"), site.client.get(f"/runs/{red}/files/results.json"),
              site.client.get(f"/runs/{red}/jobs/test-app/log?format=json&tick=0"), site.client.get(f"/runs/{red}"),
              site.get("/"), site.client.get("/api/runs")]
    for r in served:
        assert r.status_code == 200, r.url
        for secret in (TOKEN, SECRET, ADMIN_TOKEN):
            assert secret not in r.text, (r.url, secret)
    text = served[2].text
    assert "the service's token is *** and its secret ***" in text and "admin: ***" in text
    assert served[2].headers["content-disposition"].startswith("attachment")
    assert "\x1b" not in text and "  1 failed\n" in text


# -- paths ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/runs/{red}/jobs/..%2F..%2F..%2Fsvc%2Fqueue.sqlite3/log",
    "/runs/{red}/jobs/%2Fetc%2Fpasswd/log",
    "/runs/{red}/jobs/..%2Fresults.json/log.txt",
    "/runs/{red}/jobs/%2E%2E/log",
    "/runs/{red}/jobs/test-app/log?server=..%2F..%2Fx",
    "/runs/{red}/jobs/test-app/log?server=-1",
    "/runs/{red}/files/..%2F..%2F..%2Fsvc%2Fqueue.sqlite3",
    "/runs/{red}/files/%2Fetc%2Fpasswd",
    "/runs/{red}/files/queue.sqlite3",
    "/static/..%2F..%2Fpages.py",
    "/static/%2E%2E/pages.py",
    "/runs/..%2F{red}",
])
def test_names_in_urls_never_reach_outside_the_state_dir(site: Site, path: str) -> None:
    r = site.client.get(path.format(red=site.runs["red"]))
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert "SQLite" not in r.text and "root:" not in r.text and "def " not in r.text


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/../../b", "/etc/passwd", "x\x00y", ".hidden", "a\\b", ""])
def test_hostile_job_names_find_no_log(tmp_path: Path, name: str) -> None:
    (tmp_path / "run" / "logs").mkdir(parents=True)
    (tmp_path / "x.log").write_text("outside")
    assert logfiles.job_log(tmp_path / "run", name) is None


def test_a_symlink_out_of_the_logs_dir_is_not_followed(tmp_path: Path) -> None:
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("outside")
    (logs / "job.log").symlink_to(tmp_path / "secret.txt")
    (logs / "ok.log").write_text("inside")
    assert logfiles.job_log(tmp_path / "run", "job") is None
    assert logfiles.job_log(tmp_path / "run", "ok") == (logs / "ok.log").resolve()


# -- rerun and cancel ----------------------------------------------------------------------------------

def test_rerun_without_the_token_is_refused_and_changes_nothing(site: Site) -> None:
    red, before = site.runs["red"], site.count()
    attempts: list[dict[str, Any]] = [
        {},
        {"data": {"token": "wrong-token-0123456789"}},
        {"data": {"csrf": "forged"}},
        {"headers": {"Authorization": "Bearer nope"}},
        {"data": {"token": ADMIN_TOKEN}, "headers": {"Origin": "https://evil.example"}},  # right token, other site
        {"cookies": {"warmci_session": "1.forged"}, "data": {"csrf": "x"}},
    ]
    for kw in attempts:
        site.client.cookies.clear()
        cookies, headers = kw.pop("cookies", None), kw.pop("headers", {})
        if cookies:
            site.client.cookies.update(cookies)
        r = site.client.post(f"/runs/{red}/rerun", **kw, headers={**HTML, **headers}, follow_redirects=False)
        assert r.status_code == 403, (kw, r.status_code)
        assert "refused" in r.text
    site.client.cookies.clear()
    assert site.count() == before
    assert site.client.get(f"/runs/{site.runs['queued2']}").json()["state"] == "queued"
    assert site.client.post(f"/runs/{site.runs['queued2']}/cancel").status_code == 403
    assert site.client.get(f"/runs/{site.runs['queued2']}").json()["state"] == "queued"


def test_a_session_with_its_csrf_token_may_rerun_and_cancel(site: Site) -> None:
    site.client.cookies.clear()
    assert site.client.post("/login", data={"token": "wrong-wrong-wrong-wrong"}, headers=HTML).status_code == 403
    login = site.client.post("/login", data={"token": ADMIN_TOKEN, "next": "//evil.example/x"}, headers=HTML,
                             follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/"  # never an open redirect
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and ADMIN_TOKEN not in cookie
    page = site.get(f"/runs/{site.runs['red']}").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert csrf is not None and 'name="token"' not in page
    no_csrf = site.client.post(f"/runs/{site.runs['red']}/rerun", headers=HTML, follow_redirects=False)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    before = site.count()
    r = site.client.post(f"/runs/{site.runs['red']}/rerun", data={"csrf": csrf.group(1)}, headers=HTML,
                         follow_redirects=False)
    assert r.status_code == 303 and site.count() == before + 1
    new = int(r.headers["location"].rsplit("/", 1)[1])
    rerun = site.client.get(f"/runs/{new}").json()
    assert (rerun["trigger"], rerun["rerun_of"], rerun["state"], rerun["sha"]) == ("rerun", site.runs["red"], "queued",
                                                                                   "a" * 40)
    cancel = site.client.post(f"/runs/{new}/cancel", data={"csrf": csrf.group(1)}, headers=HTML,
                              follow_redirects=False)
    assert cancel.status_code == 303 and site.client.get(f"/runs/{new}").json()["state"] == "cancelled"
    again = site.client.post(f"/runs/{new}/cancel", data={"csrf": csrf.group(1)}, headers=HTML)
    assert again.status_code == 409 and "already finished" in again.text
    site.client.cookies.clear()


def test_scripts_rerun_with_a_bearer_token_and_the_form_takes_the_token_too(site: Site) -> None:
    site.client.cookies.clear()
    r = site.client.post(f"/runs/{site.runs['red']}/rerun", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200 and r.json()["message"].startswith("queued run")
    new = r.json()["run"]
    form = site.client.post(f"/runs/{new}/cancel", data={"token": ADMIN_TOKEN}, headers=HTML, follow_redirects=False)
    assert form.status_code == 303 and site.client.get(f"/runs/{new}").json()["state"] == "cancelled"
    running = site.client.post(f"/runs/{site.runs['green']}/cancel", data={"token": ADMIN_TOKEN})
    assert running.status_code == 409 and "already finished" in running.json()["error"]


def test_without_an_admin_token_the_pages_change_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, admin="")
    db = RunsDB(config.db_file)
    red = made_runs.add_run(db, REPO, state="failed", state_dir=config.repos[REPO].state_dir,
                            results_data=made_runs.results("x", {"a": "failed"}, start=time.time()))
    with TestClient(create_app(config, db, Intake(db, config))) as client:
        page = client.get(f"/runs/{red}", headers=HTML).text
        assert "Rerun what failed" not in page and "WARMCI_ADMIN_TOKEN" in page
        r = client.post(f"/runs/{red}/rerun", data={"token": ""}, headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "off" in r.json()["error"]
    with db.read() as c:
        assert len(runsdb.runs(c)) == 1


# -- charts, pruning, config ---------------------------------------------------------------------------

def test_gantt_and_comparison_charts_are_drawn_once_and_kept_in_the_run_dir(site: Site) -> None:
    red = site.runs["red"]
    r = site.client.get(f"/runs/{red}/gantt.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    chart = site.config.repos[REPO].state_dir / "runs" / f"ci-{red}-1" / "gantt.png"
    made = chart.stat().st_mtime_ns
    assert site.client.get(f"/runs/{red}/gantt.png").content == r.content and chart.stat().st_mtime_ns == made
    cmp = site.client.get(f"/runs/{red}/compare.png")
    assert cmp.status_code == 200 and cmp.content[:4] == b"\x89PNG"
    assert (chart.parent / f"compare-ci-{site.runs['green']}-1.png").is_file()
    assert site.client.get(f"/runs/{site.runs['green']}/compare.png").status_code == 404  # nothing before it
    assert site.client.get(f"/runs/{site.runs['live']}/gantt.png").status_code == 404  # not finished


def test_old_runs_are_pruned_by_count_and_by_age_logs_first_active_runs_never(tmp_path: Path) -> None:
    config = make_config(tmp_path, keep_runs=3, keep_days=30)
    db = RunsDB(config.db_file)
    state, now = config.repos[REPO].state_dir, time.time()

    def finished(age_days: float) -> int:
        return made_runs.add_run(db, REPO, state="passed", state_dir=state, log_dir=config.logs_dir,
                                 results_data=made_runs.results("x", {"a": "passed"}, start=now), logs={"a": "log\n"},
                                 queued_at=now - age_days * 86400)

    oldest, old, queued, recent, aged, newest = (
        finished(1), finished(1), made_runs.add_run(db, REPO, state="queued"), finished(1), finished(0), finished(0))
    with db.write() as c:
        runsdb.update(c, aged, finished_at=now - 40 * 86400)  # over keep_days, though among the newest
    assert prune.prune(db, config, now) == [oldest, old, aged]
    with db.read() as c:
        assert {r.id for r in runsdb.runs(c)} == {queued, recent, newest}
    for gone in (oldest, old, aged):
        assert not (state / "runs" / f"ci-{gone}-1").exists()
        assert not (config.logs_dir / f"ci-{gone}-1.log").exists()
    assert (state / "runs" / f"ci-{recent}-1" / "logs" / "a.log").is_file()
    assert prune.prune(db, config, now) == []


@pytest.mark.parametrize(("env", "key", "problem"), [
    ({config_mod.ADMIN_VAR: "short"}, config_mod.ADMIN_VAR, "at least 16"),
    ({config_mod.ADMIN_VAR: " " + ADMIN_TOKEN}, config_mod.ADMIN_VAR, "surrounding spaces"),
])
def test_a_weak_admin_token_is_refused_at_start_up(tmp_path: Path, env: dict[str, str], key: str,
                                                   problem: str) -> None:
    make_config(tmp_path)
    with pytest.raises(ConfigError) as err:
        config_mod.load(tmp_path / "ci.toml", {config_mod.SECRET_VAR: SECRET, config_mod.TOKEN_VAR: TOKEN, **env})
    assert err.value.key == key and problem in err.value.problem and "short" not in str(err.value)


@pytest.mark.parametrize(("table", "key"), [({"keep_runs": 0}, "service.keep_runs"),
                                            ({"keep_days": -1}, "service.keep_days"),
                                            ({"keep_runs": "ten"}, "service.keep_runs")])
def test_bad_prune_settings_are_named(tmp_path: Path, table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, **table)
    assert err.value.key == key


def test_the_admin_token_never_reaches_doit(tmp_path: Path) -> None:
    from ci_runner import doitrun

    spec = doitrun.Spec(1, "r", "o/demo", "a" * 40, "main", "refs/heads/main")
    env = doitrun.environment({config_mod.ADMIN_VAR: ADMIN_TOKEN, "PATH": "/bin"}, spec)
    assert config_mod.ADMIN_VAR not in env and env["PATH"] == "/bin"


def test_a_schema_1_queue_gains_the_job_counts_and_filters_columns(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    c = sqlite3.connect(path)
    c.executescript(schema_1())
    c.execute("PRAGMA user_version=1")
    c.execute("INSERT INTO runs (repo, sha, branch, ref, lane, trigger, state, queued_at) "
              "VALUES ('o/r', 'abc', 'main', 'refs/heads/main', 'l', 'push', 'passed', 1)")
    c.commit()
    c.close()
    db = RunsDB(path)
    with db.read() as c2:
        run = runsdb.run(c2, 1)
        assert run is not None and run.job_counts is None and run.counts == {}
        assert c2.execute("PRAGMA user_version").fetchone()[0] == runsdb.SCHEMA_VERSION
    with db.write() as c3:
        runsdb.update(c3, 1, job_counts=json.dumps({"passed": 3}))
    with db.read() as c4:
        run = runsdb.run(c4, 1)
        assert run is not None and run.counts == {"passed": 3}


def test_a_huge_log_shows_its_end_and_says_what_it_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ci_runner.redact import Redactor

    monkeypatch.setattr(logfiles, "MAX_BYTES", 1000)
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    with logfiles.LogCache(Redactor([])).open(path) as log:
        text = "".join(log.plain())
        assert log.skipped > 0 and text.startswith(f"[the first {log.skipped} bytes of this log are not shown]\n")
        assert text.endswith("line 999\n") and "line 0\n" not in text
        assert len(log) < 1000 / 6 and log.text(0).startswith("line ")  # starts on a whole line
