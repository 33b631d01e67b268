"""duplicate-resolver, null-handler, outlier-remover and cleanse-writeback against independent answers.

Every frame carries ``ROW_INDEX_COLUMN`` with gaps (as after an earlier agent removed rows), so the tests
also prove that row indices are passed through, never renumbered."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from scipy import stats
from sklearn.impute import KNNImputer

from agents import registry
from agents.clean import duplicates, nulls, outliers, writeback
from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, AgentInputs, AgentResult, ChainContext
from agents.errors import InvalidParametersError
from agents.params.cleanse_writeback import CleanseWritebackParams
from agents.params.duplicate_resolver import ALL_DETECTION_TYPES, DuplicateResolverParams
from agents.params.null_handler import NullHandlerParams
from agents.params.outlier_remover import OutlierRemoverParams

ROW = ROW_INDEX_COLUMN
Runner = Callable[[AgentInputs, Any, Any], AgentResult]
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def indexed(data: dict[str, Any], rows: list[int], schema: dict[str, Any] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(data, schema_overrides=schema or {})
    return frame.insert_column(0, pl.Series(ROW, rows, dtype=pl.Int64))


def run(runner: Runner, frame: pl.DataFrame, params: BaseModel, context: ChainContext | None = None) -> AgentResult:
    seen: list[float] = []
    inputs = AgentInputs(frame, "primary.csv", context=context or ChainContext())
    result = runner(inputs, params, lambda fraction, message: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0
    json.dumps(result.envelope.to_dict(), allow_nan=False)
    assert result.row_level_issues.schema == pl.Schema(ROW_LEVEL_ISSUE_SCHEMA)
    assert result.envelope.data["row_level_issues_total"] == result.row_level_issues.height
    return result


def assert_bookkeeping(before: pl.DataFrame, result: AgentResult) -> None:
    """No rows added; kept and removed rows partition the input's row indices; order and columns kept."""
    assert result.frame is not None and result.removed is not None
    kept = result.frame[ROW].to_list()
    removed = result.removed[ROW].to_list()
    assert result.frame.height <= before.height
    assert set(kept).isdisjoint(removed)
    assert sorted(kept + removed) == sorted(before[ROW].to_list())
    assert kept == [row for row in before[ROW].to_list() if row in set(kept)]
    assert result.frame.schema[ROW] == pl.Int64
    assert result.removed["reason"].null_count() == 0


def dedupe(frame: pl.DataFrame, **params: Any) -> AgentResult:
    """Agensium's default (all five kinds), unless the test asks for others."""
    return run(duplicates.run, frame, DuplicateResolverParams(**{"detection_types": ALL_DETECTION_TYPES, **params}))


def reasons(result: AgentResult) -> dict[int, str]:
    assert result.removed is not None
    return dict(result.removed.iter_rows())


# ---------------------------------------------------------------------------------------------- duplicates


def test_each_duplicate_type_names_the_row_it_duplicates() -> None:
    frame = indexed(
        {
            "name": ["Alice", "Alice", "alice ", "Bob", "Bob", "Carol", None, "Dan"],
            "email": ["a@x.com", "a@x.com", "a@x.com", "bob@y.org", "BOB@y.org ", "c@z.com", "c@z.com", "d@q.com"],
            "age": [30, 30, 30, 41, 41, 52, 52, None],
        },
        [10, 11, 15, 16, 19, 20, 23, 30],
    )
    result = dedupe(frame)
    assert reasons(result) == {
        11: "duplicate of row 10 (exact)",
        19: "duplicate of row 16 (email_case on email)",
        15: "duplicate of row 10 (case_variations on name)",
        23: "duplicate of row 20 (missing_values: equal where both are filled; empty here in name)",
    }
    assert result.frame is not None and result.frame[ROW].to_list() == [10, 16, 20, 30]
    assert result.envelope.data["email_columns"] == ["email"]
    assert result.envelope.summary_metrics == {
        "duplicates_detected": 4,
        "duplicates_resolved": 4,
        "remaining_rows": 4,
        "rows_removed": 4,
        "total_rows_processed": 8,
        "duplicate_groups": 4,
        "conflicts_detected": 0,
        "rows_merged": 0,
    }
    issues = result.row_level_issues
    assert issues["row_index"].to_list() == [11, 15, 19, 23]
    assert issues["value"].to_list() == ["10", "10", "16", "20"]
    assert_bookkeeping(frame, result)


