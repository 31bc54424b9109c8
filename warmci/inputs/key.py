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
from collections.abc import Callable, Mapping
from typing import Any

from warmci.context import RUNNER_ROOT, Context
from warmci.doitapi import task_meta
from warmci.inputs import filestates
from warmci.inputs.uptodate import inputs_key

# Bump when what goes into a key changes meaning: every old entry becomes unreachable.
KEY_FORMAT = 1


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def file_ref(path: str, roots: Mapping[str, str]) -> str:
    """`root:relative/path` for a file under one of the roots (the deepest), else the path itself."""
    best, best_root = "", ""
    for name, root in roots.items():
        root = root.rstrip(os.sep)
        if len(root) > len(best_root) and path.startswith(root + os.sep):
            best, best_root = name, root
    if not best:
        return path
    return f"{best}:{path[len(best_root) + 1:].replace(os.sep, '/')}"


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


class Keys:
    """The whole keys of one run's jobs (doit's main process), each computed once."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.roots = {"target": ctx.target, "state": ctx.state, "runner": str(RUNNER_ROOT)}
        self.memo: dict[str, tuple[str, dict[str, str]]] = {}

    def of(self, task: Any, tasks: Mapping[str, Any], idents: Mapping[str, str] | None = None,
           ) -> tuple[str, dict[str, str]]:
        """(key, part digests) of a doit task; `idents`: its files' identities, if just computed."""
        if task.name in self.memo:
            return self.memo[task.name]
        if idents is None:
            states = filestates.of(self.ctx)
            idents = {p: states.identity(p) for p in task.file_dep}
        files = {file_ref(p, self.roots): ident for p, ident in idents.items()}
        ik = inputs_key(task)
        config = (ik.now if ik.now is not None else ik.current()) if ik is not None else {}
        needs = {}
        for name in task.task_dep:
            need = tasks.get(name)
            # A need whose outputs this job reads is in `files` by content; one whose work is
            # known by its key only (an environment it built) enters by its key.
            if need is not None and not set(need.targets) & set(task.file_dep):
                needs[name] = self.of(need, tasks)[0]
        self.memo[task.name] = job_key(task.name, config, files, needs)
        return self.memo[task.name]


_keys: dict[str, Keys] = {}


def keys_of(ctx: Context) -> Keys:
    if ctx.state not in _keys:
        _keys[ctx.state] = Keys(ctx)
    return _keys[ctx.state]


def stamp(ctx: Context) -> Callable[[Any, Mapping[str, Any]], None]:
    """The dispatch hook (warmci.doitapi.on_dispatch): the job's whole key into the meta doit sends to its
    worker, which restores the key's recorded success or records its own (warmci.execute.reuse).

    Only jobs doit runs need their key, so a no-op computes none (a key sorts and hashes every input)."""

    def hook(task: Any, tasks: Mapping[str, Any]) -> None:
        meta = task_meta(task)
        if "kind" not in meta:
            return  # not a warmci job
        meta["key"], meta["key_parts"] = keys_of(ctx).of(task, tasks)
        ik = inputs_key(task)
        meta["always"] = bool(ik is not None and ik.always)

    return hook
