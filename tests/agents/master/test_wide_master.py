"""Wide files: survivorship gives every column of a wide frame exactly what it gives that column alone (each
column's provenance is planned over its own few columns), and master-my-data carries a file of hundreds of
columns through every agent with every column kept."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN
from agents.master import survivorship
from agents.master.survivorship import MEMBER_CLUSTER, MEMBER_GOLDEN_ID, MEMBER_KEY, cluster_members, survive
from tests.agents.master.test_survivorship import random_case

WIDE_COLUMNS = 200


def _widened(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``WIDE_COLUMNS`` more columns: copies of its columns shifted by a row, so that no copy
    equals another column."""
    extra = [
        pl.col(name).shift(1 + index % 3).alias(f"{name}_{index}")
        for index in range(WIDE_COLUMNS)
        for name in ("name", "score")
    ]
    return frame.with_columns(extra)


@pytest.mark.parametrize("singletons", [True, False])
def test_a_column_survives_in_a_wide_frame_as_it_does_alone(singletons: bool) -> None:
    frame, clusters = random_case(2)
    wide = _widened(frame)
    ranks = {"crm": 1, "primary": 2}
    # the same members (content keys and golden ids of the wide rows, which break ties), fewer columns
    members = cluster_members(wide, clusters)
    alone = members.select(*frame.columns, MEMBER_CLUSTER, MEMBER_KEY, MEMBER_GOLDEN_ID)

    def run(data: pl.DataFrame, kept: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        return survive(data, clusters, {}, "most_frequent", ranks, "updated", members=kept, singletons=singletons)

    narrow_golden, narrow_provenance = run(frame, alone)
    wide_golden, wide_provenance = run(wide, members)
    own = narrow_golden.columns
    assert_frame_equal(wide_golden.select(own).drop("trust_score"), narrow_golden.drop("trust_score"))
    assert_frame_equal(wide_provenance.filter(pl.col("column").is_in(frame.columns)), narrow_provenance)
    assert wide_provenance["column"].n_unique() == len(frame.columns) - 3 + 2 * WIDE_COLUMNS  # less bookkeeping


def test_master_my_data_keeps_every_column_of_a_wide_file(tmp_path: Path) -> None:
    rows = 20
    data = {f"c{index}": [index * row for row in range(rows)] for index in range(300)}
    pl.DataFrame(data).write_csv(tmp_path / "wide.csv")
    result = run_tool(
        "master-my-data", [], {"primary.csv": tmp_path / "wide.csv"}, {}, tmp_path / "out", lambda *_: None
    )
    assert all(agent["status"] == "success" for agent in result["agents"].values())
    master = pl.read_csv(tmp_path / "out" / "master_data.csv")
    assert [name for name in master.columns if name.startswith("c")] == list(data)
    assert master.height == rows  # no two rows alike: no row merged


@pytest.mark.parametrize("rule", ["most_complete", "most_frequent", "quality_score", "source_priority", "max"])
def test_no_merged_cluster_gives_the_frames_the_queries_give(rule: str) -> None:
    """survive() skips the queries when no cluster has two rows: their empty result, schema for schema."""
    frame, _ = random_case(3)
    wide = _widened(frame)
    rows = wide[ROW_INDEX_COLUMN].cast(pl.Int64)
    clusters = pl.DataFrame({ROW_INDEX_COLUMN: rows, survivorship.CLUSTER: rows})
    members = cluster_members(wide, clusters).with_columns(pl.len().over(MEMBER_CLUSTER).alias("__size__"))
    merged = members.filter(pl.col("__size__") > 1)
    assert merged.height == 0
    plans = [
        survivorship._Plan(index, name, rule, members.schema[name], name)
        for index, name in enumerate(survivorship.member_columns(members))
    ]
    context = survivorship._Context({}, {}, {"crm": 1}, None)
    queried = survivorship._survive_merged(merged, plans, "updated", context)
    skipped = survivorship._nothing_merged(merged, plans)
    assert_frame_equal(skipped[0], queried[0])
    assert_frame_equal(skipped[1], queried[1])
