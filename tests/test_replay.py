"""`python -m warmci replay`: commits in order with one warm state, each checked against a fresh forced run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import DEMO, RUNNER, free_port, git, make_repo
from .small_target import PIPELINE

# jd reads c/z.txt without declaring it: a wrong skip that only the contamination check can see.
LEAKY = PIPELINE + """
[jobs.jd]
doc = "fail if c/z.txt says fail (an input it does not declare)"
cmd = ["{py}", "-c", "import sys; sys.exit('fail' in open('c/z.txt').read())"]
inputs = ["a/**"]
""".replace("{py}", sys.executable)


def replay(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    p = subprocess.run([sys.executable, "-m", "warmci", "replay", *args], cwd=RUNNER, capture_output=True,
                       text=True, timeout=900, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    out = [line for line in p.stdout.splitlines() if line.endswith("replay.json")]
    report = json.loads(Path(out[-1]).read_text()) if out else {}
    return p, report


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def ran(entry: dict[str, Any]) -> set[str]:
    return {n for n, j in entry["jobs"].items() if j["status"] == "passed"}


def test_replay_runs_each_commit_warm_and_checks_it_fresh(target: Path, tmp_path: Path,
                                                          tool_env: dict[str, str]) -> None:
    commit(target, {"b/y.txt": "still ok\n"}, "b changes")
    commit(target, {"a/x.txt": "two\n"}, "a changes")
    state, out = tmp_path / "state", tmp_path / "out"
    p, report = replay(f"target={target}", f"state={state}", "--last", "3", "--out", str(out), env=tool_env)
    assert p.returncode == 0, p.stderr + p.stdout
    first, second, third = report["commits"]
    assert [c["subject"] for c in report["commits"]] == ["initial", "b changes", "a changes"]
    assert ran(first) == {"ja", "jb", "jc"}
    assert ran(second) == {"jb"} and second["jobs"]["ja"]["status"] == "up-to-date"
    assert second["jobs"]["jb"]["why"] == "b/y.txt changed"
    assert ran(third) == {"ja", "jc"} and third["jobs"]["jb"]["status"] == "up-to-date"
    for c in report["commits"]:
        assert c["check"]["differences"] == [] and ran(c["check"]) == {"ja", "jb", "jc"}, c
        assert c["leftovers"] == [] and c["check"]["leftovers"] == []
    assert report["ok"] is True
    table = (out / "replay.md").read_text()
    assert "| 2 | `" in table and "b changes" in table and "OK: no difference, no leftover" in table
    # The target's own checkout was not touched; the fresh clones and state dirs are gone.
    assert git(target, "log", "-1", "--format=%s").strip() == "a changes" and not git(target, "status", "--short")
    assert not list((state / "replay").glob("fresh-*"))


def test_a_wrong_skip_is_a_difference_and_fails_the_replay(tmp_path: Path, tool_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "leaky", {"a/x.txt": "one\n", "b/y.txt": "ok\n", "c/z.txt": "ok\n",
                                          "warmci.toml": LEAKY, ".gitignore": "gen/\n"})
    commit(repo, {"c/z.txt": "fail\n"}, "c says fail")
    out = tmp_path / "out"
    p, report = replay(f"target={repo}", f"state={tmp_path / 'state'}", "--last", "2", "--check", "1",
                       "--out", str(out), env=tool_env)
    assert p.returncode == 1, p.stderr + p.stdout
    first, second = report["commits"]
    assert "check" not in first  # --check 1: the last commit only
    assert second["jobs"]["jd"]["status"] == "up-to-date"  # the wrong skip
    (diff,) = second["check"]["differences"]
    assert (diff["job"], diff["warm"], diff["fresh"]) == ("jd", "up-to-date", "failed")
    assert diff["warm_reason"] == "up to date" and "exited 1" in diff["fresh_reason"], diff
    assert report["ok"] is False
    table = (out / "replay.md").read_text()
    assert "**jd: warm up-to-date, fresh failed**" in table and "FAILED" in table
    assert (out / "logs" / second["check"]["run_id"] / "jd.log").is_file()  # kept after the fresh state went
    assert "`jd`: warm up-to-date (up to date); fresh failed (" in table


def test_bad_arguments_are_setup_errors(tmp_path: Path, target: Path) -> None:
    not_git = tmp_path / "plain"
    not_git.mkdir()
    p, _ = replay(f"target={not_git}", f"state={tmp_path / 's'}", "--last", "2")
    assert p.returncode == 3 and "is not a git repository" in p.stderr, p.stderr
    p, _ = replay(f"target={target}", f"state={tmp_path / 's'}", "--range", "nonsense")
    assert p.returncode == 3 and "expected A..B" in p.stderr, p.stderr
    p, _ = replay(f"target={target}", "--last", "1")
    assert p.returncode == 3 and "state=DIR" in p.stderr, p.stderr
    p, _ = replay(f"target={target}", f"state={tmp_path / 's'}", "--last", "1", "--check", "some")
    assert p.returncode == 3 and "--check 'some'" in p.stderr, p.stderr


@pytest.mark.slow
def test_replay_on_the_demo(tmp_path: Path) -> None:
    """Two commits of the demo (part of its pipeline: lint, JS build and tests, wheel, smoke test)."""
    repo = make_repo(tmp_path / "demo", copy_from=DEMO)
    toml = repo / "warmci.toml"
    commit(repo, {"warmci.toml": toml.read_text().replace("8765", str(free_port()))}, "test port")
    init = repo / "src" / "demo_app" / "__init__.py"
    commit(repo, {"src/demo_app/__init__.py": init.read_text() + "# a comment\n"}, "a comment")
    jobs = ["lint-python", "test-js", "build-wheel", "smoke-test"]
    p, report = replay(f"target={repo}", f"state={tmp_path / 'state'}", "--last", "2", "--check", "1",
                       "--out", str(tmp_path / "out"), "--", *jobs)
    assert p.returncode == 0, p.stderr + p.stdout
    first, second = report["commits"]
    cold = {"install-python-deps-3.13", "install-js-deps", "build-js", *jobs}
    assert ran(first) == cold
    # A comment in a module: lint, and the wheel's content changed, so its smoke test too.
    assert ran(second) == {"lint-python", "build-wheel", "smoke-test"}, second["jobs"]
    assert "build-wheel.key.json of build-wheel changed" in second["jobs"]["smoke-test"]["why"]
    assert ran(second["check"]) == cold and second["check"]["differences"] == []
    assert report["ok"] is True
