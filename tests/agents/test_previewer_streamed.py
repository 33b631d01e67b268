"""cleanse-previewer on a primary too large for memory: the chain gives a lazy scan of a Parquet spill
(``inputs.scan``), and the agent must return what its in-memory run returns on the same data (envelope, row-level
issues, no removed rows) for every rule type, and pass the data on unchanged (``result.scan`` None: nothing
changed) without holding it in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents.chain import _DataFlow
from agents.clean import previewer
from agents.clean.common import QUARTILES_ARTIFACT
from agents.envelope import AgentInputs, AgentResult, ChainContext
from agents.errors import InvalidParametersError
from agents.params.cleanse_previewer import CleansePreviewerParams
from agents.streamed import StreamFlow
from tests.agents.clean_support import ROW, SHORT_PROPERTY_SETTINGS, frames, indexed, messy_frames
from tests.agents.test_previewer import previewer_frame


def ignore(fraction: float, message: str) -> None:
    pass


def in_memory(frame: pl.DataFrame, params: CleansePreviewerParams) -> AgentResult:
    return previewer.run(AgentInputs(frame, "primary.csv"), params, ignore)


def streamed(frame: pl.DataFrame, params: CleansePreviewerParams, tmp_path: Path, row_group: int = 7) -> AgentResult:
    """As the chain gives a large primary: an empty frame of its schema, a scan of the data written to Parquet
    (small row groups: the streaming engine reads it in several morsels), its rows, and a work directory."""
    spill = tmp_path / "in.parquet"
    frame.write_parquet(spill, mkdir=True, row_group_size=row_group)
    work = tmp_path / "work"
    work.mkdir()
    inputs = AgentInputs(frame.clear(), "primary.csv", scan=pl.scan_parquet(spill), rows=frame.height, work_dir=work)
    fractions: list[float] = []
    result = previewer.run(inputs, params, lambda fraction, _message: fractions.append(fraction))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert list(work.iterdir()) == []  # its spills are gone
    return result


def untimed(result: AgentResult) -> dict[str, Any]:
    envelope = result.envelope.to_dict()
    envelope.pop("execution_time_ms")
    return envelope


def assert_same_run(frame: pl.DataFrame, params: CleansePreviewerParams, tmp_path: Path) -> AgentResult:
    memory = in_memory(frame, params)
    result = streamed(frame, params, tmp_path)
    assert memory.frame is frame and memory.scan is None
    # the data passes on unchanged: no plan to sink, as an agent that changed nothing
    assert result.frame is None and result.scan is None and result.rows == frame.height
    assert untimed(result) == untimed(memory)
    for name in ("removed", "row_level_issues"):
        assert_frame_equal(getattr(result, name), getattr(memory, name), check_exact=True)
    # the quartiles an in-memory run hands the outlier-remover (the columns they come from) are not a streamed run's
    assert result.artifacts == {k: v for k, v in memory.artifacts.items() if k != QUARTILES_ARTIFACT}
    return result


FRAME = previewer_frame(np.random.default_rng(11))
ALL_RULES: list[dict[str, Any]] = [
    {"rule_id": "mean", "type": "impute_nulls", "target_columns": ["x"], "strategy": "mean"},
    {"rule_id": "median", "type": "impute_nulls", "strategy": "median", "target_columns": ["x"]},
    {"rule_id": "mode", "type": "impute_nulls", "strategy": "mode"},
    {"rule_id": "constant", "type": "impute_nulls", "strategy": "constant", "target_columns": ["x"], "fill_value": 1.5},
    {"rule_id": "iqr", "type": "remove_outliers", "target_columns": ["x"], "method": "iqr"},
    {"rule_id": "z", "type": "remove_outliers", "method": "zscore", "threshold": 2.5},
    {"rule_id": "dups", "type": "drop_duplicates"},
    {"rule_id": "dups_group", "type": "drop_duplicates", "target_columns": ["group"]},
    {"rule_id": "nulls", "type": "drop_nulls", "target_columns": ["group"]},
    {"rule_id": "all_nulls", "type": "drop_nulls"},
    {"rule_id": "convert", "type": "convert_types", "target_columns": ["amount"], "target_type": "float"},
    {"rule_id": "integer", "type": "convert_types", "target_columns": ["x", "amount"], "target_type": "integer"},
    {"rule_id": "text", "type": "convert_types", "target_columns": ["x"], "target_type": "string"},
    {"rule_id": "drop", "type": "drop_columns", "target_columns": ["group"]},
    {"rule_id": "bad_mean", "type": "impute_nulls", "target_columns": ["group"], "strategy": "median"},
    {"rule_id": "bad_convert", "type": "convert_types", "target_columns": ["group"], "target_type": "date"},
    {"rule_id": "no_date", "type": "convert_types", "target_columns": ["x"], "target_type": "date"},
]


@pytest.mark.parametrize("correlations", [False, True])
def test_every_rule_type_previews_as_in_memory(correlations: bool, tmp_path: Path) -> None:
    frame = FRAME.with_columns((pl.col("x") * 2 + 1).alias("y"))
    params = CleansePreviewerParams.model_validate({"preview_rules": ALL_RULES, "analyze_correlations": correlations})
    result = assert_same_run(frame, params, tmp_path)
    outcomes = {item["rule_id"]: item for item in result.envelope.data["simulated_results"]}
    assert outcomes["dups"]["rows_affected"] == 5 and outcomes["iqr"]["rows_affected"] > 0
    assert outcomes["convert"]["rows_affected"] > 0  # "unknown" does not convert: row-level issues
    assert (
        outcomes["bad_mean"]["status"] == outcomes["no_date"]["status"] == "error"
        and outcomes["bad_convert"]["status"] == "success"
    )
    kinds = set(result.row_level_issues["issue_type"].to_list())
    assert kinds == {"preview_row_removed", "preview_conversion_failure"}
    if correlations:
        assert "correlation_changes" in outcomes["iqr"]


def test_default_rules_preview_as_in_memory(tmp_path: Path) -> None:
    result = assert_same_run(FRAME, CleansePreviewerParams(), tmp_path)
    data = result.envelope.data
    assert data["rules_source"] == "default"
    assert [item["rule_type"] for item in data["simulated_results"]] == [
        "drop_duplicates",
        "impute_nulls",
        "impute_nulls",
        "remove_outliers",
    ]
    assert result.row_level_issues.height > 0


SMALL = indexed(
    {"a": [1.0, -0.0, 0.0, None, 1.0, None], "t": ["u", "v", "v", None, "u", None], "c": [None] * 6},
    [2, 4, 6, 8, 10, 12],
    {"c": pl.Float64},
)


@pytest.mark.parametrize(
    ("frame", "rules"),
    [
        (SMALL, []),
        (SMALL, [{"type": "drop_duplicates"}, {"type": "drop_nulls"}, {"type": "remove_outliers"}]),
        (SMALL, [{"type": "impute_nulls", "strategy": "mode"}, {"type": "impute_nulls", "target_columns": ["c"]}]),
        (SMALL, [{"type": "convert_types", "target_columns": ["t", "a"], "target_type": "boolean"}]),
        (SMALL.head(1), [{"type": "drop_duplicates"}, {"type": "remove_outliers", "method": "z_score"}]),
        (SMALL.clear(), []),
        (SMALL.clear(), [{"type": "drop_nulls"}, {"type": "impute_nulls"}]),
        (SMALL.select(ROW, "t"), [{"type": "remove_outliers"}, {"type": "drop_duplicates"}]),
        (SMALL.select(ROW), []),
        (SMALL.select(ROW), [{"type": "drop_duplicates"}]),
    ],
)
def test_streamed_edge_cases(frame: pl.DataFrame, rules: list[dict[str, Any]], tmp_path: Path) -> None:
    params = CleansePreviewerParams.model_validate({"preview_rules": rules, "analyze_correlations": True})
    assert_same_run(frame, params, tmp_path)


def test_repeats_found_across_hash_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated rows are found whatever part their hash falls in."""
    monkeypatch.setattr(previewer, "HASHES_PER_PART", 3)
    frame = indexed({"k": [1, 2, 1, 3, 2, 2, 4, 5, 1], "v": list("abacbbdea")}, list(range(1, 10)))
    result = assert_same_run(frame, CleansePreviewerParams.model_validate({"preview_rules": []}), tmp_path)
    duplicates = result.envelope.data["simulated_results"][0]
    assert duplicates["rule_type"] == "drop_duplicates" and duplicates["rows_affected"] == 4
    removed = result.row_level_issues.filter(pl.col("issue_type") == "preview_row_removed")["row_index"].to_list()
    assert removed[:4] == [3, 5, 6, 9]


