"""The bundled demo on a temporary git copy, warm after one cold run, shared by the demo test modules.

Its port is moved to a free one, so a developer's running demo cannot collide
with the tests. Every module that changes the tree restores it and leaves the
pipeline warm for the next one.
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import DEMO, Run, free_port, make_repo, run_doit


@dataclass
class Demo:
    target: Path
    state: Path
    cold: Run

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return run_doit(self.target, self.state, *args, env=env)

    def assert_warm(self) -> None:
        run = self.run()
        assert run.rc == 0 and run.executed == set(), run

    def change(self, rel: str, text: str) -> str:
        path = self.target / rel
        old = path.read_text()
        path.write_text(text)
        return old


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("demo")
    target = make_repo(base / "demo", copy_from=DEMO)
    toml = target / "warmci.toml"
    toml.write_text(toml.read_text().replace("8765", str(free_port())))
    subprocess.run(["git", "-C", str(target), "commit", "-qam", "test port"], check=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})
    state = base / "state"
    cold = run_doit(target, state)
    yield Demo(target, state, cold)
