"""The CI service as the tests (and the benchmark) run it: a real process on a free loopback port.

`ServiceConfig` writes the TOML; `Service` starts `python -m ci_runner serve`,
waits for /health, sends signed deliveries and stops (or kill -9s) it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.targets import free_port
from testing import github_payloads, procs

RUNNER = Path(__file__).resolve().parent.parent
CI_RUNNER = RUNNER / "ci-runner"
SECRET = "test-webhook-secret-0123456789"
TOKEN = "ghp_testtoken0123456789abcdefghijklmnopqrs"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


@dataclass
class ServiceConfig:
    path: Path
    state_dir: Path
    port: int = field(default_factory=free_port)
    service: dict[str, Any] = field(default_factory=dict)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self) -> Path:
        service = {"host": "127.0.0.1", "port": self.port, "state_dir": self.state_dir,
                   "public_url": "https://ci.example.org", **self.service}
        lines = ["[service]"] + [f"{k} = {toml_value(v)}" for k, v in service.items()]
        for name, table in self.repos.items():
            lines += ["", f'[repos."{name}"]'] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n")
        return self.path


def env(github_api: str, **extra: str) -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CI_RUNNER), str(RUNNER)]),
           "WARMCI_WEBHOOK_SECRET": SECRET, "WARMCI_GITHUB_TOKEN": TOKEN, "WARMCI_GITHUB_API": github_api,
           "WARMCI_ADMIN_TOKEN": ADMIN_TOKEN}
    out.update(extra)
    return out


def cli(config: Path, *args: str, environ: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_runner", *args, "--config", str(config)], capture_output=True,
                          text=True, env=environ or env("http://127.0.0.1:9"), timeout=timeout,
                          stdin=subprocess.DEVNULL)


class Service:
    def __init__(self, config: ServiceConfig, github_api: str, log: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.config, self.github_api, self.log = config, github_api, log
        self.extra_env = extra_env or {}
        self.url = f"http://127.0.0.1:{config.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()

    def start(self, timeout: float = 60) -> Service:
        self.config.write()
        with open(self.log, "ab") as out:
            cmd = [sys.executable, "-m", "ci_runner", "serve", "--config", str(self.config.path)]
            self.proc = subprocess.Popen(cmd, env=env(self.github_api, **self.extra_env), stdout=out,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if self.http.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or not answering yet
                pass
            time.sleep(0.05)  # polling the port: there is nothing to wait on
        raise AssertionError(f"the service did not answer /health in {timeout} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def send(self, event: str, payload: dict[str, Any], delivery_id: str | None = None) -> requests.Response:
        body, headers = github_payloads.delivery(SECRET, event, payload, delivery_id)
        return self.http.post(f"{self.url}/webhook", data=body, headers=headers, timeout=10)

    def post_raw(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return self.http.post(f"{self.url}/webhook", data=body, headers=headers, timeout=10)

    def get(self, path: str) -> Any:
        r = self.http.get(f"{self.url}{path}", timeout=10)
        r.raise_for_status()
        return r.json()

    def run(self, run_id: int) -> dict[str, Any]:
        return self.get(f"/runs/{run_id}")  # type: ignore[no-any-return]

    def wait_run(self, run_id: int, predicate: Any, timeout: float = 300, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if predicate(run):
                return run
            time.sleep(0.05)  # polling over HTTP: the service has no push channel
        raise AssertionError(f"run {run_id}: timed out waiting for {what}; last {self.run(run_id)}\n"
                             f"{self.log_text()[-3000:]}")

    def wait_finished(self, run_id: int, timeout: float = 300) -> dict[str, Any]:
        return self.wait_run(run_id, lambda r: r["finished_at"] is not None, timeout, "it to finish")

    def stop(self, timeout: float = 120) -> int:
        code = procs.stop(self.proc, timeout)
        if code is None:
            raise AssertionError(f"the service did not stop within {timeout} s of SIGTERM")
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def schema_1() -> str:
    """The queue's first schema (a queue of the first release): today's without the columns added since
    (`runsdb._ADDED`) and the indexes on them."""
    from ci_runner import runsdb

    schema = runsdb._SCHEMA
    for name, decl in runsdb._ADDED["runs"].items():
        schema = re.sub(rf",\s*{name} {re.escape(decl)}", "", schema)
    return re.sub(r"CREATE INDEX IF NOT EXISTS runs_by_(branch|host) [^;]*;", "", schema)
