"""hetzner/provision.py against a loopback fake of the Hetzner API, through the real hcloud client."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import fake_hetzner
from .deploy_env import ensure_packages
from .helpers import RUNNER, git, make_repo

TOKEN = "hc-test-token-5f2b9c0d7e"  # must never be printed


@pytest.fixture
def api() -> Iterator[fake_hetzner.FakeHetzner]:
    with fake_hetzner.serve(TOKEN) as fake:
        yield fake


@pytest.fixture
def runner_repo(tmp_path: Path) -> Path:
    """Where the server would clone warmci from: a repository with a `main` and a `release` tag."""
    repo = make_repo(tmp_path / "warmci-origin", {"README.md": "warmci\n"})
    git(repo, "tag", "release")
    return repo


@pytest.fixture
def pubkey(tmp_path: Path) -> Path:
    ensure_packages(("openssh-client",))
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "op@laptop", "-f", str(key)], check=True)
    return key.with_suffix(".pub")


def provision(api: fake_hetzner.FakeHetzner | None, *args: str,
              token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCLOUD_")}
    if token is not None:
        env["HCLOUD_TOKEN"] = token
    if api is not None:
        env["HCLOUD_ENDPOINT"] = api.url
    return subprocess.run([sys.executable, str(RUNNER / "hetzner" / "provision.py"), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def args(runner_repo: Path, pubkey: Path, *extra: str) -> list[str]:
    return ["--target-repo", "buckaroo-data/buckaroo", "--pipeline", "buckaroo", "--ssh-public-key", str(pubkey),
            "--runner-repo", str(runner_repo), "--runner-ref", "main", "--webhook-port", "8443", *extra]


def test_creates_key_firewall_and_server_once(api: fake_hetzner.FakeHetzner, runner_repo: Path, pubkey: Path) -> None:
    first = provision(api, *args(runner_repo, pubkey))
    assert first.returncode == 0, first
    assert api.writes() == [("POST", "/v1/ssh_keys"), ("POST", "/v1/firewalls"), ("POST", "/v1/servers")], api.calls
    assert all(c.authorization == f"Bearer {TOKEN}" for c in api.calls)

    key, fw = api.ssh_keys[0], api.firewalls[0]
    assert key["public_key"] == pubkey.read_text().strip()
    assert sorted((r["direction"], r["protocol"], r["port"]) for r in fw["rules"]) == [
        ("in", "tcp", "22"), ("in", "tcp", "8443")]
    assert all(r["source_ips"] == ["0.0.0.0/0", "::/0"] for r in fw["rules"])
    create = next(c.body for c in api.calls if c.path == "/v1/servers" and c.method == "POST")
    assert (create["name"], create["server_type"], create["image"], create["location"]) == (
        "warmci", "ccx33", "debian-13", "fsn1")
    assert create["ssh_keys"] == [key["id"]] and create["firewalls"] == [{"firewall": fw["id"]}]
    user_data = create["user_data"]
    assert user_data.startswith("#cloud-config\n")
    for line in (f"WARMCI_RUNNER_REPO={runner_repo}", "WARMCI_RUNNER_REF=main", "WARMCI_PORT=8443",
                 "WARMCI_TARGET_REPO=buckaroo-data/buckaroo", "WARMCI_PIPELINE=buckaroo"):
        assert f"      {line}\n" in user_data
    assert create["labels"]["managed-by"] == "warmci"
    assert any(c.path.startswith("/v1/actions/") for c in api.calls), "waited for the create action"
    assert "192.0.2.10" in first.stdout

    calls_before = len(api.calls)
    second = provision(api, *args(runner_repo, pubkey))
    assert second.returncode == 0, second
    assert [c.method for c in api.calls[calls_before:]] == ["GET"] * (len(api.calls) - calls_before)
    assert len(api.ssh_keys) == len(api.firewalls) == len(api.servers) == 1
    assert "ok: server warmci" in second.stdout and "would" not in second.stdout
    for out in (first, second):
        assert TOKEN not in out.stdout + out.stderr


def test_dry_run_only_looks(api: fake_hetzner.FakeHetzner, runner_repo: Path, pubkey: Path) -> None:
    run = provision(api, *args(runner_repo, pubkey, "--dry-run"))
    assert run.returncode == 0, run
    assert api.writes() == [] and api.calls, api.calls
    for what in ("would create SSH key", "would create firewall warmci", "would create server warmci (ccx33"):
        assert what in run.stdout, run.stdout


def test_repairs_firewall_rules_and_attachment(api: fake_hetzner.FakeHetzner, runner_repo: Path,
                                               pubkey: Path) -> None:
    assert provision(api, *args(runner_repo, pubkey)).returncode == 0
    api.firewalls[0]["rules"].append({"direction": "in", "protocol": "tcp", "port": "5432",
                                      "source_ips": ["0.0.0.0/0"], "destination_ips": [], "description": "db"})
    api.servers[0]["public_net"]["firewalls"].clear()
    api.calls.clear()
    run = provision(api, *args(runner_repo, pubkey))
    assert run.returncode == 0, run
    fw_id = api.firewalls[0]["id"]
    assert api.writes() == [("POST", f"/v1/firewalls/{fw_id}/actions/set_rules"),
                            ("POST", f"/v1/firewalls/{fw_id}/actions/apply_to_resources")]
    assert sorted(r["port"] for r in api.firewalls[0]["rules"]) == ["22", "8443"]


def test_changed_cloud_init_on_an_existing_server_is_reported(api: fake_hetzner.FakeHetzner, runner_repo: Path,
                                                              pubkey: Path) -> None:
    assert provision(api, *args(runner_repo, pubkey)).returncode == 0
    run = provision(api, *args(runner_repo, pubkey, "--pipeline", ""))
    assert run.returncode == 0 and len(api.servers) == 1
    assert "created with other cloud-init values" in run.stdout


def test_token_only_from_the_environment(api: fake_hetzner.FakeHetzner, runner_repo: Path, pubkey: Path) -> None:
    run = provision(api, *args(runner_repo, pubkey), token=None)
    assert run.returncode == 2 and "HCLOUD_TOKEN is not set" in run.stderr
    assert api.calls == []
    bad = provision(api, *args(runner_repo, pubkey), token="wrong-token-1234")
    assert bad.returncode == 1 and "unable to authenticate" in bad.stderr
    assert "wrong-token-1234" not in bad.stdout + bad.stderr
    assert provision(api, *args(runner_repo, pubkey), "--token", TOKEN).returncode == 2  # no such argument


def test_unreachable_api_is_a_clear_error(runner_repo: Path, pubkey: Path) -> None:
    with fake_hetzner.serve(TOKEN) as gone:
        url = gone.url
    env_api = fake_hetzner.FakeHetzner(token=TOKEN, url=url)  # its port is closed now
    run = provision(env_api, *args(runner_repo, pubkey))
    assert run.returncode == 1 and f"cannot reach the Hetzner API at {url}" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_refuses_a_runner_ref_that_is_not_pushed(api: fake_hetzner.FakeHetzner, runner_repo: Path,
                                                 pubkey: Path) -> None:
    run = provision(api, *args(runner_repo, pubkey, "--runner-ref", "feature-not-pushed"))
    assert run.returncode == 2 and "--runner-ref 'feature-not-pushed' is not a branch or tag" in run.stderr
    assert api.calls == []
    assert provision(api, *args(runner_repo, pubkey, "--runner-ref", "release", "--dry-run")).returncode == 0


def test_unknown_ssh_key_name_lists_the_known_ones(api: fake_hetzner.FakeHetzner, runner_repo: Path,
                                                   pubkey: Path) -> None:
    assert provision(api, *args(runner_repo, pubkey)).returncode == 0
    run = provision(api, "--target-repo", "a/b", "--ssh-key", "nope", "--runner-repo", str(runner_repo))
    assert run.returncode == 2 and "no SSH key named 'nope'" in run.stderr
    assert api.ssh_keys[0]["name"] in run.stderr


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--runner-ref", "main; rm -rf /", "WARMCI_RUNNER_REF='main; rm -rf /' is not a branch, tag or commit"),
    ("--target-repo", "not-a-repo", "WARMCI_TARGET_REPO='not-a-repo' is not owner/name"),
    ("--webhook-port", "22", "--webhook-port 22"),
])
def test_values_that_cloud_init_would_choke_on_are_refused(runner_repo: Path, pubkey: Path, flag: str, value: str,
                                                           message: str) -> None:
    run = provision(None, *args(runner_repo, pubkey), flag, value, "--print-cloud-init")
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_printed_cloud_init_is_valid_cloud_config(runner_repo: Path, pubkey: Path, tmp_path: Path) -> None:
    ensure_packages(("cloud-init",))
    run = provision(None, *args(runner_repo, pubkey, "--public-url", "https://ci.example.org"), "--print-cloud-init",
                    token=None)
    assert run.returncode == 0, run
    assert "WARMCI_PUBLIC_URL=https://ci.example.org\n" in run.stdout
    rendered = tmp_path / "user-data.yaml"
    rendered.write_text(run.stdout)
    schema = subprocess.run(["cloud-init", "schema", "--config-file", str(rendered)], capture_output=True, text=True)
    assert schema.returncode == 0, schema.stdout + schema.stderr
