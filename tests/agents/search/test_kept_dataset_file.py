"""The kept dataset's Parquet file (agents.search.kept.write_dataset, issue 12): whatever its codec, it reads back as
the very frame the reader gave and the very read report, equal to what the earlier snappy file read back, and every
row group of every column carries the statistics that let a filter skip row groups."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from agents.readers import read_table_with_report
from agents.search import kept

# What the reader types and keeps as text, in one file: a code with leading zeros (text), plain integers, a "+"
# integer (text), a decimal, one date layout (Date), two date layouts in one column (text), a UTC timestamp, an
# offset timestamp, a named column without any value (all null), a blank-named empty column (dropped), missing-value
# tokens, unicode.
HEADER = "code,count,signed,amount,day,mixed_days,seen_utc,seen_offset,nothing,,note\n"
NOTES = ["Zoë", "東京 café", "🙂 emoji", "NA", "", "n/a", 'naïve "quoted"']


def _csv(rows: int) -> str:
    lines = []
    for i in range(rows):
        code = f"{i % 120:03d}"
        signed = f"+{i}" if i % 9 == 0 else str(i)
        amount = "" if i % 11 == 0 else f"{(i * 37) % 1000 / 8}"
        day = f"2024-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}" if i % 13 else ""
        mixed = f"2024-01-{(i % 28) + 1:02d}" if i % 2 else f"{(i % 28) + 1:02d}/01/2024"
        utc = f"2024-03-{(i % 28) + 1:02d}T10:{i % 60:02d}:00Z"
        offset = f"2024-03-{(i % 28) + 1:02d}T10:{i % 60:02d}:00+02:00" if i % 7 else ""
        note = NOTES[i % len(NOTES)].replace('"', '""')
        lines.append(f'{code},{i * 3},{signed},{amount},{day},{mixed},{utc},{offset},,,"{note}"\n')
    return HEADER + "".join(lines)


@pytest.fixture
def read(tmp_path: Path) -> tuple[pl.DataFrame, dict]:
    path = tmp_path / "primary.csv"
    path.write_text(_csv(250), encoding="utf-8")
    frame, report = read_table_with_report(path, "primary.csv")
    schema = frame.schema
    # the file covers what it is meant to: text codes, typed dates and zones, a column of nulls, unicode
    assert schema["code"] == schema["signed"] == schema["mixed_days"] == schema["nothing"] == pl.String
    assert schema["count"] == pl.Int64 and schema["amount"] == pl.Float64 and schema["day"] == pl.Date
    assert schema["seen_utc"] == pl.Datetime("us", "UTC") and schema["seen_offset"] == pl.Datetime("us", "Etc/GMT-2")
    assert frame["nothing"].null_count() == frame.height and report["dropped_empty_columns"] == [10]
    return frame, dict(report)


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> int:
    """Row groups of 64 rows, so that 250 rows make four (the last one short)."""
    monkeypatch.setattr(kept, "ROW_GROUP_ROWS", 64)
    return 64


def test_the_kept_file_reads_back_as_the_reader_read_it(
    tmp_path: Path, read: tuple[pl.DataFrame, dict], small_groups: int
) -> None:
    frame, report = read
    assert kept.write_dataset(frame, report, "primary.csv", tmp_path) == kept.DATASET_NAME
    found = kept.read_dataset(tmp_path)
    assert found is not None
    assert found.read().equals(frame) and found.read().schema == frame.schema
    assert found.read_report == report and found.source_name == "primary.csv"
    # the earlier codec's file reads back as the same frame: a dataset kept before the change reads as one kept after
    snappy = tmp_path / "snappy.parquet"
    frame.write_parquet(snappy, compression="snappy", row_group_size=small_groups)
    assert pl.read_parquet(snappy).equals(found.read())


def test_every_row_group_carries_the_statistics_filters_use(
    tmp_path: Path, read: tuple[pl.DataFrame, dict], small_groups: int
) -> None:
    frame, report = read
    kept.write_dataset(frame, report, "primary.csv", tmp_path)
    metadata = pq.ParquetFile(tmp_path / kept.DATASET_NAME).metadata
    assert metadata.num_row_groups == -(-frame.height // small_groups)
    for group in range(metadata.num_row_groups):
        rows = frame.slice(group * small_groups, small_groups)
        assert metadata.row_group(group).num_rows == rows.height
        for index, name in enumerate(frame.columns):
            chunk = metadata.row_group(group).column(index)
            assert chunk.compression == kept.DATASET_COMPRESSION.upper()
            statistics = chunk.statistics
            assert statistics is not None and statistics.null_count == rows[name].null_count(), (group, name)
            assert statistics.has_min_max == (rows[name].null_count() < rows.height), (group, name)
            if frame.schema[name] in (pl.Int64, pl.Float64, pl.String) and statistics.has_min_max:
                assert (statistics.min, statistics.max) == (rows[name].min(), rows[name].max()), (group, name)


@pytest.mark.parametrize(
    "condition",
    [
        pl.col("count") < 90,
        pl.col("code").is_in(["007", "042"]),
        pl.col("day") >= pl.date(2024, 10, 1),
        pl.col("seen_offset").is_null(),
        pl.col("note").str.contains("東京"),
    ],
)
def test_filters_push_down_to_the_kept_file_and_select_what_memory_selects(
    tmp_path: Path, read: tuple[pl.DataFrame, dict], small_groups: int, condition: pl.Expr
) -> None:
    frame, report = read
    kept.write_dataset(frame, report, "primary.csv", tmp_path)
    scan = pl.scan_parquet(tmp_path / kept.DATASET_NAME).filter(condition)
    plan = scan.explain()
    assert plan.startswith("Parquet SCAN") and "SELECTION:" in plan  # the filter is the scan's, not a later step
    assert scan.collect().equals(frame.filter(condition))
