"""Timed phases of a job script for results.json (docs/results.md, `phases`).

warmci names a file in WARMCI_PHASES for each step; a script appends one
JSON object per phase. Outside warmci (no variable) nothing is written.
"""
from __future__ import annotations

import json
import os


def record(name: str, seconds: float) -> None:
    path = os.environ.get("WARMCI_PHASES")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"name": name, "seconds": round(seconds, 3)}) + "\n")
