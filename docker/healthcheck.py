"""The image's HEALTHCHECK: GET /health of the service, at the address of its config.

A host worker of the Redis engine (WARMCI_ROLE=worker) has no HTTP port: it
is healthy while its heartbeat file (service.state_dir/worker.heartbeat,
touched with every heartbeat it sends to Redis) is younger than a minute.

Runs with the image's python3 (standard library only), every interval, so it
must stay cheap. Exit 0 healthy, 1 not (the reason on stdout, which
`docker inspect` shows).

`healthcheck.py --wait-idle SECONDS` waits until no run is running (exit 0),
or says what still runs after SECONDS (exit 1); docker/update-runner uses it.
"""
from __future__ import annotations

import json
import os
import sys
import time
import tomllib
import urllib.request

WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def health_url(config_file: str) -> str:
    with open(config_file, "rb") as f:
        service = tomllib.load(f).get("service", {})
    host = WILDCARDS.get(service.get("host", "127.0.0.1"), service.get("host", "127.0.0.1"))
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{int(service.get('port', 8080))}/health"


def worker_health(config_file: str, max_age: float = 60.0) -> dict:
    with open(config_file, "rb") as f:
        state_dir = tomllib.load(f).get("service", {}).get("state_dir", "")
    age = time.time() - os.stat(os.path.join(state_dir, "worker.heartbeat")).st_mtime
    if age > max_age:
        raise RuntimeError(f"the host worker's last heartbeat was {age:.0f} s ago")
    return {"status": "ok", "role": "worker", "heartbeat_age": round(age, 1)}


def health() -> dict:
    url = health_url(os.environ.get("WARMCI_RUNNER_CONFIG", "/etc/warmci/config.toml"))
    with urllib.request.urlopen(url, timeout=4) as resp:
        return json.load(resp)


def wait_idle(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        running = health().get("running")
        if not running:
            return 0
        if time.monotonic() > deadline:
            print(f"still running after {seconds:.0f} s: {json.dumps(running)[:300]}")
            return 1
        time.sleep(2)  # a run takes minutes; /health is polled, not hammered


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["--wait-idle"]:
            return wait_idle(float(argv[1]))
        config = os.environ.get("WARMCI_RUNNER_CONFIG", "/etc/warmci/config.toml")
        body = worker_health(config) if os.environ.get("WARMCI_ROLE") == "worker" else health()
    except Exception as exc:  # every failure is "unhealthy", with its reason
        print(f"unhealthy: {exc}")
        return 1
    print(json.dumps(body)[:500])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
