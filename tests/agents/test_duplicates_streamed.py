"""duplicate-resolver on a primary too large for memory: the chain gives a lazy scan of a Parquet spill
(``inputs.scan``), its row count and a work directory, and the agent must return what its in-memory run returns on
the same data (the envelope but for the timing, the removed rows, the row-level issues) with its output as a lazy
plan over the scan and its own spills (``result.scan``, ``result.rows``) that holds no data."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clean import duplicates
from agents.envelope import AgentResult
from agents.params.duplicate_resolver import ALL_DETECTION_TYPES, DuplicateResolverParams
from tests.agents.clean_support import ROW, SHORT_PROPERTY_SETTINGS, frames, indexed, messy_frames
from tests.agents.streamed_support import (
    assert_same_streamed_run,
    run_in_memory,
    run_streamed,
)
from tests.agents.test_duplicates import dedupe_params

ORIGINAL_HASH = pl.Expr.hash


def in_memory(frame: pl.DataFrame, params: DuplicateResolverParams) -> AgentResult:
    return run_in_memory(duplicates.run, frame, params)


def streamed(
    frame: pl.DataFrame, params: DuplicateResolverParams, folder: Path, row_group: int | None = None
) -> AgentResult:
    return run_streamed(duplicates.run, frame, params, folder, row_group)


def assert_same_run(frame: pl.DataFrame, params: DuplicateResolverParams, folder: Path) -> AgentResult:
    return assert_same_streamed_run(duplicates.run, frame, params, folder, None)


KINDS = indexed(
    {
        "name": ["Alice", "Alice", "alice ", "Bob", "Bob", "Carol", None, "Dan"],
        "email": ["a@x.com", "a@x.com", "a@x.com", "bob@y.org", "BOB@y.org ", "c@z.com", "c@z.com", "d@q.com"],
        "age": [30, 30, 30, 41, 41, 52, 52, None],
    },
    [10, 11, 15, 16, 19, 20, 23, 30],
)
CONFLICTS = indexed({"id": [1, 1, 2, 2], "v": ["a", "b", None, "c"], "w": [None, 5, 7, None]}, [4, 9, 12, 40])
MERGED_CONFLICT = indexed(
    {"id": [1, 1, None], "name": ["Ann", "Bob", "Ann"], "email": ["a@x.com"] * 3, "amount": [None, 2.5, 2.5]},
    [1, 2, 3],
)
SUBSUMED = indexed({"a": ["x", "x", "x"], "b": [None, "y", None], "c": [1, 1, None]}, [5, 6, 7])
NAN = float("nan")
SIGNED = indexed(
    {"x": [0.0, -0.0, NAN, NAN, 1.5, None, None], "t": ["a", "a", "b", "b", "c", None, None]},
    [2, 4, 6, 8, 10, 12, 14],
)
FLOAT_SUBSUMER = indexed(
    {"v": [0.0, -0.0, 2.0, 3.0], "w": [None, "k", "k", None], "z": [1, 1, 2, 3]}, [1, 3, 5, 7], {"w": pl.String}
)
EMPTY_KEYS = indexed({"id": [None, None, 3], "v": ["a", "b", "c"]}, [2, 3, 8])
ALL = {"detection_types": ALL_DETECTION_TYPES}
CASES = [
    (KINDS, {}),
    (KINDS, ALL),
    (KINDS, {"detection_types": ["case_variations"], "key_columns": ["name"]}),
    (KINDS, {**ALL, "email_columns": ["email"], "key_columns": ["email"], "conflict_resolution": "merge_smart"}),
    (CONFLICTS, {**ALL, "key_columns": ["id"], "conflict_resolution": "keep_first"}),
    (CONFLICTS, {**ALL, "key_columns": ["id"], "conflict_resolution": "keep_last"}),
    (CONFLICTS, {**ALL, "key_columns": ["id"], "conflict_resolution": "merge_smart"}),
    (CONFLICTS, {"key_columns": ["id"]}),  # conflicting proposed only
    (EMPTY_KEYS, {"detection_types": ["conflicting"], "key_columns": ["id"], "null_handling": "match_nulls"}),
    (EMPTY_KEYS, {"detection_types": ["conflicting"], "key_columns": ["id"]}),
    (MERGED_CONFLICT, {**ALL, "key_columns": ["id"], "conflict_resolution": "merge_smart"}),
    (SUBSUMED, ALL),
    (SUBSUMED, {**ALL, "merge_strategy": "merge_smart"}),
    (SUBSUMED, {"detection_types": ["missing_values"], "max_null_patterns": 1}),
    (SIGNED, {"detection_types": ["exact"]}),
    (FLOAT_SUBSUMER, {"detection_types": ["missing_values"]}),
    (KINDS.head(1), ALL),
    (KINDS.clear(), {}),
    (KINDS.select(ROW), ALL),
]


@pytest.mark.parametrize(("frame", "params"), CASES)
def test_streamed_run_returns_the_in_memory_result(frame: pl.DataFrame, params: dict[str, Any], tmp_path: Path) -> None:
    assert_same_run(frame, DuplicateResolverParams.model_validate(params), tmp_path)


def test_streamed_run_removes_and_merges_as_in_memory(tmp_path: Path) -> None:
    """The cases above do change the data: rows removed, values merged into kept rows (read from a spill)."""
    result = assert_same_run(
        MERGED_CONFLICT,
        DuplicateResolverParams.model_validate({**ALL, "key_columns": ["id"], "conflict_resolution": "merge_smart"}),
        tmp_path / "merged",
    )
    assert result.scan is not None
    assert result.scan.collect().to_dicts() == [{ROW: 1, "id": 1, "name": "Ann", "email": "a@x.com", "amount": 2.5}]
    assert list((tmp_path / "merged" / "work" / duplicates.SPILL_FOLDER).glob("merged-*.parquet"))
    kinds = assert_same_run(KINDS, DuplicateResolverParams(), tmp_path / "kinds")
    assert kinds.removed is not None and kinds.removed[ROW].to_list() == [11]
    assert {item["action"] for item in kinds.envelope.data["proposals"]} == {
        "remove_email_case_duplicates",
        "remove_case_variations_duplicates",
        "remove_missing_values_duplicates",
    }


def random_frame(seed: int, rows: int) -> pl.DataFrame:
    """Repeats of every kind: exact copies, e-mail and name case variants, rows with cells blanked, conflicts."""
    rng = np.random.default_rng(seed)
    base = pl.DataFrame(
        {
            "id": rng.integers(0, rows // 3, rows),
            "name": rng.choice(np.array(["Ann", "ann ", "Bob", " BOB", "Cy", None], dtype=object), rows).tolist(),
            "email": rng.choice(np.array(["a@x.com", "A@x.com ", "b@y.org", None], dtype=object), rows).tolist(),
            "amount": rng.choice(np.array([1.0, 2.5, -0.0, 0.0, np.nan, 4.0]), rows),
            "day": rng.choice(np.array(["2024-01-01", "2024-02-03", None], dtype=object), rows).tolist(),
        },
        schema_overrides={"name": pl.String, "email": pl.String, "day": pl.String},
    ).with_columns(
        pl.col("day").str.to_date(),
        pl.when(pl.Series(rng.random(rows) < 0.2)).then(None).otherwise(pl.col("amount")).alias("amount"),
    )
    copies = base.sample(rows // 10, seed=seed)
    blanked = base.sample(rows // 10, seed=seed + 1).with_columns(
        pl.when(pl.Series(rng.random(rows // 10) < 0.5)).then(None).otherwise(pl.col("name")).alias("name")
    )
    mixed = pl.concat([base, copies, blanked]).sample(fraction=1.0, shuffle=True, seed=seed)
    gaps = np.cumsum(rng.integers(1, 4, mixed.height))
    return mixed.insert_column(0, pl.Series(ROW, gaps, dtype=pl.Int64))


SPREAD = [
    {},
    ALL,
    {**ALL, "key_columns": ["id"], "conflict_resolution": "merge_smart", "merge_strategy": "merge_smart"},
    {**ALL, "key_columns": ["id", "email"], "null_handling": "match_nulls", "conflict_resolution": "keep_last"},
    {"detection_types": ["missing_values", "email_case"], "max_null_patterns": 2},
]


@pytest.mark.parametrize("buckets", [None, 3, 4096])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("params", SPREAD)
def test_streamed_run_is_exact_whatever_the_hashes_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, buckets: int | None, seed: int, params: dict[str, Any]
) -> None:
    """Hashes folded into a few values (every hash shared) or many (some shared): the candidates are confirmed
    on the real values, so the result is the in-memory one. Patterns of empty cells keep their real hash (it
    names a pattern in both runs)."""
    frame = random_frame(seed, 300)
    if buckets is not None:
        original_gaps = duplicates._gap_exprs

        def real_gaps(columns: list[str]) -> list[pl.Expr]:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(pl.Expr, "hash", ORIGINAL_HASH)
                return original_gaps(columns)

        monkeypatch.setattr(duplicates, "_gap_exprs", real_gaps)
        monkeypatch.setattr(pl.Expr, "hash", lambda self, seed=0: ORIGINAL_HASH(self, seed) % buckets)
    result = assert_same_run(frame, DuplicateResolverParams.model_validate(params), tmp_path)
    assert result.removed is not None and result.removed.height > 0


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("params", SPREAD)
def test_rows_that_may_repeat_are_read_in_parts_when_many(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seed: int, params: dict[str, Any]
) -> None:
    """Past MAX_CANDIDATE_CELLS the rows that may repeat are read in parts by hash, each group whole in one part;
    the outcomes joined are the in-memory one (counts, conflict examples in file order)."""
    monkeypatch.setattr(duplicates, "MAX_CANDIDATE_CELLS", 60)
    monkeypatch.setattr(duplicates, "MAX_GROUPED_ROWS", 70)
    reads = counting_reads(monkeypatch)
    frame = random_frame(seed, 300)
    assert_same_run(frame, DuplicateResolverParams.model_validate(params), tmp_path)
    assert len(reads) > 3


def counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows asked for at each read of rows by index (``_Streamed._rows``)."""
    reads: list[int] = []
    original = duplicates._Streamed._rows

    def spy(self: Any, wanted: pl.Series) -> pl.DataFrame:
        reads.append(wanted.len())
        return original(self, wanted)

    monkeypatch.setattr(duplicates._Streamed, "_rows", spy)
    return reads


