"""The run pages: server-rendered HTML (Jinja2, readable without JavaScript), and JSON for machines.

    GET  /                              the runs, newest first (?branch=B, ?before=ID), and the queue
    GET  /runs/ID                       a run: failed jobs first with their log tails, every job, the
                                        critical path, Gantt charts, versions, files
    GET  /runs/ID/jobs/JOB/log          a job's log (?server=N: one of its servers), live while it runs
    GET  /runs/ID/jobs/JOB/log.txt      the same as plain text, to download
    GET  /runs/ID/output[.txt]          doit's own output for the run
    GET  /runs/ID/files/NAME            ci.log, versions.txt, results.json, run.log (plain text)
    GET  /runs/ID/gantt.png             the Gantt chart with CPU; /runs/ID/compare.png against the previous run
    POST /runs/ID/rerun, /runs/ID/cancel, GET|POST /login, POST /logout: ci_runner.actions

`/` and `/runs/ID` answer HTML when the request's Accept names text/html (a
browser) and JSON otherwise (curl, scripts, the deploy test), as they did
before there were pages; `?format=json|html` chooses, and `/api/runs`,
`/api/runs/ID` are always JSON. Everything shown is escaped (Jinja2
autoescape) and passed through the secrets filter; the CSP forbids inline
script, so even an escaping bug could not run one.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ci_runner import rundata, runsdb
from ci_runner.auth import COOKIE, Auth
from ci_runner.charts import Charts
from ci_runner.config import Config
from ci_runner.errors import RunnerError
from ci_runner.logfiles import Log, LogCache, inside, job_log
from ci_runner.redact import Redactor
from ci_runner.runsdb import Run, RunsDB

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 100
MAX_PAGE = 500
TAIL_LINES = 60
LOG_WINDOW = 10000  # a log page shows its last lines; ?all=1 shows every one
SUMMARY = ("id", "repo", "sha", "branch", "trigger", "state", "detail", "queued_at", "started_at", "finished_at",
           "host", "placement")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def wants_html(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt in ("json", "html"):
        return fmt == "html"
    return "text/html" in request.headers.get("accept", "")


def summary(config: Config, run: Run) -> dict[str, Any]:
    out = {k: getattr(run, k) for k in SUMMARY}
    out["url"] = config.run_url(run.id)
    return out


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "–"


def _firstline(text: str) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= 100 else line[:99] + "…"


def _took(run: Run, now: float) -> float | None:
    if run.started_at is None:
        return None
    return (run.finished_at or now) - run.started_at


class Pages:
    def __init__(self, config: Config, db: RunsDB) -> None:
        self.config, self.db = config, db
        self.redact = Redactor(config.secrets.values())
        self.auth = Auth(config.secrets.admin_token)
        self.results = rundata.ResultsCache()
        self.logs = LogCache(self.redact)
        self.charts = Charts(config.state_dir / "matplotlib")
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                      undefined=jinja2.StrictUndefined, finalize=self._finalize,
                                      trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(clock=_clock, firstline=_firstline)
        public = urlsplit(config.public_url)
        self.public_origin = f"{public.scheme}://{public.netloc}"

    def json(self, data: Any, code: int = 200) -> Response:
        """JSON with every string through the secrets filter."""
        return JSONResponse(self._clean(data), status_code=code, headers=HEADERS)

    def _clean(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {k: self._clean(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self._clean(v) for v in data]
        return data

    def _finalize(self, value: Any) -> Any:
        """Every string a template prints passes the secrets filter (rendered log lines already did)."""
        return self.redact(value) if isinstance(value, str) and not isinstance(value, Markup) else value

    def routes(self) -> list[BaseRoute]:
        run = "/runs/{run_id:int}"
        return [
            Route("/", self.run_list, methods=["GET"]),
            Route("/api/runs", self.run_list_json, methods=["GET"]),
            Route(run, self.run_page, methods=["GET"]),
            Route("/api" + run, self.run_json, methods=["GET"]),
            Route(run + "/jobs/{job}/log", self.job_log_page, methods=["GET"]),
            Route(run + "/jobs/{job}/log.txt", self.job_log_text, methods=["GET"]),
            Route(run + "/output", self.output_page, methods=["GET"]),
            Route(run + "/output.txt", self.output_text, methods=["GET"]),
            Route(run + "/files/{name}", self.run_file, methods=["GET"]),
            Route(run + "/gantt.png", self.gantt, methods=["GET"]),
            Route(run + "/compare.png", self.compare, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

    # -- rendering helpers ---------------------------------------------------------------------
    def _session(self, request: Request) -> dict[str, Any]:
        cookie = request.cookies.get(COOKIE)
        logged_in = self.auth.session_ok(cookie)
        return {"auth_enabled": self.auth.enabled, "logged_in": logged_in,
                "csrf": self.auth.csrf(cookie) if logged_in and cookie else "", "live_url": None, "live_ms": 1000}

    def html(self, request: Request, template: str, code: int = 200, **context: Any) -> Response:
        body = self.env.get_template(template).render({**self._session(request), **context})
        return Response(body, status_code=code, media_type="text/html; charset=utf-8", headers=HEADERS)

    def fail(self, request: Request, status: int, message: str, back: str | None = None) -> Response:
        message = self.redact(message)
        if wants_html(request):
            return self.html(request, "message.html", status, heading=f"{status}: {_REASONS.get(status, '')}",
                             text=message, back=back)
        return self.json({"error": message}, status)

    def _text(self, lines: Any, filename: str, download: bool) -> Response:
        headers = dict(HEADERS)
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{quote(filename)}"'
        return PlainTextResponse("".join(lines), headers=headers)

    def load(self, run_id: int) -> tuple[Run | None, int, int]:
        with self.db.read() as c:
            run = runsdb.run(c, run_id)
            place, total = runsdb.position(c, run_id) if run else (0, 0)
        return run, place, total

    # -- the run list --------------------------------------------------------------------------
    def _list(self, request: Request) -> dict[str, Any]:
        q = request.query_params
        branch = q.get("branch") or ""
        before = int(q["before"]) if q.get("before", "").isdigit() else None
        limit = min(int(q["limit"]), MAX_PAGE) if q.get("limit", "").isdigit() and int(q["limit"]) > 0 else PAGE_SIZE
        where, params = ["1"], list[Any]()
        if branch:
            where.append("branch = ?")
            params.append(branch)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        with self.db.read() as c:
            runs = runsdb.runs(c, " AND ".join(where), tuple(params), order="id DESC", limit=limit + 1)
            active = runsdb.runs(c, "state IN ('running', 'queued', 'waiting')",
                                 order="CASE state WHEN 'running' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, id")
            branches = [r[0] for r in c.execute(
                "SELECT branch FROM runs WHERE branch != '' GROUP BY branch ORDER BY MAX(id) DESC LIMIT 100")]
        older = None
        if len(runs) > limit:
            runs = runs[:limit]
            query = {"before": str(runs[-1].id), **({"branch": branch} if branch else {}),
                     **({"limit": str(limit)} if limit != PAGE_SIZE else {})}
            older = "/?" + urlencode(query)
        queued = [r for r in active if r.state == "queued"]
        places = {r.id: i + 1 for i, r in enumerate(queued)}
        return {"runs": runs, "active": active, "places": places, "branch": branch, "branches": branches,
                "older": older}

    def _counts(self, run: Run) -> dict[str, int]:
        if run.job_counts is not None or run.state in runsdb.ACTIVE:
            return run.counts
        results = self.results.load(run.results_file)  # a run finished before the counts were kept
        counts = (results or {}).get("counts") or {}
        return {str(k): v for k, v in counts.items() if isinstance(v, int)} if isinstance(counts, dict) else {}

    def run_list(self, request: Request) -> Response:
        if not wants_html(request):
            return self.run_list_json(request)
        data = self._list(request)
        now = time.time()
        rows = [(r, self._counts(r), _took(r, now)) for r in data["runs"]]
        context: dict[str, Any] = dict(runs=rows, active=[(r, data["places"].get(r.id, 0)) for r in data["active"]],
                       branch=data["branch"], branches=data["branches"], older=data["older"],
                       live=bool(data["active"]))
        if request.query_params.get("fragment"):
            return self.html(request, "_runs.html", **context)
        if context["live"]:
            query = {**dict(request.query_params), "fragment": "1"}
            context["live_url"] = "/?" + urlencode(query)
            context["live_ms"] = 3000  # a list of up to 500 runs: every 3 s is live enough
        return self.html(request, "runs.html", **context)

    def run_list_json(self, request: Request) -> Response:
        data = self._list(request)
        return self.json({
            "runs": [dict(summary(self.config, r), counts=self._counts(r)) for r in data["runs"]],
            "queue": [dict(summary(self.config, r), position=data["places"].get(r.id)) for r in data["active"]],
            "older": data["older"]})

    # -- one run -------------------------------------------------------------------------------
    def run_json(self, request: Request) -> Response:
        run, place, total = self.load(request.path_params["run_id"])
        if run is None:
            return self.json({"error": f"no run {request.path_params['run_id']}"}, 404)
        out = run.as_dict()
        out.update(url=self.config.run_url(run.id), position=place or None, queued=total, counts=self._counts(run))
        return self.json(out)

    def run_page(self, request: Request) -> Response:
        if not wants_html(request):
            return self.run_json(request)
        run_id = request.path_params["run_id"]
        with self.db.read() as c:
            run = runsdb.run(c, run_id)
            if run is None:
                return self.fail(request, 404, f"no run {run_id}", "/")
            v = rundata.view(c, run, self.results)
            place, total = runsdb.position(c, run_id)
        tails = {}
        for j in v.failed:
            path = job_log(v.run_dir, j.name) if v.run_dir else None
            if path is not None:
                with self.logs.open(path) as log:
                    tails[j.name] = log.tail(TAIL_LINES)
        now = time.time()
        context: dict[str, Any] = dict(
            v=v, tails=tails, position=place, queued=total, took=_took(run, now), now=now,
            files=[n for n in ("ci.log", "versions.txt", "results.json", "run.log") if v.file(n)])
        if request.query_params.get("fragment"):
            return self.html(request, "_run.html", **context)
        if v.live:
            context["live_url"] = f"/runs/{run.id}?fragment=1"
        return self.html(request, "run.html", **context)

    # -- logs ----------------------------------------------------------------------------------
    def _job_log(self, request: Request) -> tuple[Run | None, Path | None, str, bool, str]:
        """(run, the log file, a title, whether it is live, the job's status) or a None path."""
        run, _, _ = self.load(request.path_params["run_id"])
        job = request.path_params["job"]
        server_q = request.query_params.get("server")
        server = int(server_q) if server_q is not None and server_q.isdigit() else None
        if run is None or (server_q is not None and server is None):
            return run, None, "", False, ""
        directory = rundata.run_dir(run)
        path = job_log(directory, job, server) if directory else None
        status = ""
        if path is not None:
            with self.db.read() as c:
                v = rundata.view(c, run, self.results)
            status = next((j.status for j in v.jobs if j.name == job), "")
        title = f"{job}" + (f", server {server}" if server is not None else "")
        live = run.state == "running" and status in ("running", "")
        return run, path, title, live, status

    def job_log_page(self, request: Request) -> Response:
        run, path, title, live, status = self._job_log(request)
        if run is None or path is None:
            return self.fail(request, 404, "no such log in this run (a job's log exists once the job started)",
                             f"/runs/{run.id}" if run else "/")
        server = request.query_params.get("server")
        extra = f"&server={server}" if server else ""
        base = f"/runs/{run.id}/jobs/{quote(request.path_params['job'], safe='')}"
        return self._log_response(request, run, path, title, live, status, download=f"{base}/log.txt"
                                  + (f"?server={server}" if server else ""), poll=f"{base}/log?x=1{extra}",
                                  extra_query=extra)

    def job_log_text(self, request: Request) -> Response:
        run, path, title, live, _ = self._job_log(request)
        if run is None or path is None:
            return self.fail(request, 404, "no such log in this run")
        with self.logs.open(path, live) as log:
            return self._text(log.plain(), f"run-{run.id}-{title.replace(', ', '.').replace(' ', '-')}.log",
                              download=True)

    def _output(self, request: Request) -> tuple[Run | None, Path | None]:
        run, _, _ = self.load(request.path_params["run_id"])
        if run is None or not run.log_file:
            return run, None
        return run, inside(Path(run.log_file), self.config.logs_dir)

    def output_page(self, request: Request) -> Response:
        run, path = self._output(request)
        if run is None or path is None:
            return self.fail(request, 404, "this run has no doit output (it never started)", "/")
        base = f"/runs/{run.id}/output"
        return self._log_response(request, run, path, "doit's output", run.state == "running", run.state,
                                  download=base + ".txt", poll=base + "?x=1", extra_query="")

    def output_text(self, request: Request) -> Response:
        run, path = self._output(request)
        if run is None or path is None:
            return self.fail(request, 404, "this run has no doit output (it never started)")
        with self.logs.open(path, run.state == "running") as log:
            return self._text(log.plain(), f"run-{run.id}-doit.log", download=True)

    def _log_response(self, request: Request, run: Run, path: Path, title: str, live: bool, status: str,
                      download: str, poll: str, extra_query: str) -> Response:
        q = request.query_params
        with self.logs.open(path, live) as log:
            if q.get("format") == "json":
                return self.json(self._log_delta(log, q.get("epoch"), q.get("tick"), q.get("first")))
            shown_from = 0 if q.get("all") else max(0, len(log) - LOG_WINDOW)
            return self.html(request, "log.html", run=run, log=log, title=title, live=live, status=status,
                             download=download, poll=poll, shown_from=shown_from, extra_query=extra_query)

    @staticmethod
    def _log_delta(log: Log, epoch: str | None, tick: str | None, first: str | None) -> dict[str, Any]:
        """The lines that changed since the client's (epoch, tick): it replaces its lines from `from` on."""
        known = epoch == log.epoch and tick is not None and tick.isdigit()
        start = log.term.changed_since(int(tick)) if known and tick is not None else 0
        start = max(start, int(first) if first and first.isdigit() else 0)
        start = min(start, len(log))
        return {"epoch": log.epoch, "tick": log.term.tick, "from": start, "total": len(log), "live": log.live,
                "lines": [str(log.html(i)) for i in range(start, len(log))]}

    def run_file(self, request: Request) -> Response:
        run, _, _ = self.load(request.path_params["run_id"])
        name = request.path_params["name"]
        if run is None:
            return self.fail(request, 404, "no such run")
        with self.db.read() as c:
            v = rundata.view(c, run, self.results)
        path = v.file(name)
        if path is None:
            return self.fail(request, 404, f"no file {name!r} in this run (ci.log, versions.txt, results.json, "
                                           "run.log)")
        if name.endswith(".json"):
            return Response(self.redact(path.read_text(errors="replace")), media_type="application/json",
                            headers=HEADERS)
        with self.logs.open(path, run.state == "running") as log:  # ci.log and run.log: no control codes
            return self._text(log.plain(), f"run-{run.id}-{name}", download=False)

    # -- charts --------------------------------------------------------------------------------
    async def gantt(self, request: Request) -> Response:
        return await self._chart(request, compare=False)

    async def compare(self, request: Request) -> Response:
        return await self._chart(request, compare=True)

    async def _chart(self, request: Request, compare: bool) -> Response:
        run, _, _ = self.load(request.path_params["run_id"])
        if run is None:
            return self.fail(request, 404, "no such run")

        def draw() -> Path | None:
            with self.db.read() as c:
                v = rundata.view(c, run, self.results)
            if v.results is None or run.results_file is None:
                return None
            if not compare:
                return self.charts.gantt(Path(run.results_file))
            if v.previous is None or v.previous.results_file is None:
                return None
            return self.charts.compare(Path(v.previous.results_file), Path(run.results_file))

        try:
            path = await run_in_threadpool(draw)
        except RunnerError as exc:
            return self.fail(request, 500, str(exc))
        if path is None:
            return self.fail(request, 404, "no chart: the run has not finished" + (
                ", or its branch has no earlier finished run" if compare else ""))
        return FileResponse(path, media_type="image/png", headers={**HEADERS, "Cache-Control": "no-cache"})

_REASONS = {400: "bad request", 403: "forbidden", 404: "not found", 409: "conflict", 500: "error"}
