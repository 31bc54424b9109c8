"""`python -m warmci COMMAND`: the runner's own commands next to doit's.

    python -m warmci explain [JOB ...] [target=PATH] [pipeline=FILE] [state=DIR]
        why each job would run now, naming each changed input
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
