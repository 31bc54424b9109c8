"""Summaries of repeated measurements: medians and spread, never a single number."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """{n, median, min, max, q1, q3, values}; None fields when there is nothing to summarise."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "q1": None, "q3": None, "values": []}
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    r = lambda x: round(x, digits)  # noqa: E731
    return {"n": len(vals), "median": r(statistics.median(vals)), "min": r(vals[0]), "max": r(vals[-1]),
            "q1": r(q1), "q3": r(q3), "values": [r(v) for v in values]}


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    """a / b, or None when either is unknown or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def median_of(s: dict[str, Any] | None) -> float | None:
    return None if not s else s.get("median")
