"""The searcher against an independent pandas computation (hypothesis-generated data and searches), its paging, and
its refusals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agents.envelope import AgentInputs
from agents.errors import InvalidParametersError
from agents.params.searcher import SearcherParams
from agents.search import searcher
from tests.agents.search import support

SETTINGS = settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
COLUMNS = list(support.SCHEMA)


def ignore(fraction: float, message: str) -> None:
    pass


def search(rows: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    result = searcher.run(support.inputs(rows), SearcherParams.model_validate(params), ignore)
    json.dumps(result.envelope.to_dict(), allow_nan=False)
    return {"data": result.envelope.data, "frame": result.frame}


def _as_given(value: Any) -> Any:
    """A cell's value as a user writes it: dates as ISO text, booleans as true/false, some numbers as text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value % 2:
        return str(value)  # typed by the column
    return value


OTHER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.integers(0, 31),
    "name": st.text(support.TEXT_ALPHABET, max_size=3),
    "city": st.sampled_from(support.CITIES),
    "qty": st.integers(-5, 5),
    "price": st.sampled_from([0.0, 0.25, 2.0, 10.0, 7.0]),
    "day": st.integers(0, 60).map(lambda d: support.FIRST_DAY + dt.timedelta(days=d)),
    "flag": st.booleans(),
}


