import math

import pytest

from demo_app.table import (
    SAMPLE_COLUMNS,
    SAMPLE_ROWS,
    columns_of,
    format_cell,
    infer_dtype,
    sort_rows,
    summarise,
    table_payload,
)


def test_columns_first_seen_order():
    rows = [{"b": 1, "a": 2}, {"c": 3, "a": 4}]
    assert columns_of(rows) == ["b", "a", "c"]


def test_sample_columns_match_rows():
    assert columns_of(SAMPLE_ROWS) == list(SAMPLE_COLUMNS)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, None], "int"),
        ([1, 2.5], "float"),
        (["a", None], "string"),
        ([True, False], "bool"),
        ([None, None], "empty"),
        ([1, "a"], "mixed"),
    ],
)
def test_infer_dtype(values, expected):
    assert infer_dtype(values) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (1234567, "1,234,567"),
        (3.14159, "3.14"),
        (float("nan"), "NaN"),
        ("x", "x"),
    ],
)
def test_format_cell(value, expected):
    assert format_cell(value) == expected


def test_format_cell_precision():
    assert format_cell(2.0, precision=0) == "2"


def test_sort_rows_ascending_and_descending():
    rows = [{"n": 3}, {"n": 1}, {"n": 2}]
    assert [r["n"] for r in sort_rows(rows, "n")] == [1, 2, 3]
    assert [r["n"] for r in sort_rows(rows, "n", descending=True)] == [3, 2, 1]


def test_sort_rows_nulls_last_both_directions():
    rows = [{"n": None}, {"n": 2}, {}, {"n": 1}]
    assert [r.get("n") for r in sort_rows(rows, "n")] == [1, 2, None, None]
    assert [r.get("n") for r in sort_rows(rows, "n", descending=True)] == [2, 1, None, None]


def test_sort_rows_is_stable_and_does_not_mutate():
    rows = [{"k": 1, "i": 0}, {"k": 0, "i": 1}, {"k": 1, "i": 2}]
    before = list(rows)
    assert [r["i"] for r in sort_rows(rows, "k")] == [1, 0, 2]
    assert rows == before


def test_summarise_numeric_column():
    stats = summarise(SAMPLE_ROWS)["score"]
    assert stats["dtype"] == "float"
    assert stats["count"] == 4
    assert stats["nulls"] == 1
    assert stats["min"] == 4.5
    assert stats["max"] == 4.8
    assert math.isclose(stats["mean"], (4.5 + 4.8 + 4.7 + 4.6) / 4)


def test_summarise_string_column_has_no_numeric_stats():
    stats = summarise(SAMPLE_ROWS)["language"]
    assert stats == {"dtype": "string", "count": 5, "nulls": 0, "distinct": 4}


def test_summarise_empty_table():
    assert summarise([]) == {}


def test_table_payload_shape():
    payload = table_payload()
    assert payload["columns"] == list(SAMPLE_COLUMNS)
    assert len(payload["rows"]) == len(SAMPLE_ROWS)
    assert set(payload["summary"]) == set(SAMPLE_COLUMNS)