@pytest.mark.parametrize("grouped_rows", [4_000_000, 9])
def test_streamed_run_without_duplicates_keeps_every_row(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, grouped_rows: int
) -> None:
    """An id column (every value different, none empty) settles missing_values without looking for subsumers,
    its distinct values counted in one part or several."""
    monkeypatch.setattr(duplicates, "MAX_GROUPED_ROWS", grouped_rows)
    searched: list[None] = []
    original = duplicates._Streamed._subsumption_scope

    def spy(*args: Any) -> pl.DataFrame:
        searched.append(None)
        return original(*args)

    monkeypatch.setattr(duplicates._Streamed, "_subsumption_scope", spy)
    frame = random_frame(2, 200).unique(subset=["id"], keep="first", maintain_order=True)
    assert frame["amount"].null_count() > 0
    result = assert_same_run(frame, DuplicateResolverParams.model_validate(ALL), tmp_path)
    assert result.rows == frame.height
    assert not list((tmp_path / "work" / duplicates.SPILL_FOLDER).glob("*.parquet"))
    assert not searched
    named = frame.filter(pl.col("name").is_not_null()).tail(1)
    repeat = named.with_columns(
        (pl.col(ROW) * 0 + frame[ROW].max() + 1).alias(ROW), pl.lit(None, pl.String).alias("name")
    )
    with_repeat = pl.concat([frame, repeat])
    assert_same_run(with_repeat, DuplicateResolverParams.model_validate(ALL), tmp_path / "repeat")
    assert searched


@SHORT_PROPERTY_SETTINGS
@given(frame=messy_frames(), params=dedupe_params)
def test_streamed_messy_frames(frame: pl.DataFrame, params: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        assert_same_run(frame, DuplicateResolverParams.model_validate(params), Path(folder))


@SHORT_PROPERTY_SETTINGS
@given(frame=frames(), detection=st.lists(st.sampled_from(ALL_DETECTION_TYPES), unique=True))
def test_streamed_mixed_text_frames(frame: pl.DataFrame, detection: list[str]) -> None:
    params = DuplicateResolverParams.model_validate({"detection_types": detection, "key_columns": ["a"]})
    with tempfile.TemporaryDirectory() as folder:
        assert_same_run(frame, params, Path(folder))
