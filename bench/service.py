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


def measure(reps: int, work: Path, say: Any) -> dict[str, Any]:
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
        finally:
            service.stop()
    keys = ("pending_s", "doit_start_s", "dispatch_s", "success_s", "checkout_s")
    summaries = {k: stats.summary([r[k] for r in rows]) for k in keys}
    return {"pushes": rows, "summary": summaries,
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
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return standalone.main("service", __doc__, argv, 20, measure, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
