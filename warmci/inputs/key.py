"""A job's whole key: one hash of everything its skip decision depends on.

The key covers the job's pipeline entry, its tools' and interpreter's
versions and its keyed environment values (the config part), the content
of every file it reads (its inputs, its lockfiles, the outputs of the jobs
it needs, the runner scripts it runs), and the keys of the jobs it needs
that declare no output files (an environment install: what it made is
known by its key only). Files are named by root and relative path
("target:src/app.py", "state:artifacts/build-wheel.json"), never by an
absolute path: the same content checked out elsewhere, with another state
dir, on another host, has the same key.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

# Bump when what goes into a key changes meaning: every old entry becomes unreachable.
KEY_FORMAT = 1


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def file_ref(path: str, roots: Mapping[str, str]) -> str:
    """`root:relative/path` for a file under one of the roots (the deepest), else the path itself."""
    best = ""
    for name, root in roots.items():
        if path.startswith(root.rstrip(os.sep) + os.sep) and len(root) > len(roots.get(best, "")):
            best = name
    if not best:
        return path
    return f"{best}:{os.path.relpath(path, roots[best]).replace(os.sep, '/')}"


def files_digest(files: Mapping[str, str]) -> str:
    """One hash of {ref: identity}; streamed, since a big target gives a job 50k inputs."""
    h = hashlib.sha256()
    for ref in sorted(files):
        h.update(f"{ref}\0{files[ref]}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def job_key(job: str, config: Mapping[str, Any], files: Mapping[str, str],
            needs: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(key, the digest of each part): parts let a reader see which part of two keys differs."""
    parts = {"config": _sha(canonical(config)), "files": files_digest(files), "needs": _sha(canonical(needs))}
    return _sha(canonical({"format": KEY_FORMAT, "job": job, **parts})), parts
