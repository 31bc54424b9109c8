"""Which files of the target a job reads, and their content hashes."""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from functools import lru_cache


def walk(root: str, ignore: Iterable[str]) -> list[str]:
    """Regular files under root as sorted relative POSIX paths.

    Directories whose name is in `ignore` are not entered. Directories,
    sockets and dangling links are never returned: doit crashes on a
    directory in file_dep and fails on a missing file.
    """
    skip = set(ignore)
    out: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel) if rel else root))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in skip:
                    stack.append(path)
            elif entry.is_file(follow_symlinks=True):
                out.append(path)
    out.sort()
    return out


@lru_cache(maxsize=512)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob where `**` spans directories and `*` does not.

    `src/**` is everything under src; `**/*.py` is any .py file; a plain
    path is that file.
    """
    i, out = 0, []
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
