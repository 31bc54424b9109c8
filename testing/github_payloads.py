"""Webhook deliveries in the shapes GitHub documents (push, pull_request, ping), signed as GitHub signs them.

Only the fields a receiver may read are filled with meaningful values; the
rest are there so the shape is GitHub's, not one tailored to the receiver.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from ci_runner import signature


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**7, "node_id": "U_x", "type": "User", "site_admin": False,
            "html_url": f"https://github.com/{login}"}


def repository(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {"id": abs(hash(full_name)) % 10**8, "node_id": "R_x", "name": name, "full_name": full_name,
            "private": False, "owner": {**_user(owner), "name": owner}, "html_url": f"https://github.com/{full_name}",
            "clone_url": f"https://github.com/{full_name}.git", "default_branch": "main", "fork": False}


def _commit(sha: str, message: str, author: str) -> dict[str, Any]:
    person = {"name": author, "email": f"{author}@example.org", "username": author}
    return {"id": sha, "tree_id": "0" * 40, "distinct": True, "message": message,
            "timestamp": "2026-01-01T12:00:00Z", "url": f"https://github.com/o/r/commit/{sha}",
            "author": person, "committer": person, "added": [], "removed": [], "modified": []}


def push(repo: str, sha: str, branch: str = "main", *, before: str = "0" * 40, message: str = "a commit",
         author: str = "alice", deleted: bool = False, ref: str | None = None) -> dict[str, Any]:
    head = None if deleted else _commit(sha, message, author)
    return {"ref": ref or f"refs/heads/{branch}", "before": before, "after": "0" * 40 if deleted else sha,
            "created": False, "deleted": deleted, "forced": False, "base_ref": None,
            "compare": f"https://github.com/{repo}/compare/{before[:12]}...{sha[:12]}",
            "commits": [head] if head else [], "head_commit": head, "repository": repository(repo),
            "pusher": {"name": author, "email": f"{author}@example.org"}, "sender": _user(author)}


def pull_request(repo: str, number: int, sha: str, *, action: str = "opened", author: str = "bob",
                 head_repo: str | None = None, branch: str = "feature", title: str = "a change",
                 label: str | None = None, sender: str | None = None) -> dict[str, Any]:
    head_repo = head_repo or repo
    pr = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}", "id": number * 1000, "number": number,
          "state": "open", "locked": False, "title": title, "user": _user(author), "body": "", "draft": False,
          "labels": [{"name": label}] if label else [], "author_association": "CONTRIBUTOR",
          "head": {"label": f"{head_repo.split('/')[0]}:{branch}", "ref": branch, "sha": sha,
                   "user": _user(head_repo.split("/")[0]), "repo": repository(head_repo)},
          "base": {"label": f"{repo.split('/')[0]}:main", "ref": "main", "sha": "1" * 40,
                   "user": _user(repo.split("/")[0]), "repo": repository(repo)}}
    out = {"action": action, "number": number, "pull_request": pr, "repository": repository(repo),
           "sender": _user(sender or author)}
    if label:
        out["label"] = {"id": 1, "name": label, "color": "0e8a16"}
    return out


def ping(repo: str) -> dict[str, Any]:
    return {"zen": "Keep it logically awesome.", "hook_id": 1,
            "hook": {"type": "Repository", "id": 1, "events": ["push", "pull_request"], "active": True,
                     "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://ci.example.org/webhook"}},
            "repository": repository(repo), "sender": _user("alice")}


def delivery(secret: str, event: str, payload: dict[str, Any], delivery_id: str | None = None
             ) -> tuple[bytes, dict[str, str]]:
    """The body and headers GitHub would send."""
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/abc1234",
                  "X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
                  "X-GitHub-Hook-ID": "1", signature.HEADER: signature.sign(secret, body)}
