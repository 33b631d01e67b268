"""Wide and deep inputs (issue 9): 10,000 columns through the profile chain, the column limit, JSON and
Parquet nested too deeply, reader failures that must end INVALID_FILE, and a cp1252 CSV on the streaming
path."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import polars as pl
import pytest

from agents import readers
from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.options import RunOptions
from agents.profile import column_stats
from agents.readers import MAX_NESTING_DEPTH, read_table, read_table_with_report
from agents.reports import excel
from tests.wide_files import deep_json, wide_frame, write_wide_csv


def ignore_progress(percent: int, agent: str | None, message: str) -> None:
    pass


# --- many columns ------------------------------------------------------------------------------------------


def test_ten_thousand_columns_through_the_default_profile_chain(tmp_path: Path) -> None:
    frame = write_wide_csv(tmp_path / "primary.csv", 10_000, 20)
    result = run_tool("profile-my-data", [], {"primary.csv": tmp_path / "primary.csv"}, {}, tmp_path, ignore_progress)
    assert result["status"] == "success", {a: e.get("error") for a, e in result["agents"].items()}
    assert (result["summary"]["rows"], result["summary"]["columns"]) == (20, 10_000)
    agents = result["agents"]
    fields = agents["unified-profiler"]["data"]["fields"]
    assert len(fields) == 10_000 and [field["field_name"] for field in fields] == frame.columns
    nulls = frame.null_count().row(0)
    assert [field["properties"]["null_count"] for field in fields] == list(nulls)
    assert agents["unified-profiler"]["summary_metrics"]["total_columns"] == 10_000
    assert agents["score-risk"]["summary_metrics"]["total_fields_analyzed"] == 10_000
    assert agents["readiness-rater"]["summary_metrics"]["total_columns"] == 10_000
    assert agents["readiness-rater"]["summary_metrics"]["missing_cells"] == sum(nulls)
    first_int, first_email = fields[0], fields[4]
    assert first_int["statistics"]["min"] == frame["int_0"].min()
    assert first_email["distribution"]["top_values"][0]["count"] == frame["email_4"].value_counts()["count"].max()
    names = {output["name"] for output in result["outputs"]}
    assert names >= {"data_profile_report.json", "data_profile_report.xlsx", "row_level_issues.parquet"}


def assert_same(actual: Any, expected: Any, where: str = "") -> None:
    """Equal, floats up to a relative 1e-9 (NaN equal to NaN): moments summed by another engine, or in
    other batches, may differ in their last bits, and nothing else may."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (item, reference) in enumerate(zip(actual, expected, strict=True)):
            assert_same(item, reference, f"{where}[{index}]")
    elif isinstance(expected, float) and isinstance(actual, float):
        same = math.isclose(actual, expected, rel_tol=1e-9) or (math.isnan(actual) and math.isnan(expected))
        assert same, f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_a_wide_frame_is_profiled_as_a_narrow_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    rows = 400
    frame = wide_frame(12, rows).with_columns(
        pl.Series("nan", np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows))),
        pl.Series("flag", rng.random(rows) < 0.3),
        pl.Series("cat", rng.choice(["x", "y", "z"], rows)).cast(pl.Categorical),
        pl.Series("empty", [None] * rows, dtype=pl.String),
        pl.Series("outlier", np.concatenate([rng.normal(size=rows - 2), [80.0, -90.0]])),
    )
    settings = column_stats.StatsSettings(10, 10, 1.5, 3.0, 1000)
    narrow = column_stats.compute_stats(frame, settings)
    monkeypatch.setattr(column_stats, "WIDE_COLUMNS", 0)  # every frame is wide: chunks of columns, one query each
    wide = column_stats.compute_stats(frame, settings)
    assert column_stats.Source.of_frame(frame).chunks(list(range(6))) != [[index] for index in range(6)]
    assert_same([dataclasses.asdict(c) for c in wide.columns], [dataclasses.asdict(c) for c in narrow.columns])
    assert wide.dataset == narrow.dataset and wide.row_level_issues.equals(narrow.row_level_issues)


