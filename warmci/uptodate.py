"""doit `uptodate` checks for the inputs that are not files.

Each check is cheap (stat and dict compares; a tool's `--version` only when
its executable changed) because doit runs them serially in its main process.
InputsKey stores the whole key, not a digest, so explain/why can name the
entry that changed.
"""
from __future__ import annotations

import json
import os
from typing import Any

from warmci import files, interpreters, toolversions
from warmci.context import Context

KEY = "warmci:key"
_caches: dict[str, toolversions.VersionCache] = {}


def _cache(ctx: Context) -> toolversions.VersionCache:
    if ctx.tool_cache not in _caches:
        _caches[ctx.tool_cache] = toolversions.VersionCache(ctx.tool_cache)
    return _caches[ctx.tool_cache]


class InputsKey:
    """Up to date while the job's pipeline entry, tools, interpreter and keyed env are unchanged."""

    def __init__(self, ctx: Context, entry: dict[str, Any], tools: tuple[str, ...],
                 python: str | None, env_names: tuple[str, ...], always: bool = False) -> None:
        self.ctx, self.entry, self.tools, self.python = ctx, entry, tools, python
        self.env_names, self.always = env_names, always
        self.changes: list[str] = []

    def __repr__(self) -> str:
        # doit info prints this for an uptodate check that failed: name what changed.
        return "warmci inputs (" + ("; ".join(self.changes) or "unchanged") + ")"

    def current(self) -> dict[str, Any]:
        cache = _cache(self.ctx)
        key: dict[str, Any] = {
            "config": files.sha256_text(json.dumps(self.entry, sort_keys=True, default=str)),
            "tools": {t: cache.version(t) for t in self.tools},
            "env": {k: os.environ.get(k) for k in self.env_names},
        }
        if self.python:
            key["python"] = cache.version(f"python{self.python}")
        return key

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        now = self.current()
        task.value_savers.append(lambda: {KEY: now})
        self.changes = changed_keys(values.get(KEY), now)
        if self.always:
            self.changes.append("always runs")
            return False
        if self.python and interpreters.find(self.python) is None:
            self.changes.append(f"Python {self.python} is not installed: checked again every run")
            return False
        return values.get(KEY) == now


def changed_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Names of the key entries that differ: 'tools.node', 'env.CI', 'config', ..."""
    if old is None:
        return ["first run"]
    out = []
    for part in sorted(set(old) | set(new)):
        a, b = old.get(part), new.get(part)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{part}.{k}: {a.get(k)!r} -> {b.get(k)!r}"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(part if part == "config" else f"{part}: {a!r} -> {b!r}")
    return out


class VenvIntact:
    """A venv whose interpreter link or site-packages is gone is not up to date."""

    def __init__(self, venv: str) -> None:
        self.venv = venv

    def __call__(self) -> bool:
        python = os.path.join(self.venv, "bin", "python")
        if not (os.path.exists(python) and os.path.isfile(os.path.join(self.venv, "pyvenv.cfg"))):
            return False
        lib = os.path.join(self.venv, "lib")
        try:
            return any(os.path.isdir(os.path.join(lib, d, "site-packages")) for d in os.listdir(lib))
        except OSError:
            return False


class PathExists:
    """Up to date only while a path the job made (outside doit's targets) still exists."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> bool:
        return os.path.exists(self.path)


class ArtifactsIntact:
    """The files a manifest lists still exist with the recorded hashes."""

    def __init__(self, manifest: str, directory: str) -> None:
        self.manifest, self.directory = manifest, directory

    def __call__(self) -> bool:
        try:
            with open(self.manifest) as fh:
                listed = json.load(fh)["files"]
        except (OSError, ValueError, KeyError):
            return False
        for name, digest in listed.items():
            path = os.path.join(self.directory, name)
            if not os.path.isfile(path) or files.sha256_file(path) != digest:
                return False
        return True