@pytest.mark.parametrize("rows_per_part", [1, 2, 5, 1_000])
def test_repeats_of_special_values_across_parts(
    rows_per_part: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nulls, NaN and -0.0 repeat as ``is_first_distinct`` finds them, whatever part their rows fall in."""
    monkeypatch.setattr(previewer, "HASHES_PER_PART", rows_per_part)
    nan = float("nan")
    frame = indexed(
        {
            "f": [0.0, -0.0, nan, nan, None, None, 1.5, 1.5, 0.0, 2.0],
            "s": ["a", "a", None, None, None, None, "b", "c", "a", "d"],
        },
        list(range(1, 11)),
    )
    rules = [{"type": "drop_duplicates"}, {"type": "drop_duplicates", "target_columns": ["f"]}]
    params = CleansePreviewerParams.model_validate({"preview_rules": rules})
    result = assert_same_run(frame, params, tmp_path)
    assert [item["rows_affected"] for item in result.envelope.data["simulated_results"]] == [4, 5]


def test_streamed_run_rejects_unknown_columns(tmp_path: Path) -> None:
    params = CleansePreviewerParams.model_validate(
        {"preview_rules": [{"type": "drop_nulls", "target_columns": ["nope"]}]}
    )
    with pytest.raises(InvalidParametersError) as caught:
        streamed(FRAME, params, tmp_path)
    assert caught.value.field == "preview_rules.0.target_columns"


@SHORT_PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_streamed_matches_in_memory_on_random_frames(frame: pl.DataFrame, data: st.DataObject) -> None:
    import tempfile

    conversions = [
        [{"type": "convert_types", "target_columns": ["a", "b"], "target_type": kind}]
        for kind in ("numeric", "integer", "boolean", "date")
    ]
    rules = data.draw(
        st.sampled_from(
            [
                [],
                *conversions,
                [{"type": "drop_duplicates", "target_columns": ["a"]}, {"type": "impute_nulls", "strategy": "mode"}],
                [{"type": "drop_nulls"}, {"type": "remove_outliers", "method": "zscore", "threshold": 1.0}],
            ]
        )
    )
    params = CleansePreviewerParams.model_validate({"preview_rules": rules, "analyze_correlations": True})
    with tempfile.TemporaryDirectory() as directory:
        assert_same_run(frame, params, Path(directory))


@SHORT_PROPERTY_SETTINGS
@given(frame=messy_frames())
def test_streamed_matches_in_memory_on_messy_frames(frame: pl.DataFrame) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        assert_same_run(frame, CleansePreviewerParams(analyze_correlations=True), Path(directory))


@pytest.mark.parametrize("rows_per_part", [2, 1_000])
def test_text_mode_counted_in_hash_parts(rows_per_part: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``TEXT_MODE_ROWS`` a text column's mode is counted without holding the column: in parts by hash."""
    monkeypatch.setattr(previewer, "TEXT_MODE_ROWS", 2)
    monkeypatch.setattr(previewer, "HASHES_PER_PART", rows_per_part)
    frame = indexed(
        {
            "t": ["b", "a", None, "b", "a", "c", None, "d"],
            "u": ["x", "y", "z", None, "w", "v", "q", "r"],
            "e": [None] * 8,
        },
        list(range(3, 11)),
        {"e": pl.String},
    )
    params = CleansePreviewerParams.model_validate({"preview_rules": [{"type": "impute_nulls", "strategy": "mode"}]})
    result = assert_same_run(frame, params, tmp_path)
    changes = result.envelope.data["simulated_results"][0]["changes"]["column_level_changes"]
    assert changes["t"]["null_count_after"] == changes["u"]["null_count_after"] == 0
    assert changes["e"]["null_count_after"] == 8  # no value: nothing to fill with


def test_most_frequent_values_by_hash_parts() -> None:
    query = pl.LazyFrame({"t": ["b", "a", None, "b", "a", "c", None, "d", None]})
    for rows_per_part in (1, 2, 100):
        found = previewer._most_frequent(query, "t", 9, rows_per_part).sort("t")
        assert found.rows() == [("a", 2), ("b", 2)]
    assert previewer._most_frequent(pl.LazyFrame({"t": [None, None]}, schema={"t": pl.String}), "t", 2, 1).is_empty()


def test_the_chain_records_the_same_step(tmp_path: Path) -> None:
    """The chain's streamed flow records the previewer's step (nothing changed) as the in-memory flow does."""
    params = CleansePreviewerParams()
    memory = _DataFlow(FRAME, layouts={})
    memory.accept(previewer.AGENT_ID, previewer.AGENT_NAME, in_memory(FRAME, params), 5)
    FRAME.write_parquet(tmp_path / "in.parquet")
    work = tmp_path / "work"
    work.mkdir()
    flow = StreamFlow(pl.scan_parquet(tmp_path / "in.parquet"), FRAME.height, work, {})
    result = previewer.run(flow.inputs("primary.csv", ChainContext()), params, ignore)
    flow.accept(previewer.AGENT_ID, previewer.AGENT_NAME, result, 5)
    assert flow.steps[-1] | {"summary_metrics": None} == memory.steps[-1] | {"summary_metrics": None}
    assert flow.steps[-1]["summary_metrics"] == memory.steps[-1]["summary_metrics"]
    assert flow.steps[-1]["rows_removed"] == 0 and flow.steps[-1]["cells_changed_total"] == 0
    assert_frame_equal(flow.current.collect(), FRAME)
