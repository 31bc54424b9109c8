"""The GitHub client: commit statuses, behind a one-method protocol.

Retries are urllib3's `Retry`, mounted on a requests session: backoff on 5xx
and network errors, `Retry-After` honoured. GitHub's primary rate limit
says when it resets in `x-ratelimit-reset` (with `x-ratelimit-remaining: 0`)
rather than in `Retry-After`, on a 403 or 429; RateLimitRetry teaches Retry
that header and nothing else. A limit that resets later than `max_wait` is
not slept through here: the poster keeps the status and tries again later.
"""
from __future__ import annotations

import time
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from ci_runner.errors import RunnerError
from ci_runner.statuses import CommitStatus

_RATE_LIMIT_CODES = (403, 429)
_PERMANENT = (400, 401, 403, 404, 410, 422)


class GitHubError(RunnerError):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent  # retrying will not help (bad token, unknown repo or SHA)


class StatusClient(Protocol):
    def post_status(self, repo: str, sha: str, status: CommitStatus) -> None: ...


class RateLimitRetry(Retry):
    """urllib3's Retry, plus GitHub's rate-limit headers on 403/429."""

    RETRY_AFTER_STATUS_CODES = frozenset({403, 413, 429, 503})
    max_wait = 60.0

    def new(self, **kw: Any) -> RateLimitRetry:
        new = super().new(**kw)
        new.max_wait = self.max_wait
        return new

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in _RATE_LIMIT_CODES and self.total and self._is_method_retryable(method):
            return True  # maybe a rate limit: increment() looks at the headers and decides
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> RateLimitRetry:
        if response is not None and response.status in _RATE_LIMIT_CODES:
            wait = self.get_retry_after(response)
            if wait is None or wait > self.max_wait:
                # A plain 403 (no permission), or a limit resetting too late to wait for in-line: give the
                # response back (raise_on_status is off) and let the caller decide.
                raise MaxRetryError(_pool, url or "", ResponseError(f"HTTP {response.status}, not retried"))
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is not None:
            return seconds
        if response.headers.get("x-ratelimit-remaining") == "0":
            try:
                return max(0.0, float(response.headers["x-ratelimit-reset"]) - time.time()) + 1.0
            except (KeyError, ValueError):
                return None
        return None


def make_retry(total: int = 5, backoff_factor: float = 0.5, max_wait: float = 60.0) -> RateLimitRetry:
    retry = RateLimitRetry(
        total=total, connect=total, read=total, status=total, backoff_factor=backoff_factor, backoff_max=30,
        status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET", "POST"}),
        raise_on_status=False, respect_retry_after_header=True)
    retry.max_wait = max_wait
    return retry


class RequestsGitHub:
    """The real client (also what the tests use, against a loopback fake of the API)."""

    def __init__(self, api: str, token: str, *, retry: Retry | None = None, timeout: float = 15.0) -> None:
        self.api, self.timeout = api.rstrip("/"), timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry or make_retry())
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "warmci-ci-runner",
        })

    def post_status(self, repo: str, sha: str, status: CommitStatus) -> None:
        url = f"{self.api}/repos/{repo}/statuses/{sha}"
        try:
            r = self.session.post(url, json=status.payload(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise GitHubError(f"POST {url}: {type(exc).__name__}: {exc}", permanent=False) from None
        if r.status_code >= 400:
            limited = r.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in r.headers
            raise GitHubError(f"POST {url}: HTTP {r.status_code}: {r.text[:300]}",
                              permanent=r.status_code in _PERMANENT and not limited)
