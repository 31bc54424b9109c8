"""Warm affinity: which queued run a free host takes, and why (pure; the dispatcher records the why).

A branch's venvs, node_modules, checkout and doit state are warm on the host
that ran it last, so a free host first takes the oldest queued run whose
branch it ran last. Otherwise it takes the oldest run that cannot go warm
right now: one whose last host is busy or gone, or whose branch no host has
run. A run whose last host is alive and free is left for that host (it is
placed in the same round).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    run: int
    branch: str  # what "ran last" is about: the repository's branch (a pull request's head branch)
    last_host: str | None  # the host of the lane's latest placed run
    last_run: int | None


@dataclass(frozen=True)
class Placement:
    run: int
    host: str
    why: str
    warm: bool


def place(queued: Sequence[Candidate], free: Sequence[str], busy: Mapping[str, int]) -> list[Placement]:
    """Pair free hosts (in the order given: the longest idle first) with queued runs (oldest first).

    `busy` maps each alive, busy host to the run it runs; a host in neither `free` nor `busy` is gone.
    """
    out: list[Placement] = []
    taken: set[int] = set()
    free_now = list(free)
    busy_now = dict(busy)
    for host in free:
        warm = next((c for c in queued if c.run not in taken and c.last_host == host), None)
        if warm is not None:
            why = f"warm: {host} ran {warm.branch} last (run {warm.last_run})"
            out.append(Placement(warm.run, host, why, True))
        else:
            cold = next((c for c in queued if c.run not in taken and c.last_host not in free_now), None)
            if cold is None:
                continue
            out.append(Placement(cold.run, host, f"{_why_not_warm(cold, busy_now)}; {host} was free", False))
            warm = cold
        taken.add(warm.run)
        free_now.remove(host)
        busy_now[host] = warm.run
    return out


def _why_not_warm(c: Candidate, busy: Mapping[str, int]) -> str:
    if c.last_host is None:
        return f"no host has run {c.branch} yet"
    if c.last_host in busy:
        return f"{c.last_host} ran {c.branch} last (run {c.last_run}) but is busy with run {busy[c.last_host]}"
    return f"{c.last_host} ran {c.branch} last (run {c.last_run}) but is gone"
