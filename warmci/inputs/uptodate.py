"""doit `uptodate` checks for the inputs that are not files.

Each check is cheap (stat and dict compares; a tool's `--version` only when
its executable changed) because doit runs them serially in its main process.
InputsKey stores the whole key, not a digest, so explain/why can name the
entry that changed.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from warmci import statefile
from warmci.context import Context
from warmci.inputs import files, interpreters, toolversions, venvs

KEY = "warmci:key"
_caches: dict[str, toolversions.VersionCache] = {}


def _cache(ctx: Context) -> toolversions.VersionCache:
    if ctx.tool_cache not in _caches:
        _caches[ctx.tool_cache] = toolversions.VersionCache(ctx.tool_cache)
    return _caches[ctx.tool_cache]


class InputsKey:
    """Up to date while the job's pipeline entry, tools, interpreter and keyed env are unchanged.

    A run that filters the job's tests (`filtered`, e.g. "k=EXPR") adds the
    filter to the key: its success is recorded under that key, never as the
    job's, so the next unfiltered run runs the job. The other way round, a
    success of the whole job covers any filtered run of the same inputs.
    """

    def __init__(self, ctx: Context, entry: dict[str, Any], tools: tuple[str, ...],
                 python: str | None, env_names: tuple[str, ...], always: bool = False, filtered: str = "") -> None:
        self.ctx, self.entry, self.tools, self.python = ctx, entry, tools, python
        self.env_names, self.always, self.filtered = env_names, always, filtered
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
        if self.filtered:
            key["filter"] = self.filtered
        return key

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        # `now` (the store's key part, warmci.inputs.key) and what a success records carry the filter.
        now = self.now = self.current()
        saved = dict(now)
        task.value_savers.append(lambda: {KEY: saved})
        old = values.get(KEY)
        if self.filtered and isinstance(old, dict) and "filter" not in old:
            # The whole job passed with these inputs: so did any part of it.
            now = {k: v for k, v in now.items() if k != "filter"}
        self.diff = changed_entries(old, now)
        forced = None
        if self.always:
            forced = {"kind": "always", "name": "always", "text": "always runs"}
        elif self.python and interpreters.find(self.python) is None:
            forced = {"kind": "python", "name": f"python{self.python}",
                      "text": f"Python {self.python} is not installed: checked again every run"}
        if forced:
            self.diff.append(forced)
        self.changes = [d["text"] for d in self.diff]
        self.last = forced is None and old == now
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
        elif a != b and part == "filter":
            out.append({"kind": "filter", "name": "filter", "old": a, "new": b,
                        "text": f"its last success ran only some of its tests ({a})" if b is None
                        else f"filter: {a!r} -> {b!r}"})
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
    """A venv whose interpreter link or site-packages is gone is not up to date; nor, after a job in it
    did not pass (its check file says which), one whose files differ from what its installer recorded
    (warmci.inputs.venvs) or that the installer's own check finds out of step with the lockfile (`verify`)."""

    def __init__(self, venv: str, check_file: str, verify: Sequence[str] = (), cwd: str = "",
                 env: Mapping[str, str] | None = None) -> None:
        self.venv, self.check_file = venv, check_file
        self.verify, self.cwd, self.env = tuple(verify), cwd, dict(env or {})
        self.last: bool | None = None
        self.problem = ""

    def describe(self) -> str:
        return self.problem or f"the venv {self.venv} is missing or broken"

    def __call__(self) -> bool:
        self.problem = ""
        self.last = self._intact() and self._verified()  # warmci.inputs.why reads it instead of checking again
        return self.last

    def _intact(self) -> bool:
        python = os.path.join(self.venv, "bin", "python")
        if not (os.path.exists(python) and os.path.isfile(os.path.join(self.venv, "pyvenv.cfg"))):
            return False
        return bool(venvs.site_packages(self.venv))

    def _verified(self) -> bool:
        """Checked only when a job in the venv did not pass since: otherwise it costs nothing."""
        why = statefile.read_text(self.check_file)
        if why is None:
            return True
        after = f" (checked because {why.strip()})" if why.strip() else ""
        found = venvs.damaged(self.venv)
        if found:
            self.problem = f"the venv {self.venv} is damaged: {venvs.describe(found)}{after}"
            return False
        if self.verify:
            problem = self._installer_check()
            if problem:
                self.problem = f"the venv {self.venv} does not match its lockfile: {problem}{after}"
                return False
        os.remove(self.check_file)  # verified: nothing to check again until a job in it fails
        return True

    def _installer_check(self) -> str:
        """'' when the installer's own check passes, else its last words."""
        env = {**os.environ, "PATH": toolversions.search_path(), **self.env}
        try:
            out = subprocess.run(list(self.verify), cwd=self.cwd or None, env=env, capture_output=True, text=True,
                                 timeout=120, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(self.verify)}` could not run ({exc})"
        if out.returncode == 0:
            return ""
        lines = (out.stderr + out.stdout).strip().splitlines()
        return lines[-1] if lines else f"`{' '.join(self.verify)}` exited {out.returncode}"


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
