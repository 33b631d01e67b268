"""The transformer agent against an independent pandas computation of the same operations on generated data.

``reference`` below interprets the operation JSON with pandas (nullable dtypes, SQL's three-valued logic through
pandas' ``boolean`` arrays, stable sorts, ``drop_duplicates``) and plain Python for the cell rules (number text,
rounding half away from zero): every kind of operation, alone and in multi-step recipes, must give the same frame
(values compared after normalising dtypes; floats to 1e-9), the same row order (the row index column travels with
its row), and exactly the same ``rows_affected`` at every step.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from functools import cache, reduce
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.params.transformer import TransformerParams
from agents.transform import transformer
from agents.transform.expressions import parse_expression

ROW = ROW_INDEX_COLUMN
ROWS = 3000
MISSING_MARKERS = {*DEFAULT_NULL_TOKENS, ""}


# ---------------------------------------------------------------------------------------------------------
# generated data


@cache
def generated() -> pl.DataFrame:
    """3,000 rows (300 of them repeats of earlier rows' values): numbers with nulls, text with case and whitespace
    variants, numbers and dates and booleans written as text (some invalid, some missing markers), dates, booleans.
    The row index starts at 1 with gaps, as after an earlier step removed rows."""
    rng = np.random.default_rng(20240611)
    base = ROWS - 300

    def pick(values: list[Any], share_null: float = 0.0) -> list[Any]:
        chosen = [values[i] for i in rng.integers(0, len(values), base)]
        return [None if rng.random() < share_null else value for value in chosen]

    names = ["anna", "Bob", "carla", "DAVE", "eve", "Frank"]
    domains = ["example.com", "Mail.org", "corp.net"]
    emails = [
        f"{pads}{name}{number}@{domain}{pads[::-1]}"
        for pads, name, number, domain in zip(
            pick(["", "", "", " ", "  "]), pick(names), rng.integers(0, base // 4, base), pick(domains), strict=True
        )
    ]
    data = {
        "age": [None if rng.random() < 0.05 else int(v) for v in rng.integers(18, 80, base)],
        "price": [None if rng.random() < 0.08 else round(float(v), 2) for v in rng.uniform(1, 100, base)],
        "qty": [int(v) for v in rng.integers(0, 9, base)],
        "email": [None if rng.random() < 0.05 else email for email in emails],
        "country": pick(["US", "CA", "GB", "us", "DE", "Ca"], 0.07),
        "note": pick(["  hello world ", "fine", " Big Deal", "ok  ", "two  spaces", "MIXED case"], 0.1),
        "amount": pick(["12", "1,234", "$5.50", "abc", "NA", "", "  7 ", "3.0", "-4", "n/a"], 0.05),
        "counts": pick(["1", "2", "30", "NA", " 4"], 0.05),
        "day_text": pick(["2024-01-05", "2023-12-31", "05/01/2024", "", "2020-02-29"], 0.05),
        "flag_text": pick(["yes", "no", "TRUE", "0", "maybe", "N"], 0.05),
        "signup": [
            None if rng.random() < 0.06 else dt.date(2019, 1, 1) + dt.timedelta(days=int(v))
            for v in rng.integers(0, 1500, base)
        ],
        "active": pick([True, False, True], 0.05),
    }
    frame = pl.DataFrame(
        data,
        schema={
            "age": pl.Int64,
            "price": pl.Float64,
            "qty": pl.Int64,
            "email": pl.String,
            "country": pl.String,
            "note": pl.String,
            "amount": pl.String,
            "counts": pl.String,
            "day_text": pl.String,
            "flag_text": pl.String,
            "signup": pl.Date,
            "active": pl.Boolean,
        },
    )
    repeats = frame[[int(i) for i in rng.integers(0, base, ROWS - base)]]
    whole = pl.concat([frame, repeats])
    order = rng.permutation(ROWS)
    whole = whole[[int(i) for i in order]]
    index = pl.Series(ROW, sorted(rng.choice(np.arange(1, ROWS * 2), ROWS, replace=False).tolist()), dtype=pl.Int64)
    return whole.insert_column(0, index)


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """The same values in pandas' nullable dtypes (dates as datetime64 with NaT), built from Python values."""
    kinds = {"Int64": "Int64", "Float64": "Float64", "String": "string", "Boolean": "boolean"}
    columns: dict[str, pd.Series] = {}
    for name, dtype in frame.schema.items():
        values = frame[name].to_list()
        if dtype == pl.Date:
            columns[name] = pd.Series(pd.to_datetime(values))
        else:
            columns[name] = pd.Series(pd.array(values, dtype=kinds[str(dtype)]))
    return pd.DataFrame(columns)


# ---------------------------------------------------------------------------------------------------------
# the pandas reference


def is_na(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def plain(value: Any) -> Any:
    """A pandas or Polars cell as plain Python: None for any missing value, dates as ``date``."""
    if is_na(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, np.generic):
        return value.item()
    return value


def cells(series: pd.Series) -> list[Any]:
    return [plain(value) for value in series.tolist()]


def three_valued(series: pd.Series, unknown: pd.Series) -> pd.Series:
    """A boolean array with NA where the comparison cannot be decided."""
    result = pd.array([bool(value) if not is_na(value) else None for value in series.tolist()], dtype="boolean")
    result[np.asarray(unknown, dtype=bool)] = pd.NA
    return pd.Series(result, index=series.index)


def literal_for(series: pd.Series, value: Any) -> Any:
    if pd.api.types.is_datetime64_any_dtype(series.dtype) and isinstance(value, str):
        return pd.Timestamp(value)
    return value


def condition(frame: pd.DataFrame, where: dict[str, Any]) -> pd.Series:
    if "all" in where:
        return reduce(lambda a, b: a & b, (condition(frame, part) for part in where["all"]))
    if "any" in where:
        return reduce(lambda a, b: a | b, (condition(frame, part) for part in where["any"]))
    if "not" in where:
        return ~condition(frame, where["not"])
    column = frame[where["column"]]
    cmp: str = where["cmp"]
    value: Any = where.get("value")
    if cmp == "is_null":
        return pd.Series(pd.array(column.isna().tolist(), dtype="boolean"), index=frame.index)
    if cmp == "is_not_null":
        return pd.Series(pd.array(column.notna().tolist(), dtype="boolean"), index=frame.index)
    unknown = column.isna()
    folded = not where.get("case_sensitive", True) and column.dtype == "string"
    subject = column.str.lower() if folded else column

    def fold(item: Any) -> Any:
        return item.lower() if folded and isinstance(item, str) else literal_for(column, item)

    if where.get("value_column"):
        other = frame[where["value_column"]]
        unknown = unknown | other.isna()
        return three_valued(_ordered(cmp, subject, other.str.lower() if folded else other), unknown)
    if cmp in {"contains", "starts_with", "ends_with"}:
        text = column.astype("string")
        needle = value
        if not where.get("case_sensitive", True):
            text, needle = text.str.lower(), needle.lower()
        method = {
            "contains": lambda s: s.str.contains(needle, regex=False),
            "starts_with": lambda s: s.str.startswith(needle),
            "ends_with": lambda s: s.str.endswith(needle),
        }[cmp]
        return three_valued(method(text.fillna("")), unknown)
    if cmp in {"in", "not_in"}:
        members = subject.isin([fold(item) for item in value])
        return three_valued(members if cmp == "in" else ~members, unknown)
    if cmp == "between":
        low, high = fold(value[0]), fold(value[1])
        return three_valued((subject.fillna(low) >= low) & (subject.fillna(low) <= high), unknown)
    return three_valued(_ordered(cmp, subject, fold(value)), unknown)


def _ordered(cmp: str, left: Any, right: Any) -> pd.Series:
    operators: dict[str, Callable[[Any, Any], Any]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return operators[cmp](left, right)


def number_text(text: str) -> float | None:
    """The numbers of the generated text columns as agents.values reads them ($ and well-grouped thousands)."""
    cleaned = text.strip().replace("$", "").replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


def round_half_away(value: float, digits: int) -> float:
    """The value scaled by 10^digits, rounded half away from zero, scaled back (86.41 * 5 gives 432.1)."""
    scaled = value * 10**digits
    return math.copysign(math.floor(abs(scaled) + 0.5), scaled) / 10**digits


def float_text(value: float) -> str:
    return repr(float(value))


def cast_column(series: pd.Series, to: str) -> tuple[list[Any], int, list[Any]]:
    """New values, how many values did not convert (markers excluded), and old and new as the CSV writes them."""
    values = cells(series)
    if series.dtype == "string":
        present = [value is not None and value.strip() not in MISSING_MARKERS for value in values]
    else:
        present = [value is not None for value in values]
    if to == "number":
        parsed = [number_text(value) if ok else None for value, ok in zip(values, present, strict=True)]
        whole = all(number.is_integer() for number in parsed if number is not None)
        to = "integer" if whole else "float"
    converted: list[Any] = []
    for value, ok in zip(values, present, strict=True):
        converted.append(_converted(value, to) if ok else None)
    invalid = sum(ok and new is None for ok, new in zip(present, converted, strict=True))
    return converted, invalid, values


def _converted(value: Any, to: str) -> Any:
    if to == "integer":
        number = number_text(value) if isinstance(value, str) else float(value)
        return int(number) if number is not None and number.is_integer() else None
    if to == "float":
        number = number_text(value) if isinstance(value, str) else float(value)
        return number
    if to == "text":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if to == "date":
        try:
            return dt.date.fromisoformat(value.strip()) if len(value.strip()) == 10 else None  # noqa: PLR2004
        except ValueError:
            return None
    if to == "boolean":
        token = value.strip().lower()
        return True if token in {"true", "yes", "y", "1"} else False if token in {"false", "no", "n", "0"} else None
    raise AssertionError(to)


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def changed(old: list[Any], new: list[Any], as_written: bool = False) -> int:
    if as_written:
        old, new = [as_text(value) for value in old], [as_text(value) for value in new]
    return sum(a != b for a, b in zip(old, new, strict=True))


def evaluate(node: dict[str, Any], row: dict[str, Any]) -> Any:
    """The restricted expression for one row, in plain Python: an empty argument makes the result empty, except
    for coalesce and concat."""
    if "col" in node:
        return row[node["col"]]
    if "lit" in node:
        return node["lit"]
    args = [evaluate(arg, row) for arg in node["args"]]
    name = node.get("op") or node["fn"]
    if name == "coalesce":
        return next((arg for arg in args if arg is not None), None)
    if name == "concat":
        return concat_reference(node["args"], args)
    if any(arg is None for arg in args):
        return None
    functions: dict[str, Callable[..., Any]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: None if b == 0 else a / b,  # a zero divisor gives an empty value
        "%": lambda a, b: None if b == 0 else a % b,
        "neg": lambda a: -a,
        "round": lambda a, digits=0: round_half_away(a, digits),
        "abs": abs,
        "floor": lambda a: float(math.floor(a)),
        "ceil": lambda a: float(math.ceil(a)),
        "lower": str.lower,
        "upper": str.upper,
        "title": str.title,
        "trim": str.strip,
        "length": len,
        "year": lambda d: d.year,
        "month": lambda d: d.month,
        "day": lambda d: d.day,
    }
    return functions[name](*args)


def concat_reference(nodes: list[dict[str, Any]], values: list[Any]) -> str | None:
    """concat as Excel's TEXTJOIN with ignore_empty: empty arguments skipped; a text written between two arguments
    follows the one before it (written when that one and a later one have a value); missing when all are empty."""
    texts = [as_text(value) for value in values]
    written = [i for i, node in enumerate(nodes) if not ("lit" in node and node["lit"] is not None)]
    present = {i: texts[i] not in (None, "") for i in written}
    if written and not any(present.values()):
        return None
    out: list[str] = []
    for i, text in enumerate(texts):
        if i in present:
            out.append(text or "")
            continue
        before, after = [j for j in written if j < i], [j for j in written if j > i]
        if not (before and after) or (present[before[-1]] and any(present[j] for j in after)):
            out.append(text or "")
    return "".join(out)


def fill_value(series: pd.Series, strategy: str) -> Any:
    present = [value for value in cells(series) if value is not None]
    if not present:
        return None
    if strategy == "mode":
        counts: dict[Any, int] = {}
        for value in present:
            counts[value] = counts.get(value, 0) + 1
        top = max(counts.values())
        return min(value for value, count in counts.items() if count == top)
    return float(np.mean(present)) if strategy == "mean" else float(np.median(present))  # as it is (pandas)


def reference(frame: pd.DataFrame, op: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    """One operation in pandas: the new frame and its rows_affected."""
    kind = op["op"]
    data = [name for name in frame.columns if name != ROW]
    if kind == "filter":
        holds = condition(frame, op["where"]).fillna(False).astype(bool)
        out = frame[holds] if op["action"] == "keep" else frame[~holds]
        return out, len(frame) - len(out)
    if kind == "deduplicate":
        keep = op.get("keep", "first")
        if not op.get("columns"):  # whole rows: equal, empty cells included
            out = frame.drop_duplicates(subset=data, keep=keep)
        else:  # on named columns an empty key equals nothing: such rows are never duplicates (SQL's rule)
            empty = frame[op["columns"]].isna().any(axis=1)
            out = frame[empty | ~frame.duplicated(subset=op["columns"], keep=keep)]
        return out, len(frame) - len(out)
    if kind == "sort":
        keys = op["by"]
        out = frame.sort_values(
            [key["column"] for key in keys],
            ascending=[not key.get("descending", False) for key in keys],
            na_position="last" if op.get("nulls_last", True) else "first",
            kind="stable",
        )
        return out, 0
    if kind == "drop_columns":
        return frame.drop(columns=op["columns"]), 0
    if kind == "keep_columns":
        return frame[[name for name in frame.columns if name == ROW or name in op["columns"]]], 0
    if kind == "rename":
        return frame.rename(columns=op["mapping"]), 0
    if kind == "reorder":
        first = op["columns"]
        return frame[[ROW, *first, *[name for name in data if name not in first]]], 0
    return _cell_reference(frame, op, data)


def _cell_reference(frame: pd.DataFrame, op: dict[str, Any], data: list[str]) -> tuple[pd.DataFrame, int]:
    kind = op["op"]
    out = frame.copy()
    affected = 0
    if kind == "derive":
        tree = parse_expression(op["expression"])
        rows = [
            dict(zip(frame.columns, (plain(v) for v in values), strict=True))
            for values in frame.itertuples(index=False)
        ]
        values = [evaluate(tree, row) for row in rows]
        affected = sum(value is not None for value in values)
        out[op["column"]] = pd.Series(values, index=frame.index, dtype=object)
        return out, affected
    columns = op.get("columns") or [name for name in data if frame[name].dtype == "string"]
    for name in columns:
        series = frame[name]
        old = cells(series)
        as_written = False
        if kind == "cast":
            new, invalid, _ = cast_column(series, op["to"])
            assert op.get("on_invalid") == "null" or not invalid
            as_written = True
        elif kind == "fill_nulls":
            new = _filled(series, op)
        elif kind == "trim":
            new = [value.strip() if value is not None else None for value in old]
        elif kind == "case":
            method = {"lower": str.lower, "upper": str.upper, "title": str.title}[op["to"]]
            new = [method(value) if value is not None else None for value in old]
        elif kind == "replace":
            new = _replaced(old, op, series)
        else:
            raise AssertionError(kind)
        affected += changed(old, new, as_written)
        out[name] = pd.Series(new, index=frame.index, dtype=object)
    return out, affected


def _filled(series: pd.Series, op: dict[str, Any]) -> list[Any]:
    strategy = op["strategy"]
    if strategy == "previous":
        return cells(series.ffill())
    if strategy == "next":
        return cells(series.bfill())
    value = op["value"] if strategy == "constant" else fill_value(series, strategy)
    if strategy == "constant" and pd.api.types.is_datetime64_any_dtype(series.dtype):
        value = dt.date.fromisoformat(value)
    return [value if old is None else old for old in cells(series)]


def _replaced(old: list[Any], op: dict[str, Any], series: pd.Series) -> list[Any]:
    if op.get("whole_value", True):
        target = op["old"]
        return [op["new"] if value == target or (target is None and value is None) else value for value in old]
    return [value.replace(op["old"], op["new"]) if value is not None else None for value in old]


# ---------------------------------------------------------------------------------------------------------
# running the agent


def transform(frame: pl.DataFrame, operations: list[dict[str, Any]]) -> AgentResult:
    seen: list[float] = []
    params = TransformerParams.model_validate({"operations": operations})
    result = transformer.run(AgentInputs(frame, "primary.csv"), params, lambda fraction, _m: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0
    json.dumps(result.envelope.to_dict(), allow_nan=False)
    assert result.row_level_issues.schema == pl.Schema(ROW_LEVEL_ISSUE_SCHEMA)
    assert result.frame is not None
    return result


def assert_same(result: AgentResult, expected: pd.DataFrame, affected: list[int]) -> None:
    frame = result.frame
    assert frame is not None
    assert frame.columns == list(expected.columns)
    assert frame[ROW].to_list() == cells(expected[ROW])  # same rows, same order
    for name in frame.columns:
        got, want = frame[name].to_list(), cells(expected[name])
        if frame.schema[name].is_float():
            assert len(got) == len(want)
            for a, b in zip(got, want, strict=True):
                assert (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b)), name
        else:
            assert got == want, name
    steps = result.envelope.data["steps"]
    assert [step["rows_affected"] for step in steps] == affected
    for step in steps:
        assert step["sentence"] and step["rows_after"] == step["rows_before"] - step["rows_removed"]
    assert result.envelope.data["transformations"] == [step["sentence"] for step in steps]
    metrics = result.envelope.summary_metrics
    assert metrics["operations_applied"] == len(steps) and metrics["rows_out"] == len(expected)
    assert metrics["rows_affected"] == sum(affected)


def check(operations: list[dict[str, Any]]) -> AgentResult:
    frame = generated()
    expected = to_pandas(frame)
    affected = []
    for op in operations:
        expected, count = reference(expected, op)
        affected.append(count)
    result = transform(frame, operations)
    assert_same(result, expected, affected)
    # the dtypes resolution predicted, but for "number", which is Int64 only when every value is whole, and for an
    # integer column filled with its mean or median, Float64 only when that fills a cell with a fraction
    filled = {name for op in operations if op.get("strategy") in ("mean", "median") for name in op["columns"]}
    numbers = filled | {name for op in operations if op.get("to") == "number" for name in op["columns"]}
    data = result.envelope.data
    got = {item["name"]: item["dtype"] for item in data["schema_after"] if item["name"] not in numbers}
    assert got == {item["name"]: item["dtype"] for item in data["schema_expected"] if item["name"] not in numbers}
    after = {item["name"]: item["dtype"] for item in data["schema_after"]}
    assert all(after[name] in ("Float64", str(frame.schema[name])) for name in filled if name in after)
    return result


SINGLE_OPERATIONS: dict[str, dict[str, Any]] = {
    "remove_null_email": {"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}},
    "keep_age_and_country": {
        "op": "filter",
        "action": "keep",
        "where": {
            "all": [
                {"column": "age", "cmp": ">=", "value": 30},
                {"column": "country", "cmp": "in", "value": ["US", "CA"]},
            ]
        },  # noqa: E501
    },
    "remove_not_us": {"op": "filter", "action": "remove", "where": {"column": "country", "cmp": "!=", "value": "US"}},
    "keep_not_us": {"op": "filter", "action": "keep", "where": {"column": "country", "cmp": "!=", "value": "US"}},
    "keep_not_in": {
        "op": "filter",
        "action": "keep",
        "where": {"column": "country", "cmp": "not_in", "value": ["US", "GB"]},
    },  # noqa: E501
    "keep_not_between_or_contains": {
        "op": "filter",
        "action": "keep",
        "where": {
            "any": [
                {"not": {"column": "price", "cmp": "between", "value": [10, 50]}},
                {"column": "email", "cmp": "contains", "value": "MAIL", "case_sensitive": False},
            ]
        },
    },
    "keep_after_date": {
        "op": "filter",
        "action": "keep",
        "where": {"column": "signup", "cmp": ">", "value": "2020-06-01"},
    },  # noqa: E501
    "keep_active": {"op": "filter", "action": "keep", "where": {"column": "active", "cmp": "==", "value": True}},
    "keep_qty_below_age": {
        "op": "filter",
        "action": "keep",
        "where": {"column": "qty", "cmp": "<", "value_column": "age"},
    },  # noqa: E501
    "remove_country_ignoring_case": {
        "op": "filter",
        "action": "remove",
        "where": {"column": "country", "cmp": "==", "value": "us", "case_sensitive": False},
    },
    "keep_prefix_suffix": {
        "op": "filter",
        "action": "keep",
        "where": {
            "any": [
                {"column": "email", "cmp": "starts_with", "value": "a"},
                {"column": "email", "cmp": "ends_with", "value": ".org"},
            ]
        },  # noqa: E501
    },
    "drop_columns": {"op": "drop_columns", "columns": ["note", "amount"]},
    "keep_columns": {"op": "keep_columns", "columns": ["price", "age"]},
    "rename": {"op": "rename", "mapping": {"country": "nation", "qty": "quantity"}},
    "reorder": {"op": "reorder", "columns": ["signup", "email"]},
    "cast_amount_number": {"op": "cast", "columns": ["amount"], "to": "number", "on_invalid": "null"},
    "cast_counts_number": {"op": "cast", "columns": ["counts"], "to": "number"},
    "cast_counts_float": {"op": "cast", "columns": ["counts"], "to": "float"},
    "cast_price_integer": {"op": "cast", "columns": ["price"], "to": "integer", "on_invalid": "null"},
    "cast_age_text": {"op": "cast", "columns": ["age", "signup"], "to": "text"},
    "cast_day_date": {"op": "cast", "columns": ["day_text"], "to": "date", "on_invalid": "null"},
    "cast_flag_boolean": {"op": "cast", "columns": ["flag_text"], "to": "boolean", "on_invalid": "null"},
    "fill_constant": {"op": "fill_nulls", "columns": ["price"], "strategy": "constant", "value": 0.5},
    "fill_constant_text": {"op": "fill_nulls", "columns": ["country", "note"], "strategy": "constant", "value": "ZZ"},
    "fill_constant_date": {"op": "fill_nulls", "columns": ["signup"], "strategy": "constant", "value": "2020-01-01"},
    "fill_mean_integer": {"op": "fill_nulls", "columns": ["age"], "strategy": "mean"},
    "fill_median": {"op": "fill_nulls", "columns": ["price", "age"], "strategy": "median"},
    "fill_mode": {"op": "fill_nulls", "columns": ["country", "signup", "active"], "strategy": "mode"},
    "fill_previous": {"op": "fill_nulls", "columns": ["email", "price"], "strategy": "previous"},
    "fill_next": {"op": "fill_nulls", "columns": ["signup"], "strategy": "next"},
    "dedup_first": {"op": "deduplicate", "columns": ["email"], "keep": "first"},
    "dedup_last": {"op": "deduplicate", "columns": ["email", "country"], "keep": "last"},
    "dedup_all": {"op": "deduplicate"},
    "sort": {"op": "sort", "by": [{"column": "country"}, {"column": "price", "descending": True}]},
    "sort_nulls_first": {"op": "sort", "by": [{"column": "signup", "descending": True}], "nulls_last": False},
    "derive_product": {"op": "derive", "column": "total", "expression": "price * qty"},
    "derive_round": {"op": "derive", "column": "third", "expression": "round(price / 3, 2)"},
    "derive_text": {"op": "derive", "column": "label", "expression": "concat(country, '-', upper(trim(note)))"},
    "derive_coalesce": {"op": "derive", "column": "price_or_zero", "expression": "coalesce(price, 0.0)"},
    "derive_dates": {"op": "derive", "column": "year", "expression": "year(signup) * 100 + month(signup)"},
    "derive_misc": {"op": "derive", "column": "misc", "expression": "length(email) + age % 7 - -qty"},
    "derive_floor": {"op": "derive", "column": "bounds", "expression": "floor(price) + ceil(price) + abs(price - 50)"},
    "trim": {"op": "trim", "columns": ["note", "email"]},
    "trim_every_text": {"op": "trim"},
    "lower": {"op": "case", "columns": ["email"], "to": "lower"},
    "upper": {"op": "case", "columns": ["country"], "to": "upper"},
    "title": {"op": "case", "columns": ["note"], "to": "title"},
    "replace_whole": {"op": "replace", "columns": ["country"], "old": "US", "new": "USA"},
    "replace_number": {"op": "replace", "columns": ["age"], "old": 30, "new": 31},
    "replace_with_empty": {"op": "replace", "columns": ["note"], "old": "fine", "new": None},
    "replace_substring": {"op": "replace", "columns": ["note"], "old": " ", "new": "_", "whole_value": False},
}


@pytest.mark.parametrize("name", list(SINGLE_OPERATIONS))
def test_each_operation_matches_pandas(name: str) -> None:
    check([SINGLE_OPERATIONS[name]])


RECIPES: dict[str, list[dict[str, Any]]] = {
    "clean_up_then_filter": [
        {"op": "trim", "columns": ["email"]},
        {"op": "case", "columns": ["email", "country"], "to": "lower"},
        {"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}},
        {"op": "deduplicate", "columns": ["email"], "keep": "last"},
        {"op": "filter", "action": "keep", "where": {"column": "country", "cmp": "in", "value": ["us", "ca"]}},
    ],
    "fill_after_filter_and_sort": [
        {"op": "filter", "action": "keep", "where": {"column": "age", "cmp": "<", "value": 60}},
        {"op": "sort", "by": [{"column": "signup"}]},
        {"op": "fill_nulls", "columns": ["price"], "strategy": "median"},
        {"op": "fill_nulls", "columns": ["country"], "strategy": "previous"},
        {"op": "derive", "column": "total", "expression": "round(price * qty, 1)"},
    ],
    "rename_then_use_new_names": [
        {"op": "rename", "mapping": {"amount": "value", "country": "nation"}},
        {"op": "cast", "columns": ["value"], "to": "number", "on_invalid": "null"},
        {"op": "fill_nulls", "columns": ["value"], "strategy": "constant", "value": 0.0},
        {"op": "replace", "columns": ["nation"], "old": "us", "new": "US"},
        {"op": "sort", "by": [{"column": "nation"}, {"column": "value", "descending": True}], "nulls_last": False},
        {"op": "keep_columns", "columns": ["nation", "value", "email"]},
        {"op": "reorder", "columns": ["value"]},
    ],
    "ten_steps": [
        {"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}},
        {"op": "rename", "mapping": {"qty": "quantity"}},
        {"op": "cast", "columns": ["counts"], "to": "number"},
        {"op": "fill_nulls", "columns": ["age"], "strategy": "mean"},
        {"op": "deduplicate", "columns": ["email"], "keep": "first"},
        {"op": "sort", "by": [{"column": "signup", "descending": True}]},
        {"op": "derive", "column": "total", "expression": "price * quantity"},
        {"op": "case", "columns": ["email"], "to": "lower"},
        {"op": "replace", "columns": ["country"], "old": "Ca", "new": "CA"},
        {"op": "drop_columns", "columns": ["note", "flag_text"]},
    ],
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipes_match_pandas(name: str) -> None:
    check(RECIPES[name])


def test_seed_sentence_and_step_record() -> None:
    result = check([SINGLE_OPERATIONS["remove_null_email"]])
    step = result.envelope.data["steps"][0]
    removed = step["rows_removed"]
    assert removed > 0 and step["sentence"] == f"Dropped {removed:,} rows where email was null"
    assert step["nulls_changed"]["email"] == {"before": removed, "after": 0}
    assert result.envelope.data["recipe"]["operations"][0]["where"]["column"] == "email"


def test_sentences_name_what_was_done() -> None:
    frame = generated()
    result = transform(
        frame,
        [
            {"op": "rename", "mapping": {"country": "nation"}},
            {"op": "fill_nulls", "columns": ["price"], "strategy": "median"},
            {"op": "cast", "columns": ["amount"], "to": "number", "on_invalid": "null"},
            {"op": "filter", "action": "keep", "where": {"column": "age", "cmp": ">=", "value": 18}},
        ],
    )
    steps = result.envelope.data["steps"]
    assert steps[0]["sentence"] == "Renamed country to nation"
    assert steps[0]["columns_renamed"] == {"country": "nation"} and not steps[0]["columns_added"]
    median = float(np.median([v for v in frame["price"].to_list() if v is not None]))
    nulls = frame["price"].null_count()
    assert steps[1]["sentence"] == f"Filled {nulls:,} missing price values with the median ({median:g})"
    invalid = steps[2]["details"]["values_not_converted"]
    assert invalid == sum(value == "abc" for value in frame["amount"].to_list())
    assert steps[2]["sentence"].startswith(f"Converted amount to number ({invalid:,} values could not be converted")
    assert steps[2]["columns_retyped"] == {"amount": {"before": "String", "after": "Float64"}}
    assert steps[3]["sentence"].startswith("Kept ") and steps[3]["sentence"].endswith(
        f"rows where age >= 18 (dropped {frame['age'].null_count():,})"
    )
    emptied = result.row_level_issues
    assert emptied.height == invalid and set(emptied["value"].to_list()) == {"abc"}
    assert set(emptied["row_index"].to_list()) == set(frame.filter(pl.col("amount") == "abc")[ROW].to_list())


def test_sql_semantics_of_empty_cells() -> None:
    frame = pl.DataFrame({ROW: [1, 2, 3, 4], "country": ["US", None, "CA", "us"], "n": [1, None, 3, 4]})
    remove = transform(
        frame, [{"op": "filter", "action": "remove", "where": {"column": "country", "cmp": "!=", "value": "US"}}]
    )  # noqa: E501
    keep = transform(
        frame, [{"op": "filter", "action": "keep", "where": {"column": "country", "cmp": "!=", "value": "US"}}]
    )  # noqa: E501
    assert remove.frame is not None and keep.frame is not None
    assert remove.frame[ROW].to_list() == [1, 2]  # the empty country cannot be compared: not removed
    assert keep.frame[ROW].to_list() == [3, 4]  # nor kept
    negated = transform(
        frame, [{"op": "filter", "action": "keep", "where": {"not": {"column": "n", "cmp": ">", "value": 2}}}]
    )  # noqa: E501
    assert negated.frame is not None and negated.frame[ROW].to_list() == [1]  # not(unknown) is unknown


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int32, pl.Int64, pl.UInt8, pl.UInt64])
def test_whole_numbers_the_column_type_cannot_hold_compare(dtype: pl.DataType) -> None:
    """Before, ``n == 2**63`` on an Int64 column (or 300 on an Int8 one) failed the agent: Polars could not make a
    literal of the column's type. No value equals them, every value is below the large ones and above -2**63."""
    frame = pl.DataFrame({ROW: [1, 2, 3], "n": pl.Series([0, None, 100], dtype=dtype)})
    high, low = 2**64 - 1, -(2**63)

    def kept(where: dict[str, Any]) -> list[int]:
        result = transform(frame, [{"op": "filter", "action": "keep", "where": where}])
        assert result.frame is not None and result.frame.schema["n"] == dtype
        return result.frame[ROW].to_list()

    assert kept({"column": "n", "cmp": "==", "value": high}) == []
    assert kept({"column": "n", "cmp": "<", "value": high}) == [1, 3]
    assert kept({"column": "n", "cmp": ">", "value": low}) == [1, 3]
    assert kept({"column": "n", "cmp": "in", "value": [high, 100]}) == [3]
    assert kept({"column": "n", "cmp": "not_in", "value": [low, 0]}) == [3]
    assert kept({"column": "n", "cmp": "between", "value": [low, high]}) == [1, 3]
    assert kept({"column": "n", "cmp": "between", "value": [-1, 100]}) == [1, 3]  # within the type: as before


def test_cast_that_fails_names_column_count_and_examples() -> None:
    frame = generated()
    with pytest.raises(InvalidParametersError) as caught:
        transform(
            frame, [{"op": "drop_columns", "columns": ["note"]}, {"op": "cast", "columns": ["amount"], "to": "number"}]
        )  # noqa: E501
    error = caught.value
    bad = sum(value == "abc" for value in frame["amount"].to_list())
    assert error.code == "INVALID_PARAMETERS" and error.details["field"] == "operations[1]"
    assert error.details["column"] == "amount" and error.details["invalid_count"] == bad
    assert error.details["examples"] == ["abc"]
    assert f"{bad:,} values of 'amount' cannot be converted to number" in error.message


def test_cast_number_chooses_integers_only_when_every_value_is_whole() -> None:
    frame = pl.DataFrame({ROW: [1, 2, 3], "a": ["1", "2,000", " 3 "], "b": ["1", "2.5", "NA"], "c": [1.0, 2.0, None]})
    result = transform(frame, [{"op": "cast", "columns": ["a", "b", "c"], "to": "number"}])
    assert result.frame is not None
    assert result.frame.schema["a"] == pl.Int64 and result.frame["a"].to_list() == [1, 2000, 3]
    assert result.frame.schema["b"] == pl.Float64 and result.frame["b"].to_list() == [1.0, 2.5, None]
    assert result.frame.schema["c"] == pl.Int64 and result.frame["c"].to_list() == [1, 2, None]
    step = result.envelope.data["steps"][0]
    assert step["details"]["missing_markers_emptied"] == 1 and step["details"]["values_not_converted"] == 0
    # written differently: "2,000" and " 3 " in a; "1" (now 1.0) and "NA" (emptied) in b; 1.0 and 2.0 (now 1, 2) in c
    assert step["rows_affected"] == 6


def test_type_mismatch_is_refused_before_running() -> None:
    frame = pl.DataFrame({ROW: [1, 2], "name": ["a", "b"], "n": [1, 2]})
    with pytest.raises(InvalidParametersError) as caught:
        transform(frame, [{"op": "fill_nulls", "columns": ["name"], "strategy": "mean"}])
    assert caught.value.details["field"].startswith("operations[0]")


def test_dates_convert_with_formats_and_iso_text() -> None:
    frame = pl.DataFrame(
        {
            ROW: [1, 2, 3, 4],
            "day": ["05/01/2024", "31/12/2023", "2024-01-05", None],
            "stamp": ["2024-01-05T10:30:00", "2024-01-05 10:30", "2024-01-05", "noon"],
            "when": [dt.date(2024, 1, 5), None, dt.date(2023, 12, 31), dt.date(2020, 2, 29)],
        },
        schema_overrides={ROW: pl.Int64},
    )
    result = transform(
        frame,
        [
            {"op": "cast", "columns": ["day"], "to": "date", "format": "%d/%m/%Y", "on_invalid": "null"},
            {"op": "cast", "columns": ["stamp"], "to": "datetime", "on_invalid": "null"},
            {"op": "cast", "columns": ["when"], "to": "text", "format": "%d.%m.%Y"},
        ],
    )
    assert result.frame is not None
    assert result.frame["day"].to_list() == [dt.date(2024, 1, 5), dt.date(2023, 12, 31), None, None]
    assert result.frame["stamp"].to_list() == [
        dt.datetime(2024, 1, 5, 10, 30),
        dt.datetime(2024, 1, 5, 10, 30),
        dt.datetime(2024, 1, 5),
        None,
    ]
    assert result.frame["when"].to_list() == ["05.01.2024", None, "31.12.2023", "29.02.2020"]
    steps = result.envelope.data["steps"]
    assert [step["details"]["values_not_converted"] for step in steps] == [1, 1, 0]
    issues = result.row_level_issues.sort("row_index")
    assert list(zip(issues["row_index"], issues["column"], issues["value"], strict=True)) == [
        (3, "day", "2024-01-05"),
        (4, "stamp", "noon"),
    ]


def test_two_hundred_steps() -> None:
    """The longest recipe the model allows, each step counted on the rows the earlier ones left."""
    frame = pl.DataFrame({ROW: list(range(1, 101)), "a": [i % 7 for i in range(100)], "s": ["x"] * 100})
    operations: list[dict[str, Any]] = []
    for i in range(100):
        operations.append({"op": "filter", "action": "remove", "where": {"column": "a", "cmp": "==", "value": i % 7}})
        operations.append({"op": "case", "columns": ["s"], "to": "upper" if i % 2 else "lower"})
    result = transform(frame.with_columns(pl.col(ROW).cast(pl.Int64)), operations)
    assert result.frame is not None and result.frame.height == 0
    steps = result.envelope.data["steps"]
    assert len(steps) == 200 and sum(step["rows_removed"] for step in steps) == 100
    assert [step["rows_affected"] for step in steps[:4]] == [15, 0, 15, 70]  # "x" is lower case already