def test_only_exact_duplicates_are_removed_by_default_and_the_other_kinds_are_proposed() -> None:
    frame = indexed(
        {
            "name": ["Alice", "Alice", "alice ", "Bob", "Bob", "Carol", None, "Dan"],
            "email": ["a@x.com", "a@x.com", "a@x.com", "bob@y.org", "BOB@y.org ", "c@z.com", "c@z.com", "d@q.com"],
            "age": [30, 30, 30, 41, 41, 52, 52, None],
        },
        [10, 11, 15, 16, 19, 20, 23, 30],
    )
    result = run(duplicates.run, frame, DuplicateResolverParams())
    assert reasons(result) == {11: "duplicate of row 10 (exact)"}
    proposals = {item["action"]: item for item in result.envelope.data["proposals"]}
    assert {name: item["rows_affected"] for name, item in proposals.items()} == {
        "remove_email_case_duplicates": 1,
        "remove_case_variations_duplicates": 1,
        "remove_missing_values_duplicates": 1,
    }
    apply = proposals["remove_email_case_duplicates"]["apply"]["duplicate-resolver"]
    assert apply == {"detection_types": ["exact", "email_case"]}
    applied = run(duplicates.run, frame, DuplicateResolverParams.model_validate(apply))
    assert set(reasons(applied)) == {11, 19}
    summary = result.envelope.data["duplicate_summary"]
    assert summary["email_case"]["enabled"] is False and summary["email_case"]["proposed_duplicates"] == 1
    assert_bookkeeping(frame, result)


def test_exact_only_matches_polars_unique_keep_first() -> None:
    rng = np.random.default_rng(3)
    n = 400
    frame = indexed(
        {
            "a": rng.integers(0, 4, n),
            "b": rng.choice(np.array(["x", "y", None], dtype=object), n),
            "c": rng.integers(0, 3, n),
        },
        list(range(5, 5 + 3 * n, 3)),
    )
    result = dedupe(frame, detection_types=["exact"])
    expected = frame.unique(subset=["a", "b", "c"], keep="first", maintain_order=True)
    assert result.frame is not None and result.frame.equals(expected)
    assert result.envelope.summary_metrics["duplicates_detected"] == n - expected.height
    assert_bookkeeping(frame, result)


@pytest.mark.parametrize(
    ("resolution", "kept"),
    [
        ("keep_first", [{"id": 1, "v": "a", "w": None}, {"id": 2, "v": None, "w": 7}]),
        ("keep_last", [{"id": 1, "v": "b", "w": 5}, {"id": 2, "v": "c", "w": None}]),
        ("merge_smart", [{"id": 1, "v": "a", "w": 5}, {"id": 2, "v": "c", "w": 7}]),
    ],
)
def test_conflicting_duplicates_resolved_and_reported(resolution: str, kept: list[dict[str, Any]]) -> None:
    frame = indexed({"id": [1, 1, 2, 2], "v": ["a", "b", None, "c"], "w": [None, 5, 7, None]}, [4, 9, 12, 40])
    result = dedupe(frame, key_columns=["id"], conflict_resolution=resolution)
    assert result.frame is not None
    assert result.frame.drop(ROW).to_dicts() == kept
    survivors = [9, 40] if resolution == "keep_last" else [4, 12]
    assert result.frame[ROW].to_list() == survivors
    removed = reasons(result)
    conflict_row = 4 if resolution == "keep_last" else 9
    assert removed[conflict_row] == (
        f"duplicate of row {9 if resolution == 'keep_last' else 4} "
        f"(conflicting on key id: values differ in v; kept by {resolution})"
    )
    summary = result.envelope.data["duplicate_summary"]["conflicting"]
    assert summary["conflicting_groups"] == 1 and summary["conflicts_by_column"] == {"v": 1}
    assert [issue.field_name for issue in result.envelope.issues if issue.issue_type == "conflicting_values"] == ["v"]
    assert result.envelope.summary_metrics["conflicts_detected"] == 1
    assert_bookkeeping(frame, result)


def test_null_handling_decides_whether_empty_keys_match() -> None:
    frame = indexed({"id": [None, None, 3], "v": ["a", "b", "c"]}, [2, 3, 8])
    ignored = dedupe(frame, key_columns=["id"], detection_types=["conflicting"], null_handling="ignore_nulls")
    matched = dedupe(frame, key_columns=["id"], detection_types=["conflicting"], null_handling="match_nulls")
    assert ignored.removed is not None and ignored.removed.height == 0
    assert reasons(matched) == {3: "duplicate of row 2 (conflicting on key id: values differ in v; kept by keep_first)"}
    # match_nulls also counts an empty cell against a value as a conflict; ignore_nulls does not.
    gaps = indexed({"id": [1, 1], "v": ["a", None]}, [1, 2])
    assert (
        dedupe(gaps, key_columns=["id"], null_handling="match_nulls").envelope.summary_metrics["conflicts_detected"]
        == 1
    )
    assert dedupe(gaps, key_columns=["id"]).envelope.summary_metrics["conflicts_detected"] == 0


