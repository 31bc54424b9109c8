"""The warm image end to end, on a real Docker daemon, with host networking only.

Built from a debootstrapped Debian base (Docker Hub is out of reach) with
the interpreters Debian ships, started with docker-compose from a clone of
this working tree, then: a signed push webhook for the demo (served by
`git daemon` from a local bare repository) becomes a success status at a
loopback fake GitHub; a stop in the middle of a run cancels it cleanly and
the run finishes after the start, with state and history intact; the runner
is updated in place without a rebuild; a stop leaves nothing running.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from testing import github_payloads as gp
from testing.fake_github import FakeGitHub
from testing.git_remote import Remote, demo_remote

from .deploy_env import base_image, docker_daemon, ensure_packages, extra_ca_certs
from .helpers import RUNNER, free_port, git, make_repo, wait_for

# The first test carries the module set-up: on a fresh machine, apt installs, debootstrap and a cold build.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
REPO = "warmci-test/demo"
UID = 10001
IMAGE = "warmci-test:latest"  # one tag for every run, so a warm build reuses Docker's layer cache
HAS_SERVICE = (RUNNER / "ci-runner" / "ci_runner" / "__main__.py").is_file()
needs_service = pytest.mark.skipif(not HAS_SERVICE, reason="ci-runner/ci_runner is absent: no service to deploy yet")
TIMINGS: dict[str, float] = {}


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    port: int
    secret: str
    github: FakeGitHub
    demo: Remote
    runner_src: Path
    runner: Path
    shas: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
        # the runner clone's own wrapper: compose.yaml mounts the checkout it lives in
        proc = subprocess.run([str(self.runner / "docker" / "warmci-compose"), *args], capture_output=True,
                              text=True, env=self.env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            pytest.fail(f"warmci-compose {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                        f"{proc.stderr[-3000:]}")
        return proc

    def container(self) -> str:
        return self.compose("ps", "-q", "warmci").stdout.strip()

    def inspect(self, fmt: str) -> str:
        return subprocess.run(["docker", "inspect", "--format", fmt, self.container()], capture_output=True,
                              text=True, check=True).stdout.strip()

    def exec(self, *cmd: str) -> str:
        proc = subprocess.run(["docker", "exec", self.container(), *cmd], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.load(r)

    def wait_healthy(self, started_after: str = "", timeout: float = 600) -> float:
        t0 = time.monotonic()

        def healthy() -> bool:
            state = json.loads(self.inspect("{{json .State}}"))
            if not state["Running"] and state["Status"] != "restarting":
                pytest.fail(f"the container stopped: {state}\n{self.logs()}")
            return state.get("Health", {}).get("Status") == "healthy" and state["StartedAt"] != started_after

        wait_for(healthy, timeout, "a healthy container")
        return time.monotonic() - t0

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "80", "warmci", check=False).stdout

    def push(self, message: str, files: dict[str, str]) -> str:
        """Commit to the demo, push it to the bare repository, send GitHub's push webhook, signed."""
        sha = self.demo.commit(files, message)
        self.demo.push(sha)
        body, headers = gp.delivery(self.secret, "push", gp.push(REPO, sha, message=message))
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/webhook", data=body, method="POST",
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status in (200, 201, 202), r.read()
        return sha

    def final_status(self, sha: str, timeout: float = 900) -> dict[str, Any]:
        try:
            return self.github.final_status(sha, "warmci", timeout)
        except AssertionError as exc:
            pytest.fail(f"{exc}\n{self.logs()}")

    def page(self, run_url: str) -> dict[str, Any]:
        return self.get(run_url.split(str(self.port), 1)[1])

    def results(self, run_url: str) -> dict[str, Any]:
        """The run's results.json, read inside the container (it is on the state volume)."""
        return json.loads(self.exec("cat", self.page(run_url)["results_file"]))


