"""A run's log files as the pages serve them: found by name, rendered by termlog, secrets masked.

A name from a URL never becomes a path on its own: a job name must be a
plain file name (no `/`, no `..`, no leading dot) and the file it names
must resolve inside the run's `logs/` directory (a symlink out is refused).
Each log is rendered once and then fed only its new bytes (an LRU of
terminals, keyed by the file's identity), so polling a live log is cheap.
Secrets are masked line by line in what is rendered, so a secret printed in
colour, or redrawn by cursor moves, is masked too; a line that held one is
shown without its colours.
"""
from __future__ import annotations

import codecs
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup, escape

from ci_runner.redact import Redactor
from ci_runner.termlog import Terminal

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=@-]{0,199}$")
MAX_BYTES = 8 * 1024 * 1024  # a longer log shows (and downloads) its last 8 MiB
CHUNK = 1024 * 1024


def safe_name(name: str) -> bool:
    return bool(NAME.match(name)) and ".." not in name


def inside(path: Path, directory: Path) -> Path | None:
    """`path` if it is a regular file whose real location is directly in `directory`, else None."""
    try:
        real = path.resolve(strict=True)
        if real.parent != directory.resolve(strict=True) or not real.is_file():
            return None
    except (OSError, RuntimeError):
        return None
    return real


def job_log(run_dir: Path, job: str, server: int | None = None) -> Path | None:
    """A job's log (or one of its servers' logs) in a run directory, or None."""
    if not safe_name(job) or (server is not None and not 0 <= server < 1000):
        return None
    name = f"{job}.log" if server is None else f"{job}.server-{server}.log"
    return inside(run_dir / "logs" / name, run_dir / "logs")


def server_logs(run_dir: Path, job: str) -> list[int]:
    """The indices of a job's server logs (`JOB.server-N.log`)."""
    if not safe_name(job):
        return []
    pattern = re.compile(re.escape(job) + r"\.server-(\d{1,3})\.log")
    try:
        names = os.listdir(run_dir / "logs")
    except OSError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := pattern.fullmatch(n)))


@dataclass
class _Entry:
    identity: tuple[int, int]
    term: Terminal = field(default_factory=Terminal)
    offset: int = 0
    skipped: int = 0  # bytes at the start of a log over MAX_BYTES that are not shown
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Log:
    """A rendered log, up to date as of when it was opened (read it while it is open)."""

    term: Terminal
    epoch: str
    skipped: int
    redact: Redactor
    live: bool = False

    def __len__(self) -> int:
        return len(self.term)

    def html(self, row: int) -> Markup:
        text = self.term.text(row)
        clean = self._clean(row, text)
        return self.term.html(row) if clean == text else escape(clean)

    def text(self, row: int) -> str:
        return self._clean(row, self.term.text(row))

    def _clean(self, row: int, text: str) -> str:
        clean = self.redact(text)
        if self.live and row == len(self.term) - 1:
            clean = self.redact.unfinished(clean)  # the job may be printing a secret right now
        return clean

    def tail(self, lines: int) -> list[Markup]:
        return [self.html(i) for i in range(max(0, len(self) - lines), len(self))]

    def plain(self) -> Iterator[str]:
        if self.skipped:
            yield f"[the first {self.skipped} bytes of this log are not shown]\n"
        for i in range(len(self)):
            yield self.text(i) + "\n"


class LogCache:
    def __init__(self, redact: Redactor, size: int = 16) -> None:
        self.redact, self.size = redact, size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def open(self, path: Path, live: bool = False) -> Iterator[Log]:
        st = path.stat()
        identity = (st.st_dev, st.st_ino)
        with self._lock:
            entry = self._entries.get(str(path))
            if entry is None or entry.identity != identity or st.st_size < entry.offset:
                entry = self._entries[str(path)] = _Entry(identity)
            self._entries.move_to_end(str(path))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        with entry.lock:
            self._catch_up(entry, path, st.st_size, live)
            yield Log(entry.term, entry.epoch, entry.skipped, self.redact, live)

    @staticmethod
    def _catch_up(entry: _Entry, path: Path, size: int, live: bool) -> None:
        if size <= entry.offset:
            if not live:
                entry.term.finish()
            return
        with open(path, "rb") as fh:
            if entry.offset == 0 and size > MAX_BYTES:
                fh.seek(size - MAX_BYTES)
                fh.readline()  # start at a line
                entry.skipped = entry.offset = fh.tell()
            fh.seek(entry.offset)
            while entry.offset < size:
                chunk = fh.read(min(CHUNK, size - entry.offset))
                if not chunk:
                    break
                entry.offset += len(chunk)
                entry.term.feed(entry.decoder.decode(chunk))
        if not live:
            entry.term.finish()
