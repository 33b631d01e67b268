"""quarantine-agent on a primary too large for memory: the chain gives a lazy scan of a Parquet spill
(``inputs.scan``), and the agent must return what its in-memory run returns on the same data (envelope, removed
rows with their reasons, row-level issues) with the rows passing every check as a lazy plan over the scan
(``result.scan``, ``result.rows``) holding no data in memory, with every check on and off."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents.clean import quarantine
from agents.clean.streamed_queries import distinct_text_estimates, distinct_text_parts
from agents.envelope import AgentResult
from agents.errors import InvalidParametersError
from agents.layouts import TextLayout
from agents.params.quarantine_agent import QuarantineAgentParams
from agents.values import distinct_counts
from tests.agents.clean_support import ROW, ROWS, SHORT_PROPERTY_SETTINGS, framed, frames, indexed, params_for
from tests.agents.streamed_support import assert_same_streamed_run, run_in_memory, run_streamed
from tests.agents.test_quarantine import quarantine_frame


def in_memory(frame: pl.DataFrame, params: QuarantineAgentParams, **extra: Any) -> AgentResult:
    return run_in_memory(quarantine.run, frame, params, **extra)


def streamed(
    frame: pl.DataFrame,
    params: QuarantineAgentParams,
    tmp_path: Path,
    row_group: int = 2,
    *,
    spills: bool = True,
    **extra: Any,
) -> AgentResult:
    return run_streamed(quarantine.run, frame, params, tmp_path, row_group, spills=spills, **extra)


def assert_same_run(
    frame: pl.DataFrame, params: QuarantineAgentParams, tmp_path: Path, *, spills: bool = True, **extra: Any
) -> AgentResult:
    result = assert_same_streamed_run(quarantine.run, frame, params, tmp_path, 2, spills=spills, **extra)
    work = tmp_path / "work"
    assert not work.exists() or not any(work.iterdir())  # its spills are deleted
    return result


FULL = {
    "detect_broken_records": True,
    "required_fields": ["email"],
    "range_constraints": {"age": {"min": 18, "max": 120}},
    "format_constraints": {"email": "email"},
    "expected_schema": {"age": "integer", "joined": "date", "missing_col": "string"},
}
TYPED = framed(
    {
        "n": [1.0, 2.5, float("nan"), 4.0, None, 7.0],
        "flag": [0, 1, 2, 1, 0, None],
        "code": ["AB-12", "ab-12", "AB-1", "XY-99", "", "ZZ-00"],
        "when": [date(2024, 1, 5), None, date(2023, 12, 1), date(2024, 3, 3), None, date(2020, 2, 29)],
    },
    ROWS,
)


@pytest.mark.parametrize(
    ("frame", "raw"),
    [
        (quarantine_frame(), {}),
        (quarantine_frame(), FULL),
        (quarantine_frame(), {"detect_broken_records": True}),
        (quarantine_frame(), {"required_fields": ["email"]}),
        (quarantine_frame(), {**FULL, "detect_missing_fields": False, "detect_out_of_range": False}),
        (quarantine_frame(), {**FULL, "detect_type_mismatches": False, "detect_invalid_formats": False}),
        (quarantine_frame(), {**FULL, "detect_schema_mismatches": False}),
        (quarantine_frame(), {"expected_schema": {"age": "float", "joined": "datetime", "email": "boolean"}}),
        (quarantine_frame(), {"format_constraints": {"joined": "date", "age": r"\$?\d+"}}),
        (
            TYPED,
            {
                "expected_schema": {"n": "integer", "flag": "boolean", "when": "date", "code": "numeric"},
                "format_constraints": {"code": r"[A-Z]{2}-\d{2}", "when": "date"},
                "range_constraints": {"n": {"max": 5}, "flag": {"min": 1}},
                "required_fields": ["when"],
            },
        ),
        (TYPED, {"detect_broken_records": True, "expected_schema": {"n": "date", "flag": "integer"}}),
        (quarantine_frame().head(1), FULL),
        (quarantine_frame().clear(), FULL),
        (quarantine_frame().select(ROW), {"detect_broken_records": True}),
        (quarantine_frame().select(ROW), {}),
    ],
)
def test_streamed_run_returns_the_in_memory_result(frame: pl.DataFrame, raw: dict[str, Any], tmp_path: Path) -> None:
    assert_same_run(frame, QuarantineAgentParams.model_validate(raw), tmp_path)


@pytest.mark.parametrize("frame", [quarantine_frame(), TYPED])
def test_streamed_run_without_a_work_dir(frame: pl.DataFrame, tmp_path: Path) -> None:
    """With nowhere to spill the failing rows, the removed rows and the issues are read from the data."""
    raw = (
        {**FULL, "expected_schema": {"n": "integer"}, "range_constraints": {"n": {"max": 5}}}
        if frame is TYPED
        else FULL
    )
    params = QuarantineAgentParams.model_validate(
        {**raw, "required_fields": [], "format_constraints": {}} if frame is TYPED else raw
    )
    result = assert_same_run(frame, params, tmp_path, spills=False)
    assert result.removed is not None and result.removed.height > 0 and result.row_level_issues.height > 0


def test_default_run_changes_nothing_and_proposes(tmp_path: Path) -> None:
    frame = quarantine_frame()
    result = assert_same_run(frame, QuarantineAgentParams(), tmp_path)
    assert result.scan is not None and result.removed is not None
    assert_frame_equal(result.scan.collect(), frame)
    assert result.removed.is_empty() and result.row_level_issues.is_empty() and result.rows == frame.height
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["rows_affected"] == 1


def test_streamed_rules_remove_rows_with_every_reason(tmp_path: Path) -> None:
    result = assert_same_run(quarantine_frame(), QuarantineAgentParams.model_validate(FULL), tmp_path)
    assert result.scan is not None and result.removed is not None
    assert result.scan.collect()[ROW].to_list() == [1] and result.rows == 1
    assert result.removed[ROW].to_list() == [2, 5, 6, 9, 10]  # 6: "$40" is not an integer
    assert result.removed["reason"][0] == "required field 'email' is missing; 'age' value 150 is above the maximum 120"
    assert result.removed["reason"][2] == "'age' value '$40' is not an integer"
    assert result.row_level_issues.height == 10
    assert result.envelope.summary_metrics["quarantined_records"] == 5


def test_streamed_format_checks_see_dates_as_written(tmp_path: Path) -> None:
    frame = TYPED.select(ROW, "when")
    params = QuarantineAgentParams.model_validate({"format_constraints": {"when": r"\d{2}/\d{2}/\d{4}"}})
    layouts = {"when": TextLayout("%m/%d/%Y", "date")}
    result = assert_same_run(frame, params, tmp_path, text_layouts=layouts)
    assert result.removed is not None and result.removed.is_empty()
    plain = assert_same_run(frame, params, tmp_path / "plain")
    assert plain.removed is not None and plain.removed[ROW].to_list() == [1, 5, 6, 10]


def test_streamed_run_rejects_bad_parameters(tmp_path: Path) -> None:
    frame = quarantine_frame().with_columns(pl.col("joined").str.to_date(strict=False).alias("when"))
    cases = [
        ({"required_fields": ["nope"]}, "required_fields"),
        ({"format_constraints": {"email": "[unclosed"}}, "format_constraints.email"),
        ({"range_constraints": {"when": {"min": 1}}}, "range_constraints.when"),
    ]
    for index, (raw, field) in enumerate(cases):
        with pytest.raises(InvalidParametersError) as caught:
            streamed(frame, QuarantineAgentParams.model_validate(raw), tmp_path / str(index))
        assert caught.value.field == field


@pytest.mark.parametrize("parts", [1, 3])
def test_distinct_text_parts_are_the_distinct_counts(parts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """In hash parts (a column with many distinct values) each value is counted once, in one part."""
    monkeypatch.setattr("agents.clean.streamed_queries.GROUP_VALUES", 20 // parts)
    words = [f" w{index % 17} " for index in range(60)] + [None, "", "  "]
    frame = indexed({"t": words}, list(range(1, len(words) + 1)))
    (estimate,) = distinct_text_estimates(frame.lazy(), ["t", "t"]).values()
    assert estimate >= 17  # approximate; null and blank count as values
    counted = [part.collect(engine="streaming") for part in distinct_text_parts(frame.lazy(), "t", estimate)]
    assert len(counted) >= parts
    assert all(piece.height for piece in counted)
    assert_frame_equal(pl.concat(counted), distinct_counts(frame, "t"), check_row_order=False)


def test_many_distinct_values_in_parts_give_the_same_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("agents.clean.streamed_queries.GROUP_VALUES", 4)
    ages = [str(index) if index % 5 else f"x{index}" for index in range(40)]
    frame = indexed({"age": ages}, list(range(2, 42)))
    params = QuarantineAgentParams.model_validate({"expected_schema": {"age": "integer"}})
    result = assert_same_run(frame, params, tmp_path)
    assert result.removed is not None and result.removed.height == 8


@SHORT_PROPERTY_SETTINGS
@given(frame=frames(), data=st.data(), broken=st.booleans())
def test_streamed_run_matches_in_memory_on_any_values(frame: pl.DataFrame, data: st.DataObject, broken: bool) -> None:
    params = params_for(quarantine, data)
    assert isinstance(params, QuarantineAgentParams)
    params = params.model_copy(update={"detect_broken_records": broken})
    with tempfile.TemporaryDirectory() as folder:
        try:
            in_memory(frame, params)
        except InvalidParametersError as refused:  # a range on a text column none of whose values is a number
            with pytest.raises(InvalidParametersError) as caught:
                streamed(frame, params, Path(folder))
            assert str(caught.value) == str(refused) and caught.value.field == refused.field
            return
        assert_same_run(frame, params, Path(folder))
