"""duplicate-resolver against independent answers: every kind of duplicate names the row it duplicates,
conflicts resolved and reported, the hash pre-filters, and idempotence (a Hypothesis property)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import registry
from agents.clean import duplicates
from agents.envelope import AgentResult
from agents.errors import InvalidParametersError
from agents.params.duplicate_resolver import ALL_DETECTION_TYPES, DuplicateResolverParams
from tests.agents.clean_support import (
    ROW,
    SHORT_PROPERTY_SETTINGS,
    assert_bookkeeping,
    indexed,
    messy_frames,
    reasons,
    run,
)


def dedupe(frame: pl.DataFrame, **params: Any) -> AgentResult:
    """Agensium's default (all five kinds), unless the test asks for others."""
    return run(duplicates.run, frame, DuplicateResolverParams(**{"detection_types": ALL_DETECTION_TYPES, **params}))


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


def test_an_email_column_named_twice_is_normalised_once() -> None:
    """Before, ``email_columns: ["email", "email"]`` failed the agent (Polars: a duplicate output name)."""
    frame = indexed(
        {"name": ["Al", "al", "Bo"], "email": ["a@x.com", "A@x.com ", "b@y.org"]},
        [1, 2, 3],
    )
    twice = dedupe(frame, email_columns=["email", "name", "email"])
    once = dedupe(frame, email_columns=["email", "name"])
    assert twice.envelope.status == once.envelope.status == "success"
    assert twice.frame is not None and once.frame is not None and twice.frame.equals(once.frame)
    assert twice.row_level_issues.equals(once.row_level_issues)
    assert twice.envelope.data == once.envelope.data and once.envelope.data["email_columns"] == ["email", "name"]
    assert reasons(once) == {2: "duplicate of row 1 (email_case on email, name)"}


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


@SHORT_PROPERTY_SETTINGS
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
