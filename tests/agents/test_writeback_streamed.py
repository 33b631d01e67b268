"""cleanse-writeback on a primary too large for memory: the chain gives a lazy scan of a Parquet spill
(``inputs.scan``), and the agent must return what its in-memory run returns on the same data and context (envelope,
row-level issues, no removed rows) with the scan, unchanged, as its output (``result.scan``, ``result.rows``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents.clean import writeback
from agents.clean.common import has_identifier
from agents.clean.streamed_queries import streamed_has_identifier
from agents.envelope import AgentInputs, AgentResult, ChainContext
from agents.params.cleanse_writeback import CleanseWritebackParams
from tests.agents.clean_support import SHORT_PROPERTY_SETTINGS, indexed, messy_frames
from tests.agents.test_writeback import change, clean_context, step


def ignore(fraction: float, message: str) -> None:
    pass


def comparable(result: AgentResult) -> dict[str, Any]:
    """The envelope without what depends on when and how fast the run was."""
    envelope = result.envelope.to_dict()
    envelope.pop("execution_time_ms")
    envelope["data"]["manifest"].pop("generated_at")
    return envelope


def assert_same_run(
    frame: pl.DataFrame, tmp_path: Path, context: ChainContext | None = None, row_group: int | None = 3, **params: Any
) -> AgentResult:
    """The streamed run returns what the in-memory run returns, its output the scan it was given."""
    chain = context or ChainContext()
    parameters = CleanseWritebackParams(**params)
    memory = writeback.run(AgentInputs(frame, "primary.csv", context=chain), parameters, ignore)
    spill = tmp_path / "in.parquet"
    frame.write_parquet(spill, mkdir=True, row_group_size=row_group)
    inputs = AgentInputs(
        frame.clear(),
        "primary.csv",
        context=chain,
        scan=pl.scan_parquet(spill),
        rows=frame.height,
        work_dir=tmp_path / "work",
    )
    fractions: list[float] = []
    result = writeback.run(inputs, parameters, lambda fraction, _message: fractions.append(fraction))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert memory.frame is frame and memory.scan is None
    assert result.frame is None and result.scan is not None
    assert comparable(result) == comparable(memory)
    plan = result.scan.explain()
    assert "CACHE" not in plan and "DF [" not in plan
    output = result.scan.collect()
    assert_frame_equal(output, frame, check_exact=True)
    assert result.rows == output.height
    assert result.removed is not None and memory.removed is not None
    assert_frame_equal(result.removed, memory.removed, check_exact=True)
    assert_frame_equal(result.row_level_issues, memory.row_level_issues, check_exact=True)
    assert result.artifacts == memory.artifacts
    assert not list((tmp_path / "work").rglob("*.parquet"))  # its spills are gone
    return result


def failing_frame() -> pl.DataFrame:
    """Every check fails: NaN and infinity, a misparsed date, duplicates (NaN, -0.0 and empty cells alike)."""
    return indexed(
        {
            "id": [1, 1, 3, 4, 5, 5, 7, 5, 5],
            "amount": [1.5, 1.5, float("nan"), float("inf"), 0.0, -0.0, None, float("nan"), float("nan")],
            "when": ["2024-01-01", "2024-01-01", "0024-02-02", "2024-01-04", None, None, "2024-01-07", None, None],
            "note": ["a", "a", None, "b", None, None, "c", None, None],
        },
        [1, 2, 4, 6, 7, 9, 12, 13, 20],
    ).with_columns(pl.col("when").str.to_date())


def failing_context() -> ChainContext:
    columns = ["id", "amount", "when", "note"]
    steps = [
        step(1, "type-fixer", 12, 12, {"amount": change("String", "Float64", 1, 1, 5)}, columns, columns),
        step(2, "field-standardization", 12, 12, {"id": change("Int64", "Int64", 0, 2, 2)}, columns, columns),
        step(3, "duplicate-resolver", 12, 9, {}, columns, columns),
    ]
    return clean_context(steps)


def test_streamed_writeback_passes_a_clean_frame(tmp_path: Path) -> None:
    frame = indexed(
        {
            "id": [1, 2, 3, 4],
            "amount": [1.5, 2.0, 2.5, 3.0],
            "when": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 4), eager=True),
        },
        [1, 2, 4, 6],
    )
    result = assert_same_run(frame, tmp_path)
    assert result.envelope.summary_metrics["data_ready_for_pipeline"] is True
    assert result.row_level_issues.height == 0


def test_streamed_writeback_fails_each_check_for_its_cause(tmp_path: Path) -> None:
    result = assert_same_run(failing_frame(), tmp_path, failing_context(), original_row_count=20)
    found = {check["check"]: check for check in result.envelope.data["integrity_checks"]}
    assert not any(check["passed"] for check in found.values())
    assert found["no_duplicates"]["details"]["duplicate_count"] == 3
    assert found["numeric_type_integrity"]["details"]["non_finite_values"] == {"amount": 4}
    duplicates = result.row_level_issues.filter(pl.col("issue_type") == "duplicate_row")
    assert duplicates["row_index"].to_list() == [2, 9, 20]
    assert duplicates["value"].to_list() == ["1", "7", "13"]


def test_streamed_writeback_compares_null_counts_without_steps(tmp_path: Path) -> None:
    frame = failing_frame()
    context = ChainContext(
        original_rows=9,
        original_columns=["id", "amount", "when", "note"],
        original_dtypes={"id": "Int64", "amount": "Float64", "when": "Date", "note": "String"},
        original_null_counts={"id": 0, "amount": 0, "when": 1, "note": 5},
    )
    result = assert_same_run(frame, tmp_path, context)
    found = {check["check"]: check for check in result.envelope.data["integrity_checks"]}
    assert found["no_new_nulls"]["details"]["introduced"] == {
        "amount": {"(unknown step)": 1},
        "when": {"(unknown step)": 3},
    }


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"verify_no_duplicates": False},
        {"verify_numeric_types": False, "verify_datetime_types": False},
        {"generate_comprehensive_manifest": False, "include_transformation_summary": False},
        {"min_retention_percentage": 99.0, "agent_manifests": {"legacy-agent": {"resolution_log": ["a"]}}},
    ],
)
def test_streamed_writeback_parameters(params: dict[str, Any], tmp_path: Path) -> None:
    assert_same_run(failing_frame(), tmp_path, failing_context(), **params)


@pytest.mark.parametrize("rows", [0, 1])
def test_streamed_writeback_tiny_frames(rows: int, tmp_path: Path) -> None:
    assert_same_run(failing_frame().head(rows), tmp_path, failing_context())


def test_streamed_writeback_reads_duplicates_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes grouped in several parts, the rows sharing one read in several parts: the same result."""
    monkeypatch.setattr(writeback, "MAX_GROUPED_ROWS", 7)
    monkeypatch.setattr(writeback, "MAX_CANDIDATE_CELLS", 12)
    frame = indexed(
        {"key": [index % 9 for index in range(40)], "text": [f"t{index % 6}" for index in range(40)]},
        list(range(3, 83, 2)),
    )
    result = assert_same_run(frame, tmp_path)
    assert result.envelope.data["integrity_checks"][3]["details"]["duplicate_count"] == 40 - 18


