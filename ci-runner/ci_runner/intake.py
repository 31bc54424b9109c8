"""Putting runs into the queue and taking them out, for the webhook and the operator CLI.

Each operation is one transaction that also queues the commit statuses it
implies, so a run never exists without its pending status and a superseded
run never stays pending. Superseding: a newer run in the same lane (a
branch, or a pull request) cancels the lane's queued and waiting runs at
once and asks the worker to cancel its running one, unless the branch is
protected (those are all built).
"""
from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import time

from ci_runner import runsdb
from ci_runner.config import Config
from ci_runner.errors import RunnerError
from ci_runner.events import Action, Approve, CancelLane, Ignore, Pong, RunRequest
from ci_runner.runsdb import Run, RunsDB
from ci_runner.statuses import CommitStatus, StatusBook

_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Reply:
    """What the webhook answers (always 2xx: the delivery was fine) and the CLI prints."""

    code: int
    message: str
    run: int | None = None


class Intake:
    def __init__(self, db: RunsDB, config: Config, notify: Callable[[], None] = lambda: None) -> None:
        self.db, self.config, self.notify = db, config, notify
        self.book = StatusBook(config.status_context, config.public_url)

    # --- the webhook -------------------------------------------------------------------------

    def delivery(self, delivery: str, event: str, action: Action) -> Reply:
        with self.db.write() as c:
            if not runsdb.add_delivery(c, delivery, event):
                return Reply(200, f"delivery {delivery} was received before; nothing done")
            reply = self._dispatch(c, action, delivery)
            runsdb.set_delivery_outcome(c, delivery, reply.message)
        self.notify()
        return reply

    def _dispatch(self, c: sqlite3.Connection, action: Action, delivery: str) -> Reply:
        if isinstance(action, Pong):
            return Reply(200, "pong")
        if isinstance(action, Ignore):
            return Reply(200, f"ignored: {action.reason}")
        if isinstance(action, CancelLane):
            ids = self._cancel_lane(c, action.repo, action.lane, f"Cancelled: {action.reason}")
            return Reply(200, f"{action.reason}: cancelled runs {ids}" if ids else f"{action.reason}: no run to cancel")
        if isinstance(action, Approve):
            return self._approve_request(c, action.request, action.by, delivery)
        return self._submit(c, action, delivery=delivery)

    # --- the operator CLI --------------------------------------------------------------------

    def enqueue(self, repo: str, sha: str, branch: str | None = None, filters: Sequence[str] = ()) -> Reply:
        rc = self.config.repo(repo)
        if rc is None:
            raise RunnerError(f"repository {repo} is not in the config; configured: {', '.join(self.config.repos)}")
        if not _SHA.match(sha):
            raise RunnerError(f"{sha!r} is not a full 40-character commit SHA (statuses are posted to full SHAs)")
        request = RunRequest(repo=rc.name, sha=sha, branch=branch or "", lane=f"manual:{uuid.uuid4().hex}",
                             ref=f"refs/heads/{branch}" if branch else "", trigger="manual", author="operator",
                             message="enqueued by an operator")
        return self._write(lambda c: self._submit(c, request, dedupe=False, approved_by="operator", filters=filters))

    def rerun(self, run_id: int, filters: Sequence[str] = ()) -> Reply:
        """The run's commit again, with `filters` (warmci's doit variables; none: the whole pipeline, whose
        jobs that passed are up to date)."""
        def op(c: sqlite3.Connection) -> Reply:
            old = self._get(c, run_id)
            if old.state not in runsdb.FINISHED:
                raise RunnerError(f"run {run_id} is {old.state}; only a finished run can be rerun")
            request = RunRequest(repo=old.repo, sha=old.sha, branch=old.branch, ref=old.ref,
                                 lane=f"rerun:{uuid.uuid4().hex}", trigger="rerun", author=old.author,
                                 message=old.message, pr=old.pr, fork=bool(old.fork))
            return self._submit(c, request, dedupe=False, approved_by="operator", rerun_of=run_id, filters=filters)
        return self._write(op)

    def cancel(self, run_id: int, reason: str = "Cancelled by an operator") -> Reply:
        def op(c: sqlite3.Connection) -> Reply:
            run = self._get(c, run_id)
            if run.state not in runsdb.ACTIVE:
                raise RunnerError(f"run {run_id} already finished ({run.state})")
            self._cancel(c, run, reason)
            return Reply(200, f"run {run_id}: {'cancelling' if run.state == 'running' else 'cancelled'}", run_id)
        return self._write(op)

    def approve(self, run_id: int, by: str = "operator") -> Reply:
        def op(c: sqlite3.Connection) -> Reply:
            run = self._get(c, run_id)
            if run.state != "waiting":
                raise RunnerError(f"run {run_id} is {run.state}, not waiting for approval")
            return self._queue_waiting(c, run, by)
        return self._write(op)

    # --- inside a transaction ----------------------------------------------------------------

    def _write(self, op: Callable[[sqlite3.Connection], Reply]) -> Reply:
        with self.db.write() as c:
            reply = op(c)
        self.notify()
        return reply

    def _get(self, c: sqlite3.Connection, run_id: int) -> Run:
        run = runsdb.run(c, run_id)
        if run is None:
            raise RunnerError(f"no run {run_id} (see `python -m ci_runner queue --all`)")
        return run

    def _submit(self, c: sqlite3.Connection, req: RunRequest, *, dedupe: bool = True,
                approved_by: str | None = None, rerun_of: int | None = None, delivery: str | None = None,
                filters: Sequence[str] = ()) -> Reply:
        if dedupe:
            same = runsdb.runs(c, "repo = ? AND sha = ? AND state != 'cancelled'", (req.repo, req.sha), limit=1)
            if same:
                return Reply(200, f"{req.sha[:7]} already has run {same[0].id} ({same[0].state}); "
                                  f"`python -m ci_runner rerun {same[0].id}` runs it again", same[0].id)
        waiting = req.untrusted and approved_by is None
        run_id = runsdb.insert_run(
            c, repo=req.repo, sha=req.sha, branch=req.branch, ref=req.ref, lane=req.lane, pr=req.pr,
            trigger=req.trigger, author=req.author, message=req.message, untrusted=int(req.untrusted),
            fork=int(req.fork),
            protected=int(req.protected), approved_by=approved_by, rerun_of=rerun_of, delivery=delivery,
            state="waiting" if waiting else "queued", filters=json.dumps(list(filters)))
        run = self._get(c, run_id)
        if not req.protected:
            self._supersede(c, run)
        if waiting:
            rc = self.config.repo(run.repo)
            self._status(c, self.book.waiting(run, rc.approval_label if rc else "ci-approved"), run)
            return Reply(202, f"run {run_id} waits for approval: a fork's pull request by @{req.author}", run_id)
        place, total = runsdb.position(c, run_id)
        self._status(c, self.book.queued(run, place, total), run)
        return Reply(202, f"queued run {run_id} for {req.sha[:7]} (position {place} of {total})", run_id)

    def _supersede(self, c: sqlite3.Connection, by: Run) -> None:
        reason = f"Superseded by {by.short_sha} (run {by.id})"
        older = runsdb.runs(c, "repo = ? AND lane = ? AND id < ? AND protected = 0 AND state IN "
                               "('queued', 'waiting', 'running')", (by.repo, by.lane, by.id))
        for run in older:
            self._cancel(c, run, reason, superseded_by=by.id)

    def _cancel_lane(self, c: sqlite3.Connection, repo: str, lane: str, reason: str) -> list[int]:
        active = runsdb.runs(c, "repo = ? AND lane = ? AND protected = 0 AND state IN ('queued', 'waiting', "
                                "'running')", (repo, lane))
        for run in active:
            self._cancel(c, run, reason)
        return [r.id for r in active]

    def _cancel(self, c: sqlite3.Connection, run: Run, reason: str, superseded_by: int | None = None) -> None:
        if run.state == "running":
            # The worker owns a running run: it signals doit and reports the outcome. The first reason
            # stands (a third push does not rewrite why the first run was cancelled).
            if not run.cancel_reason:
                runsdb.update(c, run.id, cancel_reason=reason, superseded_by=superseded_by)
            return
        runsdb.update(c, run.id, state="cancelled", detail=reason, finished_at=time(), superseded_by=superseded_by)
        self._status(c, self.book.finished(self._get(c, run.id)), run)

    def _approve_request(self, c: sqlite3.Connection, req: RunRequest, by: str, delivery: str) -> Reply:
        waiting = runsdb.runs(c, "repo = ? AND sha = ? AND state = 'waiting'", (req.repo, req.sha), limit=1)
        if waiting:
            return self._queue_waiting(c, waiting[0], by)
        return self._submit(c, req, approved_by=by, delivery=delivery)

    def _queue_waiting(self, c: sqlite3.Connection, run: Run, by: str) -> Reply:
        runsdb.update(c, run.id, state="queued", approved_by=by, queued_at=time())
        place, total = runsdb.position(c, run.id)
        self._status(c, self.book.queued(self._get(c, run.id), place, total), run)
        return Reply(202, f"run {run.id} approved by {by}; queued (position {place} of {total})", run.id)

    def _status(self, c: sqlite3.Connection, status: CommitStatus, run: Run) -> None:
        queue_status(c, run, status)


def queue_status(c: sqlite3.Connection, run: Run, status: CommitStatus) -> None:
    """Into the outbox, in the caller's transaction; the poster sends it."""
    runsdb.add_status(c, run, status.state, status.context, status.description, status.target_url)
