"""`python -m warmci COMMAND`: the runner's own commands next to doit's.

    python -m warmci explain [JOB ...] [target=PATH] [pipeline=FILE] [state=DIR]
        why each job would run now, naming each changed input
    python -m warmci store [prune] [--max SIZE] [--store DIR] [target=PATH] [state=DIR]
        the result store: its size, entries and hit rate; `prune` drops the least
        recently used entries until it fits in SIZE (default WARMCI_STORE_MAX, 5G)
    python -m warmci gantt RESULTS [-o OUT.png]
    python -m warmci gantt RESULTS_A RESULTS_B [-o OUT.png]
        a run's Gantt chart, or two runs compared on one time axis; RESULTS is
        a results.json, a run directory or a state directory (its latest run)
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from warmci.context import RUNNER_ROOT


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "explain":
        return explain(rest)
    if command == "gantt":
        return gantt(rest)
    if command == "store":
        return store(rest)
    print(f"warmci: unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


def explain(args: list[str]) -> int:
    """Run the explain command through doit, on the runner's dodo.py (exit codes as doit's)."""
    from warmci import doitapi

    return doitapi.run_command(["explain", "-f", str(RUNNER_ROOT / "dodo.py"), *args],
                               {"explain": "warmci.run.explain:Explain"})


def gantt(args: list[str]) -> int:
    from warmci.run import gantt as charts

    parser = argparse.ArgumentParser(prog="python -m warmci gantt")
    parser.add_argument("results", nargs="+", help="results.json, a run dir or a state dir (one, or two to compare)")
    parser.add_argument("-o", "--output", help="PNG to write (default: gantt.png / compare.png next to the first)")
    opts = parser.parse_args(args)
    if len(opts.results) > 2:
        parser.error("give one run, or two to compare")
    try:
        runs = [charts.load(p) for p in opts.results]
    except (OSError, ValueError) as exc:
        print(f"warmci: error: {exc}", file=sys.stderr)
        return 1
    out = opts.output or os.path.join(runs[0]["state"], "runs", runs[0]["run_id"],
                                      "gantt.png" if len(runs) == 1 else "compare.png")
    if len(runs) == 1:
        charts.render(runs[0], out)
    else:
        charts.compare(runs[0], runs[1], out)
    print(out)
    return 0


def store(args: list[str]) -> int:
    from warmci import context
    from warmci.errors import WarmciError
    from warmci.store.api import StoreError
    from warmci.store.local import LocalStore

    parser = argparse.ArgumentParser(prog="python -m warmci store")
    parser.add_argument("action", nargs="?", choices=["stats", "prune"], default="stats")
    parser.add_argument("--max", help="size to prune to: bytes, or a number with K, M, G or T")
    parser.add_argument("--store", help="the store directory (default: the state dir's, or WARMCI_STORE)")
    # target=PATH and state=DIR, as doit takes them, anywhere on the line.
    given = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    opts = parser.parse_args([a for a in args if not ("=" in a and not a.startswith("-"))])
    try:
        env = {**os.environ, **({"WARMCI_STORE_MAX": opts.max} if opts.max else {})}
        if opts.store:
            where, limit = context.store_choice({**env, "WARMCI_STORE": opts.store}, Path("."))
        else:
            ctx = context.resolve(lambda name, default: given.get(name, default), env)
            where, limit = ctx.store, ctx.store_max
        if not where:
            print("warmci: the result store is off (WARMCI_STORE=off)")
            return 0
        st = LocalStore(where)
        if opts.action == "prune":
            done = st.prune(limit)
            print(f"pruned {where} to {_size(limit)}: {done['evicted_entries']} entries and "
                  f"{done['removed_blobs']} blobs removed; {_size(done['bytes'])} left")
            return 0
        s = st.stats()
    except (WarmciError, StoreError, OSError) as exc:
        print(f"warmci: error: {exc}", file=sys.stderr)
        return 3
    rate = f"{100 * s['hit_rate']:.0f} %" if s["hit_rate"] is not None else "no lookups yet"
    print(f"store {where}\n"
          f"  size: {_size(s['bytes'])} in {s['entries']} entries and {s['blobs']} blobs (limit {_size(limit)})\n"
          f"  hit rate: {rate} ({s['hits']} restored of {s['lookups']} looked up, over {s['runs']} runs); "
          f"restored {_size(s['restored_bytes'])}, stored {_size(s['stored_bytes'])}; "
          f"corrupt or missing blobs met: {s['corrupt']}")
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