def test_missing_values_merge_smart_keeps_the_first_row_with_the_complete_values() -> None:
    frame = indexed({"a": ["x", "x", "x"], "b": [None, "y", None], "c": [1, 1, None]}, [5, 6, 7])
    removed_plain = dedupe(frame)
    assert removed_plain.frame is not None and removed_plain.frame[ROW].to_list() == [6]
    merged = dedupe(frame, merge_strategy="merge_smart")
    assert merged.frame is not None
    assert merged.frame.to_dicts() == [{ROW: 5, "a": "x", "b": "y", "c": 1}]
    assert reasons(merged)[6].startswith("duplicate of row 5 (missing_values: its values were merged into row 5")
    assert merged.envelope.summary_metrics["rows_merged"] == 1
    assert_bookkeeping(frame, merged)


def test_duplicate_resolver_rejects_unknown_columns() -> None:
    frame = indexed({"a": [1, 2]}, [1, 2])
    for field in ("key_columns", "email_columns"):
        with pytest.raises(InvalidParametersError) as caught:
            dedupe(frame, **{field: ["nope"]})
        assert caught.value.agent_id == "duplicate-resolver" and caught.value.field == field
    with pytest.raises(InvalidParametersError) as caught:
        registry.parse_parameters("duplicate-resolver", {"detection_types": ["fuzzy"]})
    assert caught.value.field == "detection_types.0"


def test_merged_conflict_rows_are_checked_for_missing_values_duplicates() -> None:
    """Why conflicting runs before missing_values: merging rows 1 and 2 creates (1, Ann, a@x.com, 2.5),
    which subsumes row 3 though no input row did; checked in the same run, a second run finds nothing."""
    frame = indexed(
        {"id": [1, 1, None], "name": ["Ann", "Bob", "Ann"], "email": ["a@x.com"] * 3, "amount": [None, 2.5, 2.5]},
        [1, 2, 3],
    )
    params = {"key_columns": ["id"], "conflict_resolution": "merge_smart"}
    first = dedupe(frame, **params)
    assert first.frame is not None and first.frame.to_dicts() == [
        {ROW: 1, "id": 1, "name": "Ann", "email": "a@x.com", "amount": 2.5}
    ]
    assert reasons(first)[3].startswith("duplicate of row 1 (missing_values")
    again = dedupe(first.frame, **params)
    assert again.removed is not None and again.removed.height == 0


names = st.sampled_from(["Ann", "ann", " ann ", "Bob", "BOB", None])
emails = st.sampled_from(["a@x.com", "A@X.com", "b@y.org", "b@y.org ", None])
ids = st.sampled_from([1, 2, 3, None])
amounts = st.sampled_from([1.0, 2.5, 100.0, -3.0, None])


@st.composite
def messy_frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.lists(st.tuples(ids, names, emails, amounts), max_size=24))
    gaps = draw(st.lists(st.integers(1, 4), min_size=len(rows), max_size=len(rows)))
    index = [int(value) for value in np.cumsum(gaps) + 9] if rows else []
    columns: list[list[Any]] = [[row[position] for row in rows] for position in range(4)]
    return indexed(
        {"id": columns[0], "name": columns[1], "email": columns[2], "amount": columns[3]},
        index,
        {"id": pl.Int64, "name": pl.String, "email": pl.String, "amount": pl.Float64},
    )


dedupe_params: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    detection_types=st.lists(
        st.sampled_from(["exact", "case_variations", "email_case", "missing_values", "conflicting"]), unique=True
    ),
    key_columns=st.sampled_from([[], ["id"], ["id", "email"], ["name"]]),
    null_handling=st.sampled_from(["ignore_nulls", "match_nulls"]),
    conflict_resolution=st.sampled_from(["keep_first", "keep_last", "merge_smart"]),
    merge_strategy=st.sampled_from(["remove_duplicates", "merge_smart"]),
)


