"""A loopback stand-in for the Hetzner Cloud API: real HTTP, state in memory, every request recorded.

It implements the calls hetzner/provision.py makes, in the API's JSON shapes
(the real `hcloud` client parses them), and answers anything else with 404
so an unexpected call fails the test that made it.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorization: str


@dataclass
class FakeHetzner:
    token: str
    calls: list[Call] = field(default_factory=list)
    ssh_keys: list[dict[str, Any]] = field(default_factory=list)
    firewalls: list[dict[str, Any]] = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1001))

    def writes(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.calls if c.method != "GET"]

    # --- the API ---

    def handle(self, call: Call) -> tuple[int, Any]:
        if call.authorization != f"Bearer {self.token}":
            return 401, {"error": {"code": "unauthorized", "message": "unable to authenticate"}}
        parts = call.path.strip("/").split("/")
        if parts[0] != "v1":
            return 404, _err("not_found", "no such path")
        route = (call.method, *parts[1:])
        kinds = {"ssh_keys": self.ssh_keys, "firewalls": self.firewalls, "servers": self.servers}
        if call.method == "GET" and len(parts) == 2 and parts[1] in kinds:
            items = kinds[parts[1]]
            for key in ("name", "fingerprint"):
                if key in call.query:
                    items = [i for i in items if i.get(key) == call.query[key][0]]
            return 200, {parts[1]: items, "meta": {"pagination": {
                "page": 1, "per_page": 50, "previous_page": None, "next_page": None, "last_page": 1,
                "total_entries": len(items)}}}
        if route == ("POST", "ssh_keys"):
            key = {"id": next(self._ids), "name": call.body["name"], "public_key": call.body["public_key"],
                   "fingerprint": _fingerprint(call.body["public_key"]), "labels": call.body.get("labels", {}),
                   "created": "2026-01-01T00:00:00+00:00"}
            self.ssh_keys.append(key)
            return 201, {"ssh_key": key}
        if route == ("POST", "firewalls"):
            fw = {"id": next(self._ids), "name": call.body["name"], "labels": call.body.get("labels", {}),
                  "rules": [_rule(r) for r in call.body.get("rules", [])], "applied_to": [],
                  "created": "2026-01-01T00:00:00+00:00"}
            self.firewalls.append(fw)
            return 201, {"firewall": fw, "actions": []}
        if call.method == "POST" and len(parts) == 5 and parts[1] == "firewalls" and parts[3] == "actions":
            fw = self._find(self.firewalls, int(parts[2]))
            if fw is None:
                return 404, _err("not_found", "firewall not found")
            if parts[4] == "set_rules":
                fw["rules"] = [_rule(r) for r in call.body["rules"]]
            elif parts[4] == "apply_to_resources":
                for res in call.body["apply_to"]:
                    self._attach(fw, self._find(self.servers, res["server"]["id"]))
            else:
                return 404, _err("not_found", "no such action")
            return 201, {"actions": [self._action(f"{parts[4]}")]}
        if route == ("POST", "servers"):
            return self._create_server(call.body)
        if call.method == "GET" and len(parts) == 3 and parts[1] == "actions":
            action = self.actions.get(int(parts[2]))
            if action is None:
                return 404, _err("not_found", "action not found")
            action.update(status="success", progress=100, finished="2026-01-01T00:01:00+00:00")
            return 200, {"action": action}
        return 404, _err("not_found", f"the fake does not implement {call.method} {call.path}")

    def _create_server(self, body: dict[str, Any]) -> tuple[int, Any]:
        if any(s["name"] == body["name"] for s in self.servers):
            return 409, _err("uniqueness_error", "server name is already used")
        sid = next(self._ids)
        server = {
            "id": sid, "name": body["name"], "status": "initializing", "created": "2026-01-01T00:00:00+00:00",
            "labels": body.get("labels", {}), "user_data_seen": body.get("user_data"),
            "server_type": {"id": 1, "name": body["server_type"]},
            "image": {"id": 2, "name": body["image"], "type": "system"},
            "location": {"id": 3, "name": body.get("location")},
            "public_net": {"ipv4": {"id": sid + 1, "ip": "192.0.2.10", "blocked": False, "dns_ptr": "x"},
                           "ipv6": None, "floating_ips": [], "firewalls": []},
            "private_net": [], "volumes": [], "load_balancers": [], "protection": {"delete": False, "rebuild": False},
        }
        self.servers.append(server)
        for ref in body.get("firewalls", []):
            self._attach(self._find(self.firewalls, ref["firewall"]), server)
        return 201, {"server": server, "action": self._action("create_server"), "next_actions": [],
                     "root_password": None}

    def _attach(self, fw: dict[str, Any] | None, server: dict[str, Any] | None) -> None:
        assert fw is not None and server is not None
        server["public_net"]["firewalls"].append({"id": fw["id"], "status": "applied"})
        fw["applied_to"].append({"type": "server", "server": {"id": server["id"]}})

    def _action(self, command: str) -> dict[str, Any]:
        aid = next(self._ids)
        self.actions[aid] = {"id": aid, "command": command, "status": "running", "progress": 0,
                             "started": "2026-01-01T00:00:00+00:00", "finished": None, "resources": [], "error": None}
        return dict(self.actions[aid])

    @staticmethod
    def _find(items: list[dict[str, Any]], ident: int) -> dict[str, Any] | None:
        return next((i for i in items if i["id"] == ident), None)


def _err(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _rule(r: dict[str, Any]) -> dict[str, Any]:
    return {"direction": r["direction"], "protocol": r["protocol"], "port": r.get("port"),
            "source_ips": r.get("source_ips", []), "destination_ips": r.get("destination_ips", []),
            "description": r.get("description")}


def _fingerprint(public_key: str) -> str:
    """As Hetzner computes it (MD5), by ssh-keygen: not by the code under test."""
    out = subprocess.run(["ssh-keygen", "-E", "md5", "-lf", "-"], input=public_key, capture_output=True,
                         text=True, check=True).stdout
    return out.split()[1].removeprefix("MD5:")


@contextmanager
def serve(token: str) -> Iterator[FakeHetzner]:
    fake = FakeHetzner(token=token)

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            call = Call(self.command, parts.path, parse_qs(parts.query), json.loads(raw) if raw else None,
                        self.headers.get("Authorization", ""))
            fake.calls.append(call)
            code, body = fake.handle(call)
            out = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = _do

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
