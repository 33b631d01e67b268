"""The aggregator against an independent pandas group-by (hypothesis-generated data, selections, keys, buckets,
metrics, sorts, tops and pages), its chart, and its refusals."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.errors import InvalidParametersError
from agents.params.aggregator import AggregatorParams
from agents.search import aggregator
from tests.agents.search import support

SETTINGS = settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
KEYS = ["name", "city", "qty", "flag", "day"]
METRICS = [("count", None), ("count", "price"), ("sum", "qty"), ("sum", "price"), ("mean", "price"), ("min", "day"),
           ("max", "name"), ("min", "qty"), ("distinct", "city"), ("distinct", "day")]  # fmt: skip
BUCKETS = {"day": "D", "week": "W-SUN", "month": "M", "year": "Y"}


def ignore(fraction: float, message: str) -> None:
    pass


def aggregate(rows: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    result = aggregator.run(support.inputs(rows), AggregatorParams.model_validate(params), ignore)
    json.dumps(result.envelope.to_dict(), allow_nan=False)
    return result.envelope.data


def metric_name(fn: str, column: str | None) -> str:
    return "count" if column is None else f"{fn}_{column}"


@st.composite
def aggregations(draw: st.DrawFn) -> dict[str, Any]:
    params: dict[str, Any] = {}
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=2, unique=True))
    params["group_by"] = keys
    if "day" not in keys and draw(st.booleans()):
        params["bucket"] = {"column": "day", "unit": draw(st.sampled_from(list(BUCKETS)))}
    chosen = draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=3, unique=True))
    params["metrics"] = [{"fn": fn, "column": column} for fn, column in chosen]
    if draw(st.booleans()):
        params["filters"] = {"city": draw(st.lists(st.sampled_from([*support.CITIES, None]), min_size=1, max_size=2))}
    if draw(st.booleans()):
        params["ranges"] = [{"column": "qty", "min": draw(st.integers(-5, 0))}]
    names = [*keys, *(["day"] if "bucket" in params else []), *(metric_name(f, c) for f, c in chosen)]
    sort = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    params["sort"] = [{"column": name, "descending": draw(st.booleans())} for name in sort]
    params["page_size"] = draw(st.integers(1, 8))
    params["page"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        params["top"] = draw(st.integers(1, 10))
    return params


def reference(rows: list[dict[str, Any]], params: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    frame = support.pandas_frame(rows)
    frame = frame[support.select(frame, params)].copy()
    keys = list(params["group_by"])
    if "bucket" in params:
        frame["_bucket"] = frame["day"].dt.to_period(BUCKETS[params["bucket"]["unit"]]).dt.start_time
        keys.append("_bucket")
    metrics = [(item["fn"], item["column"]) for item in params["metrics"]]
    columns: dict[str, Any] = {}
    if keys:
        grouped = frame.groupby(keys, dropna=False, sort=False)
        table = grouped.size().rename("_rows").reset_index()
        for fn, column in metrics:
            columns[metric_name(fn, column)] = _metric(grouped, fn, column).reset_index(drop=True)
        table = pd.concat([table.drop(columns="_rows"), pd.DataFrame(columns)], axis=1)
    else:
        table = pd.DataFrame({metric_name(fn, c): [_whole(frame, fn, c)] for fn, c in metrics})
    table = table.rename(columns={"_bucket": "day"})
    keys = ["day" if key == "_bucket" else key for key in keys]
    names = [metric_name(fn, c) for fn, c in metrics]
    sort = [(item["column"], item["descending"]) for item in params["sort"]] or [(names[0], True)]
    sort += [(key, False) for key in keys if key not in {name for name, _ in sort}]
    table = support.sorted_frame(table, sort)
    if params.get("top"):
        table = table.head(params["top"])
    size, page = params["page_size"], params["page"]
    return len(table), support.json_records(table.iloc[(page - 1) * size : page * size])


def _metric(grouped: Any, fn: str, column: str | None) -> pd.Series:
    if column is None:
        return grouped.size()
    series = grouped[column]
    return {"count": series.count, "sum": series.sum, "mean": series.mean, "min": series.min, "max": series.max,
            "distinct": series.nunique}[fn]()  # fmt: skip


def _whole(frame: pd.DataFrame, fn: str, column: str | None) -> Any:
    if column is None:
        return len(frame)
    series = frame[column]
    return {"count": series.count, "sum": series.sum, "mean": series.mean, "min": series.min, "max": series.max,
            "distinct": series.nunique}[fn]()  # fmt: skip


@SETTINGS
@given(rows=support.tables(), params=aggregations())
def test_groups_equal_pandas(rows: list[dict[str, Any]], params: dict[str, Any]) -> None:
    data = aggregate(rows, **params)
    total, expected = reference(rows, params)
    assert data["total_groups"] == total
    assert data["pages"] == -(-total // params["page_size"])
    assert support.same_records(data["groups"], expected), (data["groups"], expected)
    assert len(data["chart"]["labels"]) == len(expected)
    for series in data["chart"]["series"]:
        assert series["values"] == [group[series["name"]] for group in data["groups"]]


ROWS = [
    {"id": i, "name": f"n{i % 3}", "city": support.CITIES[i % 3], "qty": i % 4, "price": float(i), "day": None,
     "flag": None}
    for i in range(1, 13)
]  # fmt: skip


def test_no_keys_gives_one_group_of_every_selected_row() -> None:
    data = aggregate(ROWS)
    assert (data["total_groups"], data["groups"], data["pages"]) == (1, [{"count": 12}], 1)
    assert data["chart"] == {"labels": ["All rows"], "series": [{"name": "count", "values": [12]}]}
    empty = aggregate(ROWS, filters={"city": ["Rome"]}, metrics=[{"fn": "count"}, {"fn": "mean", "column": "price"}])
    assert empty["groups"] == [{"count": 0, "mean_price": None}]


def test_top_sort_and_chart() -> None:
    data = aggregate(
        ROWS,
        group_by=["City"],
        metrics=[{"fn": "sum", "column": "price"}, {"fn": "count"}],
        sort=[{"column": "SUM_price", "descending": False}],
        top=2,
    )
    assert data["total_groups"] == 2
    assert data["groups"] == [{"city": "Lyon", "sum_price": 22.0, "count": 4},
                              {"city": "Nice", "sum_price": 26.0, "count": 4}]  # fmt: skip
    assert data["chart"] == {
        "labels": ["Lyon", "Nice"],
        "series": [{"name": "sum_price", "values": [22.0, 26.0]}, {"name": "count", "values": [4, 4]}],
    }
    assert data["filters_understood"]["sort"] == [{"column": "sum_price", "descending": False}]


def test_an_empty_key_is_a_group_of_its_own_sorted_last() -> None:
    rows = [{**row, "city": None if row["id"] > 9 else row["city"]} for row in ROWS]
    data = aggregate(rows, group_by=["city"], sort=[{"column": "city"}])
    assert [group["city"] for group in data["groups"]] == ["Lyon", "Nice", "Paris", None]
    assert data["chart"]["labels"][-1] == "(empty)"


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"group_by": ["town"]}, "group_by[0]", "unknown_column"),
        ({"metrics": [{"fn": "sum", "column": "city"}]}, "metrics[0].column", "type_mismatch"),
        ({"bucket": {"column": "qty", "unit": "month"}}, "bucket.column", "type_mismatch"),
        ({"group_by": ["day"], "bucket": {"column": "day", "unit": "year"}}, "bucket.column", "duplicate_key"),
        ({"metrics": [{"fn": "count"}, {"fn": "count"}]}, "metrics[1]", "duplicate_metric"),
        ({"sort": [{"column": "total"}]}, "sort[0].column", "unknown_column"),
        ({"filters": {"qty": ["x"]}}, "filters.qty[0]", "type_mismatch"),
    ],
)
def test_refusals_name_the_field(params: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        aggregate(ROWS, **params)
    assert (caught.value.field, caught.value.details["reason"]) == (field, reason)
    assert caught.value.agent_id == "aggregator"


@pytest.mark.parametrize(
    "params",
    [{"metrics": [{"fn": "sum"}]}, {"metrics": []}, {"top": 0}, {"bucket": {"column": "day", "unit": "hour"}}],
)
def test_parameter_model_refuses(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AggregatorParams.model_validate(params)
