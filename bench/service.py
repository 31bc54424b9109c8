"""The CI service's latency on an idle service: webhook -> pending status, webhook -> doit start.

    ./bootstrap python -m bench.service              20 pushes (medians of 20), results in bench/results/
    ./bootstrap python -m bench.service --reps 3 --out /tmp/x

The real service process on a free loopback port, a bare git remote of the
demo, and a loopback fake of GitHub's API (testing/fake_github.py) whose
arrival times are the "status received" clock. After one warm-up push (the
demo's cold run), each repetition pushes a new commit that changes no job's
input, sends the signed push delivery, and waits for the run to finish
before the next one, so every delivery meets an idle service. Measured per
push, from just before the delivery is sent:

- pending: the first commit status GitHub receives for the SHA (goal <= 1 s);
- doit start: the service has fetched and checked out the SHA and started
  doit (goal <= 2 s); next to it, when warmci began dispatching jobs
  (results.json `start`) and when the success status arrived.

Then (`--red-reps`, default 2) pushes that break the lint (an unused import
in src/demo_app/table.py, so lint, the pytest jobs, the wheel, the smoke
test and the Playwright suite rerun), each measured from the delivery: the
run's first failure (results.json `first_failure.at`), the `failure`
status GitHub receives at that moment while the run goes on ("Failing:
lint-python ..."), and the final `failure` status at the end of the run.

Writes OUT/service.json and OUT/service.md.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import standalone, stats

RUNNER = Path(__file__).resolve().parent.parent
GOALS = {"pending_s": 1.0, "doit_start_s": 2.0}


PY_SOURCE = "src/demo_app/table.py"


def measure(reps: int, work: Path, say: Any, red_reps: int = 0) -> dict[str, Any]:
    sys.path.insert(0, str(RUNNER / "ci-runner"))
    from testing import github_payloads as gp
    from testing.ci_service import Service, ServiceConfig
    from testing.fake_github import FakeGitHub
    from testing.git_remote import demo_remote

    remote = demo_remote(work)
    repo = "bench/demo"
    with FakeGitHub() as gh:
        cfg = ServiceConfig(work / "ci.toml", work / "svc", repos={repo: {
            "clone_url": str(remote.bare), "checkout_dir": work / "checkout", "state_dir": work / "state"}})
        service = Service(cfg, gh.url, work / "service.log").start()
        try:
            def push(sha: str) -> tuple[float, int]:
                remote.push(sha, "refs/heads/main")
                t0 = time.time()
                r = service.send("push", gp.push(repo, sha, "main"))
                assert r.status_code == 202, r.text
                return t0, int(r.json()["run"])

            t0, run_id = push(remote.head())
            warm = service.wait_finished(run_id, timeout=1200)
            say(f"warm-up (cold run of the demo): {warm['state']} in {warm['finished_at'] - t0:.1f} s")
            rows = []
            for i in range(reps):
                sha = remote.commit({"NOTES.md": f"bench push {i}\n"}, f"bench {i}")
                t0, run_id = push(sha)
                pending = gh.wait_for(lambda g, s=sha: g.statuses(s), 30, "the pending status")[0]
                run = service.wait_finished(run_id, timeout=600)
                final = gh.final_status(sha, "warmci", timeout=60)
                results = json.loads(Path(run["results_file"]).read_text())
                if run["state"] != "passed":
                    raise RuntimeError(f"bench push {i} did not pass: {run['detail']}")
                rows.append({"sha": sha, "pending_s": pending["at"] - t0, "doit_start_s": run["doit_started_at"] - t0,
                             "dispatch_s": results["start"] - t0, "success_s": final["at"] - t0,
                             "checkout_s": run["doit_started_at"] - run["started_at"]})
                say(f"push {i + 1}/{reps}: pending {rows[-1]['pending_s'] * 1000:.0f} ms, doit start "
                    f"{rows[-1]['doit_start_s'] * 1000:.0f} ms, success {rows[-1]['success_s']:.2f} s")
            red = []
            original = (remote.work / PY_SOURCE).read_text()
            for i in range(red_reps):
                future = "from __future__ import annotations\n"
                broken = original.replace(future, f"{future}import os  # unused: bench red {i}\n", 1)
                sha = remote.commit({PY_SOURCE: broken}, f"bench red {i}")
                t0, run_id = push(sha)
                early = gh.wait_for(lambda g, s=sha: [x for x in g.statuses(s, "warmci")
                                                      if x["description"].startswith("Failing: ")], 900,
                                    "the early failure status")[0]
                run = service.wait_finished(run_id, timeout=900)
                final = gh.final_status(sha, "warmci", timeout=60)
                first = json.loads(Path(run["results_file"]).read_text())["first_failure"]
                red.append({"sha": sha, "job": first["job"], "first_failure_s": first["at"] - t0,
                            "failing_status_s": early["at"] - t0, "final_status_s": final["at"] - t0,
                            "final": final["state"], "early": early["description"]})
                say(f"red push {i + 1}/{red_reps}: {first['job']} failed at {red[-1]['first_failure_s']:.1f} s, "
                    f"failure status {red[-1]['failing_status_s']:.1f} s, final {red[-1]['final_status_s']:.1f} s")
        finally:
            service.stop()
    keys = ("pending_s", "doit_start_s", "dispatch_s", "success_s", "checkout_s")
    summaries = {k: stats.summary([r[k] for r in rows]) for k in keys}
    red_keys = ("first_failure_s", "failing_status_s", "final_status_s")
    return {"pushes": rows, "summary": summaries, "red_pushes": red,
            "red_summary": {k: stats.summary([r[k] for r in red]) for k in red_keys},
            "goals": {k: {"goal": g, "median": summaries[k]["median"], "met": summaries[k]["median"] <= g}
                      for k, g in GOALS.items()}}


def markdown(d: dict[str, Any]) -> str:
    lines = standalone.header("ci-runner service latency", d) + [
             f"- {d['reps']} pushes to an idle service, each a new commit changing no job's input (the demo's "
             "jobs all up to date), after one warm-up push", "",
             "| from the webhook to | median | min–max | IQR | goal | met |", "|---|---|---|---|---|---|"]
    labels = {"pending_s": "pending status received", "doit_start_s": "doit started (fetch + checkout done)",
              "dispatch_s": "warmci dispatching jobs", "success_s": "success status received",
              "checkout_s": "(claim → doit start: fetch + checkout)"}
    for key, label in labels.items():
        s = d["summary"][key]
        goal = d["goals"].get(key)
        target = f"≤ {goal['goal']:.0f} s" if goal else ""
        met = ("yes" if goal["met"] else "**no**") if goal else ""
        lines.append(f"| {label} | {s['median'] * 1000:.0f} ms | {s['min'] * 1000:.0f}–{s['max'] * 1000:.0f} ms | "
                     f"{s['q1'] * 1000:.0f}–{s['q3'] * 1000:.0f} ms | {target} | {met} |")
    red = d.get("red_pushes") or []
    if red:
        lines += ["", f"{len(red)} pushes breaking the lint (an unused import in `{PY_SOURCE}`: lint, pytest, wheel, "
                  "smoke and Playwright rerun), from the webhook to:", "",
                  "| | median | min–max |", "|---|---|---|"]
        for key, label in (("first_failure_s", "the run's first failure (results.json)"),
                           ("failing_status_s", "`failure` status received, the run going on"),
                           ("final_status_s", "final `failure` status received")):
            s = d["red_summary"][key]
            lines.append(f"| {label} | {s['median']:.2f} s | {s['min']:.2f}–{s['max']:.2f} s |")
        lines += ["", "First failing jobs: " + ", ".join(sorted({r["job"] for r in red})) + "; early status: "
                  f"`{red[0]['early']}`"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return standalone.main("service", __doc__, argv, 20, measure, markdown,
                           options={"red-reps": (2, "pushes that break the lint, measured (default 2)")})


if __name__ == "__main__":
    raise SystemExit(main())