@PROPERTY_SETTINGS
@given(frame=messy_frames(), params=dedupe_params)
def test_dedupe_partitions_rows_and_is_idempotent(frame: pl.DataFrame, params: dict[str, Any]) -> None:
    first = dedupe(frame, **params)
    assert_bookkeeping(frame, first)
    assert first.frame is not None
    again = dedupe(first.frame, **params)
    assert again.removed is not None and again.removed.height == 0, again.removed
    assert again.frame is not None and again.frame.equals(first.frame)
    if "exact" in params["detection_types"]:
        assert not first.frame.drop(ROW).is_duplicated().any()


# ---------------------------------------------------------------------------------------------- nulls


def handle_nulls(frame: pl.DataFrame, **params: Any) -> AgentResult:
    """Agensium's default (its suggestions applied), unless the test asks otherwise."""
    return run(nulls.run, frame, NullHandlerParams(**{"apply_suggested_strategies": True, **params}))


def test_column_strategies_fill_with_independent_values() -> None:
    values = [3.0, None, 7.5, 1.0, None, 12.0, 4.0]
    counts = [1, None, 2, 2, 8, None, 3]
    frame = indexed(
        {
            "mean_col": values,
            "median_col": values,
            "int_mean": counts,
            "mode_col": ["b", "a", None, "b", "a", None, "c"],
            "ffill": [None, 1.0, None, None, 4.0, None, 2.0],
            "bfill": [None, 1.0, None, None, 4.0, None, 2.0],
            "const": [None, "x", None, "y", "z", "w", "v"],
        },
        [10, 11, 15, 16, 30, 31, 40],
    )
    strategies = {
        "mean_col": "mean",
        "median_col": "median",
        "int_mean": "mean",
        "mode_col": "mode",
        "ffill": "forward_fill",
        "bfill": "backward_fill",
        "const": "constant",
    }
    result = handle_nulls(frame, column_strategies=strategies, fill_values={"const": "missing"})
    out = result.frame
    assert out is not None and out[ROW].to_list() == frame[ROW].to_list()
    present = np.array([v for v in values if v is not None])
    assert out["mean_col"].to_list() == [v if v is not None else pytest.approx(present.mean()) for v in values]
    assert out["median_col"].to_list() == [v if v is not None else np.median(present) for v in values]
    int_mean = np.mean([c for c in counts if c is not None])  # 3.2 -> 3
    assert out["int_mean"].dtype == pl.Int64
    assert out["int_mean"].to_list() == [c if c is not None else int(np.floor(int_mean + 0.5)) for c in counts]
    # Ties between "a" and "b" (two each) go to the smallest.
    mode = min(value for value, count in Counter(["b", "a", "b", "a", "c"]).items() if count == 2)
    assert out["mode_col"].to_list() == ["b", "a", mode, "b", "a", mode, "c"]
    assert out["ffill"].to_list() == [None, 1.0, 1.0, 1.0, 4.0, 4.0, 2.0]
    assert out["bfill"].to_list() == [1.0, 1.0, 4.0, 4.0, 4.0, 2.0, 2.0]
    assert out["const"].to_list() == ["missing", "x", "missing", "y", "z", "w", "v"]

    metrics = result.envelope.summary_metrics
    original = sum(frame[name].null_count() for name in strategies)
    assert metrics["original_nulls"] == original
    assert metrics["remaining_nulls"] == 1 == out.null_count().sum_horizontal().item()  # leading ffill gap
    assert metrics["nulls_handled"] == original - 1
    log = {entry["column"]: entry for entry in result.envelope.data["imputation_log"]}
    assert log["median_col"]["fill_value"] == np.median(present)
    assert log["int_mean"]["fill_value"] == 3
    assert log["ffill"]["null_count_after"] == 1
    imputed = result.row_level_issues.filter(pl.col("column") == "const")
    assert imputed["row_index"].to_list() == [10, 15] and imputed["value"].to_list() == ["missing", "missing"]
    assert_bookkeeping(frame, result)


def test_knn_imputation_matches_scikit_learn() -> None:
    rng = np.random.default_rng(11)
    n = 60
    x = rng.normal(0, 1, n)
    y = 2 * x + rng.normal(0, 0.1, n)
    z = rng.normal(5, 2, n)
    y[[3, 17, 40]] = np.nan
    z[[5, 17]] = np.nan
    frame = indexed(
        {"x": x, "y": y, "z": z, "label": ["p"] * n},
        list(range(100, 100 + 2 * n, 2)),
    ).with_columns(pl.col("y").fill_nan(None), pl.col("z").fill_nan(None))
    result = handle_nulls(frame, column_strategies={"y": "knn_imputation"}, knn_neighbors=3)
    expected = KNNImputer(n_neighbors=3).fit_transform(np.column_stack([x, y, z]))[:, 1]
    assert result.frame is not None
    np.testing.assert_allclose(result.frame["y"].to_numpy(), expected, rtol=1e-12)
    assert result.envelope.data["knn"]["method"] == "exact"
    assert result.envelope.data["knn"]["features"] == ["x", "y", "z"]
    # z has no explicit strategy: suggested mean (symmetric), of the values as they came in.
    assert result.frame["z"].to_list()[5] == pytest.approx(np.nanmean(z))


