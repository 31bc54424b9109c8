"""versions.txt: what a run ran with.

Tool versions come from the same stat-keyed cache as the skip keys
(warmci.toolversions), so only a changed executable costs a `--version`.
Python packages are read from the dist-info directory names of the runner's
and the target's venvs: no interpreter is started.
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
import time
from collections.abc import Iterable

from warmci import statefile
from warmci.context import Context
from warmci.inputs import toolversions

# Always reported, whether or not a job keys on them.
TOOLS = ("node", "pnpm", "uv", "ruff", "chromium", "git")
RUNNER_PACKAGES = ("doit", "psutil", "requests", "matplotlib")


def tools(ctx: Context, extra: Iterable[str] = (), pythons: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """{"tools": {name: version}, "paths": {name: executable}} (may run `--version`: call off the main thread)."""
    cache = toolversions.VersionCache(ctx.tool_cache)
    names = [f"python{v}" for v in sorted(set(pythons))] + list(dict.fromkeys([*TOOLS, *extra]))
    found: dict[str, str] = {}
    paths: dict[str, str] = {}
    for name in names:
        exe = toolversions.executable(name)
        found[name] = cache.version(name)
        if exe:
            paths[name] = os.path.realpath(exe)
    return {"tools": found, "paths": paths}


def packages(ctx: Context) -> dict[str, dict[str, str]]:
    """env -> {dist: version} for the runner and each venv in the state dir (as they are at the end of the run)."""
    # The runner's venv read like the others: importlib.metadata costs ~2 ms a package.
    mine = venv_packages(sys.prefix)
    out: dict[str, dict[str, str]] = {"runner": {}}
    for dist in RUNNER_PACKAGES:
        try:
            out["runner"][dist] = mine.get(dist) or importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out["runner"][dist] = "not installed"
    venvs = os.path.join(ctx.state, "venvs")
    for name in sorted(os.listdir(venvs)) if os.path.isdir(venvs) else ():
        out[f"venv {name}"] = venv_packages(os.path.join(venvs, name))
    return out


def venv_packages(venv: str) -> dict[str, str]:
    """dist -> version from `lib/pythonX.Y/site-packages/NAME-VERSION.dist-info`."""
    out: dict[str, str] = {}
    lib = os.path.join(venv, "lib")
    try:
        pys = os.listdir(lib)
    except OSError:
        return out
    for py in pys:
        site = os.path.join(lib, py, "site-packages")
        try:
            entries = os.listdir(site)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info") and "-" in entry:
                dist, version = entry[: -len(".dist-info")].rsplit("-", 1)
                out[dist.replace("_", "-").lower()] = version
    return dict(sorted(out.items()))


def render(ctx: Context, found: dict[str, dict[str, str]], dists: dict[str, dict[str, str]]) -> str:
    lines = [f"# warmci run {ctx.run_id}, {time.strftime('%Y-%m-%d %H:%M:%S %z')}", "", "[tools]"]
    width = max((len(n) for n in found["tools"]), default=0)
    for name, version in found["tools"].items():
        where = found["paths"].get(name)
        lines.append(f"{name:<{width}}  {version}" + (f"  ({where})" if where else ""))
    for env, pkgs in dists.items():
        lines += ["", f"[{env}]"] + [f"{d}=={v}" for d, v in pkgs.items()]
    return "\n".join(lines) + "\n"


def write(ctx: Context, path: str, found: dict[str, dict[str, str]]) -> None:
    """Write versions.txt from the tools found earlier and the packages installed now."""
    statefile.write_text(path, render(ctx, found, packages(ctx)))
