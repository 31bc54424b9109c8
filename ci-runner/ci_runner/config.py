"""The service's configuration: one TOML file, secrets only from the environment.

Every bad value is a ConfigError at start-up that names the file and the
dotted key (or the environment variable) and says what was expected, so a
typo never becomes a silently ignored setting. The keys are documented in
ci-runner/README.md.
"""
from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ci_runner import RUNNER_ROOT
from ci_runner.errors import ConfigError

SECRET_VAR = "WARMCI_WEBHOOK_SECRET"
TOKEN_VAR = "WARMCI_GITHUB_TOKEN"
API_VAR = "WARMCI_GITHUB_API"
CONFIG_VAR = "WARMCI_RUNNER_CONFIG"
ADMIN_VAR = "WARMCI_ADMIN_TOKEN"
MIN_ADMIN_TOKEN = 16
REDIS_VAR = "WARMCI_REDIS_URL"  # the Redis engine (service.engine = "redis"); may carry a password
ENGINES = ("local", "redis")
DEFAULT_API = "https://api.github.com"
# Never handed to doit or git: the jobs run the target's (possibly a fork's) code.
SECRET_VARS = (SECRET_VAR, TOKEN_VAR, ADMIN_VAR, REDIS_VAR)
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_LOG_LEVELS = ("debug", "info", "warning", "error")
T = TypeVar("T")


@dataclass(frozen=True)
class Secrets:
    webhook_secret: str
    github_token: str
    github_api: str
    admin_token: str = ""  # rerun and cancel from the run pages; empty: they are off
    redis_url: str = ""
    store_keys: tuple[str, ...] = ()  # the shared result cache's secret keys (WARMCI_S3_*SECRET_ACCESS_KEY)

    def values(self) -> tuple[str, ...]:
        """What must never appear in a log, a page or an error (a Redis URL's password included)."""
        password = urlsplit(self.redis_url).password if self.redis_url else None
        return tuple(v for v in (self.webhook_secret, self.github_token, self.admin_token, self.redis_url, password,
                                 *self.store_keys) if v)


@dataclass(frozen=True)
class RepoConfig:
    name: str
    clone_url: str
    checkout_dir: Path
    state_dir: Path
    pipeline: str | None
    protected_branches: tuple[str, ...]
    trusted_authors: tuple[str, ...]
    approval_label: str
    doit_args: tuple[str, ...]
    clean_ignored: bool
    fork_sandbox: bool = True  # a fork's runs get their own checkout and state dir (`*.fork`)


@dataclass(frozen=True)
class Config:
    path: Path
    host: str
    port: int
    public_url: str
    state_dir: Path
    workers: int
    status_context: str
    job_statuses: bool
    max_body_bytes: int
    cancel_grace: float
    max_attempts: int
    git_timeout: float
    log_level: str
    keep_runs: int
    keep_days: float
    repos: dict[str, RepoConfig]
    secrets: Secrets
    engine: str = "local"  # "redis": runs go to host workers through Redis (docs/scale.md)
    lease: float = 30.0  # a host silent this long has lost its run: it is queued again elsewhere
    host_name: str = ""  # this host's name as a worker of the Redis engine ([worker] name)

    @property
    def db_file(self) -> Path:
        return self.state_dir / "queue.sqlite3"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def repo(self, name: str) -> RepoConfig | None:
        """GitHub compares owner/name case-insensitively; so do we."""
        return self.repos.get(name.lower())

    def run_url(self, run: int) -> str:
        return f"{self.public_url}/runs/{run}"


