"""Replay: the pipeline over a range of commits, in order, with one warm state dir.

For each commit it records what the warm run did (which jobs ran and why,
which were restored, up to date or skipped and why), its wall time and what
it left behind (warmci processes of its state dir, and their ports). Then,
for every commit or a sample, the contamination check: the same commit in a
fresh clone with a fresh state dir, every job forced. Each job must end with
the same outcome in both; up to date and restored count as the success they
stand for. A difference, or a leftover, is a failure of warmci, not of the
target: a warm state that turns a red commit green (or a green one red) is
exactly what the skip contract forbids.

The warm runs use a clone of their own (`STATE/replay/checkout`, kept
between replays with its ignored files, as a CI server's checkout is); the
target's own checkout is never touched. Results: replay.json and replay.md
(a Markdown table) in the output directory, rewritten after every commit.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from warmci import statefile
from warmci.context import RUNNER_ROOT
from warmci.errors import WarmciError
from warmci.run.lifecycle import warmci_processes
from warmci.status import EXIT_CANCELLED, Status

# Outcomes that stand for a success recorded earlier: compared as `passed`.
_AS_PASSED = {Status.UP_TO_DATE, Status.RESTORED}
_CONTEXT_VARS = ("WARMCI_TARGET", "WARMCI_PIPELINE", "WARMCI_STATE", "WARMCI_RUN_ID", "WARMCI_SHA",
                 "WARMCI_BRANCH")


@dataclass
class Options:
    source: str  # the target repository the commits are read from
    pipeline: str | None  # a pipeline file or profile name; None: each checkout's warmci.toml
    state: str  # the warm state dir
    commits: list[str]  # full shas, oldest first
    check: set[str]  # the shas that get the contamination check
    out: str
    doit_args: tuple[str, ...] = ()
    checkout: str = ""  # the warm runs' clone (default STATE/replay/checkout)
    keep_fresh: bool = False  # keep each check's fresh state dir and clone (they are large)
    say: Callable[[str], None] = field(default=print)


def git(repo: str, *args: str) -> str:
    out = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise WarmciError(f"git {' '.join(args)} in {repo} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


def select(source: str, *, last: int | None = None, rev_range: str | None = None, rev: str = "HEAD") -> list[str]:
    """Full shas, oldest first: the `last` first-parent commits up to `rev`, or those of `A..B`."""
    if not os.path.isdir(source):
        raise WarmciError(f"target {source} is not a directory; pass target=PATH (a git checkout)")
    try:
        git(source, "rev-parse", "--git-dir")
    except WarmciError:
        raise WarmciError(f"target {source} is not a git repository: replay reads its commits") from None
    if rev_range:
        if ".." not in rev_range:
            raise WarmciError(f"--range {rev_range!r}: expected A..B (the commits after A up to B)")
        shas = git(source, "rev-list", "--first-parent", "--reverse", rev_range).split()
    else:
        n = last or 1
        shas = git(source, "rev-list", "--first-parent", f"--max-count={n}", rev).split()[::-1]
    if not shas:
        raise WarmciError(f"no commits in {rev_range or rev} of {source}")
    return shas


def sample(commits: Sequence[str], check: str) -> set[str]:
    """`all`, `none`, or a count N: N commits spread evenly, the last always among them."""
    if check == "all":
        return set(commits)
    if check == "none":
        return set()
    try:
        n = int(check)
    except ValueError:
        raise WarmciError(f"--check {check!r}: expected all, none or a number of commits") from None
    if n <= 0:
        return set()
    n = min(n, len(commits))
    step = len(commits) / n
    return {commits[len(commits) - 1 - int(i * step)] for i in range(n)}


def replay(opts: Options) -> dict[str, Any]:
    """Run every commit; write and return the report (`ok` is False on any difference or leftover)."""
    checkout = opts.checkout or os.path.join(opts.state, "replay", "checkout")
    report: dict[str, Any] = {"source": opts.source, "pipeline": opts.pipeline, "state": opts.state,
                              "checkout": checkout, "doit_args": list(opts.doit_args),
                              "started": time.time(), "cpu_count": os.cpu_count(), "commits": []}
    os.makedirs(opts.out, exist_ok=True)
    for i, sha in enumerate(opts.commits, 1):
        _checkout(opts.source, checkout, sha)
        subject = git(checkout, "log", "-1", "--format=%s", sha)
        opts.say(f"replay {i}/{len(opts.commits)}: {sha[:10]} {subject[:60]}")
        entry = {"index": i, "sha": sha, "subject": subject,
                 **_run(opts, checkout, opts.state, f"replay-{i}-{sha[:10]}", ())}
        opts.say(f"  warm: {_line(entry)}")
        if entry["rc"] == EXIT_CANCELLED:  # someone cancelled the run: the replay stops with it
            report["commits"].append(entry)
            report["cancelled"] = True
            break
        if sha in opts.check:
            check = entry["check"] = _fresh(opts, i, sha)
            check["differences"] = diff = compare(entry, check) if "jobs" in check else []
            if check["rc"] == EXIT_CANCELLED:
                report["commits"].append(entry)
                report["cancelled"] = True
                break
            opts.say(f"  fresh, forced: {_line(entry['check'])}; "
                     + (f"{len(diff)} DIFFERENCES: {diff}" if diff else "same outcome for every job"))
        report["commits"].append(entry)
        _write(opts.out, report)
    report["finished"] = time.time()
    _write(opts.out, report)
    return report


def ok(report: dict[str, Any]) -> bool:
    """No difference and no leftover anywhere in the replay (a cancelled replay is not ok)."""
    if report.get("cancelled"):
        return False
    for c in report["commits"]:
        check = c.get("check") or {}
        if c["leftovers"] or check.get("leftovers") or check.get("differences") or c.get("results_missing") \
                or check.get("results_missing"):
            return False
    return True


# -- pieces -----------------------------------------------------------------

def _checkout(source: str, path: str, sha: str) -> None:
    """`path` at `sha`: a clone of `source`, its untracked files gone, its ignored ones (installs) kept."""
    if not os.path.isdir(os.path.join(path, ".git")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        git(os.path.dirname(path), "clone", "--quiet", "--no-checkout", os.path.abspath(source), path)
    else:
        git(path, "fetch", "--quiet", "--tags", os.path.abspath(source), "+refs/heads/*:refs/remotes/origin/*")
    git(path, "checkout", "--quiet", "--force", "--detach", sha)
    git(path, "clean", "-ffdq")


def _fresh(opts: Options, index: int, sha: str) -> dict[str, Any]:
    base = os.path.join(opts.state, "replay", f"fresh-{index}")
    shutil.rmtree(base, ignore_errors=True)
    checkout = os.path.join(base, "checkout")
    _checkout(opts.source, checkout, sha)
    try:
        check = _run(opts, checkout, os.path.join(base, "state"), f"fresh-{index}-{sha[:10]}", ("--always-execute",))
    finally:
        if not opts.keep_fresh:
            shutil.rmtree(base, ignore_errors=True)
    return check


def _run(opts: Options, checkout: str, state: str, run_id: str, extra: tuple[str, ...]) -> dict[str, Any]:
    """One doit run of the pipeline on `checkout`; what it did, its wall time and what it left behind."""
    argv = [sys.executable, "-m", "doit", "-f", str(RUNNER_ROOT / "dodo.py"), *extra, *opts.doit_args,
            f"target={checkout}", f"state={state}"]
    if opts.pipeline:
        argv.append(f"pipeline={opts.pipeline}")
    env = {k: v for k, v in os.environ.items() if k not in _CONTEXT_VARS}
    env["WARMCI_RUN_ID"] = run_id
    os.makedirs(os.path.join(opts.out, "logs"), exist_ok=True)
    console = os.path.join(opts.out, "logs", f"{run_id}.txt")
    load = os.getloadavg()
    start = time.monotonic()
    with open(console, "w") as fh:
        rc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL).returncode
    wall = time.monotonic() - start
    left = _leftovers(state)
    results_file = os.path.join(state, "runs", run_id, "results.json")
    results = statefile.read_json(results_file)
    out: dict[str, Any] = {"run_id": run_id, "rc": rc, "wall": round(wall, 2),
                           "load_before": [round(x, 2) for x in load],
                           "console": os.path.relpath(console, opts.out), "leftovers": left}
    if not isinstance(results, dict):
        out["results_missing"] = f"{results_file} was not written (doit exited {rc}); see {console}"
        return out
    shutil.copy(results_file, os.path.join(opts.out, "logs", f"{run_id}.results.json"))
    # The jobs' logs too: a fresh run's state dir is deleted, and a difference is read in them.
    logs = os.path.join(state, "runs", run_id, "logs")
    if os.path.isdir(logs):  # none when every job was up to date
        shutil.copytree(logs, os.path.join(opts.out, "logs", run_id), dirs_exist_ok=True)
    jobs: dict[str, Any] = results.get("jobs", {})
    out["status"] = results.get("status")
    out["duration"] = results.get("duration")
    out["job_seconds"] = results.get("job_seconds")
    out["critical_path"] = (results.get("critical_path") or {}).get("duration")
    out["jobs"] = {name: {"status": j.get("status"), "duration": j.get("duration"),
                          "why": "; ".join(r.get("text", "") for r in j.get("why") or []),
                          "reason": j.get("reason") or ""} for name, j in sorted(jobs.items())}
    return out


def compare(warm: dict[str, Any], fresh: dict[str, Any]) -> list[dict[str, str]]:
    """Jobs whose outcome differs between the warm run and the fresh forced run."""
    a, b = warm.get("jobs", {}), fresh.get("jobs", {})
    out = []
    for name in sorted(set(a) | set(b)):
        wa, fb = _outcome(a.get(name)), _outcome(b.get(name))
        if wa != fb:
            # Each side's own account (a failure's reason, why it ran): a test that fails only under load
            # and a wrong skip read differently here, and the logs are named in the runs' results.json.
            out.append({"job": name, "warm": (a.get(name) or {}).get("status", "absent"),
                        "fresh": (b.get(name) or {}).get("status", "absent"),
                        "warm_reason": (a.get(name) or {}).get("reason") or (a.get(name) or {}).get("why", ""),
                        "fresh_reason": (b.get(name) or {}).get("reason") or (b.get(name) or {}).get("why", "")})
    return out


def _outcome(job: dict[str, Any] | None) -> str:
    if job is None:
        return "absent"
    status = Status.of(job.get("status"))
    if status is None:
        return str(job.get("status"))
    return Status.PASSED.value if status in _AS_PASSED else status.value


def _leftovers(state: str) -> list[dict[str, Any]]:
    """warmci processes of this state dir still alive after its doit exited (each one is a failure).

    Recorded, then killed: the next commit's run must not meet them.
    """
    found = warmci_processes(state)
    for p, _, _, _ in found:
        try:
            p.kill()
        except psutil.Error:
            pass
    return [{"pid": p.pid, "job": job, "ports": ports_, "cmd": cmd[:200]} for p, job, ports_, cmd in found]


def _line(run: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for j in (run.get("jobs") or {}).values():
        counts[j["status"]] = counts.get(j["status"], 0) + 1
    what = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"exit {run['rc']}, {run['wall']:.1f} s, {what or run.get('results_missing')}" + (
        f", {len(run['leftovers'])} LEFTOVERS" if run["leftovers"] else "")


def _write(out: str, report: dict[str, Any]) -> None:
    report["ok"] = ok(report)
    statefile.write_json(os.path.join(out, "replay.json"), report)
    statefile.write_text(os.path.join(out, "replay.md"), markdown(report))


def _names(jobs: dict[str, Any], *statuses: str) -> list[str]:
    return [n for n, j in jobs.items() if j["status"] in statuses]


def markdown(report: dict[str, Any]) -> str:
    """The replay as a Markdown table, one row per commit, then what ran and why."""
    lines = [
        "| # | commit | ran | restored | up to date | skipped / not run / failed | wall (s) | leftovers "
        "| fresh forced: wall (s) | differences |",
        "|---:|---|---:|---:|---:|---|---|---:|---|---|",
    ]
    for c in report["commits"]:
        jobs = c.get("jobs") or {}
        ran = _names(jobs, *[s.value for s in Status if s.ran and s is not Status.SKIPPED])
        other = [f"{n} ({j['status']})" for n, j in jobs.items()
                 if j["status"] in (Status.SKIPPED, Status.NOT_RUN, Status.FAILED, Status.ERRORED, Status.TIMED_OUT)]
        check = c.get("check")
        if check is None:
            fresh, diff = "not checked", "-"
        else:
            fresh = f"{check['wall']:.1f} (exit {check['rc']})"
            d = check.get("differences") or []
            diff = ("**" + ", ".join(f"{x['job']}: warm {x['warm']}, fresh {x['fresh']}" for x in d) + "**"
                    if d else ("results missing" if check.get("results_missing") else "none"))
        leftovers = len(c["leftovers"]) + len((check or {}).get("leftovers") or [])
        lines.append(f"| {c['index']} | `{c['sha'][:10]}` {c['subject'][:50]} | {len(ran)} "
                     f"| {len(_names(jobs, Status.RESTORED))} | {len(_names(jobs, Status.UP_TO_DATE))} "
                     f"| {', '.join(other) or '-'} | {c['wall']:.1f} (exit {c['rc']}) | {leftovers} "
                     f"| {fresh} | {diff} |")
    lines += ["", "Jobs that ran in each warm run, and why:", ""]
    for c in report["commits"]:
        jobs = c.get("jobs") or {}
        ran = [f"`{n}` ({j['duration']:.0f} s: {j['why'][:120]})" for n, j in jobs.items()
               if Status.of(j["status"]) is not None and Status(j["status"]).ran and j.get("duration") is not None]
        lines.append(f"- {c['index']} `{c['sha'][:10]}`: " + ("; ".join(ran) or "nothing"))
    diffs = [(c, d) for c in report["commits"] for d in (c.get("check") or {}).get("differences") or []]
    if diffs:
        lines += ["", "Differences, each side's account:", ""]
        lines += [f"- {c['index']} `{c['sha'][:10]}` `{d['job']}`: warm {d['warm']} "
                  f"({d.get('warm_reason', '')[:160]}); fresh {d['fresh']} ({d.get('fresh_reason', '')[:160]})"
                  for c, d in diffs]
    lines += ["", f"Result: {'OK: no difference, no leftover' if report.get('ok') else 'FAILED: see above'}.", ""]
    return "\n".join(lines)
