"""`python -m ci_runner COMMAND`: the service and its operator commands.

    serve    --config FILE                     run the service (webhook, worker, statuses)
    worker   --config FILE                     run a host worker of the Redis engine (docs/scale.md)
    queue    --config FILE [--all] [--json]    the queue: running, queued (with position), waiting
    enqueue  --config FILE REPO SHA [--branch B] [FILTERS]   run a commit by hand
    cancel   --config FILE RUN                 cancel a queued or running run
    rerun    --config FILE RUN [FILTERS]       run a finished run's commit again (only what failed reruns)

FILTERS are warmci's (passed to doit as its variables; see the runner's README):
    --skip JOB,...   --first JOB,...   -k EXPR   --grep EXPR   --first-k EXPR   --first-grep EXPR
    --failed-tests   only the tests that failed last time (a rerun of only the failed tests)
A filtered run reports to the context `<status_context>/filtered`, never to the commit's own.
    approve  --config FILE RUN                 let a fork's pull request run

--config defaults to $WARMCI_RUNNER_CONFIG. Secrets come only from the
environment (WARMCI_WEBHOOK_SECRET, WARMCI_GITHUB_TOKEN; serve needs both).
The operator commands work on the queue database directly, while the
service runs; the service picks their changes up within a second.
Exit codes: 0 done, 1 an error to fix (named), 2 bad usage, 3 unexpected error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence

from ci_runner import config as config_mod
from ci_runner import runsdb
from ci_runner.errors import RunnerError
from ci_runner.intake import Intake
from ci_runner.runsdb import Run, RunsDB


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ci_runner", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("--config", default=os.environ.get(config_mod.CONFIG_VAR),
                       help=f"the service's TOML config (default: ${config_mod.CONFIG_VAR})")
        return c

    cmd("serve", "run the service: webhook receiver, worker(s) and status poster")
    cmd("worker", "run a host worker of the Redis engine (service.engine = \"redis\", WARMCI_REDIS_URL)")
    q = cmd("queue", "list running, queued (with position) and waiting runs")
    q.add_argument("--all", action="store_true", help="also the last 50 finished runs")
    q.add_argument("--json", action="store_true", help="machine-readable")
    e = cmd("enqueue", "queue a commit of a configured repository by hand")
    e.add_argument("repo", help="owner/name, as in the config")
    e.add_argument("sha", help="the full 40-character commit SHA")
    e.add_argument("--branch", help="the branch it is on (fetched if the SHA is not yet in the checkout)")
    add_filters(e)
    for name, help in (("cancel", "cancel a queued or running run"),
                       ("rerun", "queue a finished run's commit again: jobs that passed are up to date and skip"),
                       ("approve", "let a waiting fork pull request's run start")):
        c = cmd(name, help)
        c.add_argument("run", type=int, help="the run's id (see `queue`)")
        if name == "rerun":
            add_filters(c)
    return p


# option -> warmci's doit variable (warmci/filters.py)
FILTERS = {"skip": "skip", "first": "first", "k": "k", "grep": "grep", "first_k": "first-k",
           "first_grep": "first-grep"}


def add_filters(c: argparse.ArgumentParser) -> None:
    g = c.add_argument_group("filters (warmci's, passed on to doit)")
    g.add_argument("--skip", metavar="JOB,...", help="these jobs do not run; what needs them is reported not-run")
    g.add_argument("--first", metavar="JOB,...", help="these jobs (and what they need) before the rest of the run")
    g.add_argument("-k", metavar="EXPR", help="pytest jobs run only the tests `-k EXPR` selects")
    g.add_argument("--grep", metavar="EXPR", help="Playwright jobs run only the tests `--grep EXPR` selects")
    g.add_argument("--first-k", metavar="EXPR", help="`-k EXPR` as a first pass, then the full pytest suites")
    g.add_argument("--first-grep", metavar="EXPR", help="`--grep EXPR` as a first pass, then the full suites")
    g.add_argument("--failed-tests", action="store_true",
                   help="only the tests that failed last time (pytest --lf, Playwright --last-failed)")


def filter_args(args: argparse.Namespace) -> list[str]:
    """The filters given as doit variables (`skip=JOB,...`)."""
    out = []
    for dest, var in FILTERS.items():
        value = getattr(args, dest, None)
        if value is not None:
            if not value.strip():
                raise RunnerError(f"--{dest.replace('_', '-')}: empty value")
            out.append(f"{var}={value.strip()}")
    if getattr(args, "failed_tests", False):
        out.append("lf=1")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if not args.config:
            raise RunnerError(f"no config: pass --config FILE or set {config_mod.CONFIG_VAR}")
        config = config_mod.load(args.config, need_secrets=args.command == "serve")
        if args.command == "serve":
            from ci_runner.serve import serve

            return serve(config)
        if args.command == "worker":
            from ci_runner.hostwork import work
            from ci_runner.serve import setup_logging

            setup_logging(config)
            return work(config)
        intake = Intake(RunsDB(config.db_file), config)
        if args.command == "queue":
            return show_queue(intake.db, args.all, args.json)
        if args.command == "enqueue":
            reply = intake.enqueue(args.repo, args.sha.lower(), args.branch, filter_args(args))
        elif args.command == "cancel":
            reply = intake.cancel(args.run)
        elif args.command == "rerun":
            reply = intake.rerun(args.run, filter_args(args))
        else:
            reply = intake.approve(args.run)
        print(reply.message)
        return 0
    except RunnerError as exc:
        print(f"ci_runner: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        print(f"ci_runner: unexpected error, please report it:\n{traceback.format_exc()}", file=sys.stderr)
        return 3


def _line(run: Run, place: int = 0) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.queued_at))
    where = f"#{place}" if place else run.state
    filters = f"  [{' '.join(run.doit_filters)}]" if run.doit_filters else ""
    return (f"{run.id:>6}  {where:<10} {run.repo}@{run.short_sha}  {run.branch or '-'}  {run.trigger}  {when}"
            f"{filters}{'  ' + run.detail if run.detail else ''}")


def show_queue(db: RunsDB, all_runs: bool, as_json: bool) -> int:
    with db.read() as c:
        active = runsdb.runs(c, "state IN ('running', 'queued', 'waiting')",
                             order="CASE state WHEN 'running' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, id")
        places = {r.id: runsdb.position(c, r.id)[0] for r in active}
        done = runsdb.runs(c, "state NOT IN ('running', 'queued', 'waiting')", order="id DESC",
                           limit=50) if all_runs else []
    if as_json:
        print(json.dumps({"active": [dict(r.as_dict(), position=places[r.id] or None) for r in active],
                          "finished": [r.as_dict() for r in done]}, indent=1))
        return 0
    print(f"{len(active)} active run(s)" + ("" if active else ": the queue is empty"))
    for r in active:
        print(_line(r, places[r.id]))
    if all_runs:
        print(f"last {len(done)} finished run(s)")
        for r in done:
            print(_line(r))
    return 0
