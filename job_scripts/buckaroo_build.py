"""buckaroo's wheel build (`scripts/full_build.sh`) without rebuilding the JS core build-js just built.

main's full_build.sh deletes `packages/buckaroo-js-core/dist` and runs the
core's `tsc -b && vite build` again: the same command build-js ran on the
same content a moment before (~1-2 min on the critical path, measured in
docs/buckaroo.md). When full_build.sh is one this script knows (its sha256
below) and build-js's dist has been copied in, it runs the script's steps
itself, in its order, minus the core build; otherwise it runs full_build.sh
unmodified and says why. Either way the wheel holds the same files (its
normalized content, warmci.inputs.wheelkey, was compared: docs/buckaroo.md).

Run from the root of a buckaroo tree (the build's worktree). Each step's
time goes to $WARMCI_PHASES when warmci asks for it.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time

# Sibling helpers, found even under PYTHONSAFEPATH (which keeps a script's own directory off sys.path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phases import record as phase  # noqa: E402

# sha256 of full_build.sh versions whose steps after the core build are the STEPS below.
KNOWN = {
    "5f3c06e78efe5c15688cf8c95da379b3e74ffd0fda4ca86495ee1a5e8a4cc94f": "main since 839f764a",
}
CORE_DIST = "packages/buckaroo-js-core/dist"
# full_build.sh after `pnpm --filter buckaroo-js-core run build`, in its order: (name, cwd, argv).
STEPS: list[tuple[str, str, list[str]]] = [
    ("pnpm install", "packages", ["pnpm", "install"]),
    ("widget.js", "packages", ["pnpm", "--filter", "buckaroo-widget", "run", "build"]),
    ("standalone.js", "packages", ["pnpm", "--filter", "buckaroo-widget", "run", "build:standalone"]),
    ("static-embed.js", "packages", ["pnpm", "--filter", "buckaroo-widget", "run", "build:static"]),
    ("uv build --wheel", ".", ["uv", "build", "--wheel"]),
]


def say(text: str) -> None:
    print(f"[buckaroo-build {time.strftime('%H:%M:%S')}] {text}", flush=True)


def sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def why_not(root: str) -> str | None:
    """Why the shortcut cannot be taken here (None: it can)."""
    script = os.path.join(root, "scripts", "full_build.sh")
    if not os.path.isfile(script):
        return "scripts/full_build.sh is missing"
    digest = sha256(script)
    if digest not in KNOWN:
        return (f"scripts/full_build.sh (sha256 {digest[:12]}) is not a version whose steps this script knows; "
                "add it to KNOWN in job_scripts/buckaroo_build.py once its steps are checked")
    for name in ("index.esm.js", "style.css"):
        if not os.path.isfile(os.path.join(root, CORE_DIST, name)):
            return f"{CORE_DIST}/{name} is missing (build-js's output was not copied in)"
    return None


def run(name: str, cwd: str, argv: list[str]) -> int:
    say(f"$ cd {cwd} && {' '.join(argv)}")
    t0 = time.monotonic()
    code = subprocess.call(argv, cwd=cwd, stdin=subprocess.DEVNULL)
    phase(name, time.monotonic() - t0)
    if code:
        say(f"{name!r} exited {code}")
    return code


def main(root: str = ".") -> int:
    root = os.path.abspath(root)
    reason = why_not(root)
    if reason:
        say(f"running scripts/full_build.sh unmodified: {reason}")
        return run("full_build.sh", root, ["bash", "scripts/full_build.sh"])
    say(f"full_build.sh is {KNOWN[sha256(os.path.join(root, 'scripts', 'full_build.sh'))]}: its steps, "
        f"with the JS core from build-js ({CORE_DIST}) instead of a second core build")
    static = os.path.join(root, "buckaroo", "static")
    for path in glob.glob(os.path.join(static, "*.js")) + glob.glob(os.path.join(static, "*.css")):
        os.remove(path)
    os.makedirs(static, exist_ok=True)
    shutil.rmtree(os.path.join(root, "dist"), ignore_errors=True)
    for i, (name, cwd, argv) in enumerate(STEPS):
        if i == 1:  # full_build.sh copies the core's CSS after its pnpm install and core build
            shutil.copy(os.path.join(root, CORE_DIST, "style.css"), os.path.join(static, "compiled.css"))
        code = run(name, os.path.join(root, cwd), argv)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