def test_suggested_strategies_follow_agensium() -> None:
    n = 20
    skewed = [1.0] * 10 + [10.0] * 8 + [None, None]
    frame = indexed(
        {
            "mostly_empty": [1.0] * 5 + [None] * 15,
            "half_empty": [float(i) for i in range(9)] + [None] * 11,
            "half_text": ["a"] * 9 + [None] * 11,
            "skewed": skewed,
            "symmetric": [float(i) for i in range(18)] + [None, None],
            "text": ["u", "v", "v"] + [None] + ["w"] * 16,
            "when": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 20), eager=True).scatter([0, 4], None),
            "flag": [True, None] + [False] * 18,
            "email": [f"user{i}@example.com" for i in range(17)] + [None] * 3,
            "complete": list(range(n)),
        },
        list(range(1, 3 * n, 3)),
    )
    result = handle_nulls(frame)
    log = {entry["column"]: entry["strategy"] for entry in result.envelope.data["imputation_log"]}
    assert log == {
        "mostly_empty": "drop_column",
        "half_empty": "knn_imputation",
        "half_text": "mode",
        "skewed": "median",
        "symmetric": "mean",
        "text": "mode",
        "when": "forward_fill",
        "flag": "mode",
        "email": "none",  # identifier-like: its mode would invent a duplicate e-mail
    }
    present = np.array([v for v in skewed if v is not None])
    assert abs((present.mean() - np.median(present)) / present.std(ddof=1)) > 0.5
    assert result.frame is not None and "mostly_empty" not in result.frame.columns
    assert result.frame["email"].null_count() == 3
    filled_dates = result.frame["when"].to_list()
    assert filled_dates[0] is None and filled_dates[4] == frame["when"].to_list()[3]  # leading gap stays
    assert result.frame.height == n and result.removed is not None and result.removed.height == 0
    assert result.envelope.summary_metrics["columns_dropped"] == 1
    untouched = handle_nulls(frame, apply_suggested_strategies=False)
    assert untouched.frame is not None and untouched.frame.equals(frame)


def test_null_handler_fills_nothing_by_default_and_proposes_its_suggestions() -> None:
    frame = indexed(
        {
            "price": [1.0, None, 3.0, 4.0, 5.0, 6.0],
            "city": ["a", None, "a", "b", "a", "a"],
            "empty": [None, None, None, None, None, 1],
        },
        [2, 4, 6, 8, 10, 12],
    )
    result = run(nulls.run, frame, NullHandlerParams())
    assert result.frame is not None and result.frame.equals(frame)
    assert result.envelope.summary_metrics["nulls_handled"] == 0
    assert not [alert for alert in result.envelope.alerts if "remain" in alert.message]
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["apply"] == {
        "null-handler": {"column_strategies": {"price": "mean", "city": "mode", "empty": "drop_column"}}
    }
    assert proposed["cells_affected"] == 2
    applied = run(nulls.run, frame, NullHandlerParams.model_validate(proposed["apply"]["null-handler"]))
    assert applied.envelope.summary_metrics["columns_imputed"] == 2
    assert applied.envelope.summary_metrics["columns_dropped"] == 1


def test_drop_rows_names_the_empty_columns() -> None:
    frame = indexed({"a": [1, None, 3, None], "b": ["x", None, "z", "w"], "c": [1.0, 2.0, 3.0, 4.0]}, [3, 5, 8, 13])
    result = handle_nulls(frame, global_strategy="drop_rows")
    assert reasons(result) == {5: "row has missing values in: a, b", 13: "row has missing values in: a"}
    assert result.frame is not None and result.frame[ROW].to_list() == [3, 8]
    per_column = handle_nulls(frame, column_strategies={"b": "drop_rows", "a": "median"})
    assert reasons(per_column) == {5: "row has missing values in: b"}
    assert per_column.frame is not None and per_column.frame["a"].to_list() == [1, 3, 2]  # median of 1, 3
    assert_bookkeeping(frame, result)


def test_median_of_integers_rounds_half_away_from_zero() -> None:
    frame = indexed({"a": [1, 2, None, 3, 4]}, [1, 2, 3, 4, 5])
    result = handle_nulls(frame, column_strategies={"a": "median"})
    assert result.frame is not None and result.frame["a"].to_list() == [1, 2, 3, 3, 4]  # 2.5 -> 3


