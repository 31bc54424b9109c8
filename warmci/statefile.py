"""State files (job status, manifests, the process registry, history, results,
caches): written whole or not at all.

Other processes read them while a run writes them (the reporter reads the
workers' status files, the next run reads the registry, concurrent runs share
the tool cache), so every write goes to a temporary file beside the target
and is renamed over it.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_json(path: str, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True))


def read_text(path: str) -> str | None:
    """The file's text, or None if it is missing or unreadable."""
    try:
        with open(path) as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def read_json(path: str) -> Any:
    """The file's JSON, or None if it is missing or unreadable (a reader must cope with both)."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
