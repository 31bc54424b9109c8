"""The webhook of the real service process on loopback: bad input of every kind, and a bounded fuzz loop.

Nothing unsigned is ever enqueued; every bad delivery gets a 4xx that says
why, every unhandled event a 2xx that says why, and no input makes the
service answer 5xx or die. The repository's clone URL points nowhere, so
the one run that is enqueued (by the replay case) ends at its checkout
with an `error` status — the path a vanished remote takes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_runner import signature
from testing import github_payloads as gp
from testing.ci_service import CI_RUNNER, SECRET, TOKEN, Service, ServiceConfig, cli, env
from testing.fake_github import FakeGitHub

REPO = "o/fuzz"
SHA = "1234567" + "0" * 33
MAX_BODY = 65536


@pytest.fixture(scope="module")
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, gh: FakeGitHub) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("webhook")
    cfg = ServiceConfig(base / "ci.toml", base / "svc", service={"max_body_bytes": MAX_BODY},
                        repos={REPO: {"clone_url": str(base / "no-such-remote.git"), "checkout_dir": base / "co",
                                      "state_dir": base / "st"}})
    svc = Service(cfg, gh.url, base / "service.log").start()
    yield svc
    assert svc.stop() == 0, svc.log_text()[-3000:]


def runs(svc: Service) -> int:
    return len(svc.get("/")["runs"])


def signed(payload: Any, event: str = "push", **headers: str) -> tuple[bytes, dict[str, str]]:
    body, h = gp.delivery(SECRET, event, payload)
    h.update(headers)
    return body, h


def sha1(body: bytes) -> str:
    return "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()


def bad_inputs() -> dict[str, tuple[bytes, dict[str, str], int, str]]:
    push = gp.push(REPO, SHA, "topic")
    body, h = signed(push)
    no_sig = {k: v for k, v in h.items() if k != "X-Hub-Signature-256"}
    return {
        "missing signature": (body, no_sig, 401, "X-Hub-Signature-256"),
        "bad signature": (body, {**h, "X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, "bad"),
        "signed with another secret": (body, {**h, "X-Hub-Signature-256": "sha256=" + hmac.new(
            b"other", body, hashlib.sha256).hexdigest()}, 401, "bad"),
        "SHA-1 only": (body, {**no_sig, "X-Hub-Signature": sha1(body)}, 401, "SHA-1"),
        "signature of another body": (body + b" ", h, 401, "bad"),
        "malformed JSON": (*signed_raw(b'{"ref": "refs/heads/x", '), 400, "malformed JSON"),
        "not UTF-8": (*signed_raw(b'{"a": "\xff\xfe"}'), 400, "bad payload"),
        "deep JSON over the limit": (*signed_raw(b"[" * 100000 + b"]" * 100000), 413, "limit"),
        "deep but small": (*signed_raw(b"[" * 20000 + b"]" * 20000), 400, "bad payload"),
        "oversized body": (*signed(gp.push(REPO, SHA, "x" * (MAX_BODY + 10))), 413, "max_body_bytes"),
        "missing delivery id": (body, {k: v for k, v in h.items() if k != "X-GitHub-Delivery"}, 400,
                                "X-GitHub-Delivery"),
        "missing event": (body, {k: v for k, v in h.items() if k != "X-GitHub-Event"}, 400, "X-GitHub-Event"),
        "a list, not an object": (*signed([push]), 400, "JSON object"),
        "push without a SHA": (*signed({**push, "after": "HEAD"}), 400, "push.after"),
        "unknown event": (*signed({"action": "opened"}, "issues"), 200, "not handled"),
        "unconfigured repository": (*signed(gp.push("someone/else", SHA)), 200, "not configured"),
        "tag push": (*signed(gp.push(REPO, SHA, ref="refs/tags/v1")), 200, "tags are not built"),
        "closed pull request": (*signed(gp.pull_request(REPO, 4, SHA, action="closed"), "pull_request"), 200,
                                "no run to cancel"),
    }


def signed_raw(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json", "X-GitHub-Event": "push",
                  "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature.sign(SECRET, body)}


@pytest.mark.parametrize("case", list(bad_inputs()))
def test_bad_input_gets_a_clear_answer_and_enqueues_nothing(service: Service, case: str) -> None:
    body, headers, code, words = bad_inputs()[case]
    before = runs(service)
    r = service.post_raw(body, headers)
    assert r.status_code == code and words in r.text, (r.status_code, r.text)
    assert runs(service) == before and service.get("/health")["queue_depth"] == 0


def test_a_chunked_body_over_the_limit_is_cut_off(service: Service) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192
    _, headers = signed({})
    r = service.http.post(f"{service.url}/webhook", data=chunks(), headers=headers, timeout=10)
    assert r.status_code == 413


def test_ping_answers_pong_and_a_replayed_delivery_is_not_enqueued_twice(service: Service, gh: FakeGitHub) -> None:
    assert service.send("ping", gp.ping(REPO)).json()["message"] == "pong"
    before = runs(service)
    delivery = str(uuid.uuid4())
    first = service.send("push", gp.push(REPO, SHA, "replayed"), delivery_id=delivery)
    assert first.status_code == 202 and first.json()["url"] == f"https://ci.example.org/runs/{first.json()['run']}"
    again = service.send("push", gp.push(REPO, SHA, "replayed"), delivery_id=delivery)
    assert again.status_code == 200 and "received before" in again.json()["message"]
    assert runs(service) == before + 1
    # The remote does not exist: the run errors at its checkout, with a status saying so.
    final = gh.final_status(SHA, "warmci", timeout=60)
    assert final["state"] == "error" and final["description"].startswith("Checkout failed")
    assert final["target_url"] == first.json()["url"]
    assert TOKEN not in service.log_text() and SECRET not in service.log_text()


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**70, 1.5])
    if kind == 1:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(12)))
    if kind == 2:
        return rng.choice(["refs/heads/main", "0" * 40, REPO, "opened", "synchronize", SHA[:39], "labeled"])
    if kind == 3:
        return rng.randrange(-5, 10**6)
    if kind == 4:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["ref", "after", "repository", "full_name", "action", "number", "pull_request", "head", "sha",
            "deleted", "head_commit", "label", "name", "repo", "user", "login", "zen"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(6))}


def _break(rng: random.Random, payload: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A valid payload with one field the decision needs made invalid (removed, retyped or junk)."""
    payload = json.loads(json.dumps(payload))
    node = payload
    for key in path[:-1]:
        node = node[key]
    choice = rng.randrange(4)
    if choice == 0:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = [None, 17, ["x"], "".join(rng.choice("xyz!/ ") for _ in range(rng.randrange(1, 30)))][choice]
    return payload