def snapshot_runner(served: Path, git_url: str, home: Path) -> tuple[Path, Path]:
    """This working tree (uncommitted changes too) as a repository, its bare copy served by git daemon
    (as GitHub would serve it: git's ownership checks do not apply to a network remote), and the
    runner's clone in `home`, owned by the container's uid."""
    src = served / "runner-src"
    files = subprocess.run(["git", "-C", str(RUNNER), "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (RUNNER / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(RUNNER / rel, src / rel)
    make_repo(src)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(served / "runner.git")], check=True)
    git(src, "remote", "add", "origin", str(served / "runner.git"))
    runner = home / "runner"
    subprocess.run(["git", "clone", "-q", f"{git_url}/runner.git", str(runner)], check=True)
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(runner)], check=True)
    return src, runner


def demo_target(tmp: Path) -> Remote:
    """The demo (Playwright on a free port) with the Pythons Debian does not ship made optional."""
    remote = demo_remote(tmp / "git")
    toml = remote.work / "warmci.toml"
    text = toml.read_text().replace('sync = ["uv", "sync", "--locked", "--dev"]',
                                    'sync = ["uv", "sync", "--locked", "--dev"]\noptional = ["3.11", "3.12"]', 1)
    assert 'optional = ["3.11", "3.12"]' in text
    remote.push(remote.commit({"warmci.toml": text}, "ci: 3.11 and 3.12 are optional in the image"))
    return remote


def git_daemon(root: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}",
                             "--listen=127.0.0.1", f"--port={port}", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 30, "git daemon")
    return proc


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    ensure_packages()
    with docker_daemon(tmp_path_factory.mktemp("dockerd") / "dockerd.log"):
        yield


