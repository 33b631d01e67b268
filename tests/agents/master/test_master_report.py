"""The master chain's Excel report, from the real chain on a generated person file in two sources: the
golden-record-builder sheet (cluster size histogram and its chart, matching, blocking keys, skipped giant
blocks, m/u per comparison level, survivorship conflicts), the Merged Clusters sheet (each sampled
cluster's golden record above its rows, lost values highlighted) and the stewardship-flagger's queue
summary, each checked against the CSV outputs and the input counted apart (Polars over the files)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import polars as pl
import pytest
from openpyxl.utils import range_boundaries
from openpyxl.worksheet.worksheet import Worksheet

from agents.chain import run_tool
from agents.reports.excel import write_excel_report
from agents.reports.master_sheets import MERGED_CLUSTERS
from tests.agents.master.people import people

GOLDEN, STEWARDSHIP = "Golden Record Builder", "Stewardship Flagger"
SMITHS = 60  # rows of one common name: a giant block of the names key (its cap is 50 rows)
HIGHLIGHT = "FFFFEB9C"


@dataclass
class Table:
    title: Any
    headers: list[Any]
    rows: list[list[Any]]
    top: int

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


@dataclass
class Run:
    result: dict[str, Any]
    out: Path
    inputs: pl.DataFrame  # both sources stacked as text, with source and source_row
    book: openpyxl.Workbook

    def csv(self, name: str) -> pl.DataFrame:
        return pl.read_csv(self.out / name, infer_schema=False)


def smiths() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    return pl.DataFrame(
        {
            "given_name": ["john"] * SMITHS,
            "surname": ["smith"] * SMITHS,
            "email": [f"js{i}@corp{i}.org" for i in range(SMITHS)],
            "phone": [f"04{number}" for number in rng.integers(10_000_000, 99_999_999, SMITHS)],
            "date_of_birth": [f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}" for i in range(SMITHS)],
            "street_number": [str(i + 1) for i in range(SMITHS)],
            "address": [f"{i} lane" for i in range(SMITHS)],
            "city": [f"town{i}" for i in range(SMITHS)],
            "postcode": [str(2000 + i) for i in range(SMITHS)],
            "national_id": [None] * SMITHS,
        },
        schema_overrides={"national_id": pl.String},
    )


def run_chain(tmp: Path, parameters: dict[str, Any], entities: int = 80, with_smiths: bool = True) -> Run:
    frame = people(entities, seed=3).drop("entity", "corruptions")
    primary, shop = frame.slice(0, frame.height * 2 // 3), frame.slice(frame.height * 2 // 3)
    if with_smiths:
        primary = pl.concat([primary, smiths().select(primary.columns)])
    primary.write_csv(tmp / "primary.csv")
    shop.write_csv(tmp / "source_shop.csv")
    inputs = {"primary.csv": tmp / "primary.csv", "source_shop.csv": tmp / "source_shop.csv"}
    result = run_tool("master-my-data", [], inputs, parameters, tmp / "out", lambda *_: None)
    assert result["status"] == "success", {a: e.get("error") for a, e in result["agents"].items()}
    stacked = pl.concat(
        [
            pl.read_csv(path, infer_schema=False).with_columns(
                pl.lit(label).alias("source"), pl.int_range(1, pl.len() + 1).cast(pl.String).alias("source_row")
            )
            for label, path in (("primary", inputs["primary.csv"]), ("shop", inputs["source_shop.csv"]))
        ]
    )
    return Run(result, tmp / "out", stacked, openpyxl.load_workbook(tmp / "out" / "master_report.xlsx"))


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Run:
    parameters = {"stewardship-flagger": {"required_columns": ["national_id"]}}
    return run_chain(tmp_path_factory.mktemp("master"), parameters)


def tables(sheet: Worksheet) -> list[Table]:
    """Every Excel table of the sheet, top to bottom, with the heading written on the row above it."""
    found = []
    for table in sheet.tables.values():
        first_column, first_row, last_column, last_row = range_boundaries(table.ref)
        cells = [
            [cell.value for cell in row]
            for row in sheet.iter_rows(first_row, last_row, first_column, last_column)  # type: ignore[arg-type]
        ]
        found.append(Table(sheet.cell(first_row - 1, 1).value, cells[0], cells[1:], first_row))  # type: ignore[operator]
    return sorted(found, key=lambda table: table.top)


def table(sheet: Worksheet, title: str) -> Table:
    [found] = [item for item in tables(sheet) if isinstance(item.title, str) and item.title.startswith(title)]
    return found


def key_values(sheet: Worksheet, title: str) -> dict[str, Any]:
    return {row[0]: row[1] for row in table(sheet, title).rows}


def texts(book: openpyxl.Workbook) -> Iterator[str]:
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            yield from (value for value in row if isinstance(value, str))


def cluster_sizes(crosswalk: pl.DataFrame) -> list[list[int]]:
    """[size, clusters, rows] from the crosswalk: rows per golden id, counted per size."""
    sizes = crosswalk.group_by("golden_id").len().group_by("len").len(name="clusters").sort("len")
    return [[size, count, size * count] for size, count in sizes.iter_rows()]


def chart_values(book: openpyxl.Workbook, reference: str) -> list[Any]:
    sheet_name, cells = reference.rsplit("!", 1)
    first_column, first_row, last_column, last_row = range_boundaries(cells.replace("$", ""))
    sheet = book[sheet_name.strip("'")]
    rows = sheet.iter_rows(first_row, last_row, first_column, last_column, values_only=True)  # type: ignore[arg-type]
    return [value for row in rows for value in row]


def test_the_sheets_are_there_in_chain_order_and_none_fell_back(master: Run) -> None:
    names = master.book.sheetnames
    assert names.index(MERGED_CLUSTERS) == names.index(GOLDEN) + 1
    assert STEWARDSHIP in names
    assert not [text for text in texts(master.book) if "unavailable (" in text]


def test_the_cluster_size_histogram_and_its_chart(master: Run) -> None:
    sheet = master.book[GOLDEN]
    histogram = table(sheet, "Cluster sizes")
    assert histogram.headers == ["Records in the cluster", "Clusters", "Rows"]
    expected = cluster_sizes(master.csv("crosswalk.csv"))
    assert histogram.rows == expected
    assert sum(row[2] for row in histogram.rows) == master.inputs.height
    assert sum(row[1] for row in histogram.rows) == master.csv("master_data.csv").height < master.inputs.height
    [chart] = sheet._charts
    assert chart.tagname == "barChart" and chart.barDir == "col"
    [series] = chart.series
    assert chart_values(master.book, series.val.numRef.f) == [row[1] for row in expected]
    categories = series.cat.strRef or series.cat.numRef
    assert [str(value) for value in chart_values(master.book, categories.f)] == [str(row[0]) for row in expected]


def test_matching_blocking_and_the_skipped_giant_block(master: Run) -> None:
    sheet = master.book[GOLDEN]
    matching = key_values(sheet, "Matching")
    assert matching["Method"] == "fuzzy" and matching["Rows"] == master.inputs.height
    blocking = table(sheet, "Blocking keys")
    assert blocking.headers[:3] == ["Blocking key", "Candidate pairs", "New pairs"]
    keys = {row[0]: row for row in blocking.rows}
    assert {"email", "phone", "names_phonetic"} <= set(keys)
    # Every candidate pair was found once: by a key, or as identical rows, or equal on every match key.
    found = sum(row[2] for row in blocking.rows)
    assert (
        matching["Candidate pairs scored"]
        == found + matching["Pairs of identical rows"] + (matching["Pairs equal on every match key"])
    )
    assert all(row[1] >= row[2] for row in blocking.rows)
    # The 60 rows named john smith share one names block, over its cap: skipped whole and reported.
    assert matching["Giant blocks skipped"] == 1
    skipped = table(sheet, "Giant blocks skipped")
    assert [(row[0], row[2]) for row in skipped.rows] == [("names_phonetic", SMITHS)]
    assert keys["names_phonetic"][4:] == [1, SMITHS]
    # Columns matched on: every data column of the golden records (each has an entity role here).
    compared = table(sheet, "Columns matched on")
    golden_columns = master.csv("master_data.csv").columns[1:-3]
    assert {row[0] for row in compared.rows if row[2] == "compared"} == set(golden_columns)


def test_m_and_u_per_comparison_level(master: Run) -> None:
    weights = table(master.book[GOLDEN], "Fellegi–Sunter model")
    assert weights.headers[:7] == ["Comparison", "Columns", "Role", "Level", "m", "u", "Weight (log2 m/u)"]
    records = weights.records()
    assert {record["Comparison"] for record in records} >= {"email", "phone", "location"}
    assert all(0 <= record["m"] <= 1 and 0 <= record["u"] <= 1 for record in records)
    # m and u are shown rounded to 6 decimals: the weight is log2(m / u) wherever both are not tiny.
    sizable = [record for record in records if record["m"] >= 1e-3 and record["u"] >= 1e-3]
    assert sizable
    computed = np.log2([record["m"] / record["u"] for record in sizable])
    assert np.allclose([record["Weight (log2 m/u)"] for record in sizable], computed, atol=0.02)
    for comparison in {record["Comparison"] for record in records}:
        levels = [record for record in records if record["Comparison"] == comparison]
        assert math.isclose(sum(record["m"] for record in levels), 1.0, abs_tol=1e-4), comparison
        assert levels[-1]["Level"] == "else" and levels[-1]["Weight (log2 m/u)"] < 0


def test_survivorship_conflicts_per_column(master: Run) -> None:
    survivorship = table(master.book[GOLDEN], "Survivorship")
    renamed = master.result["agents"]["semantic-mapper"]["data"]["renamed_columns"]
    crosswalk = master.csv("crosswalk.csv")
    members = master.inputs.rename(renamed).join(crosswalk, on=["source", "source_row"])

    def compared(name: str) -> pl.Expr:
        # the generator writes dates as 1985-03-14 or 14/03/1985: one date in two layouts is no conflict
        text = pl.col(name)
        dates = pl.coalesce(text.str.to_date("%Y-%m-%d", strict=False), text.str.to_date("%d/%m/%Y", strict=False))
        every_one = members.select(dates.count() == text.count()).item()
        return dates.alias(name) if every_one else text

    conflicts = {
        name: int((members.group_by("golden_id").agg(compared(name).drop_nulls().n_unique())[name] > 1).sum())
        for name in master.csv("master_data.csv").columns[1:-3]
    }
    assert {row[0]: row[2] for row in survivorship.rows} == conflicts
    assert {row[1] for row in survivorship.rows} == {"most_complete"}


def test_merged_clusters_side_by_side(master: Run) -> None:
    sheet = master.book[MERGED_CLUSTERS]
    clusters = tables(sheet)
    crosswalk, golden = master.csv("crosswalk.csv"), master.csv("master_data.csv")
    merged = crosswalk.group_by("golden_id").len().filter(pl.col("len") > 1)
    assert len(clusters) == min(20, merged.height)
    sizes = [int(merged.filter(pl.col("golden_id") == item.title.split(":")[0])["len"].item()) for item in clusters]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == merged["len"].max()
    highlighted = 0
    for cluster in clusters:
        golden_id = cluster.title.split(":")[0]
        assert cluster.headers[:5] == ["Record", "Source", "Row", "Match probability", "Rule"]
        columns = cluster.headers[5:]
        assert columns == golden.columns[1:-3]
        first, *rows = cluster.rows
        assert first[0] == "golden record" and all(row[0] == "member" for row in rows)
        expected = crosswalk.filter(pl.col("golden_id") == golden_id)
        assert {(row[1], str(row[2])) for row in rows} == set(expected.select("source", "source_row").iter_rows())
        assert [row[2] for row in rows] == sorted(row[2] for row in rows if row[1] == "primary") + sorted(
            row[2] for row in rows if row[1] == "shop"
        )
        record = golden.filter(pl.col("golden_id") == golden_id).row(0, named=True)
        assert [None if value is None else str(value) for value in first[5:]] == [record[name] for name in columns]
        disagree = re.search(r"rows disagree on (.+)$", cluster.title)
        conflicting = disagree.group(1).split(", ") if disagree else []
        for offset, name in enumerate(columns):
            column = 6 + offset
            for index, row in enumerate(rows, start=cluster.top + 2):
                value = row[5 + offset]
                fill = sheet.cell(index, column).fill.fgColor.rgb
                lost = name in conflicting and value is not None and value != first[5 + offset]
                assert (fill == HIGHLIGHT) == lost, (golden_id, name, value)
                highlighted += lost
    assert highlighted > 0


def test_the_stewardship_queue_summary(master: Run) -> None:
    sheet = master.book[STEWARDSHIP]
    queue = master.csv("stewardship_queue.csv")
    assert key_values(sheet, "Review queue") == {"Tasks in stewardship_queue.csv": queue.height}
    kinds = table(sheet, "Tasks by kind")
    missing = master.inputs["national_id"].null_count()
    assert missing > SMITHS
    assert {row[0]: row[1] for row in kinds.rows}["Missing required"] == missing
    assert sum(row[1] for row in kinds.rows) == queue.height
    assert math.isclose(sum(row[2] for row in kinds.rows), 100.0, abs_tol=0.05)
    [chart] = sheet._charts
    assert chart_values(master.book, chart.series[0].val.numRef.f) == [row[1] for row in kinds.rows]
    severities = dict(queue.group_by("severity").len().iter_rows())
    assert {row[0]: row[1] for row in table(sheet, "Tasks by severity").rows if row[1]} == severities
    by_column = dict(queue.drop_nulls("column").group_by("column").len().iter_rows())
    assert {row[0]: row[1] for row in table(sheet, "Tasks by column").rows} == by_column
    listed = table(sheet, "Tasks, most severe first")
    assert listed.headers == ["Task", "Severity", "Reason", "Source", "Row", "Golden id", "Column", "Value", "Action"]
    head = queue.head(len(listed.rows))
    assert [row[0] for row in listed.rows] == head["task_id"].to_list()
    assert [(row[3], str(row[4])) for row in listed.rows] == list(head.select("source", "source_row").iter_rows())


def test_exact_matching_has_no_blocking_tables(tmp_path: Path) -> None:
    parameters = {"golden-record-builder": {"enable_fuzzy_matching": False}}
    run = run_chain(tmp_path, parameters, entities=30, with_smiths=False)
    sheet = run.book[GOLDEN]
    assert key_values(sheet, "Matching")["Method"] == "exact"
    assert table(sheet, "Cluster sizes").rows == cluster_sizes(run.csv("crosswalk.csv"))
    titles = [item.title for item in tables(sheet)]
    assert not [title for title in titles if isinstance(title, str) and title.startswith(("Blocking", "Fellegi"))]
    assert not [text for text in texts(run.book) if "unavailable (" in text]


def test_shapes_the_sheets_do_not_expect_leave_a_note_not_a_failure(tmp_path: Path) -> None:
    envelopes = [
        {
            "agent_id": "golden-record-builder",
            "agent_name": "Golden Record Builder",
            "status": "success",
            "data": {
                "cluster_size_histogram": [{"size": "two", "clusters": None}, {"size": 3, "clusters": 2}],
                "matching": {"stats": {"blocking": {"keys": "none", "skipped_blocks": [{"key": "k"}]}}},
                "merged_cluster_samples": [{"golden_id": "G-1", "golden": {"a": 1}, "members": "x"}, "y"],
                "survivorship": {"rules": {"a": "most_complete"}, "conflicts_by_column": []},
            },
        },
        {
            "agent_id": "stewardship-flagger",
            "agent_name": "Stewardship Flagger",
            "status": "success",
            "data": {"tasks_by_type": {"borderline_match": "many"}, "task_list": [{"task_id": "T-1"}]},
        },
    ]
    path = tmp_path / "report.xlsx"
    write_excel_report(path, "master-my-data", envelopes)
    book = openpyxl.load_workbook(path)
    assert table(book[GOLDEN], "Cluster sizes").rows == [[3, 2, 6]]
    [cluster] = tables(book[MERGED_CLUSTERS])
    assert cluster.rows == [["golden record", None, None, None, None, 1]]
    assert table(book[STEWARDSHIP], "Tasks, most severe first").rows[0][0] == "T-1"