def test_null_handler_rejects_bad_parameters() -> None:
    frame = indexed({"a": [1, None], "when": [None, "2024-01-01"]}, [1, 2]).with_columns(pl.col("when").str.to_date())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"column_strategies": {"nope": "mean"}}, "column_strategies"),
        ({"fill_values": {"nope": 1}}, "fill_values"),
        ({"column_strategies": {"a": "constant"}}, "fill_values"),
        ({"column_strategies": {"a": "constant"}, "fill_values": {"a": "abc"}}, "fill_values.a"),
        ({"column_strategies": {"a": "constant"}, "fill_values": {"a": 1.5}}, "fill_values.a"),
    ]
    for params, field in cases:
        with pytest.raises(InvalidParametersError) as caught:
            handle_nulls(frame, **params)
        assert caught.value.agent_id == "null-handler" and caught.value.field == field, params
    filled = handle_nulls(frame, column_strategies={"when": "constant"}, fill_values={"when": "2023-05-06"})
    assert filled.frame is not None and str(filled.frame["when"][0]) == "2023-05-06"
    with pytest.raises(InvalidParametersError):
        registry.parse_parameters("null-handler", {"column_strategies": {"a": "interpolate"}})


@PROPERTY_SETTINGS
@given(
    frame=messy_frames(),
    strategy=st.sampled_from(["column_specific", "drop_rows"]),
    per_column=st.dictionaries(
        st.sampled_from(["id", "name", "email", "amount"]),
        st.sampled_from(["mode", "forward_fill", "backward_fill", "drop_rows", "drop_column", "knn_imputation"]),
    ),
)
def test_null_handler_never_adds_rows(frame: pl.DataFrame, strategy: str, per_column: dict[str, str]) -> None:
    result = handle_nulls(frame, global_strategy=strategy, column_strategies=per_column)
    assert_bookkeeping(frame, result)
    assert result.frame is not None
    remaining = sum(result.frame[name].null_count() for name in result.frame.columns if name != ROW)
    assert result.envelope.summary_metrics["remaining_nulls"] == remaining
    if strategy == "drop_rows":
        assert remaining == 0
    if "drop_rows" not in per_column.values() and strategy == "column_specific":
        assert result.frame.height == frame.height


# ---------------------------------------------------------------------------------------------- outliers


def remove_outliers(frame: pl.DataFrame, **params: Any) -> AgentResult:
    """Agensium's default treatment (remove), unless the test asks for another."""
    return run(outliers.run, frame, OutlierRemoverParams(**{"removal_strategy": "remove", **params}))


def outlier_frame(n: int = 302) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    value = rng.normal(50, 5, n)
    value[[7, 120, 250]] = [150.0, -80.0, 95.0]
    value[30] = np.nan
    value[31] = np.inf
    count = rng.integers(10, 20, n)
    count[[2, 9]] = [300, -100]
    frame = indexed(
        {"value": value, "count": count, "label": ["k"] * n, "flag": [True] * n}, list(range(10, 10 + 5 * n, 5))
    ).with_columns(pl.when(pl.col(ROW) == 15).then(None).otherwise(pl.col("value")).alias("value"))
    return frame, value


def numpy_outliers(values: np.ndarray, method: str) -> tuple[float, float, np.ndarray]:
    """Independent bounds and outlier flags: finite values only; NaN is never an outlier, +-inf always."""
    finite = values[np.isfinite(values)]
    if method == "z_score":
        mean, std = finite.mean(), finite.std(ddof=1)
        lower, upper = mean - 3 * std, mean + 3 * std
        assert set(np.flatnonzero(np.abs(stats.zscore(finite, ddof=1)) > 3)) == set(
            np.flatnonzero((finite < lower) | (finite > upper))
        )
    elif method == "iqr":
        q1, q3 = np.quantile(finite, [0.25, 0.75])
        lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    else:
        lower, upper = np.percentile(finite, [1, 99])
    with np.errstate(invalid="ignore"):
        flagged = (values < lower) | (values > upper)
    return float(lower), float(upper), flagged


