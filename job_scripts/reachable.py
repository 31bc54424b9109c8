"""Fail a job early, with the exact reason, when a network prerequisite is out of reach.

    python job_scripts/reachable.py URL [--why "what needs it"]

Exit 0 if URL answers over HTTP at all (any status: an error page still means
the host is reachable), 1 with one line naming the URL, what needs it and the
network error otherwise. Stdlib only, so any Python can run it.
"""
from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def check(url: str, timeout: float = 15.0) -> str | None:
    """None if reachable, else the error."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None)
        return str(reason or exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--why", default="", help="what needs it, for the message")
    ap.add_argument("--timeout", type=float, default=15.0)
    args = ap.parse_args(argv)
    error = check(args.url, args.timeout)
    if error is None:
        print(f"reachable: {args.url}")
        return 0
    print(f"cannot run here: {args.why + ' needs ' if args.why else ''}{args.url}, which is unreachable from "
          f"this machine ({error})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
