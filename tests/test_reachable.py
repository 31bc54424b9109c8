"""job_scripts/reachable.py: a network prerequisite checked up front, failing with the exact reason."""
from __future__ import annotations

import http.server
import subprocess
import sys
import threading

from .helpers import free_port, job_script

reachable = job_script("reachable")


def test_any_http_answer_is_reachable_and_a_refused_port_is_not() -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        assert reachable.check(f"http://127.0.0.1:{srv.server_port}/x") is None
    finally:
        srv.shutdown()
        srv.server_close()
    port = free_port()
    assert "refused" in (reachable.check(f"http://127.0.0.1:{port}/", timeout=5) or "").lower()
    p = subprocess.run([sys.executable, reachable.__file__, f"http://127.0.0.1:{port}/", "--why", "the suite"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.startswith(f"cannot run here: the suite needs http://127.0.0.1:{port}/, which is unreachable")
