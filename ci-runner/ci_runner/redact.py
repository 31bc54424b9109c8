"""Secrets never reach a log line, a page or an error: one filter for all of them."""
from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, MASK)
        return text

    def unfinished(self, text: str, shortest: int = 4) -> str:
        """Also masks an end of `text` that begins a secret: the rest may be on its way (a live log)."""
        for s in self.secrets:
            for n in range(min(len(s) - 1, len(text)), shortest - 1, -1):
                if text.endswith(s[:n]):
                    return text[:-n] + MASK
        return text


class RedactingFilter(logging.Filter):
    """Masks secrets in the final message (arguments included) before any handler sees it."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.exc_info:
            if record.exc_info:
                clean += "\n" + self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = clean, None
        return True


def install(redact: Redactor) -> None:
    """On every handler of the root logger and uvicorn's: a filter on a logger misses propagated records."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    for name in names:
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactingFilter(redact))
