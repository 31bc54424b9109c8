"""A PLAYWRIGHT_BROWSERS_PATH made of links to browsers already on the machine.

Playwright's own browser download needs its CDN; where that is out of reach,
Debian's chromium and chromium-headless-shell can stand in. Playwright looks
for `<dir>/chromium-<rev>/<layout>/chrome` (and the headless shell's
equivalent) plus an INSTALLATION_COMPLETE marker; the revision and layout
depend on the playwright-core version, so they are asked from the installed
playwright-core itself (node), never guessed. Each expected executable
becomes a symlink to, in order of preference:

1. the real Playwright build of that revision, if one is installed in the
   outer PLAYWRIGHT_BROWSERS_PATH (a server image that ran `playwright install`),
2. the system browser: WARMCI_CHROMIUM, /usr/lib/chromium/chromium, `chromium`
   on PATH (and chromium-headless-shell likewise, falling back to chromium).

Stdlib only, run as a script by jobs in the target's environment:

    python3 job_scripts/playwright_browsers.py --js-dir packages/app --out DIR
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

NAMES = ("chromium", "chromium-headless-shell")

# Asks the playwright-core that `js_dir` resolves (through @playwright/test or
# playwright) where each browser is expected under PLAYWRIGHT_BROWSERS_PATH.
_QUERY = r"""
const { createRequire } = require('module');
const path = require('path');
const base = createRequire(path.join(process.argv[1], 'package.json'));
let core = null;
for (const entry of ['@playwright/test/package.json', 'playwright/package.json', 'playwright-core/package.json']) {
  try {
    const pkg = base.resolve(entry);
    const req = createRequire(pkg);
    core = entry.startsWith('playwright-core') ? pkg : req.resolve('playwright-core/package.json');
    break;
  } catch (e) { /* try the next entry point */ }
}
if (!core) { console.error('no playwright-core reachable from ' + process.argv[1]); process.exit(2); }
const { registry } = createRequire(core)('./lib/server/registry/index.js');
const out = { core: path.dirname(core), version: require(core).version, browsers: {} };
for (const name of JSON.parse(process.argv[2])) {
  const e = registry.findExecutable(name);
  if (e) out.browsers[name] = { directory: e.directory, executable: e.executablePath() };
}
console.log(JSON.stringify(out));
"""


class BrowsersError(Exception):
    pass


def expected(js_dir: str, out: str, names: tuple[str, ...] = NAMES) -> dict[str, Any]:
    """{"version", "browsers": {name: {"directory", "executable"}}} as playwright-core sees `out`."""
    node = shutil.which("node")
    if node is None:
        raise BrowsersError("node is not on PATH")
    env = dict(os.environ, PLAYWRIGHT_BROWSERS_PATH=out)
    p = subprocess.run([node, "-e", _QUERY, os.path.abspath(js_dir), json.dumps(list(names))],
                       capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise BrowsersError(f"could not ask playwright-core from {js_dir} where its browsers go "
                            f"(is the JS workspace installed?): {p.stderr.strip() or p.stdout.strip()}")
    found: dict[str, Any] = json.loads(p.stdout)
    return found


def system_browser(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The machine's own executable standing in for Playwright's `name`."""
    env = os.environ if environ is None else environ
    if name == "chromium-headless-shell":
        cands = ["/usr/lib/chromium/chromium-headless-shell", shutil.which("chromium-headless-shell")]
        found = next((c for c in cands if c and os.access(c, os.X_OK)), None)
        return found or system_browser("chromium", env)
    cands = [env.get("WARMCI_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium"),
             shutil.which("chromium-browser")]
    return next((c for c in cands if c and os.access(c, os.X_OK)), None)


def build(js_dir: str, out: str, outer: str | None = None, environ: dict[str, str] | None = None) -> list[str]:
    """Create or refresh the links in `out`; return one line per browser saying what it points at."""
    os.makedirs(out, exist_ok=True)
    found = expected(js_dir, out)
    lines = []
    for name in NAMES:
        info = found["browsers"].get(name)
        if not info or not info.get("executable"):
            raise BrowsersError(f"playwright-core {found.get('version')} has no {name} for this platform")
        directory, exe = info["directory"], info["executable"]
        rel = os.path.relpath(exe, directory)
        real = None
        if outer and os.path.realpath(outer) != os.path.realpath(out):
            cand = os.path.join(outer, os.path.basename(directory), rel)
            if os.path.isfile(os.path.join(outer, os.path.basename(directory), "INSTALLATION_COMPLETE")) \
                    and os.access(cand, os.X_OK):
                real = cand
        source = "Playwright's own build"
        if real is None:
            real = system_browser(name, environ)
            source = "system browser"
        if real is None:
            raise BrowsersError(f"no browser for Playwright's {name}: install Debian's chromium "
                                "(apt-get install chromium chromium-headless-shell) or set WARMCI_CHROMIUM")
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        if os.path.islink(exe) or os.path.exists(exe):
            if os.path.islink(exe) and os.readlink(exe) == real:
                pass
            else:
                os.remove(exe)
                os.symlink(real, exe)
        else:
            os.symlink(real, exe)
        with open(os.path.join(directory, "INSTALLATION_COMPLETE"), "w"):
            pass
        lines.append(f"{name}: {exe} -> {real} ({source}; playwright-core {found.get('version')})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--js-dir", required=True, help="a package dir from which @playwright/test resolves")
    ap.add_argument("--out", required=True, help="the PLAYWRIGHT_BROWSERS_PATH to fill")
    ap.add_argument("--outer", default=os.environ.get("PLAYWRIGHT_BROWSERS_PATH"),
                    help="where a real `playwright install` may have put the browsers "
                    "(default: $PLAYWRIGHT_BROWSERS_PATH of this process)")
    args = ap.parse_args(argv)
    try:
        for line in build(args.js_dir, args.out, args.outer):
            print(f"playwright browsers: {line}")
    except (BrowsersError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"playwright browsers: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
