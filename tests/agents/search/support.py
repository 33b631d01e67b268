"""Generated data for the search agents' tests, and its independent pandas reading.

A table is a list of rows of Python values (text with nulls and mixed case, whole numbers, decimals, dates, booleans,
a unique ``id``); the agents get it as a Polars frame, the reference as a pandas frame with nullable dtypes built
from the same Python lists (never through Polars).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import polars as pl
from hypothesis import strategies as st

from agents.envelope import AgentInputs

TEXT_ALPHABET = "abAB z"
CITIES = ["Paris", "Lyon", "Nice", "lyon"]
FIRST_DAY = dt.date(2023, 11, 20)
SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "name": pl.String(),
    "city": pl.String(),
    "qty": pl.Int64(),
    "price": pl.Float64(),
    "day": pl.Date(),
    "flag": pl.Boolean(),
}
PANDAS_DTYPES = {"id": "Int64", "name": "string", "city": "string", "qty": "Int64", "price": "Float64",
                 "flag": "boolean"}  # fmt: skip
TEXT_COLUMNS = ["name", "city"]


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


ROW = st.tuples(
    _maybe(st.text(TEXT_ALPHABET, max_size=6)),
    _maybe(st.sampled_from(CITIES)),
    _maybe(st.integers(-5, 5)),
    _maybe(st.sampled_from([-1.5, 0.0, 0.25, 2.0, 3.75, 10.0])),
    _maybe(st.integers(0, 60).map(lambda days: FIRST_DAY + dt.timedelta(days=days))),
    _maybe(st.booleans()),
)


@st.composite
def tables(draw: st.DrawFn, max_rows: int = 30) -> list[dict[str, Any]]:
    rows = draw(st.lists(ROW, min_size=1, max_size=max_rows) | st.just([]))
    names = list(SCHEMA)[1:]
    return [{"id": i + 1, **dict(zip(names, row, strict=True))} for i, row in enumerate(rows)]


def polars_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame({name: [row[name] for row in rows] for name in SCHEMA}, schema=SCHEMA)


def inputs(rows: list[dict[str, Any]]) -> AgentInputs:
    return AgentInputs(polars_frame(rows), "primary.csv")


def pandas_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for name in SCHEMA:
        values = [row[name] for row in rows]
        if name == "day":
            columns[name] = pd.Series(
                [pd.NaT if v is None else pd.Timestamp(v) for v in values], dtype="datetime64[ns]"
            )
        else:
            columns[name] = pd.Series(values, dtype=PANDAS_DTYPES[name])
    return pd.DataFrame(columns)


def json_value(value: Any) -> Any:
    """A pandas cell as the agents' JSON rows show it."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{name: json_value(value) for name, value in row.items()} for row in frame.to_dict("records")]


def same_records(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Equal, floats to 1e-9."""
    if len(got) != len(expected):
        return False
    for a, b in zip(got, expected, strict=True):
        if a.keys() != b.keys():
            return False
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y or type(x) is not type(y):
                return False
    return True


def select(frame: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
    """The rows the selection parameters pick (with exact column names and values as the frame holds them)."""
    keep = pd.Series(True, index=frame.index)
    for column, values in params.get("filters", {}).items():
        listed = [_pandas_value(column, v) for v in values if not _missing_value(v)]
        member = frame[column].isin(listed).fillna(False).astype(bool) if listed else pd.Series(False, frame.index)
        if any(_missing_value(v) for v in values):
            member |= missing(frame[column])
        keep &= member
    columns = params.get("keyword_columns") or TEXT_COLUMNS
    for keyword in params.get("keywords", []):
        word = keyword.lower()
        hit = pd.Series(False, index=frame.index)
        for column in columns:
            text = frame[column].map(lambda v: None if pd.isna(v) else str(v).lower()).astype(object)
            hit |= text.map(lambda v, k=word: v is not None and k in v).astype(bool)
        keep &= hit
    for item in params.get("time_ranges", []):
        cells = frame[item["column"]]
        inside = cells.notna()
        if item.get("from"):
            inside &= cells >= pd.Timestamp(item["from"])
        if item.get("to"):
            inside &= cells <= pd.Timestamp(item["to"])
        keep &= inside.fillna(False).astype(bool)
    for item in params.get("ranges", []):
        cells = frame[item["column"]]
        inside = cells.notna()
        if item.get("min") is not None:
            inside &= (cells >= item["min"]).fillna(False).astype(bool)
        if item.get("max") is not None:
            inside &= (cells <= item["max"]).fillna(False).astype(bool)
        keep &= inside
    return keep


def _missing_value(value: Any) -> bool:
    """A filter value that selects the missing cells: null, or an empty (or blank) text."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def missing(cells: pd.Series) -> pd.Series:
    """The product's missing values (PRODUCT.md "Missing values"): empty cells, and blank texts of a text column."""
    blank = cells.map(lambda v: isinstance(v, str) and v.strip() == "").astype(bool)
    return cells.isna().fillna(True).astype(bool) | blank


def _pandas_value(column: str, value: Any) -> Any:
    if column == "day":
        return pd.Timestamp(value)
    if column == "flag" and isinstance(value, str):
        return value == "true"
    if column in ("qty", "id") and isinstance(value, str):
        return int(value)
    return value


def sorted_frame(frame: pd.DataFrame, keys: list[tuple[str, bool]]) -> pd.DataFrame:
    """Stable, empty values last whatever the direction, key by key (last key first)."""
    for column, descending in reversed(keys):
        frame = frame.sort_values(column, ascending=not descending, kind="stable", na_position="last")
    return frame