class _Table:
    """A TOML table being read: typed access, unknown keys refused."""

    def __init__(self, where: str, key: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(where, key or "(top level)", f"expected a table, got {type(data).__name__}")
        self.where, self.key, self.data = where, key, data
        self.seen: set[str] = set()

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.where, self._path(name), problem)

    def get(self, name: str, kind: type[T], default: T | None = None, *, required: bool = False) -> T:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, f"is required ({kind.__name__})")
            return default  # type: ignore[return-value]
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(name, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value  # type: ignore[no-any-return]

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, list(default))
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, f"expected a list of non-empty strings, got {value!r}")
        return tuple(value)

    def table(self, name: str) -> _Table:
        self.seen.add(name)
        return _Table(self.where, self._path(name), self.data.get(name, {}))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(unknown[0], "unknown key (a typo?); see ci-runner/README.md for the keys")


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None, *,
         need_secrets: bool = True) -> Config:
    """Read and check the config file; `need_secrets` is for `serve` (the CLI only needs the queue)."""
    env = os.environ if environ is None else environ
    file = Path(path).expanduser().resolve()
    where = str(file)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(where, "(file)", "does not exist; pass --config FILE") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, "(file)", f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, "(file)", f"is not valid TOML: {exc}") from None
    top = _Table(where, "", data)
    svc = top.table("service")
    base = file.parent
    config = Config(
        path=file,
        host=_nonempty(svc, "host", "127.0.0.1"),
        port=_int(svc, "port", 8080, 1, 65535),
        public_url=_url(svc, "public_url", required=True).rstrip("/"),
        state_dir=_path(svc, "state_dir", base),
        workers=_int(svc, "workers", 1, 1, 64),
        status_context=_nonempty(svc, "status_context", "warmci"),
        job_statuses=svc.get("job_statuses", bool, False),
        max_body_bytes=_int(svc, "max_body_bytes", 25 * 1024 * 1024, 1024, 1 << 30),
        cancel_grace=_number(svc, "cancel_grace", 30.0),
        max_attempts=_int(svc, "max_attempts", 2, 1, 10),
        git_timeout=_number(svc, "git_timeout", 600.0),
        log_level=_choice(svc, "log_level", "info", _LOG_LEVELS),
        keep_runs=_int(svc, "keep_runs", 1000, 1, 10_000_000),
        keep_days=_number(svc, "keep_days", 90.0),
        repos=_repos(top.table("repos"), base),
        secrets=_secrets(env, need_secrets),
        engine=_choice(svc, "engine", "local", ENGINES),
        lease=_number(svc, "lease", 30.0),
        host_name=_host_name(top.table("worker")),
    )
    svc.done()
    top.done()
    if config.engine == "redis" and (need_secrets or env.get(REDIS_VAR)):
        config = replace(config, secrets=replace(config.secrets, redis_url=redis_url(env)))
    _check_layout(config)
    return config


def _nonempty(t: _Table, name: str, default: str | None = None, *, required: bool = False) -> str:
    value = t.get(name, str, default, required=required)
    if not value.strip():
        raise t.fail(name, "must not be empty")
    return value


def _int(t: _Table, name: str, default: int, lo: int, hi: int) -> int:
    value = t.get(name, int, default)
    if not lo <= value <= hi:
        raise t.fail(name, f"expected an integer from {lo} to {hi}, got {value}")
    return value


def _number(t: _Table, name: str, default: float) -> float:
    value = t.get(name, float, default)
    if not value > 0:
        raise t.fail(name, f"expected a positive number of seconds, got {value}")
    return value


