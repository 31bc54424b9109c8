"""Create (or find) a warmci server on Hetzner Cloud: SSH key, firewall, server with cloud-init.

    HCLOUD_TOKEN=... ./bootstrap python hetzner/provision.py --target-repo OWNER/NAME \\
        --ssh-public-key ~/.ssh/id_ed25519.pub [--dry-run]

Idempotent: every resource is looked up by name (the SSH key by fingerprint)
first, and only what is missing is created; a second call creates nothing.
`--dry-run` makes only the lookups and prints what it would do.
`--print-cloud-init` prints the user data it would send and needs no token.

The token comes from the environment only (HCLOUD_TOKEN, as for Hetzner's
own `hcloud` CLI), never from an argument, and is never printed;
HCLOUD_ENDPOINT points the client at another API (the tests' fake).
Exit status: 0 done, 1 the API or git said no, 2 bad arguments or environment.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from hcloud import APIException, Client
from hcloud.firewalls import BoundFirewall, FirewallResource, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer
from hcloud.ssh_keys import BoundSSHKey

HERE = Path(__file__).resolve().parent
CLOUD_INIT = HERE / "cloud-init.yaml"
DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
LABELS = {"managed-by": "warmci"}
USER_DATA_LABEL = "warmci-user-data"
ANYWHERE = ["0.0.0.0/0", "::/0"]
# What each value written into /etc/warmci/provision.env may look like: the
# file is sourced by sh on the server, so nothing here may need quoting.
VALUE_FORMS = {
    "WARMCI_RUNNER_REPO": (r"(https://|ssh://|git://|file://|/)[A-Za-z0-9@:/._~+-]+", "a git URL"),
    "WARMCI_RUNNER_REF": (r"[A-Za-z0-9][A-Za-z0-9._/-]*", "a branch, tag or commit"),
    "WARMCI_PORT": (r"[0-9]{2,5}", "a port number"),
    "WARMCI_TARGET_REPO": (r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "owner/name"),
    "WARMCI_TARGET_CLONE_URL": (r"((https|ssh|git)://[A-Za-z0-9@:/._~+-]+)?", "an https, ssh or git URL"),
    "WARMCI_PIPELINE": (r"[A-Za-z0-9_./-]*", "a profile name or path"),
    "WARMCI_PUBLIC_URL": (r"(https?://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._/-]*)?)?", "an http(s) URL"),
}


class UsageError(Exception):
    """Bad arguments or environment: exit 2."""


@dataclass(frozen=True)
class Settings:
    name: str
    server_type: str
    image: str
    location: str
    ssh_key: str | None
    ssh_public_key: Path | None
    port: int
    values: dict[str, str]


def render_user_data(values: dict[str, str], template: str | None = None) -> str:
    """cloud-init.yaml with the provision.env lines set to `values` (each checked first)."""
    text = CLOUD_INIT.read_text() if template is None else template
    for key, value in values.items():
        form, what = VALUE_FORMS[key]
        if not re.fullmatch(form, value):
            raise UsageError(f"{key}={value!r} is not {what} (it is written to a shell-sourced file)")
        text, count = re.subn(rf"(?m)^(\s+){key}=.*$", lambda m, k=key, v=value: f"{m.group(1)}{k}={v}", text)
        if count != 1:
            raise UsageError(f"{CLOUD_INIT}: expected one {key}= line in provision.env, found {count}")
    if len(text.encode()) > 32 * 1024:
        raise UsageError(f"user data is {len(text.encode())} bytes; Hetzner accepts at most 32 KiB")
    return text


def fingerprint(public_key: str) -> str:
    """Hetzner's SSH key fingerprint: MD5 of the key blob, colon-separated."""
    parts = public_key.split()
    if len(parts) < 2:
        raise UsageError("the SSH public key file must hold one line: TYPE BASE64 [COMMENT]")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise UsageError("the SSH public key is not TYPE BASE64 [COMMENT] (its key part is not base64)") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def check_ref(repo: str, ref: str) -> None:
    """cloud-init fails late and far away when the ref is not pushed: fail here instead."""
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return  # a commit cannot be asked for without fetching; the server checks it out or fails
    proc = subprocess.run(["git", "ls-remote", "--exit-code", repo, ref, f"refs/heads/{ref}", f"refs/tags/{ref}"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise UsageError(f"--runner-ref {ref!r} is not a branch or tag of {repo} "
                         f"({proc.stderr.strip() or 'not found'}): push it first, or name one that exists")


def firewall_rules(port: int) -> list[FirewallRule]:
    return [FirewallRule(direction=FirewallRule.DIRECTION_IN, protocol=FirewallRule.PROTOCOL_TCP, port=str(p),
                         source_ips=list(ANYWHERE), description=what)
            for p, what in ((22, "ssh"), (port, "warmci webhook"))]


def _rule_key(rule: FirewallRule) -> tuple[str, str, str | None, tuple[str, ...]]:
    return (rule.direction or "", rule.protocol or "", rule.port, tuple(sorted(rule.source_ips or [])))


class Provisioner:
    """Looks everything up, then creates what is missing (or, dry, says so)."""

    def __init__(self, client: Client, settings: Settings, user_data: str, *, dry_run: bool) -> None:
        self.client, self.s, self.user_data, self.dry = client, settings, user_data, dry_run
        self.user_data_hash = hashlib.sha256(user_data.encode()).hexdigest()[:16]

    def say(self, what: str) -> None:
        print(("would " if self.dry else "") + what, flush=True)

    def ssh_key(self) -> BoundSSHKey | None:
        if self.s.ssh_key:
            key = self.client.ssh_keys.get_by_name(self.s.ssh_key)
            if key is None:
                names = ", ".join(k.name or "" for k in self.client.ssh_keys.get_all()) or "none"
                raise UsageError(f"no SSH key named {self.s.ssh_key!r} in the project (it has: {names}); "
                                 "pass --ssh-public-key FILE to upload one")
            print(f"ok: SSH key {key.name} (id {key.id})")
            return key
        assert self.s.ssh_public_key is not None
        public = self.s.ssh_public_key.read_text().strip()
        key = self.client.ssh_keys.get_by_fingerprint(fingerprint(public))
        if key is not None:
            print(f"ok: SSH key {key.name} (id {key.id}) has the fingerprint of {self.s.ssh_public_key}")
            return key
        name = f"{self.s.name}-{fingerprint(public).replace(':', '')[:8]}"
        self.say(f"create SSH key {name} from {self.s.ssh_public_key}")
        if self.dry:
            return None
        return self.client.ssh_keys.create(name=name, public_key=public, labels=dict(LABELS))

    def firewall(self) -> BoundFirewall | None:
        rules = firewall_rules(self.s.port)
        fw = self.client.firewalls.get_by_name(self.s.name)
        if fw is None:
            self.say(f"create firewall {self.s.name}: inbound TCP 22 and {self.s.port} only")
            if self.dry:
                return None
            return self.client.firewalls.create(name=self.s.name, rules=rules, labels=dict(LABELS)).firewall
        if sorted(map(_rule_key, fw.rules or [])) != sorted(map(_rule_key, rules)):
            self.say(f"set the rules of firewall {fw.name} (id {fw.id}) to inbound TCP 22 and {self.s.port} only")
            if not self.dry:
                for action in fw.set_rules(rules):
                    action.wait_until_finished()
        else:
            print(f"ok: firewall {fw.name} (id {fw.id}) opens TCP 22 and {self.s.port} only")
        return fw

    def server(self, key: BoundSSHKey | None, fw: BoundFirewall | None) -> BoundServer | None:
        server = self.client.servers.get_by_name(self.s.name)
        if server is None:
            self.say(f"create server {self.s.name} ({self.s.server_type}, {self.s.image}, {self.s.location}) "
                     f"with the cloud-init of {CLOUD_INIT.name}")
            if self.dry:
                return None
            assert key is not None and fw is not None
            created = self.client.servers.create(
                name=self.s.name, server_type=ServerType(name=self.s.server_type), image=Image(name=self.s.image),
                location=Location(name=self.s.location), ssh_keys=[key], firewalls=[fw],
                user_data=self.user_data, labels={**LABELS, USER_DATA_LABEL: self.user_data_hash})
            created.action.wait_until_finished()
            return created.server
        print(f"ok: server {server.name} (id {server.id}) exists: {address(server)}")
        if (server.labels or {}).get(USER_DATA_LABEL) != self.user_data_hash:
            print(f"note: server {server.name} was created with other cloud-init values; cloud-init runs once, so "
                  "they stay as they were (rebuild or delete the server to apply them)")
        applied = {f.firewall.id for f in (server.public_net.firewalls if server.public_net else [])}
        if fw is not None and fw.id not in applied:
            self.say(f"apply firewall {fw.name} to server {server.name}")
            if not self.dry:
                for action in fw.apply_to_resources([FirewallResource(type="server", server=server)]):
                    action.wait_until_finished()
        return server

    def run(self) -> int:
        key = self.ssh_key()
        fw = self.firewall()
        server = self.server(key, fw)
        if server is not None:
            ip = address(server)
            print(f"\nserver {self.s.name}: {ip}. cloud-init installs Docker and builds the image (about 10 min):")
            print(f"  ssh root@{ip} tail -f /var/log/cloud-init-output.log /var/log/warmci-setup.log")
            print("then set WARMCI_GITHUB_TOKEN in /etc/warmci/warmci.env there and run "
                  "/opt/warmci/runner/hetzner/setup-server (docs/deploy.md)")
        return 0


def address(server: BoundServer) -> str:
    net = server.public_net
    if net and net.ipv4 and net.ipv4.ip:
        return net.ipv4.ip
    if net and net.ipv6 and net.ipv6.ip:
        return net.ipv6.ip
    return "(no public address yet)"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hetzner/provision.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--target-repo", required=True, help="GitHub repository to run CI for, owner/name")
    p.add_argument("--target-clone-url", default="",
                   help="where the server fetches the target from (default: https://github.com/OWNER/NAME.git)")
    p.add_argument("--pipeline", default="",
                   help="shipped profile or pipeline path (default: the target's warmci.toml)")
    p.add_argument("--name", default="warmci", help="server and firewall name (default: warmci)")
    p.add_argument("--server-type", default="ccx33", help="Hetzner server type (default: ccx33, 8 dedicated vCPU)")
    p.add_argument("--image", default="debian-13", help="OS image (default: debian-13)")
    p.add_argument("--location", default="fsn1", help="location (default: fsn1)")
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--ssh-key", help="name of an SSH key already in the project")
    key.add_argument("--ssh-public-key", type=Path, help="public key file, uploaded unless its fingerprint exists")
    p.add_argument("--webhook-port", type=int, default=8080, help="port of the webhook and run pages (default: 8080)")
    p.add_argument("--public-url", default="", help="URL of the run pages (default: http://<server IPv4>:<port>)")
    p.add_argument("--runner-repo", help="git URL of warmci for the server to clone (default: this checkout's origin)")
    p.add_argument("--runner-ref", default="main", help="branch, tag or commit of warmci to deploy (default: main)")
    p.add_argument("--dry-run", action="store_true", help="look up only; print what would be created")
    p.add_argument("--print-cloud-init", action="store_true", help="print the user data and exit (no token needed)")
    return p.parse_args(argv)


def default_runner_repo() -> str:
    proc = subprocess.run(["git", "-C", str(HERE), "remote", "get-url", "origin"], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise UsageError("this checkout has no 'origin' remote: pass --runner-repo URL "
                         "(where the server clones warmci from)")
    return proc.stdout.strip()


def settings(args: argparse.Namespace) -> Settings:
    if not 1 <= args.webhook_port <= 65535 or args.webhook_port == 22:
        raise UsageError(f"--webhook-port {args.webhook_port}: expected a port from 1 to 65535 other than 22")
    if args.ssh_public_key is not None and not args.ssh_public_key.is_file():
        raise UsageError(f"--ssh-public-key {args.ssh_public_key}: no such file")
    values = {
        "WARMCI_RUNNER_REPO": args.runner_repo or default_runner_repo(),
        "WARMCI_RUNNER_REF": args.runner_ref,
        "WARMCI_PORT": str(args.webhook_port),
        "WARMCI_TARGET_REPO": args.target_repo,
        "WARMCI_TARGET_CLONE_URL": args.target_clone_url,
        "WARMCI_PIPELINE": args.pipeline,
        "WARMCI_PUBLIC_URL": args.public_url,
    }
    return Settings(args.name, args.server_type, args.image, args.location, args.ssh_key, args.ssh_public_key,
                    args.webhook_port, values)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(argv)
        s = settings(args)
        user_data = render_user_data(s.values)
        if args.print_cloud_init:
            sys.stdout.write(user_data)
            return 0
        token = os.environ.get("HCLOUD_TOKEN", "").strip()
        if not token:
            raise UsageError("HCLOUD_TOKEN is not set: create a read & write API token in the Hetzner Cloud console "
                             "(project > Security > API tokens) and export it; it is never taken as an argument")
        check_ref(s.values["WARMCI_RUNNER_REPO"], s.values["WARMCI_RUNNER_REF"])
        endpoint = os.environ.get("HCLOUD_ENDPOINT") or DEFAULT_ENDPOINT
        client = Client(token=token, api_endpoint=endpoint, application_name="warmci-provision", poll_interval=0.5,
                        timeout=60)
        try:
            return Provisioner(client, s, user_data, dry_run=args.dry_run).run()
        except requests.RequestException as exc:
            print(f"provision: cannot reach the Hetzner API at {endpoint} ({type(exc).__name__}); check the "
                  "network (and HCLOUD_ENDPOINT, if set)", file=sys.stderr)
            return 1
    except UsageError as exc:
        print(f"provision: error: {exc}", file=sys.stderr)
        return 2
    except APIException as exc:  # its text is the API's message, never the request's headers
        print(f"provision: Hetzner API error ({exc.code}): {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
