"""The benchmark's fastest mode, end to end: every section is there with sane numbers.

No timing assertions (machines are noisy): structure, physics (a run cannot
beat its own lower bound, a dependent cannot start before its need ended)
and correctness (each edit reran exactly the jobs that depend on it).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import synth

from .helpers import RUNNER

pytestmark = pytest.mark.slow


def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out), "--workdir",
                        str(tmp_path / "work")], cwd=RUNNER, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-4000:]
    data = json.loads((out / "latest.json").read_text())
    md = (out / "latest.md").read_text()
    for key in ("cold", "noop", "noop_breakdown", "incremental", "handoff", "scaling", "switching"):
        assert isinstance(data.get(key), dict) and "error" not in data[key], (key, data.get(key))
    assert data["machine"]["nproc"] and data["machine"]["cpu_model"] and "bench.run --quick" in data["command"]
    for title in ("## Headline", "## 1. No-op", "### Where the no-op time goes", "## 2. Incremental",
                  "## 3. Cold", "## 4. Handoff", "## 5. Scaling", "## 6. Switching branches"):
        assert title in md

    noop = data["noop"]
    floor = noop["floor"]["python -c pass"]["median"]
    doit = noop["noop"]["doit"]["median"]
    assert 0 < floor < doit < noop["forced"]["median"], noop
    assert noop["ratios"]["doit"]["vs_floor"] > 1

    labels = {p["label"] for p in data["noop_breakdown"]["phases"]}
    assert {"build task list", "up-to-date checks", "reporter: run end"} <= labels, labels

    for name, expected in synth.EXPECTED.items():
        sc = data["incremental"][name]
        assert sc["reran"] == [sorted(expected)] and sc["ok"], (name, sc)
        assert sc["warm_after"], (name, sc)

    cold = data["cold"]["runs"]
    assert len(cold) == 1 and set(cold[0]["jobs"]) == synth.ALL
    assert cold[0]["ratio"] >= 0.99, cold  # nothing finishes before its own critical path

    hand = data["handoff"]["handoff_ms"]
    assert hand["n"] >= 1 and hand["min"] >= 0, data["handoff"]  # a dependent never starts before its need ends

    (size,) = data["scaling"]["sizes"]
    assert size["files"] >= 1000 and size["job_file_pairs"] >= 3 * 1000 and size["noop"]["median"] > 0, size
    sw = data["switching"]
    assert sw["return"]["store"]["reran_nothing"], sw["return"]["store"]  # every return restored
    assert all(r["restored"] for r in sw["return"]["store"]["returns"])
    assert all(r["ran"] for r in sw["return"]["off"]["returns"])  # doit alone reruns what the switch touched
    assert sw["series"]["store"]["jobs_ran"] < sw["series"]["off"]["jobs_ran"], sw["series"]
    assert not sw["series"]["store"]["failed_runs"] and not sw["series"]["off"]["failed_runs"]
    (clone,) = sw["clone"]
    assert not clone["first_after_clone"]["ran"] and not clone["elsewhere_first"]["ran"], clone
    assert clone["noop_after"]["n"] >= 2 and not clone["not_noops_after"], clone
    assert data["leftover_processes"] == []