def provision_env(port: int, git_port: int) -> str:
    """/etc/warmci/provision.env exactly as cloud-init would write it from hetzner/provision.py's user data."""
    out = subprocess.run(
        [sys.executable, str(RUNNER / "hetzner" / "provision.py"), "--print-cloud-init", "--ssh-key", "unused",
         "--target-repo", REPO, "--target-clone-url", f"git://127.0.0.1:{git_port}/remote.git", "--pipeline", "",
         "--runner-repo", f"git://127.0.0.1:{git_port}/runner.git", "--runner-ref", "main",
         "--webhook-port", str(port), "--public-url", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True).stdout
    files = {f["path"]: f["content"] for f in yaml.safe_load(out)["write_files"]}
    return str(files["/etc/warmci/provision.env"])


def setup_server(stack: Stack) -> subprocess.CompletedProcess[str]:
    """hetzner/setup-server of the runner checkout, as cloud-init and then the operator run it."""
    return subprocess.run([str(stack.runner / "hetzner" / "setup-server")], capture_output=True, text=True,
                          env=stack.env, timeout=1800, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def stack(daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The operator's path: provision.env from the cloud-init, setup-server (builds; no token yet, so it
    stops there), the token put in the env file, setup-server again (starts, waits until healthy)."""
    tmp = tmp_path_factory.mktemp("e2e")
    t0 = time.monotonic()
    base = base_image("trixie")
    TIMINGS["base image (debootstrap, or cached)"] = time.monotonic() - t0
    demo = demo_target(tmp)
    git_port, port = free_port(), free_port()
    daemon_proc = git_daemon(tmp / "git", git_port)
    # docker/update-runner runs git as the checkout's owner, who must reach it: pytest's tmp is root-only.
    home = Path(tempfile.mkdtemp(prefix="warmci-e2e-runner-"))
    home.chmod(0o755)
    cache = Path.home() / ".cache" / "warmci" / "docker-test-cache"  # downloads only: shared across runs
    cache.mkdir(parents=True, exist_ok=True)
    os.chown(cache, UID, UID)
    etc = tmp / "etc"
    etc.mkdir()
    (etc / "provision.env").write_text(provision_env(port, git_port))
    try:
        runner_src, runner = snapshot_runner(tmp / "git", f"git://127.0.0.1:{git_port}", home)
        with FakeGitHub() as gh:
            env = {k: v for k, v in os.environ.items() if not k.startswith("WARMCI_")}
            env.update(WARMCI_ETC=str(etc), WARMCI_ENV_FILE=str(etc / "warmci.env"),
                       WARMCI_CONFIG_FILE=str(etc / "config.toml"),
                       COMPOSE_PROJECT_NAME=f"warmci-e2e-{uuid.uuid4().hex[:8]}", WARMCI_IMAGE=IMAGE,
                       WARMCI_RUNNER_DIR=str(runner), WARMCI_CACHE=str(cache), WARMCI_HEALTH_INTERVAL="1s",
                       BASE_IMAGE=base, PYTHON_VERSIONS="", NODE_VERSION="debian", EXTRA_CA_CERTS=extra_ca_certs())
            s = Stack(tmp, env, port, "", gh, demo, runner_src, runner)
            try:
                t0 = time.monotonic()
                first = setup_server(s)
                TIMINGS["setup-server: image build"] = time.monotonic() - t0
                assert first.returncode == 0, first.stderr
                assert "set WARMCI_GITHUB_TOKEN in" in first.stderr and not s.container(), first.stderr
                env_file = etc / "warmci.env"
                assert env_file.stat().st_mode & 0o777 == 0o600
                text = env_file.read_text()
                s.secret = text.split("WARMCI_WEBHOOK_SECRET=", 1)[1].split("\n", 1)[0]
                assert len(s.secret) == 64, "setup-server generates the webhook secret"
                env_file.write_text(text.replace("\nWARMCI_GITHUB_TOKEN=\n", "\nWARMCI_GITHUB_TOKEN=ghs-test-token\n")
                                    + f"WARMCI_GITHUB_API={gh.url}\n")
                t0 = time.monotonic()
                second = setup_server(s)
                TIMINGS["setup-server: compose up to healthy"] = time.monotonic() - t0
                assert second.returncode == 0 and "healthy" in second.stderr, second.stderr + s.logs()
                assert f"http://127.0.0.1:{port}/webhook" in second.stderr
                yield s
            finally:
                s.compose("down", "--volumes", "--timeout", "60", check=False)
    finally:
        daemon_proc.terminate()
        daemon_proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
        print("\nwarmci e2e timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()))


def test_image_has_the_toolchains_and_runs_the_runner_bootstrap(stack: Stack) -> None:
    out = stack.exec("bash", "-c", "cat /proc/1/comm; id -u; python3 --version; node --version; pnpm --version; "
                     "uv --version; chromium --version; ls /opt/warmci/runner/.venv/bin/doit; "
                     "git -C /opt/warmci/runner rev-parse HEAD")
    lines = out.strip().splitlines()
    assert lines[0] == "tini", out  # PID 1 reaps orphans
    assert lines[1] == str(UID)
    assert lines[2].startswith("Python 3.13") and lines[3].startswith("v2")
    assert lines[4] == "9.15.9" and lines[5].startswith("uv 0.13.9") and "Chromium" in lines[6]
    assert lines[7] == "/opt/warmci/runner/.venv/bin/doit"  # ./bootstrap ran inside, in the mounted runner
    assert lines[8] == git(stack.runner_src, "rev-parse", "HEAD").strip()
    image_runner = subprocess.run(["docker", "run", "--rm", "--entrypoint", "ls", IMAGE, "-A", "/opt/warmci/runner"],
                                  capture_output=True, text=True, check=True).stdout
    assert image_runner.strip() == ""  # nothing of the runner is baked into the image


@needs_service
def test_push_gets_a_success_status(stack: Stack) -> None:
    t1 = time.monotonic()
    sha = stack.push("docs: a note", {"NOTES.md": "pushed by the deployment test\n"})
    final = stack.final_status(sha)
    TIMINGS["first push to success (cold state)"] = time.monotonic() - t1
    assert final["state"] == "success", (final, stack.logs())
    assert stack.github.statuses(sha)[0]["state"] == "pending"
    assert final["target_url"].startswith(f"http://127.0.0.1:{stack.port}/runs/")
    assert final["repo"] == REPO and final["authorization"] == "Bearer ghs-test-token"
    page = stack.page(final["target_url"])
    assert page["sha"] == sha and page["state"] == "passed", page
    assert stack.results(final["target_url"])["status"] == "passed"
    stack.exec("env", "PYTHONPATH=ci-runner", ".venv/bin/python", "-m", "ci_runner", "queue")  # docs/deploy.md
    stack.shas["first"] = sha


@needs_service
def test_stop_mid_run_cancels_cleanly_and_state_survives(stack: Stack) -> None:
    assert "first" in stack.shas, "needs the first run"
    test_file = next((stack.demo.work / "tests").glob("test_*.py"))
    sha = stack.push("test: one more", {test_file.relative_to(stack.demo.work).as_posix():
                                        test_file.read_text() + "\n\ndef test_added():\n    assert True\n"})
    wait_for(lambda: stack.get("/health")["running"], 120, "the run to start")
    t0 = time.monotonic()
    stack.compose("stop", "--timeout", "120", "warmci")
    TIMINGS["docker stop during a run"] = time.monotonic() - t0
    assert stack.inspect("{{.State.ExitCode}}") == "0", stack.logs()  # not 137: nothing needed SIGKILL
    stopped_at = stack.inspect("{{.State.StartedAt}}")
    stack.compose("start", "warmci")
    stack.wait_healthy(started_after=stopped_at)
    final = stack.final_status(sha, timeout=600)
    assert final["state"] == "success", (final, stack.logs())
    runs = stack.get("/")["runs"]
    assert {r["sha"] for r in runs} >= {stack.shas["first"], sha}, runs  # history kept across the stop
    results = stack.results(final["target_url"])
    by_status: dict[str, set[str]] = {}
    for name, job in results["jobs"].items():
        by_status.setdefault(job["status"], set()).add(name)
    # doit's state survived: only what the changed test file feeds ran again
    assert "test-python-3.13" in by_status.get("passed", set()), by_status
    assert {"build-js", "build-wheel", "playwright-app"} <= by_status.get("up-to-date", set()) | by_status.get(
        "restored", set()), by_status


@needs_service
def test_runner_updates_in_place_without_a_rebuild(stack: Stack) -> None:
    if not stack.container() or stack.inspect("{{.State.Running}}") != "true":
        stack.compose("up", "-d")
        stack.wait_healthy()
    image = stack.inspect("{{.Image}}")
    (stack.runner_src / "RUNNER-UPDATE.md").write_text("a runner change\n")
    git(stack.runner_src, "add", "-A")
    git(stack.runner_src, "commit", "-q", "-m", "runner change")
    git(stack.runner_src, "push", "-q", "origin", "HEAD:main")
    new = git(stack.runner_src, "rev-parse", "HEAD").strip()
    t0 = time.monotonic()
    run = subprocess.run([str(stack.runner / "docker" / "update-runner"), "main"], capture_output=True, text=True,
                         env=stack.env, timeout=900)
    TIMINGS["update-runner"] = time.monotonic() - t0
    assert run.returncode == 0, run.stdout + run.stderr + stack.logs()
    assert f"-> {new[:12]}" in run.stderr and "same image" in run.stderr
    assert stack.exec("git", "-C", "/opt/warmci/runner", "rev-parse", "HEAD").strip() == new
    assert stack.inspect("{{.Image}}") == image
    assert stack.get("/health")["status"] == "ok"
    again = subprocess.run([str(stack.runner / "docker" / "update-runner"), "main"], capture_output=True, text=True,
                           env=stack.env, timeout=300)
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_stop_leaves_nothing_running(stack: Stack) -> None:
    if stack.container():
        stack.compose("stop", "--timeout", "120")
        assert stack.inspect("{{.State.Running}}") == "false"
    stack.compose("down", "--timeout", "60")
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project="
                           f"{stack.env['COMPOSE_PROJECT_NAME']}"], capture_output=True, text=True, check=True)
    assert left.stdout.strip() == ""
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", stack.port)) != 0, "the webhook port still answers"
