"""Pure helpers over a table: a list of rows, each a dict keyed by column name."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]

SAMPLE_COLUMNS: tuple[str, ...] = ("name", "language", "stars", "score")
SAMPLE_ROWS: tuple[dict[str, Any], ...] = (
    {"name": "buckaroo", "language": "Python", "stars": 1200, "score": 4.5},
    {"name": "pandas", "language": "Python", "stars": 42000, "score": 4.8},
    {"name": "polars", "language": "Rust", "stars": 29000, "score": 4.7},
    {"name": "esbuild", "language": "Go", "stars": 38000, "score": 4.6},
    {"name": "left-pad", "language": "JavaScript", "stars": 1100, "score": None},
)


def columns_of(rows: Iterable[Row]) -> list[str]:
    """Column names in first-seen order across all rows."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def infer_dtype(values: Iterable[Any]) -> str:
    """'empty', 'int', 'float', 'bool', 'string' or 'mixed' for the non-null values."""
    kinds: set[str] = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            kinds.add("int")
        elif isinstance(value, float):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("string")
        else:
            kinds.add("mixed")
    if not kinds:
        return "empty"
    if kinds == {"int", "float"}:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed"


def format_cell(value: Any, *, precision: int = 2) -> str:
    """Render one cell the way the table widget shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:,.{precision}f}"
    return str(value)


def sort_rows(rows: Sequence[Row], key: str, *, descending: bool = False) -> list[Row]:
    """Stable sort by one column; missing/None values always go last."""
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: r[key], reverse=descending)
    return present + missing


def summarise(rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """Per-column stats, like buckaroo's summary row: dtype, counts, and numeric stats."""
    out: dict[str, dict[str, Any]] = {}
    for col in columns_of(rows):
        values = [r.get(col) for r in rows]
        non_null = [v for v in values if v is not None]
        dtype = infer_dtype(values)
        stats: dict[str, Any] = {
            "dtype": dtype,
            "count": len(non_null),
            "nulls": len(values) - len(non_null),
            "distinct": len({repr(v) for v in non_null}),
        }
        if dtype in ("int", "float") and non_null:
            stats["min"] = min(non_null)
            stats["max"] = max(non_null)
            stats["mean"] = sum(non_null) / len(non_null)
        out[col] = stats
    return out


def table_payload(rows: Sequence[Row] = SAMPLE_ROWS) -> dict[str, Any]:
    """The JSON document served at /api/rows."""
    return {
        "columns": columns_of(rows),
        "rows": [dict(r) for r in rows],
        "summary": summarise(rows),
    }
