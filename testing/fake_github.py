"""A loopback fake of GitHub's REST API: a real HTTP server that records every request.

The real client (requests + urllib3 Retry) talks to it over TCP, so retries,
backoff and rate-limit headers are exercised for real. Answers can be
scripted: `fail_next(502, times=2)`, or a rate limit with
`fail_next(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": ...})`.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.time() when it arrived
    answered: int = 0


@dataclass
class _Scripted:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


class FakeGitHub:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: list[_Scripted] = []
        self._lock = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                               time.time())
                with fake._lock:
                    scripted = fake._script.pop(0) if fake._script else None
                status = scripted.status if scripted else 201
                payload = (scripted.body if scripted and scripted.body is not None
                           else {"message": "scripted failure"} if scripted else {"id": len(fake.requests) + 1,
                                                                                 **(body or {})})
                data = json.dumps(payload).encode()
                # Recorded before answering: the client may look at `requests` the moment its call returns.
                rec.answered = status
                with fake._lock:
                    fake.requests.append(rec)
                    fake._lock.notify_all()
                self.send_response(status)
                for k, v in (scripted.headers if scripted else {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-github", daemon=True)
        self._thread.start()

    def fail_next(self, status: int, *, times: int = 1, headers: dict[str, str] | None = None,
                  body: Any = None) -> None:
        with self._lock:
            self._script.extend(_Scripted(status, headers or {}, body) for _ in range(times))

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def statuses(self, sha: str | None = None, context: str | None = None) -> list[dict[str, Any]]:
        """Commit statuses GitHub accepted, oldest first: the body plus `repo`, `sha` and `at`."""
        out = []
        with self._lock:
            recorded = list(self.requests)
        for r in recorded:
            parts = r.path.strip("/").split("/")
            if r.method != "POST" or len(parts) != 5 or parts[0] != "repos" or parts[3] != "statuses":
                continue
            if r.answered >= 300 or not isinstance(r.body, dict):
                continue
            if (sha and parts[4] != sha) or (context and r.body.get("context") != context):
                continue
            out.append({**r.body, "repo": f"{parts[1]}/{parts[2]}", "sha": parts[4], "at": r.at,
                        "authorization": r.headers.get("authorization", "")})
        return out

    def wait_for(self, predicate: Callable[[FakeGitHub], Any], timeout: float = 60.0, what: str = "") -> Any:
        """Until `predicate(self)` is truthy (woken by each request; no polling sleep)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                self._lock.release()
                try:
                    value = predicate(self)
                finally:
                    self._lock.acquire()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake GitHub: timed out after {timeout} s waiting for {what or predicate}; "
                                         f"got {[(r.method, r.path, r.answered) for r in self.requests]}")
                self._lock.wait(min(left, 0.5))

    def final_statuses(self, sha: str, context: str) -> list[dict[str, Any]]:
        """Every status for `sha` in `context` that ends a run (a run posts one; not pending, not the early
        `Failing: ...` posted at a run's first failure)."""
        return [s for s in self.statuses(sha, context) if s["state"] != "pending"
                and not s["description"].startswith("Failing: ")]

    def final_status(self, sha: str, context: str, timeout: float = 300.0) -> dict[str, Any]:
        """The first non-pending status for `sha` in `context` that ends its run (not the early `Failing: ...`
        posted at the run's first failure)."""
        def done(gh: FakeGitHub) -> dict[str, Any] | None:
            final = gh.final_statuses(sha, context)
            return final[0] if final else None
        return self.wait_for(done, timeout, f"a final {context} status for {sha[:7]}")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
