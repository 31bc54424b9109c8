"""What every single-purpose benchmark (bench.service, bench.pages) does around its measurement.

Parse `--reps N` and `--out DIR`, describe the machine, measure in a
scratch directory that is removed afterwards, and write OUT/NAME.json
(everything, with the exact command) and OUT/NAME.md (its tables).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import machine

RUNNER = Path(__file__).resolve().parent.parent
# measure(reps, scratch dir, say, **options)
Measure = Callable[..., dict[str, Any]]


def header(title: str, d: dict[str, Any]) -> list[str]:
    """The first lines of OUT/NAME.md: what was measured, by which command, on what machine and runner."""
    m = d["machine"]
    return [f"# {title}, {m['timestamp']}", "",
            f"- command: `{d['command']}` (took {d['duration_s']} s)",
            f"- machine: {m['cpu_model']}, {m['nproc']} cpus, {m['memory_mb']} MB; load {m['loadavg_at_start']} → "
            f"{m.get('loadavg_at_end')}",
            f"- runner {m['runner']['commit']} (+{m['runner']['dirty_paths']} uncommitted paths); python "
            f"{m['python']}, doit {m['doit']}, {m['git']}"]


def main(name: str, doc: str, argv: Sequence[str] | None, reps: int, measure: Measure,
         markdown: Callable[[dict[str, Any]], str], options: Mapping[str, tuple[int, str]] | None = None) -> int:
    """`options`: further integer options, name -> (default, help); each goes to `measure` and into NAME.json."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=doc.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=reps, help=f"repetitions measured (default {reps})")
    p.add_argument("--out", type=Path, default=RUNNER / "bench" / "results",
                   help=f"where {name}.json and {name}.md go")
    for option, (default, text) in (options or {}).items():
        p.add_argument(f"--{option}", type=int, default=default, help=text)
    args = p.parse_args(argv)
    extra = {o.replace("-", "_"): getattr(args, o.replace("-", "_")) for o in options or {}}
    started = time.perf_counter()
    data: dict[str, Any] = {"command": shlex.join(["./bootstrap", "python", "-m", f"bench.{name}", *argv]),
                            "machine": machine.describe(), "reps": args.reps, **extra}
    with tempfile.TemporaryDirectory(prefix=f"warmci-bench-{name}-") as tmp:
        data.update(measure(args.reps, Path(tmp), lambda msg: print(f"bench.{name}: {msg}", file=sys.stderr),
                            **extra))
    data["machine"]["loadavg_at_end"] = machine.load()
    data["duration_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(data))
    print(f"bench.{name}: wrote {args.out / f'{name}.json'} and {args.out / f'{name}.md'}", file=sys.stderr)
    return 0
