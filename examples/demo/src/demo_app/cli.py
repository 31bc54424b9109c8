"""Command line: ``demo-app --version`` and ``demo-app serve --port N``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from . import DIST_NAME, __version__
from .table import table_payload

# path -> (file name in static/, content type)
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
}


class MissingAssetError(RuntimeError):
    pass


def static_dir() -> Traversable:
    return resources.files("demo_app") / "static"


def load_assets(root: Traversable | None = None) -> dict[str, bytes]:
    """Read every static file up front, so a wheel without app.js fails at start-up."""
    root = static_dir() if root is None else root
    assets: dict[str, bytes] = {}
    for name, _ in STATIC_FILES.values():
        entry = root / name
        if not entry.is_file():
            hint = " (run the JS build: pnpm --filter ./app run build)" if name == "app.js" else ""
            raise MissingAssetError(f"static asset {name!r} not found in {root}{hint}")
        assets[name] = entry.read_bytes()
    return assets


def make_handler(assets: dict[str, bytes], quiet: bool = False) -> type[BaseHTTPRequestHandler]:
    api_body = json.dumps(table_payload()).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = f"{DIST_NAME}/{__version__}"

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            path = self.path.split("?", 1)[0]
            if path in STATIC_FILES:
                name, ctype = STATIC_FILES[path]
                self._send(HTTPStatus.OK, ctype, assets[name])
            elif path == "/api/rows":
                self._send(HTTPStatus.OK, "application/json", api_body)
            elif path == "/healthz":
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n")
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            if not quiet:
                super().log_message(format, *args)

    return Handler


def make_server(
    host: str, port: int, assets: dict[str, bytes], quiet: bool = False
) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(assets, quiet))
    server.daemon_threads = True
    return server


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(host: str, port: int, quiet: bool = False) -> int:
    try:
        assets = load_assets()
    except MissingAssetError as exc:
        print(f"demo-app: error: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        server = make_server(host, port, assets, quiet)
    except OSError as exc:
        print(f"demo-app: error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    bound_host, bound_port = server.server_address[:2]
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"serving on http://{bound_host}:{bound_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("demo-app: stopped", file=sys.stderr, flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo-app", description=__doc__)
    parser.add_argument("--version", action="version", version=f"{DIST_NAME} {__version__}")
    sub = parser.add_subparsers(dest="command")
    p_serve = sub.add_parser("serve", help="serve the table app over HTTP")
    p_serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port, args.quiet)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
