"""Several hosts on one machine, for the tests and the benchmark of the Redis engine.

A real redis-server, the service (`service.engine = "redis"`) and host
workers (`python -m ci_runner worker`), each with its own checkout and state
dir, on a small real target pushed to a bare git remote. The target's jobs
are cheap but real: `build` writes an output the cache can move between
hosts, `check` fails when told to, `serve` runs a server on a fixed port
(two hosts run it at once: network namespaces), and `hold` waits while a
file exists, so a test can catch a run in the middle.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.targets import free_port, git
from ci_runner import engine
from testing import procs
from testing.ci_service import CI_RUNNER, RUNNER, ServiceConfig, toml_value
from testing.git_remote import Remote

REPO = "o/small"
PY = sys.executable


def pipeline(port: int) -> str:
    step = ("import os, time, urllib.request; "
            f"assert urllib.request.urlopen('http://127.0.0.1:{port}/a.txt').status == 200; "
            "time.sleep(float(os.environ.get('SERVE_SECONDS') or 0))")
    ready = f"http://127.0.0.1:{port}/a.txt"
    build = ("import glob, os; os.makedirs('gen', exist_ok=True); "
             "open('gen/out.txt', 'w').write(''.join(open(p).read() for p in sorted(glob.glob('src/*.txt'))))")
    hold = ("import os, time; h = os.environ.get('HOLD_FILE'); "
            "[time.sleep(0.05) for _ in range(12000) if h and os.path.exists(h)]")
    return f"""
[pipeline]
keyed_env = ["HOLD_FILE", "SERVE_SECONDS"]

[jobs.build]
doc = "concatenate src/ into gen/out.txt"
cmd = ["{PY}", "-c", "{build}"]
inputs = ["src/**"]
outputs = ["gen/out.txt"]

[jobs.check]
doc = "fail when src/flag.txt says fail"
needs = ["build"]
cmd = ["{PY}", "-c", "import sys; sys.exit('fail' in open('gen/out.txt').read())"]

[jobs.serve]
doc = "a server on a fixed port, fetched from (two hosts on one machine run it at once)"
ports = [{port}]
inputs = ["web/**"]
servers = [
  {{ cmd = ["{PY}", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "web"], ready = "{ready}" }},
]
cmd = ["{PY}", "-c", "{step}"]

[jobs.hold]
doc = "wait while HOLD_FILE exists (a test catches a run in the middle)"
inputs = ["hold/**"]
cmd = ["{PY}", "-c", "{hold}"]
"""


def small_remote(base: Path) -> Remote:
    """The small target: a work clone and a bare remote, one commit on main."""
    work = base / "work"
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    remote = Remote(work, base / "remote.git")
    remote.commit({"src/a.txt": "alpha\n", "src/flag.txt": "ok\n", "web/a.txt": "served\n", "hold/n.txt": "0\n",
                   "warmci.toml": pipeline(free_port()), ".gitignore": "gen/\n"}, "the small target")
    git(base, "clone", "-q", "--bare", str(work), str(remote.bare))
    return remote


def commit(remote: Remote, parent: str, files: dict[str, str | None], message: str = "change") -> str:
    """A commit of `files` on `parent`: its SHA."""
    remote.checkout(parent)
    return remote.commit(files, message)


@dataclass
class HostProc:
    """One host worker process, with its own checkout, state dir and config."""

    name: str
    base: Path
    redis_url: str
    bare: Path
    lease: float
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def state_dir(self) -> Path:
        return self.base / "state"

    @property
    def log(self) -> Path:
        return self.base / "worker.log"

    def write_config(self) -> Path:
        cfg = ServiceConfig(self.base / "host.toml", self.base / "svc",
                            service={"engine": "redis", "lease": self.lease, "cancel_grace": 20},
                            repos={REPO: {"clone_url": str(self.bare), "checkout_dir": self.base / "checkout",
                                          "state_dir": self.state_dir}})
        path = cfg.write()
        with open(path, "a") as fh:
            fh.write(f"\n[worker]\nname = {toml_value(self.name)}\n")
        return path

    def start(self) -> HostProc:
        path = self.write_config()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CI_RUNNER), str(RUNNER)]),
               "WARMCI_REDIS_URL": self.redis_url, **self.env}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([PY, "-m", "ci_runner", "worker", "--config", str(path)], env=env,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def alive(self, conn: Any) -> bool:
        """This very process is registered and heartbeating (not a killed predecessor's record)."""
        host = engine.hosts(conn, self.lease).get(self.name)
        return host is not None and self.proc is not None and host.pid == self.proc.pid

    def wait_alive(self, conn: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.alive(conn):
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"host worker {self.name} exited {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"host worker {self.name} never registered:\n{self.log_text()}")
            time.sleep(0.05)  # polling Redis: the worker registers itself there

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill_tree(self) -> list[int]:
        """The host dies: its worker, work horse, doit and every job process, SIGKILL, at once."""
        assert self.proc is not None
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(tree, timeout=10)
        self.proc.wait()
        return [p.pid for p in tree]

    def stop(self, timeout: float = 120) -> int:
        if self.proc is not None and self.proc.poll() is None:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        else:
            children = []
        code = procs.stop(self.proc, timeout)
        if code is None:
            for p in children:  # what the killed worker left: its work horse, doit, the jobs
                try:
                    p.kill()
                except psutil.Error:
                    pass
            raise AssertionError(f"host worker {self.name} did not stop within {timeout} s")
        return code