@pytest.mark.parametrize("method", ["z_score", "iqr", "percentile"])
def test_outlier_bounds_match_numpy(method: str) -> None:
    frame, _ = outlier_frame()
    result = remove_outliers(frame, detection_method=method)
    summary = result.envelope.data["outlier_summary"]
    assert set(summary) == {"value", "count"}  # booleans and text are not analysed
    expected_removed: set[int] = set()
    for name in ("value", "count"):
        lower, upper, flagged = numpy_outliers(frame[name].cast(pl.Float64).to_numpy(), method)
        assert summary[name]["lower_bound"] == pytest.approx(lower, rel=1e-12)
        assert summary[name]["upper_bound"] == pytest.approx(upper, rel=1e-12)
        rows = set(frame.filter(pl.Series(flagged))[ROW].to_list())
        issues = result.row_level_issues.filter(pl.col("column") == name)
        assert set(issues["row_index"].to_list()) == rows
        assert summary[name]["outlier_count"] == len(rows)
        expected_removed |= rows
    value_rows = set(result.row_level_issues.filter(pl.col("column") == "value")["row_index"].to_list())
    assert 10 + 5 * 31 in value_rows and 10 + 5 * 30 not in value_rows  # inf is an outlier, NaN is not
    removed = reasons(result)
    assert set(removed) == expected_removed
    assert "outlier in value: 150.0 outside [" in removed[10 + 5 * 7]
    assert result.envelope.summary_metrics["original_outliers"] == result.row_level_issues.height
    assert result.envelope.summary_metrics["remaining_outliers"] == 0
    assert_bookkeeping(frame, result)


def test_outliers_are_flagged_not_removed_by_default() -> None:
    frame, _ = outlier_frame()
    result = run(outliers.run, frame, OutlierRemoverParams())
    removed = remove_outliers(frame)
    assert result.frame is not None and result.frame.equals(frame)  # no row removed, no value changed
    assert result.removed is not None and result.removed.height == 0
    metrics = result.envelope.summary_metrics
    assert metrics["rows_removed"] == 0 and metrics["outliers_handled"] == 0
    assert (
        metrics["outliers_flagged"]
        == metrics["original_outliers"]
        == removed.envelope.summary_metrics["original_outliers"]
    )
    assert result.row_level_issues["row_index"].to_list() == removed.row_level_issues["row_index"].to_list()
    assert result.row_level_issues["message"].str.contains("kept (flagged)", literal=True).all()
    proposals = {item["action"]: item for item in result.envelope.data["proposals"]}
    assert proposals["remove_outlier_rows"]["rows_affected"] == removed.removed.height
    assert proposals["remove_outlier_rows"]["apply"] == {"outlier-remover": {"removal_strategy": "remove"}}
    assert proposals["impute_outliers_median"]["cells_affected"] == metrics["original_outliers"]
    assert removed.envelope.data["proposals"] == []  # applied, not proposed


def test_impute_median_uses_the_non_outliers_and_keeps_integers() -> None:
    frame, _ = outlier_frame()
    values = frame["value"].to_numpy()
    result = remove_outliers(frame, removal_strategy="impute_median")
    assert result.frame is not None and result.frame.height == frame.height
    assert result.removed is not None and result.removed.height == 0
    summary = result.envelope.data["outlier_summary"]
    lower, upper = summary["value"]["lower_bound"], summary["value"]["upper_bound"]
    finite = values[np.isfinite(values)]
    inliers = finite[(finite >= lower) & (finite <= upper)]
    assert summary["value"]["replacement_value"] == pytest.approx(np.median(inliers))
    counts = frame["count"].to_numpy()
    count_lower, count_upper = summary["count"]["lower_bound"], summary["count"]["upper_bound"]
    count_inliers = counts[(counts >= count_lower) & (counts <= count_upper)]
    median = np.median(count_inliers)
    assert result.frame["count"].dtype == frame["count"].dtype
    assert result.frame["count"].to_list()[2] == int(np.floor(median + 0.5))
    assert result.frame["value"].to_list()[7] == pytest.approx(np.median(inliers))
    assert np.isnan(result.frame["value"].to_list()[30])  # NaN is not an outlier: left alone
    assert result.envelope.summary_metrics["remaining_outliers"] == 0


def test_outlier_remover_rejects_bad_parameters() -> None:
    frame, _ = outlier_frame()
    for columns in (["nope"], ["label"]):
        with pytest.raises(InvalidParametersError) as caught:
            remove_outliers(frame, columns=columns)
        assert caught.value.agent_id == "outlier-remover" and caught.value.field == "columns"
    with pytest.raises(ValidationError):
        OutlierRemoverParams(lower_percentile=90, upper_percentile=10)
    only = remove_outliers(frame, columns=["count"])
    assert list(only.envelope.data["outlier_summary"]) == ["count"]


