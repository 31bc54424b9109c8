"""Tool versions as skip-key inputs, cheap enough for every up-to-date check.

Running `pnpm --version` costs ~0.3 s; doing it per task per run would eat
the whole no-op budget. A tool's version is cached against the stat of its
resolved executable (path, size, mtime, inode): an upgrade replaces the file,
so the stat changes and the version is asked again.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from warmci import statefile
from warmci.context import RUNNER_ROOT
from warmci.inputs import interpreters

# Tools whose executable name differs from the name used in pipeline files.
_EXECUTABLES = {"chromium": ("chromium", "chromium-browser", "google-chrome")}


def search_path(environ: Mapping[str, str] | None = None) -> str:
    """PATH for jobs and tool lookups: the caller's, then the tools ./bootstrap installed."""
    env = os.environ if environ is None else environ
    tools = str(RUNNER_ROOT / ".tools" / "bin")
    parts = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
    return os.pathsep.join(parts + ([tools] if tools not in parts else []))


def executable(tool: str, path: str | None = None) -> str | None:
    """The executable a job will get for `tool` ("python3.13" means that interpreter)."""
    if path is None:
        path = search_path()  # the same PATH the job's commands get
    if tool.startswith("python") and tool[6:].replace(".", "").isdigit():
        return interpreters.find(tool[6:], path)
    if tool == "chromium" and os.environ.get("WARMCI_CHROMIUM"):
        return os.environ["WARMCI_CHROMIUM"]
    for name in _EXECUTABLES.get(tool, (tool,)):
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


class VersionCache:
    """tool -> version, remembered per executable stat in a JSON file."""

    def __init__(self, cache_file: str) -> None:
        self.cache_file = cache_file
        self._data: dict[str, dict[str, str]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, dict[str, str]]:
        if self._data is None:
            data = statefile.read_json(self.cache_file)
            self._data = data if isinstance(data, dict) else {}
        return self._data

    def version(self, tool: str, path: str | None = None) -> str:
        exe = executable(tool, path)
        if exe is None:
            return "missing"
        real = os.path.realpath(exe)
        try:
            st = os.stat(real)
        except OSError:
            return "missing"
        stamp = f"{real}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        data = self._load()
        hit = data.get(exe)
        if hit and hit.get("stamp") == stamp:
            return hit["version"]
        version = ask_version(exe)
        data[exe] = {"stamp": stamp, "version": version}
        self._dirty = True
        self.save()
        return version

    def save(self) -> None:
        if not self._dirty or self._data is None:
            return
        # Merge with what another cache object (the reporter's versions.txt thread)
        # saved meanwhile; entries are keyed by executable stat, so either is valid.
        on_disk = statefile.read_json(self.cache_file)
        statefile.write_json(self.cache_file, {**(on_disk if isinstance(on_disk, dict) else {}), **self._data})
        self._dirty = False


def ask_version(exe: str) -> str:
    """First line of `exe --version`; the resolved path stands in if it prints nothing."""
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else os.path.realpath(exe)
