"""The run pages' screenshots in docs/, from real demo runs in chromium.

    ./bootstrap python -m bench.screenshots            writes docs/pages-*.png
    ./bootstrap python -m bench.screenshots --out DIR

The real service on a free loopback port, a bare git remote of the demo
and the loopback fake of GitHub (testing/): a cold run of main, a second
commit on main (so its page compares with the first), a branch whose JS
test fails, and a fork's pull request waiting for approval. Then the run
list, the failed run and the second run of main are photographed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

RUNNER = Path(__file__).resolve().parent.parent
REPO = "buckaroo-data/demo"
FAILING_TEST = """
test('formatCell compacts large numbers', () => {
  assert.equal(formatCell(1234567), '1.2M');
});
"""


def take(out: Path, work: Path) -> list[Path]:
    sys.path.insert(0, str(RUNNER / "ci-runner"))
    from testing import github_payloads as gp
    from testing.browser import chromium
    from testing.ci_service import Service, ServiceConfig
    from testing.fake_github import FakeGitHub
    from testing.git_remote import demo_remote

    remote = demo_remote(work)
    first = remote.head()
    with FakeGitHub() as gh:
        cfg = ServiceConfig(work / "ci.toml", work / "svc", repos={REPO: {
            "clone_url": str(remote.bare), "checkout_dir": work / "checkout", "state_dir": work / "state"}})
        service = Service(cfg, gh.url, work / "service.log").start()
        try:
            def push(sha: str, branch: str, message: str) -> int:
                remote.push(sha, f"refs/heads/{branch}")
                r = service.send("push", gp.push(REPO, sha, branch, message=message))
                return int(r.json()["run"])

            cold = push(first, "main", "demo: a table widget with a Python server and a JS bundle")
            service.wait_finished(cold, timeout=1200)
            table = remote.work / "src/demo_app/table.py"
            second = remote.commit({"src/demo_app/table.py": table.read_text() + "\n# rows are sorted stably\n"},
                                   "table: document the stable sort")
            main2 = push(second, "main", "table: document the stable sort")
            service.wait_finished(main2, timeout=1200)
            remote.checkout(first)
            test_js = remote.work / "packages/app/test/format.test.js"
            broken = remote.commit({"packages/app/test/format.test.js": test_js.read_text() + FAILING_TEST},
                                   "format: compact large numbers (test first)")
            failed = push(broken, "feature/compact-numbers", "format: compact large numbers (test first)")
            service.wait_finished(failed, timeout=1200)
            fork = remote.commit({"NOTES.md": "a note\n"}, "docs: a note from a contributor")
            remote.push(fork, "refs/pull/12/head")
            service.send("pull_request", gp.pull_request(REPO, 12, fork, author="contributor",
                                                         head_repo="contributor/demo", title="docs: a note"))
            shots = [("pages-runs.png", "/", False), ("pages-run-failed.png", f"/runs/{failed}", False),
                     ("pages-run.png", f"/runs/{main2}", True)]
            out.mkdir(parents=True, exist_ok=True)
            written = []
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                for name, path, full in shots:
                    page.goto(service.url + path)
                    for img in page.locator("img").all():  # lazy: bring each into view so it is drawn
                        img.scroll_into_view_if_needed()
                    page.wait_for_load_state("networkidle", timeout=300_000)
                    page.evaluate("window.scrollTo(0, 0)")
                    page.screenshot(path=str(out / name), full_page=full)
                    written.append(out / name)
            return written
        finally:
            service.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=RUNNER / "docs", help="where the PNGs go (default docs/)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warmci-screenshots-") as tmp:
        for path in take(args.out, Path(tmp)):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