def test_fuzz_no_5xx_no_crash_nothing_enqueued(service: Service) -> None:
    rng = random.Random(20261201)
    before = runs(service)
    valid_push = gp.push(REPO, "abcdef1" + "0" * 33, "fuzz")
    valid_pr = gp.pull_request(REPO, 9, "abcdef2" + "0" * 33, head_repo="evil/fuzz", author="evil")
    essential = [("push", valid_push, ("after",)), ("push", valid_push, ("repository",)),
                 ("push", valid_push, ("ref",)), ("pull_request", valid_pr, ("pull_request", "head", "sha")),
                 ("pull_request", valid_pr, ("pull_request", "head")), ("pull_request", valid_pr, ("action",)),
                 ("pull_request", valid_pr, ("repository", "full_name"))]
    codes: dict[int, int] = {}
    for i in range(300):
        mode = i % 4
        if mode == 0:  # junk bytes, junk or missing signature
            body = rng.randbytes(rng.randrange(0, 3000))
            headers = {"X-GitHub-Event": rng.choice(["push", "pull_request", "ping", "x\u00e9"]),
                       "X-GitHub-Delivery": str(uuid.uuid4()),
                       rng.choice(["X-Hub-Signature-256", "X-Hub-Signature", "X-Junk"]):
                           rng.choice(["", "sha256=", "sha256=" + rng.randbytes(32).hex(), "md5=abc", "\u00ff"])}
        elif mode == 1:  # a valid payload, signed, then its signature or body tampered with
            body, headers = signed(valid_push)
            if rng.random() < 0.5:
                body = body.replace(b"fuzz", b"fuzZ", 1)
            else:
                headers["X-Hub-Signature-256"] = "sha256=" + rng.randbytes(32).hex()
        elif mode == 2:  # signed random JSON under a random event
            body, headers = signed(_random_json(rng), rng.choice(["push", "pull_request", "ping", "create"]))
        else:  # signed, GitHub's shape, one needed field broken
            event, payload, path = rng.choice(essential)
            body, headers = signed(_break(rng, payload, path), event)
        r = service.post_raw(body, headers)
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
        assert r.status_code < 500, (i, mode, r.status_code, r.text, body[:200])
    assert set(codes) <= {200, 400, 401, 413}, codes
    assert codes.get(401, 0) >= 140 and codes.get(400, 0) >= 40, codes  # the loop did reach both checks
    health = service.get("/health")
    assert health["status"] == "ok" and health["queue_depth"] == 0 and health["waiting_for_approval"] == 0
    assert runs(service) == before


