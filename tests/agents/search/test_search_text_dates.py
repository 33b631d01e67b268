"""A time range and a time bucket over a text column of dates in another layout than ISO 8601 (QA: a raw upload's
``03/15/2024`` could take no time range): read as the type-fixer reads them, or refused saying why."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.options import RunOptions

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def ignore(*_: object) -> None:
    return None


def dated(tmp_path: Path, layout: str, rows: int = 400) -> tuple[Path, pd.DataFrame]:
    """Rows with a date written in ``layout`` (strftime), some empty, and an amount."""
    generator = random.Random(7)
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=generator.randrange(730)) for _ in range(rows)]
    frame = pd.DataFrame(
        {
            "id": range(1, rows + 1),
            "when": [None if i % 23 == 0 else day for i, day in enumerate(days)],
            "amount": [generator.randrange(1, 1000) for _ in range(rows)],
        }
    )
    path = tmp_path / "primary.csv"
    text = frame.assign(when=[day.strftime(layout) if day is not None else "" for day in frame["when"]])
    text.to_csv(path, index=False)
    return path, frame


def search(tmp_path: Path, path: Path, parameters: dict[str, Any], mode: str) -> dict[str, Any]:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    result = run_tool("search-my-data", [], {"primary.csv": path}, parameters, out, ignore, run_options=MODES[mode])
    assert result["status"] == "success"
    return json.loads((out / "search_result.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("layout", ["%m/%d/%Y", "%d.%m.%Y", "%d/%m/%Y %H:%M"])
def test_a_time_range_reads_text_dates_as_written(tmp_path: Path, layout: str, mode: str) -> None:
    path, frame = dated(tmp_path, layout)
    parameters = {
        "searcher": {"time_ranges": [{"column": "when", "from": "2023-06-01", "to": "2023-09-30"}], "page_size": 1000},
        "aggregator": {"bucket": {"column": "when", "unit": "month"}, "metrics": [{"fn": "sum", "column": "amount"}]},
    }
    document = search(tmp_path, path, parameters, mode)
    found = document["search"]
    when = frame["when"]
    inside = frame[when.notna() & (when >= dt.date(2023, 6, 1)) & (when <= dt.date(2023, 9, 30))]
    assert found["total_rows"] == len(inside)
    assert sorted(row["id"] for row in found["rows"]) == sorted(inside["id"])
    assert any("'when' is text" in note for note in found["filters_understood"]["notes"])
    # the bucket: the sums by month, as pandas computes them
    months = frame.dropna(subset=["when"]).assign(month=lambda f: [d.replace(day=1).isoformat() for d in f["when"]])
    expected = months.groupby("month")["amount"].sum().to_dict()
    groups = {group["when"]: group["sum_amount"] for group in document["aggregate"]["groups"] if group["when"]}
    assert groups == expected


@pytest.mark.parametrize("mode", list(MODES))
def test_dates_whose_day_and_month_order_is_a_guess_are_refused(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "primary.csv"
    path.write_text("id,when\n1,03/04/2024\n2,05/06/2024\n3,01/02/2024\n", encoding="utf-8")
    with pytest.raises(InvalidParametersError, match="day or month comes first is a guess") as refused:
        search(tmp_path, path, {"searcher": {"time_ranges": [{"column": "when", "from": "2024-01-01"}]}}, mode)
    assert refused.value.details.get("reason") == "type_mismatch"


@pytest.mark.parametrize("mode", list(MODES))
def test_a_text_column_that_is_not_all_dates_is_refused_with_the_count(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "primary.csv"
    path.write_text("id,when\n1,03/15/2024\n2,soon\n3,03/20/2024\n", encoding="utf-8")
    with pytest.raises(InvalidParametersError, match="1 of its 3 values do not read as dates"):
        search(tmp_path, path, {"searcher": {"time_ranges": [{"column": "when", "to": "2024-12-31"}]}}, mode)
    with pytest.raises(InvalidParametersError, match="a bucket needs a date"):
        search(tmp_path, path, {"aggregator": {"bucket": {"column": "when", "unit": "day"}}}, mode)
