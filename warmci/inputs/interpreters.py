"""Find an installed Python X.Y without running anything.

pyenv shims are skipped: a shim for a version that is not globally selected
fails at run time, and asking it would mean a subprocess per lookup.
"""
from __future__ import annotations

import glob
import os
import re


def find(version: str, path: str | None = None) -> str | None:
    """Absolute path of a real pythonX.Y interpreter, or None."""
    name = f"python{version}"
    for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        if not d or "/shims" in d or os.sep + ".venv" in d:
            continue
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return os.path.realpath(cand)
    roots = [os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))]
    found = []
    for root in roots:
        for cand in glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", name)):
            m = re.search(rf"/{re.escape(version)}\.(\d+)/bin/", cand)
            if m and os.access(cand, os.X_OK):
                found.append((int(m.group(1)), cand))
    if found:
        return os.path.realpath(max(found)[1])
    for d in ("/usr/local/bin", "/usr/bin"):
        cand = os.path.join(d, name)
        if os.path.isfile(cand):
            return os.path.realpath(cand)
    return None


def looked_in(version: str) -> str:
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    return f"PATH (python{version}), {root}/versions/{version}.*/bin, /usr/local/bin, /usr/bin"