@PROPERTY_SETTINGS
@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([float("inf"), float("nan")]), st.none()),
        max_size=40,
    ),
    method=st.sampled_from(["z_score", "iqr", "percentile"]),
)
def test_removed_outliers_stay_out_under_the_original_bounds(values: list[float | None], method: str) -> None:
    """Semantics: a second run recomputes bounds from the data it gets (after a removal they are narrower and
    may flag new values); what must hold is that no kept value lies outside the ORIGINAL bounds."""
    frame = indexed({"v": values}, [3 * i + 7 for i in range(len(values))], {"v": pl.Float64})
    result = remove_outliers(frame, detection_method=method)
    assert_bookkeeping(frame, result)
    assert result.frame is not None
    entry = result.envelope.data["outlier_summary"]["v"]
    if entry["analysed"]:
        kept = result.frame["v"].drop_nulls().to_numpy()
        kept = kept[~np.isnan(kept)]
        assert ((kept >= entry["lower_bound"]) & (kept <= entry["upper_bound"])).all()
    assert result.envelope.summary_metrics["remaining_outliers"] == 0


# ---------------------------------------------------------------------------------------------- writeback


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


@PROPERTY_SETTINGS
@given(frame=messy_frames())
def test_writeback_duplicate_check_agrees_with_python(frame: pl.DataFrame) -> None:
    rows = list(frame.drop(ROW).iter_rows())
    result = verify(frame)
    check = checks(result)["no_duplicates"]
    assert check["passed"] == (len(set(rows)) == len(rows))
    assert check["details"]["duplicate_count"] == len(rows) - len(set(rows))
    assert result.frame is frame


# ---------------------------------------------------------------------------------------------------------
# fast paths: hash pre-filters and several-chunk frames


def test_exact_duplicates_found_through_the_hash_prefilter_with_signed_zero_and_nan() -> None:
    """-0.0 equals 0.0 and NaN equals NaN for the window the resolver groups with; the hash pre-filter must
    not hide those pairs (equal keys hash equally), and a frame without repeats comes back unchanged."""
    nan = float("nan")
    frame = indexed(
        {"x": [0.0, -0.0, nan, nan, 1.5, None, None], "t": ["a", "a", "b", "b", "c", None, None]},
        [2, 4, 6, 8, 10, 12, 14],
    )
    result = run(duplicates.run, frame, DuplicateResolverParams(detection_types=["exact"]))
    assert result.frame is not None and result.removed is not None
    assert result.frame[ROW].to_list() == [2, 6, 10, 12]
    assert result.removed[ROW].to_list() == [4, 8, 14]
    assert result.removed["reason"].to_list() == [f"duplicate of row {row} (exact)" for row in (2, 6, 12)]
    distinct = frame.head(1).vstack(frame.slice(2, 1)).vstack(frame.slice(4, 2))
    unchanged = run(duplicates.run, distinct, DuplicateResolverParams(detection_types=["exact"]))
    assert unchanged.frame is not None and unchanged.frame.equals(distinct)


def test_missing_values_subsumer_found_when_the_most_distinct_column_is_a_float() -> None:
    """Each pattern's subsumers are narrowed by a semi-join on its most distinct filled column: a float
    column with -0.0 against 0.0 must still match (joins treat them as equal)."""
    frame = indexed(
        {"v": [0.0, -0.0, 2.0, 3.0], "w": [None, "k", "k", None], "z": [1, 1, 2, 3]},
        [1, 3, 5, 7],
        {"w": pl.String},
    )
    result = run(duplicates.run, frame, DuplicateResolverParams(detection_types=["missing_values"]))
    assert result.removed is not None
    assert result.removed[ROW].to_list() == [1]
    assert "duplicate of row 3" in result.removed["reason"][0]


def test_agents_accept_frames_of_several_chunks() -> None:
    """Polars 2.1's native pl.format panics in a streaming query over a filtered frame of several chunks
    (what earlier lazy agents hand on); the agents' messages are built with concat_str instead."""
    head = indexed({"id": [1, 2, 3, 4, 5], "price": [0.0] * 5}, [1, 2, 3, 4, 5])
    tail = indexed({"id": [6, 7, 8], "price": [0.0, 0.01, 0.01]}, [6, 7, 8])
    frame = pl.concat([head, tail], rechunk=False)
    assert frame["price"].n_chunks() == 2
    result = run(outliers.run, frame, OutlierRemoverParams(removal_strategy="remove"))
    assert result.removed is not None and result.removed[ROW].to_list() == [7, 8]
    assert result.row_level_issues["message"].str.starts_with("0.01 outside").all()
