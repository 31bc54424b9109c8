"""PLAYWRIGHT_BROWSERS_PATH built from links: where playwright-core expects each browser."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import job_script

pb = job_script("playwright_browsers")


pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")

# A stand-in playwright-core with the registry API the real one has, laid out as
# pnpm installs it (@playwright/test -> playwright-core).
REGISTRY = """
const path = require('path');
const root = process.env.PLAYWRIGHT_BROWSERS_PATH;
const layout = {
  'chromium': ['chromium-1200', 'chrome-linux64', 'chrome'],
  'chromium-headless-shell': ['chromium_headless_shell-1200', 'chrome-headless-shell-linux64', 'chrome-headless-shell'],
};
exports.registry = { findExecutable(name) {
  const l = layout[name];
  return { directory: path.join(root, l[0]), executablePath: () => path.join(root, ...l) };
} };
"""


def fake_workspace(tmp_path: Path) -> Path:
    nm = tmp_path / "ws" / "node_modules"
    core = nm / "playwright-core"
    (core / "lib/server/registry").mkdir(parents=True)
    (core / "package.json").write_text('{"name": "playwright-core", "version": "9.9.9"}')
    (core / "lib/server/registry/index.js").write_text(REGISTRY)
    test = nm / "@playwright" / "test"
    test.mkdir(parents=True)
    (test / "package.json").write_text('{"name": "@playwright/test", "version": "9.9.9"}')
    (tmp_path / "ws" / "package.json").write_text("{}")
    return tmp_path / "ws"


def fake_browser(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho fake\n")
    path.chmod(0o755)
    return str(path)


def test_links_the_system_browser_where_playwright_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = fake_workspace(tmp_path)
    system = {"chromium": fake_browser(tmp_path / "sys/chromium"),
              "chromium-headless-shell": fake_browser(tmp_path / "sys/shell")}
    monkeypatch.setattr(pb, "system_browser", lambda name, environ=None: system[name])
    out = tmp_path / "browsers"
    lines = pb.build(str(ws), str(out))
    chrome = out / "chromium-1200/chrome-linux64/chrome"
    shell = out / "chromium_headless_shell-1200/chrome-headless-shell-linux64/chrome-headless-shell"
    assert os.readlink(chrome) == system["chromium"] and os.readlink(shell) == system["chromium-headless-shell"]
    assert (out / "chromium-1200/INSTALLATION_COMPLETE").exists()
    assert (out / "chromium_headless_shell-1200/INSTALLATION_COMPLETE").exists()
    assert all("system browser" in line and "9.9.9" in line for line in lines)
    assert pb.build(str(ws), str(out)) == lines  # idempotent


def test_prefers_playwrights_own_build_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = fake_workspace(tmp_path)
    monkeypatch.setattr(pb, "system_browser", lambda name, environ=None: "/nonexistent")
    outer = tmp_path / "outer"
    real = fake_browser(outer / "chromium-1200/chrome-linux64/chrome")
    (outer / "chromium-1200/INSTALLATION_COMPLETE").touch()
    out = tmp_path / "browsers"
    lines = pb.build(str(ws), str(out), outer=str(outer))
    assert os.readlink(out / "chromium-1200/chrome-linux64/chrome") == real
    assert "Playwright's own build" in lines[0] and "system browser" in lines[1]


def test_script_reports_a_workspace_without_playwright(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    p = subprocess.run([sys.executable, pb.__file__, "--js-dir", str(tmp_path / "empty"), "--out",
                        str(tmp_path / "b")], capture_output=True, text=True)
    assert p.returncode == 1 and "is the JS workspace installed?" in p.stderr