def test_streamed_writeback_without_a_work_dir(tmp_path: Path) -> None:
    frame = failing_frame()
    frame.write_parquet(tmp_path / "in.parquet")
    inputs = AgentInputs(frame.clear(), "primary.csv", scan=pl.scan_parquet(tmp_path / "in.parquet"), rows=frame.height)
    result = writeback.run(inputs, CleanseWritebackParams(), ignore)
    memory = writeback.run(AgentInputs(frame, "primary.csv"), CleanseWritebackParams(), ignore)
    assert comparable(result) == comparable(memory)


@SHORT_PROPERTY_SETTINGS
@given(frame=messy_frames(), row_group=st.sampled_from([None, 1, 4]))
def test_streamed_writeback_agrees_with_memory(frame: pl.DataFrame, row_group: int | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        assert_same_run(frame, Path(folder), row_group=row_group)


def test_streamed_writeback_other_dtypes(tmp_path: Path) -> None:
    """Booleans, categoricals, decimals, datetimes with a time zone and an all-empty column hash like equal rows."""
    frame = indexed(
        {
            "flag": [True, True, None, False, None],
            "kind": ["a", "a", "b", None, "b"],
            "price": ["1.10", "1.10", "2.00", None, "2.00"],
            "at": [1, 1, 2, None, 2],
            "empty": [None] * 5,
        },
        [2, 3, 5, 8, 13],
        {"kind": pl.Categorical, "empty": pl.Null},
    ).with_columns(
        pl.col("price").cast(pl.Decimal(10, 2)),
        pl.from_epoch("at", time_unit="ms").dt.replace_time_zone("Europe/Paris"),
    )
    result = assert_same_run(frame, tmp_path)
    duplicates = result.row_level_issues.filter(pl.col("issue_type") == "duplicate_row")
    assert duplicates["row_index"].to_list() == [3, 13]


@pytest.mark.parametrize("max_grouped_rows", [1, 3, 100])
@pytest.mark.parametrize(
    "ids",
    [[1, 2, 3, 4, 5, 6], [1, None, 3, 4, 5, 6], [1, None, 3, None, 5, 6], [1, 2, 3, 1, 5, 6], [None] * 6],
)
def test_streamed_identifier_counts_as_in_memory(ids: list[int | None], max_grouped_rows: int, tmp_path: Path) -> None:
    frame = indexed({"text": ["a", "b", "a", "b", "a", "b"], "id": ids}, [1, 2, 3, 4, 5, 6], {"id": pl.Int32})
    frame.write_parquet(tmp_path / "in.parquet", row_group_size=2)
    scan = pl.scan_parquet(tmp_path / "in.parquet")
    found = streamed_has_identifier(scan, ["text", "id"], frame.height, max_grouped_rows=max_grouped_rows)
    assert found == has_identifier(frame, ["text", "id"])
    assert found == (ids in ([1, 2, 3, 4, 5, 6], [1, None, 3, 4, 5, 6]))


@pytest.mark.parametrize(("ids", "expected"), [([1, 2, 3, 4], 0), ([1, None, 3, None], 1), ([7, 7, 7, 7], 3)])
def test_streamed_writeback_with_an_identifier(
    ids: list[int | None], expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writeback, "MAX_GROUPED_ROWS", 2)
    frame = indexed({"id": ids, "text": ["a", "a", "a", "a"]}, [1, 2, 3, 4])
    result = assert_same_run(frame, tmp_path)
    assert result.envelope.data["integrity_checks"][3]["details"]["duplicate_count"] == expected
