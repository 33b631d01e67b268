"""Dates written with English month names, "Jan 1 2000" among them (R's and JavaScript's default; QA: vega's
stocks.csv was profiled as free text)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agents.chain import run_tool

LAYOUTS = {
    "%b %d %Y": "Jan 1 2000",
    "%B %d %Y": "January 1 2000",
    "%b %d, %Y": "Jan 1, 2000",
    "%d %b %Y": "1 Jan 2000",
}


def ignore(*_: object) -> None:
    return None


def field(report: object, name: str) -> dict[str, object] | None:
    if isinstance(report, dict):
        if report.get("field_name") == name:
            return report
        return next((found for value in report.values() if (found := field(value, name))), None)
    if isinstance(report, list):
        return next((found for value in report if (found := field(value, name))), None)
    return None


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_month_name_dates_are_profiled_as_dates_and_cleaned_to_iso(tmp_path: Path, layout: str) -> None:
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=37 * i) for i in range(30)]
    written = [day.strftime(layout).replace(" 0", " ") for day in days]  # R writes no leading zero
    source = tmp_path / "primary.csv"
    source.write_text("symbol,date\n" + "".join(f'MSFT,"{text}"\n' for text in written), encoding="utf-8")
    out = tmp_path / "profile"
    run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": source}, {}, out, ignore)
    profiled = field(json.loads((out / "data_profile_report.json").read_text(encoding="utf-8")), "date")
    assert profiled is not None and profiled["semantic_type"] == "date_string"
    out = tmp_path / "clean"
    run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, ignore)
    cleaned = (out / "cleaned_data.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [line.split(",")[1] for line in cleaned] == [day.isoformat() for day in days]
