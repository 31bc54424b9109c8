"""What a GitHub delivery asks for, decided by pure functions of (event, payload, config).

Payload shapes are GitHub's documented ones (push, pull_request, ping). A
verified delivery that lacks a field the decision needs is a PayloadError
(400 naming the field); an event or action the runner does not build gets
an Ignore with the reason, answered with a 2xx.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ci_runner.config import Config, RepoConfig
from ci_runner.errors import RunnerError

_SHA = re.compile(r"^[0-9a-f]{40}$")
ZERO_SHA = "0" * 40
BUILT_PR_ACTIONS = ("opened", "synchronize", "reopened")


class PayloadError(RunnerError):
    """A delivery whose JSON is not the shape its event promises."""


@dataclass(frozen=True)
class RunRequest:
    repo: str
    sha: str
    branch: str
    ref: str  # what the worker fetches: refs/heads/B, refs/pull/N/head
    lane: str  # runs in one lane supersede each other: "branch:B", "pr:N"
    trigger: str  # push, pull_request, manual, rerun
    author: str
    message: str
    pr: int | None = None
    untrusted: bool = False  # a fork's PR by an author not on the allow-list: waits for approval
    fork: bool = False  # a PR whose head is in another repository (approved or not: never writes the shared cache)
    protected: bool = False  # never cancelled by a newer push


@dataclass(frozen=True)
class Pong:
    zen: str


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class CancelLane:
    repo: str
    lane: str
    reason: str


@dataclass(frozen=True)
class Approve:
    request: RunRequest
    by: str


Action = RunRequest | Pong | Ignore | CancelLane | Approve


def decide(event: str, payload: Any, config: Config) -> Action:
    if not isinstance(payload, dict):
        raise PayloadError(f"the body of a {event!r} event must be a JSON object")
    if event == "ping":
        return Pong(str(payload.get("zen", "")))
    if event not in ("push", "pull_request"):
        return Ignore(f"event {event!r} is not handled (push, pull_request and ping are)")
    full_name = _str(payload, "repository", "full_name")
    repo = config.repo(full_name)
    if repo is None:
        return Ignore(f"repository {full_name} is not configured on this runner")
    return _push(payload, repo) if event == "push" else _pull_request(payload, repo)


def _push(p: dict[str, Any], repo: RepoConfig) -> Action:
    ref = _str(p, "ref")
    if ref.startswith("refs/tags/"):
        return Ignore(f"tag push ({ref}): tags are not built; their commit was built when its branch was pushed")
    if not ref.startswith("refs/heads/"):
        return Ignore(f"ref {ref} is not a branch")
    branch = ref.removeprefix("refs/heads/")
    after = _str(p, "after")
    if p.get("deleted") is True or after == ZERO_SHA:
        return CancelLane(repo.name, f"branch:{branch}", f"branch {branch} was deleted")
    if not _SHA.match(after):
        raise PayloadError(f"push.after: expected a 40-character commit SHA, got {after[:60]!r}")
    head: dict[str, Any] = p["head_commit"] if isinstance(p.get("head_commit"), dict) else {}
    author: dict[str, Any] = head["author"] if isinstance(head.get("author"), dict) else {}
    who = author.get("username") or author.get("name") or _opt(p, "pusher", "name") or _opt(p, "sender", "login")
    return RunRequest(repo=repo.name, sha=after, branch=branch, ref=ref, lane=f"branch:{branch}", trigger="push",
                      author=str(who or ""), message=str(head.get("message") or ""),
                      protected=branch in repo.protected_branches)


def _pull_request(p: dict[str, Any], repo: RepoConfig) -> Action:
    action = _str(p, "action")
    number = p.get("number", _opt(p, "pull_request", "number"))
    if not isinstance(number, int) or isinstance(number, bool):
        raise PayloadError("pull_request.number: expected an integer")
    if action == "closed":
        return CancelLane(repo.name, f"pr:{number}", f"pull request #{number} was closed")
    label = _opt(p, "label", "name")
    if action not in BUILT_PR_ACTIONS and not (action == "labeled" and label == repo.approval_label):
        return Ignore(f"pull_request action {action!r} is not built (opened, synchronize, reopened and the "
                      f"label {repo.approval_label!r} are)")
    sha = _str(p, "pull_request", "head", "sha")
    if not _SHA.match(sha):
        raise PayloadError(f"pull_request.head.sha: expected a 40-character commit SHA, got {sha[:60]!r}")
    head_repo = _opt(p, "pull_request", "head", "repo", "full_name")
    author = str(_opt(p, "pull_request", "user", "login") or "")
    fork = not isinstance(head_repo, str) or head_repo.lower() != repo.name.lower()
    request = RunRequest(
        repo=repo.name, sha=sha, branch=str(_opt(p, "pull_request", "head", "ref") or f"pr-{number}"),
        ref=f"refs/pull/{number}/head", lane=f"pr:{number}", trigger="pull_request", author=author,
        message=f"#{number}: {_opt(p, 'pull_request', 'title') or ''}".strip(), pr=number, fork=fork,
        untrusted=fork and author.lower() not in repo.trusted_authors)
    if action == "labeled":
        return Approve(request, by=str(_opt(p, "sender", "login") or "a label"))
    return request


def _opt(p: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(p, dict):
            return None
        p = p.get(key)
    return p


def _str(p: dict[str, Any], *path: str) -> str:
    value = _opt(p, *path)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{'.'.join(path)}: expected a non-empty string in the payload")
    return value
