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

from warmci import statefile
from warmci.context import Context
from warmci.inputs import files, interpreters, toolversions

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
        self.diff: list[dict[str, Any]] = []  # what differs, structured (changed_entries): read by warmci.inputs.why
        self.changes: list[str] = []
        self.now: dict[str, Any] | None = None  # the last value computed: part of the job's whole key
        self.last: bool | None = None

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
        now = self.now = self.current()
        task.value_savers.append(lambda: {KEY: now})
        self.diff = changed_entries(values.get(KEY), now)
        forced = None
        if self.always:
            forced = {"kind": "always", "name": "always", "text": "always runs"}
        elif self.python and interpreters.find(self.python) is None:
            forced = {"kind": "python", "name": f"python{self.python}",
                      "text": f"Python {self.python} is not installed: checked again every run"}
        if forced:
            self.diff.append(forced)
        self.changes = [d["text"] for d in self.diff]
        self.last = forced is None and values.get(KEY) == now
        return self.last


# Key part -> the `kind` warmci.inputs.why reports for it, and what the part's list is called in a pipeline file.
_KINDS = {"tools": "tool", "env": "env", "python": "python", "config": "config"}
_LISTS = {"tools": "tools", "env": "keyed_env"}


def changed_entries(old: dict[str, Any] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """The key entries that differ, as {kind, name, old, new, text}; [{kind: first-run}] without an old key."""
    if old is None:
        return [{"kind": "first-run", "name": "", "text": "first run"}]
    out: list[dict[str, Any]] = []
    for part in sorted(set(old) | set(new)):
        a, b = old.get(part), new.get(part)
        kind = _KINDS.get(part, part)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [_entry(part, kind, k, a, b) for k in sorted(set(a) | set(b)) if k not in a or k not in b
                    or a[k] != b[k]]
        elif a != b and part == "config":
            out.append({"kind": "config", "name": "config", "text": "config: its pipeline entry changed"})
        elif a != b:
            out.append({"kind": kind, "name": part, "old": a, "new": b, "text": f"{part}: {a!r} -> {b!r}"})
    if old != new and not out:
        # Not one entry differs, yet the keys do (their layout changed with warmci): say that, not a guess.
        out.append({"kind": "key", "name": "", "text": "the layout of warmci's input key changed"})
    return out


def _entry(part: str, kind: str, name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One changed entry of a key part; an entry that came or went says it was added to or removed from its list."""
    entry = {"kind": kind, "name": name, "old": a.get(name), "new": b.get(name)}
    listed = _LISTS.get(part, part)
    if name not in a:
        entry["text"] = f"{listed} changed: {name} added ({_show(b[name])})"
    elif name not in b:
        entry["text"] = f"{listed} changed: {name} removed (was {_show(a[name])})"
    else:
        entry["text"] = f"{part}.{name}: {a[name]!r} -> {b[name]!r}"
    return entry


def _show(value: object) -> str:
    return "unset" if value is None else repr(value)


def inputs_key(task: Any) -> InputsKey | None:
    """The job's InputsKey among a doit task's uptodate checks."""
    return next((u for u, _, _ in getattr(task, "uptodate", ()) if isinstance(u, InputsKey)), None)


class VenvIntact:
    """A venv whose interpreter link or site-packages is gone is not up to date."""

    def __init__(self, venv: str) -> None:
        self.venv = venv
        self.last: bool | None = None

    def describe(self) -> str:
        return f"the venv {self.venv} is missing or broken"

    def __call__(self) -> bool:
        self.last = self._intact()  # warmci.inputs.why reads the last result instead of checking again
        return self.last

    def _intact(self) -> bool:
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
        self.last: bool | None = None

    def describe(self) -> str:
        return f"{self.path} is gone"

    def __call__(self) -> bool:
        self.last = os.path.exists(self.path)
        return self.last


class ArtifactsIntact:
    """The files a manifest lists still exist with the recorded hashes."""

    def __init__(self, manifest: str, directory: str) -> None:
        self.manifest, self.directory = manifest, directory
        self.last: bool | None = None

    def describe(self) -> str:
        return f"the artifacts listed in {self.manifest} are missing or changed"

    def __call__(self) -> bool:
        self.last = self._intact()
        return self.last

    def _intact(self) -> bool:
        listed = (statefile.read_json(self.manifest) or {}).get("files")
        if not isinstance(listed, dict):
            return False
        for name, digest in listed.items():
            path = os.path.join(self.directory, name)
            if not os.path.isfile(path) or files.sha256_file(path) != digest:
                return False
        return True
