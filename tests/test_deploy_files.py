"""The deployables checked without running them: hadolint, shellcheck, cloud-init's schema, compose's config."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from .deploy_env import ensure_packages
from .helpers import RUNNER

BIN = RUNNER / ".venv" / "bin"
DOCKERFILE = RUNNER / "docker" / "Dockerfile"
COMPOSE = RUNNER / "docker" / "compose.yaml"
CLOUD_INIT = RUNNER / "hetzner" / "cloud-init.yaml"
ENV_EXAMPLE = RUNNER / ".env.example"


def shell_scripts() -> list[Path]:
    """Every file of the repository that a shell runs: *.sh, or a sh/bash shebang."""
    listed = subprocess.run(["git", "-C", str(RUNNER), "ls-files", "-co", "--exclude-standard", "-z"],
                            capture_output=True, text=True, check=True).stdout.split("\0")
    out = []
    for rel in filter(None, listed):
        path = RUNNER / rel
        if not path.is_file():
            continue
        with path.open("rb") as f:
            head = f.readline(200)
        if rel.endswith(".sh") or re.match(rb"#!\s*(/usr/bin/env\s+)?(/bin/|/usr/bin/)?(ba|da)?sh\b", head):
            out.append(path)
    return sorted(out)


def cloud_init_scripts(text: str) -> list[str]:
    """The runcmd entries of a cloud-config: each one is shell that cloud-init runs with sh."""
    return [c for c in yaml.safe_load(text)["runcmd"] if isinstance(c, str)]


def shellcheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "shellcheck"), "--external-sources", *args], capture_output=True, text=True,
                          input=stdin, cwd=RUNNER)


def test_hadolint_passes_the_dockerfile() -> None:
    run = subprocess.run([str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    bad = subprocess.run([str(BIN / "hadolint"), "-"], input="FROM debian\nRUN cd /tmp && apt-get install x\n",
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "DL3003" in bad.stdout  # the check can fail


def test_shellcheck_passes_every_shell_script() -> None:
    scripts = shell_scripts()
    names = {p.relative_to(RUNNER).as_posix() for p in scripts}
    assert {"bootstrap", ".ci/run", "docker/entrypoint", "docker/start", "docker/update-runner",
            "docker/debootstrap-base", "docker/warmci-compose", "hetzner/setup-server"} <= names, names
    run = shellcheck(*map(str, scripts))
    assert run.returncode == 0, run.stdout + run.stderr
    bad = shellcheck("-", stdin="#!/bin/sh\nrm -rf $1/*\n")
    assert bad.returncode != 0 and "SC2086" in bad.stdout


def test_shellcheck_passes_the_cloud_init_scripts() -> None:
    scripts = cloud_init_scripts(CLOUD_INIT.read_text())
    assert scripts and "ufw --force enable" in scripts[0]
    for script in scripts:
        run = shellcheck("--shell=sh", "--exclude=SC1091", "-", stdin=script)
        assert run.returncode == 0, run.stdout + "\n" + script


def test_cloud_config_passes_cloud_inits_schema() -> None:
    ensure_packages(("cloud-init",))
    run = subprocess.run(["cloud-init", "schema", "--config-file", str(CLOUD_INIT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert CLOUD_INIT.read_text().startswith("#cloud-config\n")


def test_cloud_init_schema_catches_an_unquoted_colon(tmp_path: Path) -> None:
    """buckaroo's bring-up bug: `echo "a: b"` in runcmd parsed as a mapping and broke every command."""
    ensure_packages(("cloud-init",))
    bad = tmp_path / "bad.yaml"
    bad.write_text("#cloud-config\nruncmd:\n  - echo \"status: ok\"\n")
    run = subprocess.run(["cloud-init", "schema", "--config-file", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0 and "runcmd" in run.stdout + run.stderr


def _args(text: str) -> dict[str, str]:
    return dict(re.findall(r"(?m)^ARG (\w+)=(\"[^\"]*\"|\S*)", text))


def test_pins_agree_with_bootstrap_and_env_example() -> None:
    args = {k: v.strip('"') for k, v in _args(DOCKERFILE.read_text()).items()}
    bootstrap = dict(re.findall(r"(?m)^(UV_VERSION|PNPM_VERSION)=(\S+)", (RUNNER / "bootstrap").read_text()))
    assert args["UV_VERSION"] == bootstrap["UV_VERSION"] and args["PNPM_VERSION"] == bootstrap["PNPM_VERSION"]
    compose = dict(re.findall(r"(?m)^\s+(\w+): \$\{\1-(.*)\}$", COMPOSE.read_text()))
    documented = dict(re.findall(r"(?m)^#?(\w+)=(.*)$", ENV_EXAMPLE.read_text()))
    assert compose == args, "the build args of compose.yaml and the Dockerfile's defaults differ"
    for name, default in args.items():
        assert name in documented, f".env.example does not list the build arg {name}"
        assert documented[name] == default, f".env.example says {name}={documented[name]}, the Dockerfile {default}"


def test_env_example_lists_every_variable() -> None:
    documented = set(re.findall(r"(?m)^#?(\w+)=", ENV_EXAMPLE.read_text()))
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    used |= set(re.findall(r"\$\{(WARMCI_\w+):-", (RUNNER / "docker" / "update-runner").read_text()))
    used |= {"WARMCI_WEBHOOK_SECRET", "WARMCI_GITHUB_TOKEN", "WARMCI_GITHUB_API", "WARMCI_ADMIN_TOKEN"}
    assert used - documented == set()
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"#?\w+=", line):
            assert lines[i - 1].startswith("# "), f".env.example: {line} has no one-line meaning above it"


def test_compose_file_as_compose_reads_it(tmp_path: Path) -> None:
    ensure_packages(("docker-compose",))
    env_file = tmp_path / "warmci.env"
    env_file.write_text("WARMCI_WEBHOOK_SECRET=s\nWARMCI_GITHUB_TOKEN=t\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WARMCI_")},
           "WARMCI_ENV_FILE": str(env_file), "COMPOSE_PROJECT_NAME": "warmci-config-test"}
    run = subprocess.run([str(RUNNER / "docker" / "warmci-compose"), "config"], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    svc = yaml.safe_load(run.stdout)["services"]["warmci"]
    assert svc["network_mode"] == "host" and svc["build"]["network"] == "host"
    assert svc["restart"] == "unless-stopped" and svc["stop_grace_period"] == "2m"
    assert svc["shm_size"] in ("2gb", 2147483648, "2147483648")
    mounts = {v["target"] if isinstance(v, dict) else v.split(":")[1]: v for v in svc["volumes"]}
    assert {"/opt/warmci/runner", "/etc/warmci/config.toml", "/var/lib/warmci", "/var/cache/warmci",
            "/srv/warmci"} <= set(mounts)
    assert json.dumps(mounts["/opt/warmci/runner"]).count(str(RUNNER)) == 1


def test_image_start_explains_a_missing_runner_mount(tmp_path: Path) -> None:
    env = {**os.environ, "WARMCI_RUNNER": str(tmp_path / "no-runner")}
    run = subprocess.run([str(RUNNER / "docker" / "start")], capture_output=True, text=True, env=env)
    assert run.returncode == 78
    assert f"no runner checkout at {tmp_path / 'no-runner'}" in run.stderr and "WARMCI_RUNNER_DIR" in run.stderr