def _choice(t: _Table, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = t.get(name, str, default)
    if value not in choices:
        raise t.fail(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _url(t: _Table, name: str, *, required: bool = False) -> str:
    value = _nonempty(t, name, required=required)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise t.fail(name, f"expected an http(s) URL such as https://ci.example.org, got {value!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise t.fail(name, "must be a plain URL: no credentials, query or fragment")
    return value


def _path(t: _Table, name: str, base: Path) -> Path:
    value = _nonempty(t, name, required=True)
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _clone_url(t: _Table) -> str:
    value = _nonempty(t, "clone_url", required=True)
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and (parts.username or parts.password):
        raise t.fail("clone_url", "must not carry credentials (they would reach logs and `git remote -v`); "
                                  "give the service user a credential helper or a deploy key instead")
    if parts.scheme not in ("http", "https", "ssh", "git", "file") and not (
            value.startswith("/") or re.match(r"^[\w.-]+@[\w.-]+:", value)):
        raise t.fail("clone_url", f"expected an https://, ssh://, git@host:path, file:// URL or an absolute "
                                  f"path, got {value!r}")
    return value


def _pipeline(t: _Table) -> str | None:
    if "pipeline" not in t.data:
        t.seen.add("pipeline")
        return None
    value = t.get("pipeline", str, required=True)
    if not value.strip():
        raise t.fail("pipeline", "must not be empty (leave it out to use the target's warmci.toml)")
    if "/" not in value and not value.endswith(".toml"):
        if not (RUNNER_ROOT / "profiles" / f"{value}.toml").is_file():
            known = sorted(p.stem for p in (RUNNER_ROOT / "profiles").glob("*.toml"))
            raise t.fail("pipeline", f"no profile named {value!r} (profiles: {', '.join(known) or 'none'}); "
                                     "give a profile name, an absolute path or a path inside the checkout")
        return value
    path = Path(value).expanduser()
    if path.is_absolute() and not path.is_file():
        raise t.fail("pipeline", f"{path} does not exist")
    return str(path)


def _repos(t: _Table, base: Path) -> dict[str, RepoConfig]:
    repos = {}
    for name in list(t.data):
        if not _REPO_NAME.match(name):
            raise t.fail(name, 'expected a GitHub repository "owner/name" as the table name, '
                               'e.g. [repos."buckaroo-data/buckaroo"]')
        r = t.table(name)
        label = _nonempty(r, "approval_label", "ci-approved")
        repos[name.lower()] = RepoConfig(
            name=name,
            clone_url=_clone_url(r),
            checkout_dir=_path(r, "checkout_dir", base),
            state_dir=_path(r, "state_dir", base),
            pipeline=_pipeline(r),
            protected_branches=r.strings("protected_branches", ("main",)),
            trusted_authors=tuple(a.lower() for a in r.strings("trusted_authors")),
            approval_label=label,
            doit_args=r.strings("doit_args"),
            clean_ignored=r.get("clean_ignored", bool, False),
            fork_sandbox=r.get("fork_sandbox", bool, True),
        )
        r.done()
    if not repos:
        raise t.fail("", 'no repository configured: add a [repos."owner/name"] table')
    return repos


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_layout(config: Config) -> None:
    """The runner's tree, each checkout and each state dir never contain one another."""
    where = str(config.path)
    seen: dict[Path, str] = {}
    for repo in config.repos.values():
        key = f"repos.{repo.name}"
        for field, path in (("checkout_dir", repo.checkout_dir), ("state_dir", repo.state_dir)):
            if _inside(path, RUNNER_ROOT) or _inside(RUNNER_ROOT, path):
                raise ConfigError(where, f"{key}.{field}", f"{path} overlaps the runner's own tree {RUNNER_ROOT}; "
                                                           "checking out a target there would change the runner")
            for other, owner in seen.items():
                if _inside(path, other) or _inside(other, path):
                    raise ConfigError(where, f"{key}.{field}", f"{path} overlaps {owner} ({other})")
            seen[path] = f"{key}.{field}"
        if _inside(config.state_dir, repo.checkout_dir):
            raise ConfigError(where, "service.state_dir", f"{config.state_dir} is inside the checkout of "
                                                          f"{repo.name}; `git clean` there would erase the queue")


def _host_name(t: _Table) -> str:
    """A worker's name: its queue and its place in the affinity record (default: the machine's name)."""
    value = t.get("name", str, socket.gethostname())
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
        raise t.fail("name", f"expected a host name of letters, digits, '.', '_' or '-', got {value!r}")
    t.done()
    return value


def redis_url(env: Mapping[str, str]) -> str:
    """The Redis engine's URL (the service and every host worker need it; the operator CLI does not)."""
    url = env.get(REDIS_VAR, "").strip()
    if not url:
        raise ConfigError("environment", REDIS_VAR, 'is not set: service.engine = "redis" needs the Redis URL, '
                                                    "e.g. redis://:PASSWORD@10.0.0.2:6379/0")
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("environment", REDIS_VAR, "expected a redis://, rediss:// or unix:// URL")
    return url


def _secrets(env: Mapping[str, str], need: bool) -> Secrets:
    secret = env.get(SECRET_VAR, "")
    token = env.get(TOKEN_VAR, "")
    api = env.get(API_VAR) or DEFAULT_API
    if need and not secret.strip():
        raise ConfigError("environment", SECRET_VAR, "is not set: the service refuses to accept unsigned "
                                                     "webhooks; set it to the secret of the repository's "
                                                     "webhook (GitHub: Settings > Webhooks)")
    if need and not token.strip():
        raise ConfigError("environment", TOKEN_VAR, "is not set: commit statuses cannot be posted; set it to "
                                                    "a token with the repo:status (or Commit statuses: write) "
                                                    "permission")
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ConfigError("environment", API_VAR, f"expected an http(s) URL without credentials, such as "
                                                  f"{DEFAULT_API}")
    admin = env.get(ADMIN_VAR, "")
    if admin and (len(admin.strip()) < MIN_ADMIN_TOKEN or admin != admin.strip()):
        raise ConfigError("environment", ADMIN_VAR, f"must be at least {MIN_ADMIN_TOKEN} characters without "
                                                    "surrounding spaces (e.g. `openssl rand -hex 24`), or unset to "
                                                    "turn rerun and cancel on the run pages off")
    store_keys = tuple(v for k, v in env.items() if k.startswith("WARMCI_S3_") and k.endswith("SECRET_ACCESS_KEY"))
    return Secrets(secret, token, api.rstrip("/"), admin, store_keys=store_keys)
