"""What the deployment tests need from the machine: Debian packages, a Docker daemon, a base image.

Installs are idempotent and cost one `dpkg-query` when everything is there.
A daemon that was already running is used and left alone; one started here
is stopped at the end of the session, with everything it ran.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .helpers import RUNNER

PACKAGES = ("docker.io", "docker-compose", "debootstrap", "cloud-init", "openssh-client")


def missing_packages(names: tuple[str, ...] = PACKAGES) -> list[str]:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *names],
                         capture_output=True, text=True).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    return [n for n in names if n not in installed]


def ensure_packages(names: tuple[str, ...] = PACKAGES) -> None:
    missing = missing_packages(names)
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(f"the deployment tests need Debian packages {', '.join(missing)}: "
                    f"run them as root (they install them) or `sudo apt-get install {' '.join(missing)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"apt-get install {' '.join(missing)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def docker_ok() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@contextmanager
def docker_daemon(log: Path) -> Iterator[None]:
    """A Docker daemon to talk to: the running one, or one started (and stopped) here.

    Started without the default bridge and without touching iptables: every
    container of the tests uses the host's network, nothing needs NAT.
    """
    if docker_ok():
        yield
        return
    if os.geteuid() != 0:
        pytest.fail("no Docker daemon answers and only root can start one: start dockerd, or run the tests as root")
    with log.open("ab") as out:
        daemon = subprocess.Popen(["dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none"],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not docker_ok():
            if daemon.poll() is not None:
                pytest.fail(f"dockerd exited with {daemon.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"dockerd did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield
    finally:
        daemon.terminate()  # dockerd stops its containers and its containerd
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def base_image(suite: str = "trixie") -> str:
    """A debootstrapped Debian image (Docker Hub is out of reach), built once and cached by the daemon."""
    proc = subprocess.run([str(RUNNER / "docker" / "debootstrap-base"), suite], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"docker/debootstrap-base {suite} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def extra_ca_certs() -> str:
    """Certificates this machine trusts beyond Debian's (a TLS-intercepting proxy's), for the image build."""
    pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        return ""
    debian = set()
    for path in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True):
        debian.update(c.strip() for c in pem.findall(Path(path).read_text(errors="replace")))
    return "\n".join(c for c in pem.findall(bundle.read_text(errors="replace")) if c.strip() not in debian)