def test_the_excel_report_lists_at_most_a_few_thousand_alerts_of_an_agent(tmp_path: Path) -> None:
    def alert(number: int) -> dict[str, Any]:
        return {"alert_id": f"a{number}", "severity": "low", "category": "quality", "message": f"alert {number}",
                "affected_fields_count": 1, "recommendation": "fix it", "field_name": f"c{number}"}  # fmt: skip

    cap = excel.MAX_LISTED_PER_AGENT
    envelopes = [
        {"status": "success", "agent_id": "many", "agent_name": "Many", "alerts": [alert(n) for n in range(cap + 5)]},
        {"status": "success", "agent_id": "few", "agent_name": "Few", "alerts": [alert(n) for n in range(3)]},
    ]
    path = tmp_path / "report.xlsx"
    excel.write_excel_report(path, "profile-my-data", envelopes)
    rows = list(openpyxl.load_workbook(path, read_only=True)["Findings"].iter_rows(values_only=True))
    listed = [row for row in rows[1:] if row[1] in {"many", "few"}]
    assert [row[1] for row in listed] == ["many"] * cap + ["few"] * 3
    assert rows[-1][0] == (
        f"At most {cap:,} alerts of an agent are listed here (of many {cap + 5:,}); the JSON report has every one."
    )


# --- the column limit --------------------------------------------------------------------------------------


def test_a_file_above_the_column_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    pl.DataFrame({f"c{index}": [index] for index in range(30)}).write_csv(path)
    assert read_table(path, "primary.csv", max_columns=30).width == 30
    with pytest.raises(InvalidFileError) as refused:
        read_table(path, "primary.csv", max_columns=29)
    assert refused.value.message == "primary.csv: 30 columns; the limit is 29 columns per file"
    assert refused.value.details == {"file": "primary.csv", "columns": 30, "max_columns": 29}


def test_a_header_of_a_million_columns_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    header = ",".join(f"column_{index}" for index in range(1_000_000))
    path.write_text(header + "\n" + ",".join("1" * 1_000_000) + "\n")  # ~15 MB: past the sniff window
    with pytest.raises(InvalidFileError) as refused:
        read_table(path, "primary.csv")
    assert refused.value.message == "primary.csv: more than 20,000 columns; the limit is 20,000 columns per file"
    # Quoted separators and line ends in the header are not fields.
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('"a,b","c\nd",e\n1,2,3\n' + "x" * readers.SNIFF_BYTES)
    assert readers._header_fields(quoted, readers.sniff_dialect(quoted, "quoted.csv"), 10) == 3


@pytest.mark.parametrize("fmt", ["parquet", "json", "ndjson"])
def test_the_column_limit_holds_for_every_format(tmp_path: Path, fmt: str) -> None:
    frame = pl.DataFrame({f"c{index}": [index, index + 1] for index in range(12)})
    path = tmp_path / f"primary.{fmt}"
    getattr(frame, f"write_{fmt}")(path)
    with pytest.raises(InvalidFileError, match="12 columns; the limit is 10"):
        read_table(path, path.name, max_columns=10)


def test_the_chain_refuses_a_wide_file_before_any_agent_runs(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    pl.DataFrame({f"c{index}": [index] for index in range(50)}).write_csv(path)
    agents: list[str | None] = []

    def progress(percent: int, agent: str | None, message: str) -> None:
        agents.append(agent)

    for threshold in (None, 1):  # in memory, and the streaming path
        options = RunOptions(max_columns=40, streaming_threshold_bytes=threshold)
        with pytest.raises(InvalidFileError, match="50 columns; the limit is 40"):
            run_tool("profile-my-data", [], {"primary.csv": path}, {}, tmp_path / "out", progress, run_options=options)
    assert agents and not any(agents)  # no agent started


# --- nesting -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_nested_5000_deep_is_an_invalid_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"primary.{fmt}"
    path.write_text(deep_json(5000, ndjson=fmt == "ndjson"))
    with pytest.raises(InvalidFileError) as refused:
        read_table(path, path.name)
    assert refused.value.message == (
        f"primary.{fmt}: nested deeper than {MAX_NESTING_DEPTH} levels (line 1); flatten the records before uploading"
    )
    assert refused.value.details == {"file": path.name, "max_depth": MAX_NESTING_DEPTH, "line": 1}
    with pytest.raises(InvalidFileError, match="nested deeper than"):
        run_tool("profile-my-data", [], {path.name: path}, {}, tmp_path / "out", ignore_progress)


def test_nesting_within_the_limit_is_read_and_the_deep_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "primary.ndjson"
    path.write_text(deep_json(MAX_NESTING_DEPTH - 2, ndjson=True))  # the record and field "a" add two levels
    frame, report = read_table_with_report(path, path.name)
    assert frame.columns == ["a.b", "x"] and report["flattened_columns"] == ["a"]
    path.write_text('{"a": 1, "x": 1}\n' * 2 + deep_json(MAX_NESTING_DEPTH, ndjson=True, records=1))
    with pytest.raises(InvalidFileError) as refused:
        read_table(path, path.name)
    assert refused.value.details["line"] == 3


def test_the_depth_scan_skips_brackets_in_strings_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "JSON_SCAN_CHUNK_BYTES", 3)  # quotes, escapes and brackets cut by chunk ends
    records = [{"text": "[" * 300 + '\\"{{' + "\\" * 3, "more": "]]}}\\\\", "n": [[1, 2], [3]], "o": {"k": "v"}}] * 3
    path = tmp_path / "primary.json"
    path.write_text(json.dumps(records))
    assert read_table(path, path.name).height == 3
    path.write_text(json.dumps([{"deep": json.loads(deep_json(MAX_NESTING_DEPTH))}]))
    with pytest.raises(InvalidFileError, match="nested deeper than"):
        read_table(path, path.name)


