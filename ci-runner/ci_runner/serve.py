"""`python -m ci_runner serve`: the HTTP app, the worker(s) and the status poster in one process.

Start-up order: config (every bad value an error naming its key), the
listening socket and the state dir's lock (a second service on the same
queue would run every run twice), then the app and the poster; crash
recovery runs beside them and the workers start when it is done.
SIGTERM/SIGINT stop uvicorn; the running run is ended and put back in the
queue, so a stopped service leaves no process behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from ci_runner import doitrun, redact
from ci_runner.app import create_app
from ci_runner.config import Config
from ci_runner.errors import RunnerError
from ci_runner.github import RequestsGitHub
from ci_runner.intake import Intake
from ci_runner.poster import Poster
from ci_runner.prune import prune
from ci_runner.recovery import recover
from ci_runner.runsdb import RunsDB
from ci_runner.worker import Worker

log = logging.getLogger("ci_runner")


def setup_logging(config: Config) -> None:
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install(redact.Redactor(config.secrets.values()))


def bind(config: Config) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets that say they are TCP, and with Nagle on
    # every keep-alive response after the first waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise RunnerError(f"{config.path}: service.host/service.port: cannot listen on {config.host}:"
                          f"{config.port}: {exc.strerror}; choose a free port or stop what holds it") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def lock_state_dir(config: Config) -> int:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    path = config.state_dir / "service.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 100).decode(errors="replace").strip()
        os.close(fd)
        raise RunnerError(f"another ci-runner ({holder or 'unknown pid'}) serves the queue in {config.state_dir}; "
                          "stop it first, or give this one another service.state_dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}".encode())
    os.set_inheritable(fd, False)
    return fd


def check_concurrency(config: Config) -> None:
    """Two runs at once on this machine need network namespaces for jobs with ports (warmci.execute.netns)."""
    if config.workers > 1:
        why = doitrun.namespaces_unavailable()
        if why:
            raise RunnerError(f"{config.path}: service.workers = {config.workers}, but jobs with ports cannot get "
                              f"a network namespace of their own here ({why}): two runs would fight over the "
                              "pipeline's ports. Set service.workers = 1, or run the service as root")


def serve(config: Config) -> int:
    setup_logging(config)
    sock = bind(config)
    lock_state_dir(config)
    db = RunsDB(config.db_file)
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    work, post, stop = threading.Event(), threading.Event(), threading.Event()

    def notify() -> None:
        work.set()
        post.set()

    client = RequestsGitHub(config.secrets.github_api, config.secrets.github_token)
    intake = Intake(db, config, notify)
    poster = Poster(db, client, post, stop)
    workers: list[threading.Thread]
    hosts = None
    if config.engine == "redis":  # the runs go to host workers (docs/scale.md); nothing runs here
        from ci_runner.dispatch import Dispatcher

        dispatcher = Dispatcher(db, config, work, stop, post)
        workers, hosts = [dispatcher], dispatcher.hosts_view
    else:
        check_concurrency(config)
        workers = [Worker(db, config, work, stop, post, n) for n in range(config.workers)]

    def boot() -> None:
        """Crash recovery can wait `cancel_grace` for a dead run's doit: the webhook answers meanwhile."""
        try:
            recover(db, config)
        except Exception:
            log.exception("recovery failed; starting the workers anyway")
        try:
            prune(db, config)
        except Exception:
            log.exception("pruning old runs failed; the workers try again after each run")
        if not stop.is_set():
            for w in workers:
                w.start()

    booting = threading.Thread(target=boot, name="recovery", daemon=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        poster.start()
        booting.start()
        log.info("ci-runner serving on %s:%s (%d repositories, %s); queue %s", config.host, config.port,
                 len(config.repos), "runs go to host workers through Redis" if config.engine == "redis"
                 else f"{len(workers)} worker(s)", config.db_file)
        yield
        log.info("stopping: ending the running run (if any) and putting it back in the queue")
        stop.set()
        work.set()
        booting.join(timeout=config.cancel_grace + 60)
        for w in workers:
            if w.is_alive():
                w.join(timeout=config.cancel_grace + 60)
        post.set()
        poster.join(timeout=30)  # statuses it could not send stay in the outbox for the next start

    app = create_app(config, db, intake, lifespan, hosts)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=10))
    # uvicorn re-raises the SIGTERM/SIGINT it handled once it is done; a requested stop is a clean exit (0).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    return 0 if server.started else 1
