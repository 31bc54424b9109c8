"""Sends the outbox's commit statuses to GitHub, in order, surviving restarts and outages.

Statuses are written to the outbox in the same transaction as the change
they report, so nothing is lost if the service dies before posting. Of
several unsent statuses for one (repo, SHA, context) only the newest is
sent: GitHub shows the newest anyway. A transient failure (after the
client's own retries) is tried again later with a growing delay; a
permanent one (bad token, unknown repository) is logged and dropped.
"""
from __future__ import annotations

import logging
import threading
import time

from ci_runner import runsdb
from ci_runner.github import GitHubError, StatusClient
from ci_runner.runsdb import Outgoing, RunsDB
from ci_runner.statuses import CommitStatus

log = logging.getLogger("ci_runner.poster")
IDLE_WAIT = 1.0  # statuses the CLI queued (another process) are picked up this fast
MAX_DELAY = 600.0


def send_due(db: RunsDB, client: StatusClient) -> int:
    """Send every status that is due; the number sent."""
    now = time.time()
    with db.read() as c:
        due = runsdb.unsent(c, now)
    newest: dict[tuple[str, str, str], Outgoing] = {}
    for item in due:
        newest[(item.repo, item.sha, item.context)] = item
    keep = {item.id for item in newest.values()}
    replaced = [item.id for item in due if item.id not in keep]
    if replaced:
        with db.write() as c:
            c.executemany("UPDATE outbox SET sent_at = ?, outcome = 'replaced by a newer status' WHERE id = ?",
                          [(now, i) for i in replaced])
    sent = 0
    for item in sorted(newest.values(), key=lambda i: i.id):
        status = CommitStatus(item.state, item.context, item.description, item.target_url)
        try:
            client.post_status(item.repo, item.sha, status)
        except GitHubError as exc:
            _failed(db, item, exc)
            continue
        with db.write() as c:
            c.execute("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, outcome = 'sent' WHERE id = ?",
                      (time.time(), item.id))
        log.info("status %s %s for %s@%s (run %s): %s", item.context, item.state, item.repo, item.sha[:7],
                 item.run, item.description)
        sent += 1
    return sent


def _failed(db: RunsDB, item: Outgoing, exc: GitHubError) -> None:
    with db.write() as c:
        if exc.permanent:
            c.execute("UPDATE outbox SET sent_at = ?, attempts = attempts + 1, outcome = ? WHERE id = ?",
                      (time.time(), f"dropped: {exc}"[:500], item.id))
            log.error("status for %s@%s (run %s) dropped: %s", item.repo, item.sha[:7], item.run, exc)
            return
        delay = min(MAX_DELAY, 5.0 * 2 ** item.attempts)
        c.execute("UPDATE outbox SET attempts = attempts + 1, next_at = ?, outcome = ? WHERE id = ?",
                  (time.time() + delay, f"retrying: {exc}"[:500], item.id))
    log.warning("status for %s@%s (run %s) not posted, trying again in %.0f s: %s", item.repo, item.sha[:7],
                item.run, delay, exc)


class Poster(threading.Thread):
    def __init__(self, db: RunsDB, client: StatusClient, wake: threading.Event, stop: threading.Event) -> None:
        super().__init__(name="status-poster", daemon=True)
        self.db, self.client, self.wake, self.stop = db, client, wake, stop

    def run(self) -> None:
        while not self.stop.is_set():
            self.wake.clear()
            try:
                send_due(self.db, self.client)
                with self.db.read() as c:
                    due = runsdb.next_status_due(c)
            except Exception:
                log.exception("status poster: unexpected error; carrying on")
                due = None
            wait = IDLE_WAIT if due is None else min(IDLE_WAIT, max(0.05, due - time.time()))
            self.wake.wait(wait)
