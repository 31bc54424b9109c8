"""The run pages' POSTs: rerun and cancel (the operator CLI's queue operations), log in and out.

Each is refused, and changes nothing, unless ci_runner.auth says the request
may act: the admin token as a bearer header or a form field, or a session
with its CSRF token; never from another site's page.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ci_runner.auth import COOKIE, SESSION_SECONDS
from ci_runner.errors import RunnerError
from ci_runner.intake import Intake
from ci_runner.pages import HEADERS, Pages

MAX_FORM = 16 * 1024


class Actions:
    def __init__(self, pages: Pages, intake: Intake) -> None:
        self.pages, self.intake = pages, intake

    def routes(self) -> list[BaseRoute]:
        run = "/runs/{run_id:int}"
        return [
            Route(run + "/rerun", self.rerun, methods=["POST"]),
            Route(run + "/cancel", self.cancel, methods=["POST"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    async def _form(self, request: Request) -> dict[str, str] | None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return None
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", "") and body:
            return {}
        try:
            return {k: v[0] for k, v in parse_qs(body.decode("utf-8"), max_num_fields=20).items()}
        except (UnicodeDecodeError, ValueError):
            return None

    def _own_origins(self, request: Request) -> tuple[str, ...]:
        return (f"{request.url.scheme}://{request.headers.get('host', '')}", self.pages.public_origin)

    async def _authorized(self, request: Request, form: dict[str, str]) -> str | None:
        """None when the request may change things; else why not."""
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        verdict = self.pages.auth.check(bearer=bearer, form_token=form.get("token"), cookie=request.cookies.get(COOKIE),
                                  csrf=form.get("csrf"), origin=request.headers.get("origin"),
                                  own_origins=self._own_origins(request))
        return None if verdict.ok else verdict.why

    async def rerun(self, request: Request) -> Response:
        return await self._act(request, "rerun")

    async def cancel(self, request: Request) -> Response:
        return await self._act(request, "cancel")

    async def _act(self, request: Request, what: str) -> Response:
        run_id = request.path_params["run_id"]
        back = f"/runs/{run_id}"
        form = await self._form(request)
        if form is None:
            return self.pages.fail(request, 400, "a form of at most 16 KiB, URL-encoded, is expected", back)
        why = await self._authorized(request, form)
        if why is not None:
            return self.pages.fail(request, 403, f"{what} refused: {why}", back)
        op = self.intake.rerun if what == "rerun" else self.intake.cancel
        try:
            reply = await run_in_threadpool(op, run_id)
        except RunnerError as exc:
            known = (await run_in_threadpool(self.pages.load, run_id))[0] is not None
            return self.pages.fail(request, 409 if known else 404, str(exc), back)
        target = f"/runs/{reply.run or run_id}"
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(target, status_code=303, headers=HEADERS)
        url = self.pages.config.run_url(reply.run or run_id)
        return self.pages.json({"message": reply.message, "run": reply.run, "url": url})

    def login_page(self, request: Request) -> Response:
        nxt = request.query_params.get("next", "/")
        return self.pages.html(request, "login.html", next=nxt if _local(nxt) else "/", hours=SESSION_SECONDS // 3600)

    async def login(self, request: Request) -> Response:
        form = await self._form(request) or {}
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") not in self._own_origins(request):
            return self.pages.fail(request, 403, f"refused: the request came from another site ({origin})", "/login")
        if not self.pages.auth.token_ok(form.get("token")):
            return self.pages.fail(request, 403, "wrong admin token" if self.pages.auth.enabled else
                             "log in is off: the service has no admin token (WARMCI_ADMIN_TOKEN)", "/login")
        nxt = form.get("next") or "/"
        resp = RedirectResponse(nxt if _local(nxt) else "/", status_code=303, headers=HEADERS)
        resp.set_cookie(COOKIE, self.pages.auth.new_session(), max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
        return resp

    async def logout(self, request: Request) -> Response:
        form = await self._form(request) or {}
        if await self._authorized(request, form) is not None:
            return self.pages.fail(request, 403, "log out refused: not logged in, or a stale form", "/")
        resp = RedirectResponse("/", status_code=303, headers=HEADERS)
        resp.delete_cookie(COOKIE, path="/")
        return resp



def _local(path: str) -> bool:
    """A redirect target on this site only (no scheme, no host, no `//host`)."""
    return path.startswith("/") and not path.startswith("//") and "\\" not in path and not urlsplit(path).netloc
