"""The run's lifecycle in doit's main process: what happens before the first job and after the last.

- One run per state dir at a time (a lock), because the start of a run ends
  whatever the registry says earlier runs left alive.
- Before and after the run, a snapshot of this state dir's warmci processes
  and their listening ports goes to run.log (to debug back-to-back
  contamination).
- SIGTERM/SIGINT/SIGHUP end every running job's tree within the grace period
  and then raise KeyboardInterrupt, the one interruption doit survives with
  its dependency DB saved, so the successes before the signal are kept.
- The run's deadline is enforced by the same path.
- The exit code comes from the run's outcome (warmci.status), which the
  reporter records here once the results are written.

doit calls `start` and `finish` around its runner (warmci.doitapi.control_runs).
"""
from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from typing import Any

import psutil

from warmci.context import Context
from warmci.errors import WarmciError
from warmci.execute import ports, proc
from warmci.inputs import filestates
from warmci.status import EXIT_SETUP, Status, exit_code

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Run:
    """The state of the run in progress in this process."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.main_pid = os.getpid()
        self.lock_fd: int | None = None
        self.cancelling = False
        self.old_handlers: dict[int, Any] = {}


_current: _Run | None = None


def log(ctx: Context, line: str) -> None:
    os.makedirs(ctx.run_dir, exist_ok=True)
    with open(ctx.run_log, "a") as fh:
        fh.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")


class Lifecycle:
    """The hooks doit's runner is run between (warmci.doitapi.RunHooks)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.outcome: Status | None = None

    def record(self, outcome: Status) -> None:
        """The run's status, from the reporter once results.json is written."""
        self.outcome = outcome

    def start(self) -> None:
        start_run(self.ctx)

    def finish(self, cancelled: bool) -> int:
        end_run(self.ctx)
        filestates.save_all()  # the hashes this run computed: the next no-op only stats
        if cancelled or self.outcome is None:
            # Cancelled, or the reporter never got to the end: nothing may count as passed.
            return exit_code(Status.CANCELLED if cancelled else Status.ERRORED)
        return exit_code(self.outcome)


def start_run(ctx: Context) -> None:
    """Called once in doit's main process before any job is dispatched."""
    global _current
    run = _Run(ctx)
    try:
        _lock(run)
    except WarmciError as exc:
        # Nothing has started and nothing may be written: a concurrent run owns
        # this state dir, its DB and its registry.
        sys.stdout.flush()
        sys.stderr.write(f"warmci: error: {exc}\n")
        raise SystemExit(EXIT_SETUP) from None
    _current = run
    # A run id given again (WARMCI_RUN_ID) must not inherit an earlier cancellation.
    try:
        os.remove(ctx.cancel_marker)
    except FileNotFoundError:
        pass
    log(ctx, f"run {ctx.run_id} (pid {run.main_pid}) target {ctx.target}")
    snapshot(ctx, "before run")
    ended = end_leftovers(ctx)
    for rec, pids in ended:
        log(ctx, f"ended leftover from run {rec.meta.get('run')} (job {rec.meta.get('job')}): pid {rec.pid} "
                 f"`{' '.join(rec.argv)[:200]}`; signalled {pids}")
    for sig in _SIGNALS:
        run.old_handlers[sig] = signal.signal(sig, _on_signal)
    if ctx.deadline:
        # Jobs cap their own timeouts at the deadline; this is the backstop for the
        # run itself (a job stuck outside a command, a dispatch that never ends).
        # An interval timer, not a thread: doit forks its workers after this, and
        # timers, unlike threads, are not carried into a fork.
        run.old_handlers[signal.SIGALRM] = signal.signal(signal.SIGALRM, _deadline_passed)
        signal.setitimer(signal.ITIMER_REAL, max(0.0, float(ctx.deadline) - time.time()) + 5)


def end_run(ctx: Context) -> None:
    """Called once in doit's main process after the last job finished (or the run was cancelled)."""
    global _current
    run = _current
    if run is None or os.getpid() != run.main_pid:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    for sig, handler in run.old_handlers.items():
        signal.signal(sig, handler)
    snapshot(ctx, "after run")
    if run.lock_fd is not None:
        os.close(run.lock_fd)
    _current = None


def _lock(run: _Run) -> None:
    path = os.path.join(run.ctx.state, "run.lock")
    os.makedirs(run.ctx.state, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip()
        os.close(fd)
        raise WarmciError(f"another warmci run ({holder or 'unknown'}) is using the state directory "
                          f"{run.ctx.state}; wait for it, cancel it, or pass another state=DIR") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {run.main_pid}, run {run.ctx.run_id}".encode())
    os.set_inheritable(fd, False)
    run.lock_fd = fd


def end_leftovers(ctx: Context) -> list[tuple[proc.Record, list[int]]]:
    """End every tree the registry says is still alive from an earlier run."""
    registry = proc.Registry(ctx.procs_dir)
    ended = []
    for rec in registry.records():
        if rec.alive():
            ended.append((rec, registry.end(rec)))
        else:
            # The root is gone, but a grandchild carrying its token may not be.
            pids = proc.end_tree(rec.pid, rec.create_time, token=rec.token)
            registry.remove(rec.pid, rec.create_time)
            if pids:
                ended.append((rec, pids))
    return ended


def cancel(ctx: Context, why: str) -> list[int]:
    """Mark the run cancelled and end every job tree it started (all at once, one grace period)."""
    with open(ctx.cancel_marker, "w") as fh:
        fh.write(why + "\n")
    log(ctx, f"cancelling: {why}")
    registry = proc.Registry(ctx.procs_dir)
    mine = [r for r in registry.records() if r.meta.get("run") == ctx.run_id]
    pids = proc.end_trees([(r.pid, r.create_time, r.token, r.pid) for r in mine])
    for r in mine:
        registry.remove(r.pid, r.create_time)
    log(ctx, f"cancelled: ended {len(mine)} job process trees, signalled pids {pids}")
    return pids


def _on_signal(signum: int, frame: Any) -> None:
    run = _current
    if run is None or os.getpid() != run.main_pid:
        # A doit worker (forked after the handler was installed): unwind the
        # job, whose `finally` ends its own process trees.
        raise KeyboardInterrupt
    if run.cancelling:
        return
    run.cancelling = True
    cancel(run.ctx, f"signal {signal.Signals(signum).name} received by pid {run.main_pid}")
    raise KeyboardInterrupt


def _deadline_passed(signum: int, frame: Any) -> None:
    run = _current
    if run is None or os.getpid() != run.main_pid:
        return
    log(run.ctx, "run deadline passed")
    _on_signal(signal.SIGTERM, frame)


def snapshot(ctx: Context, when: str) -> None:
    """Record this state dir's warmci processes (token holders) and the ports they listen on."""
    found: list[psutil.Process] = []
    for p in psutil.process_iter():
        try:
            env = p.environ()
            if proc.TOKEN_VAR in env and env.get("WARMCI_STATE") == ctx.state and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    # The socket table costs ~10 ms: read it only when there is something to report.
    ports_by_pid = ports.ports_by_pid() if found else {}
    lines = []
    for p in found:
        try:
            env = p.environ()
            lines.append(f"  pid {p.pid} job {env.get('WARMCI_JOB', '?')} run {env.get('WARMCI_RUN', '?')} "
                         f"ports {sorted(ports_by_pid.get(p.pid, []))}: {' '.join(p.cmdline())[:160]}")
        except psutil.Error:
            continue
    log(ctx, f"snapshot {when}: {len(lines)} warmci processes")
    if lines:
        with open(ctx.run_log, "a") as fh:
            fh.write("\n".join(lines) + "\n")