def test_health_reports_the_queue_and_free_disk(service: Service) -> None:
    health = service.get("/health")
    assert set(health) >= {"queue_depth", "running", "last_finished", "disk_free_bytes", "repos"}
    assert health["disk_free_bytes"] > 0 and health["repos"][REPO]["disk_free_bytes"] > 0
    r = service.http.get(f"{service.url}/runs/999999", timeout=5)
    assert r.status_code == 404 and "no run 999999" in r.text


def serve_alone(config: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_runner", "serve", "--config", str(config)], env=environ,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=CI_RUNNER)


def test_the_service_refuses_to_start_without_a_secret_or_with_a_bad_config(tmp_path: Path) -> None:
    cfg = ServiceConfig(tmp_path / "ci.toml", tmp_path / "svc", repos={REPO: {
        "clone_url": "https://github.com/o/fuzz.git", "checkout_dir": tmp_path / "co", "state_dir": tmp_path / "st"}})
    cfg.write()
    no_secret = {k: v for k, v in env("http://127.0.0.1:9").items() if k != "WARMCI_WEBHOOK_SECRET"}
    p = serve_alone(cfg.path, no_secret)
    assert p.returncode == 1 and "WARMCI_WEBHOOK_SECRET: is not set" in p.stderr and "unsigned" in p.stderr, p.stderr
    with socket.socket() as s:  # nothing was left listening
        assert s.connect_ex(("127.0.0.1", cfg.port)) != 0
    cfg.service = {"workers": "two"}
    cfg.write()
    p = serve_alone(cfg.path, env("http://127.0.0.1:9"))
    assert p.returncode == 1 and "service.workers: expected int" in p.stderr, p.stderr
    assert TOKEN not in p.stderr + p.stdout and SECRET not in p.stderr + p.stdout


def test_a_port_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        cfg = ServiceConfig(tmp_path / "ci.toml", tmp_path / "svc", port=held.getsockname()[1], repos={REPO: {
            "clone_url": "https://github.com/o/fuzz.git", "checkout_dir": tmp_path / "co",
            "state_dir": tmp_path / "st"}})
        cfg.write()
        p = serve_alone(cfg.path, env("http://127.0.0.1:9"))
    assert p.returncode == 1 and f"cannot listen on 127.0.0.1:{cfg.port}" in p.stderr, p.stderr


def test_the_cli_without_a_config_says_how_to_give_one(tmp_path: Path) -> None:
    environ = {k: v for k, v in env("http://127.0.0.1:9").items() if k != "WARMCI_RUNNER_CONFIG"}
    p = subprocess.run([sys.executable, "-m", "ci_runner", "queue"], env=environ, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and "--config FILE" in p.stderr
    p = cli(tmp_path / "missing.toml", "queue")
    assert p.returncode == 1 and "does not exist" in p.stderr
