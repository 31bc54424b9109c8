"""A real redis-server (Debian's package) on a free loopback port, for the tests and the benchmark.

Installed when missing, as root on Debian (`apt-get install redis-server`,
what ./bootstrap does too); elsewhere a clear error says how. Nothing is
persisted: the server keeps its data in memory and its files in a temporary
directory, and stops with its owner.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from bench.targets import free_port
from testing import procs


class RedisMissing(RuntimeError):
    pass


def ensure_installed() -> str:
    """The redis-server binary, installed with apt-get when missing and allowed (root on Debian)."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RedisMissing("redis-server is not installed: run `sudo apt-get install redis-server` "
                           "(./bootstrap installs it when run as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"]
    if subprocess.run(install, env=env, capture_output=True, stdin=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, stdin=subprocess.DEVNULL)
        out = subprocess.run(install, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RedisMissing(f"apt-get install redis-server failed: {out.stderr.strip()[-500:]}")
    found = shutil.which("redis-server")
    if not found:
        raise RedisMissing("apt-get installed redis-server, but it is not on PATH")
    return found


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> RedisServer:
        binary = ensure_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.workdir), "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"]
        with open(self.workdir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}: "
                                   f"{(self.workdir / 'redis.log').read_text()[-2000:]}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s") from None
                time.sleep(0.02)  # polling the port: there is nothing to wait on
            finally:
                client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        procs.stop(self.proc)
