"""Is a venv what its installer left? Every installed distribution's RECORD lists its files.

RECORD is the installers' own account (the wheel spec; pip and uv write it):
a file it lists that is gone means a damaged environment, which a lockfile
check (`uv sync --check`) does not see, because the distribution's metadata
is still there. Checking costs a stat per file, so it runs only when a job
in the venv did not pass.
"""
from __future__ import annotations

import csv
import glob
import os
import shutil


def site_packages(venv: str) -> list[str]:
    return sorted(glob.glob(os.path.join(venv, "lib", "python*", "site-packages")))


def damaged(venv: str) -> dict[str, list[str]]:
    """dist-info dir -> the files its RECORD lists that are missing (bytecode aside: it is rebuilt on demand)."""
    out: dict[str, list[str]] = {}
    for site in site_packages(venv):
        for record in sorted(glob.glob(os.path.join(site, "*.dist-info", "RECORD"))):
            missing = []
            try:
                with open(record, newline="") as fh:
                    rows = list(csv.reader(fh))
            except (OSError, csv.Error):
                out[os.path.dirname(record)] = ["RECORD (unreadable)"]
                continue
            for row in rows:
                if not row or row[0].endswith(".pyc"):
                    continue
                if not os.path.lexists(os.path.normpath(os.path.join(site, row[0]))):
                    missing.append(row[0])
            if missing:
                out[os.path.dirname(record)] = missing
    return out


def describe(found: dict[str, list[str]]) -> str:
    """`pluggy-1.7.0 (12 files missing, e.g. pluggy/__init__.py)`, for each damaged distribution."""
    parts = []
    for dist_info, missing in sorted(found.items()):
        name = os.path.basename(dist_info).removesuffix(".dist-info")
        parts.append(f"{name} ({len(missing)} file{'s' if len(missing) != 1 else ''} missing, e.g. {missing[0]})")
    return ", ".join(parts)


def forget(found: dict[str, list[str]]) -> None:
    """Remove the damaged distributions' metadata, so the installer's next sync installs them again."""
    for dist_info in found:
        shutil.rmtree(dist_info, ignore_errors=True)
