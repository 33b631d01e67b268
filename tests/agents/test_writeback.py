"""cleanse-writeback: the integrity checks and the manifest of a clean chain, each check failed for its cause,
and the duplicate check against Python (a Hypothesis property)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given

from agents.clean import writeback
from agents.envelope import AgentResult, ChainContext
from agents.params.cleanse_writeback import CleanseWritebackParams
from tests.agents.clean_support import (
    ROW,
    SHORT_PROPERTY_SETTINGS,
    indexed,
    messy_frames,
    run,
)


def step(
    number: int,
    agent_id: str,
    before: int,
    after: int,
    columns: dict[str, dict[str, Any]],
    columns_before: list[str],
    columns_after: list[str],
) -> dict[str, Any]:
    return {
        "step": number,
        "agent_id": agent_id,
        "agent_name": agent_id.replace("-", " ").title(),
        "status": "success",
        "rows_before": before,
        "rows_after": after,
        "rows_removed": before - after,
        "columns_before": columns_before,
        "columns_after": columns_after,
        "columns": columns,
        "cells_changed_total": sum(change.get("cells_changed") or 0 for change in columns.values()),
        "duration_ms": 5,
        "summary_metrics": {},
    }


def change(
    dtype_before: str, dtype_after: str | None, nulls_before: int, nulls_after: int | None, cells: int
) -> dict[str, Any]:
    return {
        "dtype_before": dtype_before,
        "dtype_after": dtype_after,
        "nulls_before": nulls_before,
        "nulls_after": nulls_after,
        "cells_changed": cells,
    }


def clean_context(steps: list[dict[str, Any]]) -> ChainContext:
    return ChainContext(
        tool_id="clean-my-data",
        original_rows=6,
        original_columns=["id", "amount", "when", "note"],
        original_dtypes={"id": "Int64", "amount": "String", "when": "String", "note": "String"},
        original_null_counts={"id": 0, "amount": 1, "when": 0, "note": 2},
        steps=steps,
    )


def verify(frame: pl.DataFrame, context: ChainContext | None = None, **params: Any) -> AgentResult:
    return run(writeback.run, frame, CleanseWritebackParams(**params), context)


def checks(result: AgentResult) -> dict[str, dict[str, Any]]:
    return {check["check"]: check for check in result.envelope.data["integrity_checks"]}


def cleaned_frame() -> pl.DataFrame:
    return indexed(
        {
            "id": [1, 2, 3, 4],
            "amount": [1.5, 2.0, 2.5, 3.0],
            "when": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 4), eager=True),
        },
        [1, 2, 4, 6],
    )


def test_writeback_passes_a_clean_chain_and_builds_the_manifest() -> None:
    steps = [
        step(
            1,
            "type-fixer",
            6,
            6,
            {"amount": change("String", "Float64", 1, 2, 5), "when": change("String", "Date", 0, 0, 6)},
            ["id", "amount", "when", "note"],
            ["id", "amount", "when", "note"],
        ),
        step(2, "duplicate-resolver", 6, 5, {}, ["id", "amount", "when", "note"], ["id", "amount", "when", "note"]),
        step(
            3,
            "null-handler",
            5,
            4,
            {"note": change("String", None, 2, None, 0)},
            ["id", "amount", "when", "note"],
            ["id", "amount", "when"],
        ),
    ]
    frame = cleaned_frame()
    result = verify(frame, clean_context(steps), agent_manifests={"legacy-agent": {"resolution_log": ["a", "b"]}})
    assert result.frame is frame and result.removed is not None and result.removed.height == 0
    found = checks(result)
    assert all(check["passed"] for check in found.values()), found
    assert found["no_new_nulls"]["details"]["intended"] == {"amount": {"type-fixer": 1}}
    assert found["data_retention"]["details"]["columns_dropped"] == {"note": "null-handler"}
    manifest = result.envelope.data["manifest"]
    assert manifest["pipeline"] == ["type-fixer", "duplicate-resolver", "null-handler", "legacy-agent"]
    assert [entry["step"] for entry in manifest["transformations"]] == [1, 2, 3, None]
    assert manifest["lineage"] == {
        "original_rows": 6,
        "original_columns": 4,
        "final_rows": 4,
        "final_columns": 3,
        "rows_removed_total": 2,
        "retention_percentage": pytest.approx(100 * 4 / 6, rel=1e-4),
    }
    # type-fixer: 2 type changes + 2 changed columns; resolver: 1 removal; null-handler: removal, column gone.
    assert manifest["total_transformations"] == 4 + 1 + 2 + 2
    assert result.envelope.summary_metrics == {
        "total_rows_verified": 4,
        "total_columns_verified": 3,
        "integrity_checks_passed": 5,
        "integrity_checks_failed": 0,
        "agents_in_manifest": 4,
        "data_ready_for_pipeline": True,
        "total_transformations_logged": 9,
    }


def test_writeback_fails_each_check_for_its_cause() -> None:
    frame = indexed(
        {
            "id": [1, 1, 3, 4],
            "amount": [1.5, 1.5, float("nan"), 3.0],
            "when": ["2024-01-01", "2024-01-01", "0024-02-02", "2024-01-04"],
        },
        [1, 2, 4, 6],
    ).with_columns(pl.col("when").str.to_date())
    steps = [
        step(
            1,
            "type-fixer",
            6,
            6,
            {"amount": change("String", "Float64", 1, 1, 5)},
            ["id", "amount", "when"],
            ["id", "amount", "when"],
        ),
        step(
            2,
            "field-standardization",
            6,
            6,
            {"id": change("Int64", "Int64", 0, 2, 2)},
            ["id", "amount", "when"],
            ["id", "amount", "when"],
        ),
        step(3, "duplicate-resolver", 6, 4, {}, ["id", "amount", "when"], ["id", "amount", "when"]),
    ]
    context = clean_context(steps)
    result = verify(frame, context, original_row_count=10)
    found = checks(result)
    assert not found["numeric_type_integrity"]["passed"]
    assert found["numeric_type_integrity"]["details"]["non_finite_values"] == {"amount": 1}
    assert not found["datetime_type_integrity"]["passed"]
    assert found["no_new_nulls"]["details"]["introduced"] == {"id": {"field-standardization": 2}}
    assert not found["no_duplicates"]["passed"] and found["no_duplicates"]["details"]["duplicate_resolver_ran"]
    assert not found["data_retention"]["passed"]  # 4 of 10 (parameter overrides the context's 6)
    assert result.envelope.summary_metrics["data_ready_for_pipeline"] is False
    duplicates_found = result.row_level_issues.filter(pl.col("issue_type") == "duplicate_row")
    assert duplicates_found["row_index"].to_list() == [2] and duplicates_found["value"].to_list() == ["1"]
    lost = indexed({"id": ["1"], "amount": [1.0], "when": ["x"]}, [1])
    lost_checks = checks(verify(lost, context))
    assert lost_checks["numeric_type_integrity"]["details"]["lost_numeric_type"] == {
        "id": {"expected_since": "input", "dtype_now": "String"}
    }
    assert "when" not in lost_checks["datetime_type_integrity"]["details"]["lost_temporal_type"]


@SHORT_PROPERTY_SETTINGS
@given(frame=messy_frames())
def test_writeback_duplicate_check_agrees_with_python(frame: pl.DataFrame) -> None:
    rows = list(frame.drop(ROW).iter_rows())
    result = verify(frame)
    check = checks(result)["no_duplicates"]
    assert check["passed"] == (len(set(rows)) == len(rows))
    assert check["details"]["duplicate_count"] == len(rows) - len(set(rows))
    assert result.frame is frame
