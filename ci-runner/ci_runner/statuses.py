"""Commit statuses, built by pure functions of a run (posted elsewhere, by the poster).

A run's outcome maps to GitHub's four states: passed -> success, failed ->
failure, errored -> error, cancelled -> error (the description says why:
superseded, cancelled by an operator, the branch deleted). The failed/errored
split (doit's exit codes 1 and 2) is kept all the way to GitHub.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ci_runner.runsdb import Run

GITHUB_STATE = {"passed": "success", "failed": "failure", "errored": "error", "cancelled": "error"}
MAX_DESCRIPTION = 140  # GitHub cuts longer descriptions
FILTERED = "filtered"  # the context suffix of runs with filters
GOOD_JOB = ("passed", "up-to-date", "restored", "skipped", "filtered")


@dataclass(frozen=True)
class CommitStatus:
    state: str  # pending | success | failure | error
    context: str
    description: str
    target_url: str

    def payload(self) -> dict[str, str]:
        return {"state": self.state, "context": self.context, "description": _cut(self.description),
                "target_url": self.target_url}


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 1] + "…"


def _clock(t: float | None) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(t or time.time()))


class StatusBook:
    """The statuses of one service: its context and where its run pages are."""

    def __init__(self, context: str, public_url: str) -> None:
        self.context, self.public_url = context, public_url

    def url(self, run: Run) -> str:
        return f"{self.public_url}/runs/{run.id}"

    def context_of(self, run: Run) -> str:
        """A filtered run (skip=, first=, k=, ...) reports beside the commit's own context, never in it:
        a green that ran only part of the pipeline must not make the commit green."""
        return f"{self.context}/{FILTERED}" if run.doit_filters else self.context

    def _status(self, run: Run, state: str, description: str, context: str | None = None) -> CommitStatus:
        return CommitStatus(state, context or self.context_of(run), _cut(description), self.url(run))

    def queued(self, run: Run, place: int, total: int) -> CommitStatus:
        where = "next in line" if place <= 1 else f"position {place} of {total}"
        return self._status(run, "pending", f"Queued ({where})")

    def waiting(self, run: Run, label: str) -> CommitStatus:
        return self._status(run, "pending", f"Not run: a fork's pull request by @{run.author or 'unknown'} "
                                            f"needs approval (label '{label}' or `ci_runner approve {run.id}`)")

    def started(self, run: Run) -> CommitStatus:
        again = ""
        if run.attempts > 1:
            again = " (again, its host was lost)" if run.host else " (again, after a service restart)"
        where = f" on {run.host}" if run.host else ""
        return self._status(run, "pending", f"Running{where} since {_clock(run.started_at)}{again}")

    def finished(self, run: Run) -> CommitStatus:
        return self._status(run, GITHUB_STATE.get(run.state, "error"), run.detail or run.state)

    def failing(self, run: Run, first: dict[str, Any], seconds: float | None) -> CommitStatus:
        """The run's first failure, posted the moment warmci records it, while the run goes on."""
        job, status = first.get("job", "a job"), first.get("status", "failed")
        where = " (a first pass)" if first.get("where") == "first pass" else ""
        took = f" after {seconds:.1f} s" if seconds is not None else ""
        return self._status(run, "failure", f"Failing: {job} {status}{where}{took}; the run goes on to report "
                                            "every failure")

    def job_groups(self, run: Run, results: dict[str, Any] | None) -> list[CommitStatus]:
        """One status per job kind (`warmci/pytest`, ...): which family failed, at a glance (none for a
        filtered run: its jobs did not all run in full)."""
        if run.doit_filters:
            return []
        jobs = (results or {}).get("jobs") or {}
        groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name, job in jobs.items():
            if isinstance(job, dict):
                groups[str(job.get("kind") or "job")].append((name, str(job.get("status"))))
        out = []
        for kind, members in sorted(groups.items()):
            bad = [n for n, s in members if s not in GOOD_JOB]
            errored = [n for n, s in members if s in ("errored", "error")]
            state = "success" if not bad else ("error" if errored or run.state == "cancelled" else "failure")
            text = f"{len(members)} jobs passed or up to date" if not bad else f"not passed: {', '.join(bad)}"
            out.append(self._status(run, state, text, context=f"{self.context}/{kind}"))
        return out
