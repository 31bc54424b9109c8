"""The run pages' load time: a run page with 25 jobs and the run list with 500 runs, next to baselines.

    ./bootstrap python -m bench.pages              30 rounds, results in bench/results/pages.{json,md}
    ./bootstrap python -m bench.pages --reps 5 --out /tmp/x

The real service process on a free loopback port, its queue DB holding 500
finished runs (5 branches; each run directory laid out as warmci writes
it, 25 jobs per results.json; one failed run with a 2,000-line log whose
tail the page renders). Measured round-robin, so every page sees the same
noise, each against a baseline taken in the same round:

- server: a GET of the whole HTML over a keep-alive connection, against
  `/static/pages.css` (the server's floor: routing and a file);
- browser: chromium (Playwright) navigating to the page, from the start of
  the navigation to DOMContentLoaded and to the load event, against the
  login page (the same layout with next to nothing in it).

The Gantt chart is drawn once, on the first view of a run, and cached: the
warm-up view pays it and it is reported on its own. Writes OUT/pages.json
and OUT/pages.md.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import standalone, stats

RUNNER = Path(__file__).resolve().parent.parent
REPO = "bench/pages"
RUNS = 500
JOBS = 25
BRANCHES = ("main", "topic-a", "topic-b", "release", "fix/flaky")


def populate(svc_state: Path, state_dir: Path, logs_dir: Path) -> dict[str, int]:
    """500 finished runs of 25 jobs each; the ids of the pages measured."""
    from ci_runner.runsdb import RunsDB
    from testing import made_runs

    db = RunsDB(svc_state / "queue.sqlite3")
    t0 = time.time() - RUNS * 600
    names = [f"{kind}-{i}" for kind in ("build", "test", "lint", "e2e", "smoke") for i in range(JOBS // 5)]
    ids = {}
    for n in range(RUNS):
        failing = n == RUNS - 1 or n % 17 == 0
        statuses = {name: ("failed" if failing and name == "test-2" else
                           "up-to-date" if (n + i) % 3 == 0 else "passed") for i, name in enumerate(names)}
        data = made_runs.results("x", statuses, start=t0 + n * 600, seconds=1.5 + (n % 5) * 0.1,
                                 branch=BRANCHES[n % len(BRANCHES)])
        logs = {"test-2": "".join(f"\x1b[32mPASSED\x1b[0m tests/test_{i}.py::test_case_{i}\n" for i in range(1990))
                + "\x1b[31mFAILED\x1b[0m tests/test_x.py::test_it - assert 1 == 2\n" * 10} if failing else {}
        ids["last"] = made_runs.add_run(
            db, REPO, state="failed" if failing else "passed", branch=BRANCHES[n % len(BRANCHES)],
            sha=f"{n:040x}", message=f"change number {n}\n\nwith a body", state_dir=state_dir, log_dir=logs_dir,
            results_data=data, logs=logs, queued_at=t0 + n * 600)
    ids["run"] = ids["last"]  # failed, 25 jobs, a log tail, a previous run of its branch to compare with
    return ids


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(reps: int, work: Path, say: Callable[[str], None]) -> dict[str, Any]:
    sys.path.insert(0, str(RUNNER / "ci-runner"))
    from testing.browser import chromium
    from testing.ci_service import Service, ServiceConfig
    from testing.fake_github import FakeGitHub

    cfg = ServiceConfig(work / "ci.toml", work / "svc", service={"keep_runs": RUNS * 2},
                        repos={REPO: {"clone_url": str(work / "nowhere.git"), "checkout_dir": work / "checkout",
                                      "state_dir": work / "state"}})
    ids = populate(work / "svc", work / "state", work / "svc" / "logs")
    say(f"{RUNS} runs of {JOBS} jobs written")
    html = {"Accept": "text/html"}
    pages = {"run page (25 jobs, a failed job's log tail, comparison)": f"/runs/{ids['run']}",
             "run list (first 100 of 500 runs)": "/", "run list (all 500 runs)": "/?limit=500"}
    with FakeGitHub() as gh:
        service = Service(cfg, gh.url, work / "service.log").start()
        try:
            base = service.url
            chart_s = _timed(lambda: service.http.get(f"{base}/runs/{ids['run']}/gantt.png", timeout=300))
            compare_s = _timed(lambda: service.http.get(f"{base}/runs/{ids['run']}/compare.png", timeout=300))
            say(f"first view's charts: gantt {chart_s:.2f} s, comparison {compare_s:.2f} s (then cached)")
            sizes = {label: len(service.http.get(base + path, headers=html, timeout=30).content)
                     for label, path in pages.items()}
            server: dict[str, list[float]] = {label: [] for label in [*pages, "baseline: /static/pages.css"]}
            paths = {**pages, "baseline: /static/pages.css": "/static/pages.css"}
            browser: dict[str, dict[str, list[float]]] = {
                label: {"dom": [], "load": []} for label in [*pages, "baseline: /login"]}
            bpaths = {**pages, "baseline: /login": "/login"}
            with chromium() as b:
                page = b.new_page(viewport={"width": 1300, "height": 900})
                for path in bpaths.values():  # warm-up: templates compiled, charts drawn, caches filled
                    page.goto(base + path, wait_until="load", timeout=300_000)
                for rep in range(reps):
                    for label, path in paths.items():
                        server[label].append(_timed(lambda p=path: service.http.get(
                            base + p, headers=html, timeout=30).raise_for_status()))
                    for label, path in bpaths.items():
                        page.goto(base + path, wait_until="load", timeout=60_000)
                        nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
                        entry = json.loads(nav)
                        browser[label]["dom"].append(entry["domContentLoadedEventEnd"] / 1000)
                        browser[label]["load"].append(entry["loadEventEnd"] / 1000)
                    say(f"round {rep + 1}/{reps}")
        finally:
            service.stop()
    s_sum = {k: stats.summary(v) for k, v in server.items()}
    b_sum = {k: {m: stats.summary(v) for m, v in d.items()} for k, d in browser.items()}
    s_base = stats.median_of(s_sum["baseline: /static/pages.css"])
    b_base = stats.median_of(b_sum["baseline: /login"]["load"])
    return {"runs": RUNS, "jobs": JOBS, "ids": ids, "bytes": sizes, "chart_first_view_s": round(chart_s, 3),
            "compare_first_view_s": round(compare_s, 3), "server": s_sum, "browser": b_sum,
            "ratios": {label: {"server_vs_baseline": stats.ratio(stats.median_of(s_sum[label]), s_base),
                               "browser_load_vs_baseline": stats.ratio(stats.median_of(b_sum[label]["load"]), b_base)}
                       for label in pages}}


def _ms(s: dict[str, Any]) -> str:
    return f"{s['median'] * 1000:.0f} ms | {s['q1'] * 1000:.0f}–{s['q3'] * 1000:.0f} ms"


def markdown(d: dict[str, Any]) -> str:
    lines = standalone.header("Run pages: load time", d) + [
             f"- the service process on loopback, its queue holding {d['runs']} finished runs of {d['jobs']} jobs; "
             f"{d['reps']} rounds, round-robin, medians and IQR", "",
             "| page | HTML | server: whole response, median | IQR | ×baseline | browser: DOMContentLoaded, median "
             "| IQR | browser: load, median | IQR | ×baseline |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label in d["bytes"]:
        r = d["ratios"][label]
        lines.append(f"| {label} | {d['bytes'][label] / 1024:.0f} KiB | {_ms(d['server'][label])} | "
                     f"{r['server_vs_baseline']} | {_ms(d['browser'][label]['dom'])} | "
                     f"{_ms(d['browser'][label]['load'])} | {r['browser_load_vs_baseline']} |")
    lines.append(f"| baseline: `/static/pages.css` (server), `/login` (browser) | | "
                 f"{_ms(d['server']['baseline: /static/pages.css'])} | | "
                 f"{_ms(d['browser']['baseline: /login']['dom'])} | "
                 f"{_ms(d['browser']['baseline: /login']['load'])} | |")
    lines += ["", f"The Gantt chart is drawn on a run's first view (here {d['chart_first_view_s']:.1f} s, and "
                  f"{d['compare_first_view_s']:.1f} s for the comparison with the previous run of the branch; "
                  "matplotlib in a child process) and cached in the run's directory; the rounds above see it "
                  "cached. The HTML never waits for it: the image loads lazily."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return standalone.main("pages", __doc__, argv, 30, measure, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
