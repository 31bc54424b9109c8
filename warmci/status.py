"""The one outcome vocabulary: what became of a job, what became of a run, and the exit code.

Every module, results.json, ci.log and the terminal use these values; the
exit code is derived from the run's status and nothing else (doit's own
1/2 split is about its Python exceptions, not about what the job did).
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    PASSED = "passed"          # it ran and passed
    FAILED = "failed"          # its own command said no (a test, lint, build)
    ERRORED = "errored"        # it could not run: missing tool or interpreter, foreign port, server never ready
    TIMED_OUT = "timed-out"    # it hit its timeout or the run's deadline
    CANCELLED = "cancelled"    # the run was cancelled while it ran
    NOT_RUN = "not-run"        # a job it needs did not pass (or the run stopped first)
    SKIPPED = "skipped"        # it decided not to run here (an optional Python version is missing)
    UP_TO_DATE = "up-to-date"  # every input is what it was at its last success
    FILTERED = "filtered"      # not selected in this run (or `doit ignore`)
    RESTORED = "restored"      # its recorded result was restored instead of running it

    @classmethod
    def of(cls, value: object) -> Status | None:
        """The status a results file holds, read leniently: schema 2 files say `error` and `ignored`."""
        if not isinstance(value, str):
            return None
        try:
            return cls(_LEGACY.get(value, value))
        except ValueError:
            return None

    @property
    def ran(self) -> bool:
        """Its command ran in this run (it took time)."""
        return self in _RAN

    @property
    def ok(self) -> bool:
        """It does not make the run fail."""
        return self in _OK


_LEGACY = {"error": "errored", "ignored": "filtered"}
_RAN = frozenset({Status.PASSED, Status.FAILED, Status.ERRORED, Status.TIMED_OUT, Status.CANCELLED,
                  Status.SKIPPED})
_OK = frozenset({Status.PASSED, Status.SKIPPED, Status.UP_TO_DATE, Status.FILTERED, Status.RESTORED})

# The status of a run is one of these four.
RUN_STATUSES = (Status.PASSED, Status.FAILED, Status.ERRORED, Status.CANCELLED)

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_ERRORED = 2
EXIT_SETUP = 3  # bad pipeline file, unknown job, state dir locked: nothing ran
EXIT_CANCELLED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

_EXIT = {Status.PASSED: EXIT_PASSED, Status.FAILED: EXIT_FAILED, Status.ERRORED: EXIT_ERRORED,
         Status.CANCELLED: EXIT_CANCELLED}


def run_outcome(jobs: Iterable[Status], *, run_errors: bool = False) -> Status:
    """The run's status from its jobs': cancelled, else errored, else failed, else passed.

    A job that timed out or did not run counts as failed (not-run only ever
    follows a job that did not pass, whose own status decides first);
    `run_errors` are doit-level errors outside any job.
    """
    seen = set(jobs)
    if Status.CANCELLED in seen:
        return Status.CANCELLED
    if Status.ERRORED in seen or run_errors:
        return Status.ERRORED
    if seen - _OK:
        return Status.FAILED
    return Status.PASSED


def exit_code(run: Status) -> int:
    """The process exit code of a run with this status."""
    try:
        return _EXIT[run]
    except KeyError:
        raise ValueError(f"{run!r} is not a run status; expected one of {', '.join(RUN_STATUSES)}") from None