def test_parquet_nested_too_deeply_is_refused_before_it_is_read(tmp_path: Path) -> None:
    value = pl.lit(1)
    for _ in range(MAX_NESTING_DEPTH + 1):
        value = pl.struct(value.alias("b"))
    path = tmp_path / "primary.parquet"
    pl.select(value.alias("a"), pl.lit(2).alias("x")).write_parquet(path)
    with pytest.raises(InvalidFileError) as refused:
        read_table(path, path.name)
    assert refused.value.details == {"file": path.name, "max_depth": MAX_NESTING_DEPTH, "levels": MAX_NESTING_DEPTH + 1}


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RecursionError("maximum recursion depth exceeded"), "primary.json: nested too deeply to be read"),
        (NotImplementedError("a feature"), "primary.json: cannot be read: a feature"),
    ],
)
def test_recursion_and_not_implemented_errors_of_a_reader_are_invalid_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, message: str
) -> None:
    path = tmp_path / "primary.json"
    path.write_text('[{"a": 1}]')

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(readers, "_read_json", fail)
    with pytest.raises(InvalidFileError) as refused:
        read_table(path, path.name)
    assert refused.value.message == message


# --- a cp1252 file on the streaming path -------------------------------------------------------------------


def write_cp1252_csv(path: Path, rows: int, *, late_only: bool = False) -> None:
    """Names with accents and the euro sign (cp1252 bytes), empty cells; ``late_only``: the first non-UTF-8
    byte after the 64 KiB the encoding is sniffed from."""
    names = ["Zoë", "José", "Ève", "Müller", "Ångström", "€uro", "plain"]
    lines = ["id,name,amount,comment"]
    for index in range(rows):
        name = names[index % len(names)] if not late_only or index > rows - 20 else "ascii"
        amount = "" if index % 9 == 0 else f"{index * 1.5:.1f}"
        comment = "" if index % 4 == 0 else f"note {index % 13}"
        lines.append(f"{index},{name},{amount},{comment}")
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))


@pytest.mark.parametrize("late_only", [False, True])
def test_a_cp1252_csv_streams_with_the_numbers_of_the_in_memory_profile(tmp_path: Path, late_only: bool) -> None:
    path = tmp_path / "primary.csv"
    write_cp1252_csv(path, 6_000, late_only=late_only)
    assert path.stat().st_size > readers.SNIFF_BYTES
    in_memory = run_tool(
        "profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, tmp_path / "a", ignore_progress
    )
    options = RunOptions(streaming_threshold_bytes=1000)
    streamed = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {"primary.csv": path},
        {},
        tmp_path / "b",
        ignore_progress,
        run_options=options,
    )
    assert in_memory["summary"]["inputs"]["primary"]["encoding"] == "cp1252"
    assert streamed["summary"]["inputs"]["primary"]["streamed"] is True
    assert streamed["agents"]["unified-profiler"]["status"] == "success"
    fields, reference = (result["agents"]["unified-profiler"]["data"]["fields"] for result in (streamed, in_memory))
    nulls = [field["properties"]["null_count"] for field in fields]
    assert nulls == [field["properties"]["null_count"] for field in reference] == [0, 0, 667, 1500]
    assert_same(fields, reference)  # the streaming engine sums moments in other batches: last bits may differ
    names = {item["value"] for item in fields[1]["distribution"]["top_values"]}
    assert {"Zoë", "Ångström", "€uro"} <= names or late_only
    assert not list((tmp_path / "b").glob("**/.utf8-*")) and not list(tmp_path.glob(".utf8-*"))  # copies removed
