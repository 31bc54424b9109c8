"""The CI service on the demo, shared by the service's end-to-end tests and the run pages' browser tests.

One service process, one bare git remote of the demo and one loopback fake
of GitHub's API for the whole session: the demo's cold run is paid once.
Each scenario works on a branch of its own, made from the first commit, so
scenarios do not supersede one another. When the session ends the service
is stopped, and must stop cleanly and leave no job process behind.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from testing import github_payloads as gp
from testing.ci_service import Service, ServiceConfig
from testing.fake_github import FakeGitHub
from testing.git_remote import Remote, demo_remote

REPO = "o/demo"
PY_SOURCE = "src/demo_app/table.py"


@dataclass
class World:
    base: Path
    remote: Remote
    first: str
    gh: FakeGitHub
    service: Service
    config: ServiceConfig

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """A commit on top of the first one."""
        self.remote.checkout(self.first)
        return self.remote.commit(files, message)

    def push(self, sha: str, branch: str, message: str = "change") -> int:
        self.remote.push(sha, f"refs/heads/{branch}")
        r = self.service.send("push", gp.push(REPO, sha, branch, message=message))
        assert r.status_code == 202, r.text
        return int(r.json()["run"])

    def results(self, run: dict[str, Any]) -> dict[str, Any]:
        return json.loads(Path(run["results_file"]).read_text())  # type: ignore[no-any-return]

    def py_change(self, tag: str) -> dict[str, str | None]:
        text = (self.remote.work / PY_SOURCE).read_text()
        return {PY_SOURCE: text + f"\n\nCHANGED_BY = {tag!r}\n"}


def warmci_processes(state_dir: Path) -> list[int]:
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("WARMCI_STATE") == str(state_dir) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


@pytest.fixture(scope="session")
def ci_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("ci-e2e")
    remote = demo_remote(base)
    gh = FakeGitHub()
    cfg = ServiceConfig(base / "ci.toml", base / "svc", service={"cancel_grace": 20, "job_statuses": True},
                        repos={REPO: {"clone_url": str(remote.bare), "checkout_dir": base / "checkout",
                                      "state_dir": base / "state", "approval_label": "ok-to-test",
                                      # The approval flow on the warm demo; the sandbox: tests/test_scale.py.
                                      "fork_sandbox": False}})
    service = Service(cfg, gh.url, base / "service.log").start()
    try:
        yield World(base, remote, remote.head(), gh, service, cfg)
        assert service.stop() == 0, service.log_text()[-3000:]
        assert warmci_processes(base / "state") == [], "a stopped service left job processes behind"
    finally:
        service.stop()
        gh.close()
