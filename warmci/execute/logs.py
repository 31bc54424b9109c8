"""Reading back a job's log: its last lines, and the last line that says something."""
from __future__ import annotations

import re

# warmci's own lines in a job log, and lines that are only decoration.
_OWN = re.compile(r"^\[warmci \d\d:\d\d:\d\d\] ")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_DECORATION = re.compile(r"^[\s=\-_*#~.|+]*$")


def tail(path: str, lines: int = 20) -> str:
    """The last `lines` lines of a log (at most the last 16 KiB of it)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def last_message(path: str, limit: int = 200) -> str:
    """The last line the job's own commands wrote that says something (not warmci's, not a rule of ===).

    What a person looks for first in a failed job's log: the CDN check's
    "cannot run here: ... unreachable", a compiler's error, pytest's
    "1 failed, 10 passed".
    """
    for line in reversed(tail(path, 200).splitlines()):
        text = _ANSI.sub("", line).strip()
        if not text or _OWN.match(text) or _DECORATION.match(text):
            continue
        text = text.strip("=-_*# ").strip()
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return ""