@st.composite
def searches(draw: st.DrawFn, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Conditions that one row of the data (the anchor) mostly satisfies, so that searches find rows as often as
    not; any values otherwise."""
    anchor = draw(st.sampled_from(rows)) if rows and draw(st.integers(0, 3)) else None

    def value(column: str) -> Any:
        if anchor is not None and draw(st.booleans()):
            return anchor[column]
        return draw(st.one_of(st.none(), OTHER_VALUES[column]))

    params: dict[str, Any] = {}
    for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True)):
        params["filters"] = {**params.get("filters", {}),
                             column: [_as_given(value(column)) for _ in range(draw(st.integers(1, 3)))]}  # fmt: skip
    if draw(st.booleans()):
        texts = [anchor[c] for c in support.TEXT_COLUMNS if anchor and anchor[c]] or ["a"]
        pieces = st.sampled_from(texts).flatmap(lambda t: st.integers(0, len(t) - 1).map(lambda i: t[i : i + 2]))
        words = st.one_of(pieces.map(str.swapcase), st.text(support.TEXT_ALPHABET, min_size=1, max_size=2))
        params["keywords"] = draw(st.lists(words, min_size=1, max_size=2))
        if draw(st.booleans()):
            params["keyword_columns"] = draw(st.lists(st.sampled_from(support.TEXT_COLUMNS), min_size=1, unique=True))
    if draw(st.booleans()):
        days = sorted(d for d in (value("day"), value("day")) if d is not None)
        if days:
            low = days[0] if len(days) > 1 else None
            params["time_ranges"] = [{"column": "day", "from": _iso(low), "to": days[-1].isoformat()}]
    if draw(st.booleans()):
        column = draw(st.sampled_from(["qty", "price"]))
        bounds = sorted(b for b in (value(column), value(column)) if b is not None)
        if bounds:
            params["ranges"] = [{"column": column, "min": bounds[0], "max": draw(st.sampled_from([bounds[-1], None]))}]
    keys = draw(st.lists(st.sampled_from(COLUMNS[1:]), max_size=3, unique=True))
    params["sort"] = [{"column": key, "descending": draw(st.booleans())} for key in keys]
    params["page_size"] = draw(st.integers(1, 12))
    params["page"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        params["columns"] = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    return params


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


@SETTINGS
@given(rows=support.tables(), data=st.data())
def test_results_equal_pandas(rows: list[dict[str, Any]], data: st.DataObject) -> None:
    params = data.draw(searches(rows))
    got = search(rows, **params)
    frame = support.pandas_frame(rows)
    matched = frame[support.select(frame, params)]
    matched = support.sorted_frame(matched, [(k["column"], k["descending"]) for k in params["sort"]])
    columns = params.get("columns") or COLUMNS
    size, page = params["page_size"], params["page"]
    expected_page = support.json_records(matched[columns].iloc[(page - 1) * size : page * size])
    found = got["data"]
    event(f"rows found: {'none' if matched.empty else 'some'}{' (keywords)' if params.get('keywords') else ''}")
    assert found["total_rows"] == len(matched)
    assert found["pages"] == -(-len(matched) // size)
    assert found["columns"] == columns
    assert support.same_records(found["rows"], expected_page), (found["rows"], expected_page)
    assert got["frame"].columns == columns
    assert support.same_records(_json(got["frame"]), support.json_records(matched[columns]))


def _json(frame: Any) -> list[dict[str, Any]]:
    return [{k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()} for row in frame.to_dicts()]


ROWS = [
    {"id": i, "name": f"n{i % 4}", "city": support.CITIES[i % 3], "qty": i % 5, "price": float(i), "day": None,
     "flag": i % 2 == 0}
    for i in range(1, 24)
]  # fmt: skip


def test_pages_cover_every_row_once_and_the_last_is_short() -> None:
    seen: list[int] = []
    for page in range(1, 6):
        data = search(ROWS, sort=[{"column": "qty"}], page=page, page_size=5)["data"]
        assert (data["total_rows"], data["pages"], data["page"]) == (23, 5, page)
        assert len(data["rows"]) == (3 if page == 5 else 5)
        seen += [row["id"] for row in data["rows"]]
    assert sorted(seen) == list(range(1, 24))
    assert seen == sorted(seen, key=lambda i: i % 5)  # stable: ids in data order within a qty


def test_a_page_beyond_the_end_is_empty() -> None:
    data = search(ROWS, page=9, page_size=5)["data"]
    assert (data["rows"], data["total_rows"], data["pages"]) == ([], 23, 5)
    nothing = search(ROWS, filters={"city": ["Rome"]})["data"]
    assert (nothing["rows"], nothing["total_rows"], nothing["pages"]) == ([], 0, 0)


def test_filters_understood_are_exact_and_typed() -> None:
    rows = [{**row, "day": support.FIRST_DAY} for row in ROWS]
    data = search(
        rows,
        filters={"QTY": ["3", 1, 2.5], "Day": ["2023-11-20"], "flag": ["no", None]},
        keywords=["N1", "n1"],
        ranges=[{"column": "price", "min": 2}],
    )["data"]
    understood = data["filters_understood"]
    assert understood["filters"] == {"qty": [1, 2.5, 3], "day": ["2023-11-20"], "flag": [False, None]}
    assert understood["keywords"] == ["n1"]
    assert understood["keyword_columns"] == ["name", "city"]
    assert understood["ranges"] == [{"column": "price", "min": 2.0, "max": None}]
    assert any("'QTY' read as 'qty'" in note for note in understood["notes"])
    assert [row["id"] for row in data["rows"]] == [13, 21]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"filters": {"town": ["Paris"]}}, "filters.town", "unknown_column"),
        ({"filters": {"qty": ["many"]}}, "filters.qty[0]", "type_mismatch"),
        ({"filters": {"day": ["yesterday"]}}, "filters.day[0]", "type_mismatch"),
        ({"sort": [{"column": "cost"}]}, "sort[0].column", "unknown_column"),
        ({"columns": ["id", "nmae", "zzz"]}, "columns[2]", "unknown_column"),
        ({"ranges": [{"column": "city", "min": 1}]}, "ranges[0].column", "type_mismatch"),
        ({"time_ranges": [{"column": "qty", "from": "2024-01-01"}]}, "time_ranges[0].column", "type_mismatch"),
        ({"keywords": ["a"], "keyword_columns": ["nope"]}, "keyword_columns[0]", "unknown_column"),
    ],
)
def test_refusals_name_the_field(params: dict[str, Any], field: str, reason: str | None) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        search(ROWS, **params)
    assert caught.value.field == field
    assert caught.value.agent_id == "searcher"
    if reason is not None:
        assert caught.value.details["reason"] == reason


def test_an_unknown_column_is_refused_with_suggestions() -> None:
    with pytest.raises(InvalidParametersError) as caught:
        search(ROWS, filters={"citty_name": ["Paris"]})
    assert "city" in caught.value.details["suggestions"]


def test_typos_within_reach_are_read_and_noted() -> None:
    data = search(ROWS, sort=[{"column": "pirce", "descending": True}], page_size=1)["data"]
    assert data["rows"][0]["id"] == 23
    assert data["filters_understood"]["sort"] == [{"column": "price", "descending": True}]


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page_size": 1001},
        {"ranges": [{"column": "qty", "min": 3, "max": 1}]},
        {"time_ranges": [{"column": "day"}]},
        {"time_ranges": [{"column": "day", "from": "20 May"}]},
        {"filters": {"qty": []}},
        {"extra": 1},
        {"ranges": [{"column": "qty", "min": float("nan")}]},
        {"filters": {"price": [float("inf")]}},
    ],
)
def test_parameter_model_refuses(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SearcherParams.model_validate(params)


def test_a_date_to_on_a_datetime_column_includes_that_whole_day() -> None:
    moments = [dt.datetime(2024, 1, 1, 0, 0), dt.datetime(2024, 1, 31, 23, 59, 59), dt.datetime(2024, 2, 1, 0, 0)]
    frame = pl.DataFrame({"at": moments})
    params = SearcherParams.model_validate(
        {"time_ranges": [{"column": "at", "from": "2024-01-01", "to": "2024-01-31"}]}
    )
    data = searcher.run(AgentInputs(frame, "primary.csv"), params, ignore).envelope.data
    assert [row["at"] for row in data["rows"]] == ["2024-01-01T00:00:00", "2024-01-31T23:59:59"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"filters": {"city": ["Paris", "Lyon"]}, "sort": [{"column": "qty", "descending": True}], "page": 2},
        {"keywords": ["N1"], "ranges": [{"column": "price", "max": 20}], "columns": ["price", "id"], "page_size": 3},
        {"filters": {"city": ["Rome"]}},
    ],
)
def test_first_page_of_a_parquet_scan_equals_the_full_search(tmp_path: Path, params: dict[str, Any]) -> None:
    path = tmp_path / "data.parquet"
    support.polars_frame(ROWS).write_parquet(path, row_group_size=5, statistics=True)
    parsed = SearcherParams.model_validate(params)
    assert searcher.first_page(pl.scan_parquet(path), parsed) == search(ROWS, **params)["data"]


def test_keywords_in_a_date_and_a_number_column_read_them_as_text() -> None:
    rows = [{**row, "day": support.FIRST_DAY + dt.timedelta(days=row["id"] * 10)} for row in ROWS]
    data = search(rows, keywords=["2024-01", "0"], keyword_columns=["day", "price"])["data"]
    expected = [row["id"] for row in rows if row["day"].isoformat().startswith("2024-01")]
    assert [row["id"] for row in data["rows"]] == expected and expected  # every price is written "<n>.0"
