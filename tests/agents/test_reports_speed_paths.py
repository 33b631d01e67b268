"""The faster paths of the chain's row accounting and of the quality agents' statistics, against answers
computed here independently (plain Python), on the cases each path must hand back to the general one."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from agents.chain import step_record
from agents.envelope import ROW_INDEX_COLUMN
from agents.quality import coverage, readiness
from agents.reports.sheets import ReportBook, SheetWriter

# ---------------------------------------------------------------- step records


def numbered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))


def expected_changes(before: pl.DataFrame, after: pl.DataFrame, column: str) -> tuple[int, int]:
    """Cells of ``column`` changed and values invented among the rows ``after`` kept, matched by row index."""
    old = dict(zip(before[ROW_INDEX_COLUMN].to_list(), before[column].to_list(), strict=True))
    changed = invented = 0
    for index, value in zip(after[ROW_INDEX_COLUMN].to_list(), after[column].to_list(), strict=True):
        if index not in old:
            continue
        was = old[index]
        changed += was != value
        invented += was is None and value is not None
    return changed, invented


@pytest.fixture
def before() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 50, 3_000).astype(float)
    values[rng.choice(3_000, 300, replace=False)] = np.nan
    return numbered(
        pl.DataFrame(
            {
                "a": pl.Series(values).fill_nan(None),
                "b": [f"v{i % 17}" for i in range(3_000)],
            }
        )
    )


def filled(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("a").fill_null(-1.0), pl.col("b").str.to_uppercase())


@pytest.mark.parametrize(
    "after_of",
    [
        lambda f: filled(f),  # same rows
        lambda f: filled(f.filter(pl.col(ROW_INDEX_COLUMN) % 7 != 0)),  # rows removed, order kept
        lambda f: filled(f.filter(pl.col(ROW_INDEX_COLUMN) % 7 != 0)).reverse(),  # rows removed and reordered
        lambda f: filled(f.filter(pl.col(ROW_INDEX_COLUMN) > 10)).sample(fraction=1.0, shuffle=True, seed=3),
        lambda f: f.head(0),  # every row removed
    ],
    ids=["same", "filtered", "reversed", "shuffled", "emptied"],
)
def test_step_record_counts_changed_cells_by_row_index(before: pl.DataFrame, after_of: Any) -> None:
    after = after_of(before)
    record = step_record(1, "x", "X", "success", before, after, {}, 0)
    for column in ("a", "b"):
        changed, invented = expected_changes(before, after, column)
        assert record["columns"][column]["cells_changed"] == changed
        assert record["columns"][column]["values_invented"] == invented
    assert record["rows_removed"] == before.height - after.height


def test_step_record_ignores_a_row_the_agent_added(before: pl.DataFrame) -> None:
    extra = pl.DataFrame({ROW_INDEX_COLUMN: [10_000], "a": [1.0], "b": ["new"]}, schema=before.schema)
    after = pl.concat([filled(before.filter(pl.col(ROW_INDEX_COLUMN) % 3 != 0)), extra])
    record = step_record(1, "x", "X", "success", before, after, {}, 0)
    for column in ("a", "b"):
        assert (record["columns"][column]["cells_changed"], record["columns"][column]["values_invented"]) == (
            expected_changes(before, after, column)
        )


def test_step_record_of_an_agent_that_hands_its_input_back() -> None:
    frame = numbered(pl.DataFrame({"a": [math.nan, 1.0, None, math.nan], "b": ["x", None, "y", "x"]}))
    same = step_record(1, "x", "X", "success", frame, frame, {}, 0)
    copied = step_record(1, "x", "X", "success", frame, frame.clone(), {}, 0)  # compared cell by cell
    assert same == copied
    assert same["cells_changed_total"] == same["values_invented_total"] == 0
    assert same["columns"]["a"]["nulls_after"] == 1 and same["columns"]["b"]["nulls_after"] == 1


# ---------------------------------------------------------------- readiness-rater's counts


def iqr_outliers(values: list[Any]) -> int:
    """Values outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR] of the non-null, non-NaN values, linear quartiles."""
    kept = sorted(v for v in values if v is not None and not math.isnan(v))
    if not kept:
        return 0

    def quantile(q: float) -> float:
        position = q * (len(kept) - 1)
        low = math.floor(position)
        high = min(low + 1, len(kept) - 1)
        return kept[low] + (kept[high] - kept[low]) * (position - low)

    q1, q3 = quantile(0.25), quantile(0.75)
    iqr = q3 - q1
    return sum(v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr for v in kept)


def test_readiness_outliers_leave_out_nan_and_null_and_count_infinities() -> None:
    rng = np.random.default_rng(8)
    integers = [int(v) for v in rng.integers(0, 100, 2_000)]
    integers[::50] = [10_000] * len(integers[::50])
    floats = [float(v) for v in rng.integers(0, 20, 2_000)]
    floats[::97] = [math.nan] * len(floats[::97])
    floats[1::89] = [math.inf] * len(floats[1::89])
    floats[2::61] = [None] * len(floats[2::61])  # type: ignore[list-item]
    frame = pl.DataFrame(
        {
            "i": integers,
            "f": pl.Series(floats, dtype=pl.Float64),
            "empty": pl.Series([None] * 2_000, dtype=pl.Float64),
            "nans": pl.Series([math.nan] * 2_000),
            "text": ["x"] * 2_000,
        }
    )
    numeric = ["i", "f", "empty", "nans"]
    stats = readiness._column_stats(frame, frame.columns, ["text"], set(), numeric)
    for name in numeric:
        assert stats[f"{name}:outliers"] == iqr_outliers(frame[name].to_list()), name
    assert stats["i:outliers"] > 0 and stats["f:outliers"] > 0
    assert not any(key.endswith(":quartiles") for key in stats)


@pytest.mark.parametrize("repeats", [0, 1, 25])
def test_readiness_distinct_rows(repeats: int) -> None:
    rows = [(i, f"n{i % 13}", float(i % 7)) for i in range(1_500)]
    rows += rows[:repeats]
    frame = pl.DataFrame(rows, schema=["a", "b", "c"], orient="row")
    stats = readiness._column_stats(frame, frame.columns, ["b"], set(), ["a", "c"])
    assert stats["distinct_rows"] == len(set(rows))


# ---------------------------------------------------------------- test-coverage-agent's suggestions


def test_suggested_unique_columns_past_the_screened_rows() -> None:
    rows = coverage.UNIQUE_SCREEN_ROWS + 2_000
    late_repeat = list(range(rows))
    late_repeat[-1] = late_repeat[-2]  # the only repeat, far past the screened rows
    early_repeat = list(range(rows))
    early_repeat[1] = early_repeat[0]
    with_null: list[int | None] = list(range(rows))
    with_null[-1] = None
    frame = pl.DataFrame(
        {
            "late_repeat": late_repeat,
            "key": [f"k{i}" for i in range(rows)],
            "early_repeat": early_repeat,
            "with_null": with_null,
            "float_key": [i / 3 for i in range(rows)],
        }
    )
    expected = [
        name
        for name in frame.columns
        if frame[name].null_count() == 0 and len(set(frame[name].to_list())) == frame.height
    ]
    assert expected == ["key", "float_key"]
    assert coverage.suggest_tests(frame, frame.columns)["unique_columns"] == expected


@pytest.mark.parametrize("height", [0, 1, 2])
def test_suggested_unique_columns_of_tiny_frames(height: int) -> None:
    frame = pl.DataFrame({"a": list(range(height)), "b": [7] * height})
    expected = ["a"] if height > 1 else []
    assert coverage.suggest_tests(frame, frame.columns)["unique_columns"] == expected


# ---------------------------------------------------------------- the workbook's tables


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 2_500])
def test_report_tables_are_the_tables_xlsxwriter_declares(tmp_path: Path, rows: int) -> None:
    """A table declared by the report's worksheet (header and first row, then its whole range) is the part
    xlsxwriter's own ``add_table`` writes for the whole range: same worksheet, same table parts."""
    headers = ["Agent", "Row", "Severity", "Message", "Value"]
    cells = [[f"agent{i % 3}", i, "high" if i % 2 else "low", f"message {i}" * (i % 4), None] for i in range(rows)]

    def write(path: Path, report_sheet: bool) -> None:
        book = ReportBook.create(path, ())
        if report_sheet:
            writer = book.sheet("Issues")
        else:
            writer = SheetWriter(book, book.workbook.add_worksheet("Issues"))
        writer.note("a note above the table")
        writer.table(headers, cells, title="Issues", numbers=[None, "int"], gap=1)
        writer.table(["Key", "Count"], [["a", 1], ["b", 2], ["c", 3]], title="Below")
        writer.finish()
        book.close()

    ours, plain = tmp_path / "ours.xlsx", tmp_path / "plain.xlsx"
    write(ours, True)
    write(plain, False)
    with zipfile.ZipFile(ours) as left, zipfile.ZipFile(plain) as right:
        names = [name for name in left.namelist() if name.startswith(("xl/tables/", "xl/worksheets/"))]
        assert names == [name for name in right.namelist() if name.startswith(("xl/tables/", "xl/worksheets/"))]
        assert any(name.startswith("xl/tables/") for name in names)
        for name in names:
            assert left.read(name) == right.read(name), name
    last = 4 + max(rows, 1)  # title row, note (two rows), heading, header
    assert f'ref="A4:E{last}"' in zipfile.ZipFile(ours).read("xl/tables/table1.xml").decode()
