"""A loopback stand-in for GitHub's commit-status API: real HTTP, every status recorded."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeGitHub:
    token: str
    url: str = ""
    statuses: list[dict[str, Any]] = field(default_factory=list)  # {repo, sha, state, ..., authorization}
    lock: threading.Lock = field(default_factory=threading.Lock)

    def states(self, sha: str) -> list[str]:
        with self.lock:
            return [s["state"] for s in self.statuses if s["sha"] == sha]

    def last(self, sha: str) -> dict[str, Any] | None:
        with self.lock:
            found = [s for s in self.statuses if s["sha"] == sha]
        return found[-1] if found else None


@contextmanager
def serve(token: str, host: str = "127.0.0.1") -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            parts = self.path.strip("/").split("/")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization") != f"Bearer {token}":
                self._reply(401, {"message": "Bad credentials"})
            elif len(parts) == 5 and parts[0] == "repos" and parts[3] == "statuses":
                status = {**json.loads(body), "repo": f"{parts[1]}/{parts[2]}", "sha": parts[4]}
                with fake.lock:
                    fake.statuses.append(status)
                self._reply(201, {"id": len(fake.statuses), **status})
            else:
                self._reply(404, {"message": "Not Found"})

        def _reply(self, code: int, body: dict[str, Any]) -> None:
            out = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((host, 0), Handler)
    fake.url = f"http://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
