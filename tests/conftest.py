"""Fixtures: hermetic tests that fail on leftover processes or listening ports."""
from __future__ import annotations

import os
from collections.abc import Iterator

import psutil
import pytest

from warmci.execute import proc

from .ci_world import ci_world  # noqa: F401 (the CI service on the demo, shared by its test modules)
from .demo_target import demo  # noqa: F401 (the warm demo, shared by the demo test modules)
from .helpers import children, describe
from .small_target import target, tool_env  # noqa: F401 (fixtures shared by the small-target tests)


def _ours(p: psutil.Process, base: str) -> bool:
    """Started by a warmci run of this test session (its state dir is under pytest's basetemp).

    Other warmci runs on the machine are none of this suite's business.
    """
    env = p.environ()
    return proc.TOKEN_VAR in env and env.get("WARMCI_STATE", "").startswith(base)


def _warmci_processes(base: str) -> set[tuple[int, float]]:
    out = set()
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and _ours(p, base):
                out.add((p.pid, p.create_time()))
        except psutil.Error:
            continue
    return out


def _listeners(base: str) -> set[tuple[str, int, int | None]]:
    """Listening sockets of this session's processes: its own children and its warmci jobs."""
    mine = {pid for pid, _ in children()} | {pid for pid, _ in _warmci_processes(base)} | {os.getpid()}
    return {(c.laddr.ip, c.laddr.port, c.pid) for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in mine}


@pytest.fixture(autouse=True)
def no_leftovers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail any test that leaves a child process, a warmci-started process or a new listener."""
    base = str(tmp_path_factory.getbasetemp())
    before_kids, before_tok, before_ports = children(), _warmci_processes(base), _listeners(base)
    yield
    if request.node.get_closest_marker("allow_leftovers"):
        return
    kids = children() - before_kids
    tok = _warmci_processes(base) - before_tok
    ports = {p for p in _listeners(base) - before_ports if p[2] != os.getpid()}
    problems = []
    if kids:
        problems.append("child processes left running:\n" + describe(kids))
    if tok - kids:
        problems.append("warmci-started processes left running:\n" + describe(tok - kids))
    if ports:
        problems.append(f"new listening ports left open: {sorted(ports)}")
    if problems:
        for pid, _ in kids | tok:  # clean up so one leak does not cascade into later tests
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        pytest.fail("\n".join(problems))


@pytest.fixture(autouse=True)
def hermetic_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default state dirs and the tool-version cache go to temporary dirs, never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
