"""Old runs go: beyond the newest `service.keep_runs` finished runs, or finished over `service.keep_days` ago.

Logs first (each attempt's job logs and doit's output), then the run
directories (results.json, ci.log, charts), then the row: a prune cut short
leaves a run without its logs, never files nobody can find. Only files
where the service itself puts them are removed: `ci-ID-N` directories in
the runs/ dir of a configured repository's state dir, `ci-ID-N.log` in the
service's logs dir. Queued, waiting and running runs are never pruned.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from ci_runner import runsdb
from ci_runner.config import Config
from ci_runner.runsdb import Run, RunsDB

log = logging.getLogger("ci_runner.prune")


def due(db: RunsDB, config: Config, now: float | None = None) -> list[Run]:
    cutoff = (now if now is not None else time.time()) - config.keep_days * 86400
    with db.read() as c:
        return runsdb.runs(c, "state IN ('passed', 'failed', 'errored', 'cancelled') AND (finished_at < ? OR id < "
                              "COALESCE((SELECT id FROM runs WHERE state IN ('passed', 'failed', 'errored', "
                              "'cancelled') ORDER BY id DESC LIMIT 1 OFFSET ?), -1))",
                           (cutoff, config.keep_runs - 1))


def prune(db: RunsDB, config: Config, now: float | None = None) -> list[int]:
    """Remove the runs that are due; their ids."""
    gone = []
    for run in due(db, config, now):
        try:
            remove_files(run, config)
        except OSError as exc:
            log.warning("prune: run %s: %s; trying again after the next run", run.id, exc)
            continue
        with db.write() as c:
            c.execute("DELETE FROM outbox WHERE run = ? AND sent_at IS NOT NULL", (run.id,))
            c.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        gone.append(run.id)
    if gone:
        log.info("pruned %d old run(s): %s", len(gone), _ranges(gone))
    return gone


def _attempt_dirs(run: Run, config: Config) -> list[Path]:
    states = {r.state_dir for r in config.repos.values()}
    if not run.state_dir or Path(run.state_dir) not in states:
        return []
    runs_dir = Path(run.state_dir) / "runs"
    name = re.compile(rf"ci-{run.id}-\d+")
    try:
        return sorted(p for p in runs_dir.iterdir() if name.fullmatch(p.name) and not p.is_symlink())
    except FileNotFoundError:
        return []


def remove_files(run: Run, config: Config) -> None:
    dirs = _attempt_dirs(run, config)
    for d in dirs:
        if (d / "logs").is_dir():
            shutil.rmtree(d / "logs")
    for n in range(1, max(run.attempts, 1) + 1):
        (config.logs_dir / f"ci-{run.id}-{n}.log").unlink(missing_ok=True)
    for d in dirs:
        shutil.rmtree(d)


def _ranges(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
