"""After a crash (kill -9, a reboot): runs the dead service left `running` are settled first.

The dead run's processes are ended (doit's group gets warmci's cancellation,
then anything still carrying the run's token is killed). The run goes back
to the head of the queue, where its finished jobs will skip, unless it was
already interrupted `service.max_attempts` times or was being cancelled:
then it is reported, `error`, with a status. Nothing is left pending.
"""
from __future__ import annotations

import logging

from ci_runner import procs, runsdb
from ci_runner.config import Config
from ci_runner.runsdb import RunsDB
from ci_runner.statuses import StatusBook
from ci_runner.worker import finish, requeue

log = logging.getLogger("ci_runner.recovery")


def recover(db: RunsDB, config: Config) -> list[str]:
    """Settle every run left running; one line per run, for the log."""
    book = StatusBook(config.status_context, config.public_url)
    with db.read() as c:
        # With the Redis engine a run placed on a host goes on there: the dispatcher follows it again.
        stale = runsdb.runs(c, "state = 'running'" + (" AND engine_job IS NULL" if config.engine == "redis" else ""))
    lines = []
    for run in stale:
        ended = procs.end_run(run.pid, run.pid_created, run.run_id or "", run.state_dir or "",
                              grace=config.cancel_grace)
        with db.write() as c:
            if run.cancel_reason:
                finish(c, book, run, "cancelled", run.cancel_reason)
                what = "cancelled (it was being cancelled)"
            elif run.attempts >= config.max_attempts:
                finish(c, book, run, "errored", f"Interrupted by a service restart {run.attempts} times; not "
                                                f"retried (`python -m ci_runner rerun {run.id}`)")
                what = "reported errored"
            else:
                requeue(c, book, run, "Queued again: interrupted by a service restart", counts=True)
                what = "queued again"
        lines.append(f"run {run.id} ({run.repo}@{run.short_sha}) was running when the service died: "
                     f"ended pids {ended}; {what}")
    for line in lines:
        log.warning("%s", line)
    return lines
