"""Debian's chromium driven by Playwright for Python, for the page tests, the screenshots and the benchmark.

Never `playwright install`: the browser is the system's (WARMCI_CHROMIUM,
else /usr/bin/chromium), started headless without the sandbox when root,
and with the switches that keep it from phoning home.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FLAGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--disable-gpu"]


def executable() -> str:
    path = os.environ.get("WARMCI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        raise RuntimeError(f"no chromium at {path}: apt-get install chromium (./bootstrap does), "
                           "or set WARMCI_CHROMIUM")
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Browser; closed (and its processes gone) on exit."""
    from playwright.sync_api import sync_playwright

    args = FLAGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable(), args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()
