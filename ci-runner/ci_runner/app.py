"""The HTTP side (Starlette): `POST /webhook`, `GET /health`, and the run pages (ci_runner.pages).

The webhook verifies, persists (idempotently, by delivery id) and answers at
once; everything slow happens in the worker and the poster. Order of checks:
size (413), signature (401), headers (400), JSON (400), then the event.
Nothing is enqueued before the signature is verified.
"""
from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from ci_runner import events, runsdb, signature
from ci_runner.actions import Actions
from ci_runner.config import Config
from ci_runner.intake import Intake
from ci_runner.pages import Pages, summary
from ci_runner.runsdb import RunsDB

log = logging.getLogger("ci_runner.webhook")


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=code)


def _header_ok(value: str | None) -> bool:
    return bool(value) and len(value or "") <= 200 and (value or "").isprintable()


def create_app(config: Config, db: RunsDB, intake: Intake, lifespan: Lifespan[Starlette] | None = None,
               hosts: Callable[[], dict[str, Any]] | None = None) -> Starlette:
    """`hosts` says which host workers are alive (the Redis engine); /health shows it."""
    secret = config.secrets.webhook_secret

    async def read_body(request: Request) -> bytes | None:
        """The raw body, or None when it is over the limit (read no further than that)."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > config.max_body_bytes):
            return None
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                return None
        return bytes(body)

    async def webhook(request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            return _error(413, f"body over the limit of {config.max_body_bytes} bytes (service.max_body_bytes)")
        sig = request.headers.get(signature.HEADER)
        if not signature.verify(secret, body, sig):
            if sig is None and request.headers.get("X-Hub-Signature"):
                return _error(401, "only X-Hub-Signature-256 (HMAC-SHA256) is accepted; the SHA-1 "
                                   "X-Hub-Signature is not")
            return _error(401, "missing or bad X-Hub-Signature-256: the body must be signed with the webhook "
                               "secret (HMAC-SHA256)")
        event = request.headers.get("X-GitHub-Event")
        delivery = request.headers.get("X-GitHub-Delivery")
        if not _header_ok(event) or not _header_ok(delivery):
            return _error(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
        assert event is not None and delivery is not None
        try:
            payload = _payload(body, request.headers.get("content-type", ""))
            action = events.decide(event, payload, config)
        except (ValueError, events.PayloadError) as exc:
            return _error(400, f"bad payload: {exc}")
        reply = await run_in_threadpool(intake.delivery, delivery, event, action)
        log.info("delivery %s (%s): %s", delivery, event, reply.message)
        body_out: dict[str, Any] = {"message": reply.message}
        if reply.run is not None:
            body_out.update(run=reply.run, url=config.run_url(reply.run))
        return JSONResponse(body_out, status_code=reply.code)

    def health(request: Request) -> Response:
        with db.read() as c:
            depth = c.execute("SELECT COUNT(*) FROM runs WHERE state = 'queued'").fetchone()[0]
            waiting = c.execute("SELECT COUNT(*) FROM runs WHERE state = 'waiting'").fetchone()[0]
            unsent = c.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
            running = runsdb.runs(c, "state = 'running'")
            last = runsdb.runs(c, "finished_at IS NOT NULL", order="finished_at DESC", limit=1)
        return JSONResponse({
            "status": "ok",
            "queue_depth": depth,
            "waiting_for_approval": waiting,
            "running": [summary(config, r) for r in running],
            "last_finished": summary(config, last[0]) if last else None,
            "statuses_unsent": unsent,
            "disk_free_bytes": _free(config.state_dir),
            "repos": {r.name: {"disk_free_bytes": _free(r.state_dir)} for r in config.repos.values()},
            **({"engine": "redis", "hosts": hosts()} if hosts else {"engine": "local"}),
        })

    pages = Pages(config, db)
    routes = [
        Route("/webhook", webhook, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        *pages.routes(),
        *Actions(pages, intake).routes(),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _payload(body: bytes, content_type: str) -> Any:
    """JSON, or GitHub's form encoding (`payload=<json>`) when the webhook is set up that way."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", errors="strict"), strict_parsing=False)
        if "payload" not in form:
            raise ValueError("a form-encoded delivery must have a `payload` field")
        try:
            return json.loads(form["payload"][0])
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _free(path: Any) -> int | None:
    """Free bytes on the filesystem of `path` (its nearest existing parent)."""
    from pathlib import Path

    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None

