"""One run on this host: check the SHA out, run doit, end it when asked; the same for every engine.

The single-host worker (a thread of the service, the SQLite queue) and a
host worker of the Redis engine (an RQ job on another machine) both call
`run_here`; they differ only in where a cancellation comes from (a row of
the queue, a key in Redis) and in what they do with the outcome. A
cancellation is SIGTERM to doit's process group, which is warmci's own
cancellation (job trees ended, successes kept, results.json written);
SIGKILL follows after `cancel_grace`, then anything still carrying the
run's token is ended.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ci_runner import checkout, doitrun, procs
from ci_runner.config import RepoConfig
from ci_runner.doitrun import Spec

log = logging.getLogger("ci_runner.hostrun")
POLL = 0.2  # how often the cancellation source is asked while doit runs
STOPPING = "stopping"  # the reason a host gives when it is shutting down (the run is queued again)


@dataclass(frozen=True)
class Ran:
    """How a run on this host ended."""

    exit_code: int | None  # doit's; None when doit never started or was killed
    reason: str | None  # why it was ended early: a cancellation's reason, or STOPPING
    checkout_error: str | None = None  # the checkout failed; doit did not start

    @property
    def stopped(self) -> bool:
        return self.reason == STOPPING


def run_here(spec: Spec, repo: RepoConfig, log_file: Path, env: Mapping[str, str], *, git_timeout: float,
             cancel_grace: float, why_end: Callable[[], str | None],
             on_start: Callable[[subprocess.Popen[bytes]], None] = lambda proc: None,
             tick: Callable[[], None] = lambda: None) -> Ran:
    """Check out and run doit; `why_end` is asked every POLL seconds (a reason ends the run),
    `on_start` sees doit's process once started, `tick` is called while it runs."""
    log.info("run %s: %s@%s (%s) starting as %s", spec.run, spec.repo, spec.sha[:7], spec.branch, spec.run_id)
    try:
        checkout.prepare(repo.checkout_dir, repo.clone_url, spec.sha, spec.ref, env=checkout.git_env(env),
                         timeout=git_timeout, clean_ignored=repo.clean_ignored)
    except checkout.CheckoutError as exc:
        return Ran(None, None, str(exc))
    reason = why_end()
    if reason is not None:
        return Ran(None, reason)
    proc = doitrun.start(doitrun.command(repo, spec.filters), env, repo.checkout_dir, log_file)
    on_start(proc)
    code, reason = _watch(spec, repo, proc, cancel_grace, why_end, tick)
    return Ran(code, reason)


def _watch(spec: Spec, repo: RepoConfig, proc: subprocess.Popen[bytes], cancel_grace: float,
           why_end: Callable[[], str | None], tick: Callable[[], None]) -> tuple[int | None, str | None]:
    """Wait for doit; when `why_end` gives a reason, end it. (exit code, the reason or None)."""
    reason: str | None = None
    signalled = 0.0
    created = procs.started(proc.pid) or time.time()
    while True:
        try:
            code = proc.wait(timeout=POLL)
            break
        except subprocess.TimeoutExpired:
            pass
        tick()
        if reason is None:
            reason = why_end()
            if reason is not None:
                log.info("run %s: cancelling doit (pid %s): %s", spec.run, proc.pid, reason)
                procs.signal_group(proc.pid, signal.SIGTERM)
                signalled = time.monotonic()
        elif time.monotonic() - signalled > cancel_grace:
            log.warning("run %s: doit still running %.0f s after SIGTERM; killing", spec.run, cancel_grace)
            procs.signal_group(proc.pid, signal.SIGKILL)
            signalled = float("inf")  # once
    # warmci ends its job trees itself; this is the net for anything a killed doit left behind.
    left = procs.end(procs.members(proc.pid, created, spec.run_id, str(repo.state_dir)), grace=5.0)
    if left:
        log.warning("run %s: ended processes left by doit: %s", spec.run, left)
    return code, reason
