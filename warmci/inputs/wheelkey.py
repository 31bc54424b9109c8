"""A wheel's identity for the jobs downstream of it: its content, with the version taken out.

A version computed from git (hatch-vcs, setuptools-scm) changes with every
commit (`0.15.5.dev3+g1a2b3c4`) and every uncommitted edit (`.d20250101`),
although nothing the package does changed. Downstream suites key on this
digest instead of the wheel's bytes, so such a wheel reruns none of them,
while any change to what the wheel installs (a file, its bytes or executable
bit, a dependency, an entry point, a tag) still reruns every one.

What is normalized, and only that (the layout is PEP 427/491's):
- the wheel's file name: `{name}-{version}(-{build})?-{tags}.whl`;
- the `.dist-info` and `.data` directory names, `{name}-{version}.dist-info`;
- the `Version:` header of METADATA;
- RECORD: its rows' paths as above, and the hash and size of the rows of
  METADATA and RECORD themselves (every other row is kept as written; the
  files it lists are hashed here anyway).

The one risk, by design: a test that asserts the package's version string
(or anything derived from it) is not rerun when only the version changed.
A version written into a file of the package (`version-file` of hatch-vcs)
is not normalized: such a wheel reruns its suites on every commit, the safe
way round.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from warmci.inputs.files import sha256_file

VERSION = "{version}"  # what a version becomes in a normalized name or header


class BadWheel(ValueError):
    """Not a wheel this module can read (its message names the file and what is wrong)."""


def normalized_name(filename: str) -> str:
    """`buckaroo-0.15.5.dev0+g1a2b.d20250101-py3-none-any.whl` -> `buckaroo-{version}-py3-none-any.whl`."""
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise BadWheel(f"{filename}: {exc}") from None
    parts = filename.split("-")  # a valid name escapes `-` in the project name: the version is the 2nd part
    parts[1] = VERSION
    return "-".join(parts)


def digest(path: str) -> str:
    """sha256 of the wheel's normalized content (names, executable bits, bytes)."""
    entries = sorted(_entries(path))
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


def artifact_key(directory: str) -> dict[str, str]:
    """What downstream jobs key on, per file a build wrote: a wheel by its normalized content, else its bytes."""
    out: dict[str, str] = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".whl"):
            out[normalized_name(name)] = "wheel-content:" + digest(path)
        else:
            out[name] = sha256_file(path)
    return out


def _entries(path: str) -> list[tuple[str, bool, str]]:
    name = os.path.basename(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadWheel(f"{name}: not a readable zip file ({exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        dist_info = _dist_info(name, [i.filename for i in infos])
        stem = dist_info[: -len(".dist-info")]
        # Only the version part goes: `{name}-` is matched exactly, so an unrelated dir is kept as it is.
        project, _, _ = stem.rpartition("-")
        renames = {f"{stem}.dist-info/": f"{project}-{VERSION}.dist-info/",
                   f"{stem}.data/": f"{project}-{VERSION}.data/"}
        metadata, record = f"{dist_info}/METADATA", f"{dist_info}/RECORD"
        out = []
        for info in infos:
            data = zf.read(info)
            if info.filename == metadata:
                data = _metadata(data)
            elif info.filename == record:
                data = _record(data, renames, {metadata, record})
            executable = bool((info.external_attr >> 16) & 0o111)
            out.append((_rename(info.filename, renames), executable, hashlib.sha256(data).hexdigest()))
        return out


def _dist_info(wheel: str, names: list[str]) -> str:
    found = {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")}
    if len(found) != 1:
        raise BadWheel(f"{wheel}: expected one .dist-info directory with a METADATA file, found "
                       f"{sorted(found) or 'none'}")
    return found.pop()


def _rename(path: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        if path.startswith(old):
            return new + path[len(old):]
    return path


def _metadata(data: bytes) -> bytes:
    """METADATA with its Version header (in the header block, before the first blank line) normalized."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            break
        if line.lower().startswith(b"version:"):
            lines[i] = b"Version: " + VERSION.encode()
    return b"\n".join(lines)


def _record(data: bytes, renames: dict[str, str], rewritten: set[str]) -> bytes:
    rows = []
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        if not row:
            continue
        if row[0] in rewritten:
            row = [row[0], "", ""]  # their hash and size follow from the normalized files
        rows.append([_rename(row[0], renames), *row[1:]])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(sorted(rows))
    return buf.getvalue().encode()
