"""key-identifier against independent answers (pandas): primary, entity, composite and foreign key candidates,
the key score, the capped composite search, the rows repeating a key, and parameters refused."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, AgentInputs, AgentResult
from agents.master import keys
from agents.master.sources import stack_sources
from agents.params.key_identifier import KeyIdentifierParams

N = 1000


def people() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    emails = [f"user{i}@example.com" for i in rng.integers(0, 700, N)]
    return stack_sources(
        [
            (
                "primary",
                pl.DataFrame(
                    {
                        "id": list(range(1, N + 1)),
                        "uuid_col": [str(uuid.UUID(int=int(value))) for value in rng.integers(0, 2**62, N)],
                        "email": emails,
                        "city": [["Berlin", "Paris", "Rome"][i] for i in rng.integers(0, 3, N)],
                        "amount": rng.uniform(0, 1000, N),
                        "customer_ref": [int(value) for value in rng.integers(1, 601, N)],
                        "nickname": [None if i % 10 == 0 else f"n{i}" for i in range(N)],
                    }
                ),
            )
        ]
    )


def orders() -> pl.DataFrame:
    """No single column identifies a row; (order_no, line) does."""
    rng = np.random.default_rng(9)
    order_no = np.repeat(np.arange(1, 201), 5)
    line = np.tile(np.arange(1, 6), 200)
    return pl.DataFrame(
        {
            "order_no": order_no,
            "line": line,
            "sku": [f"S{value}" for value in rng.integers(0, 50, N)],
            "qty": rng.integers(1, 5, N),
        }
    )


def run(frame: pl.DataFrame, **params: Any) -> AgentResult:
    model = KeyIdentifierParams(**params)
    seen: list[float] = []
    result = keys.run(AgentInputs(frame, "primary.csv"), model, lambda fraction, _m: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success" and envelope["data"]["parameters"] == model.model_dump()
    assert result.row_level_issues.schema == pl.Schema(ROW_LEVEL_ISSUE_SCHEMA)
    assert result.frame is None and result.removed is None  # the data is not changed
    return result


def column_report(result: AgentResult, column: str) -> dict[str, Any]:
    return next(item for item in result.envelope.data["columns"] if item["column"] == column)


def test_key_candidates_against_pandas() -> None:
    frame = people()
    result = run(frame)
    data = frame.to_pandas()
    for column in ("id", "uuid_col", "email", "city", "customer_ref", "nickname"):
        values = data[column]
        report = column_report(result, column)
        assert report["uniqueness_percentage"] == pytest.approx(100 * values.nunique() / values.notna().sum(), abs=1e-3)
        assert report["null_percentage"] == pytest.approx(100 * values.isna().mean(), abs=1e-3)
    candidates = result.artifacts["key_candidates"]
    assert candidates["primary_keys"] == ["id", "uuid_col"]  # both 100 % unique; equal scores keep column order
    uniqueness = {column: 100 * data[column].nunique() / data[column].notna().sum() for column in data}
    expected_entity = {
        column for column in ("email", "city", "customer_ref", "nickname") if 50 <= uniqueness[column] < 99
    }
    assert set(candidates["entity_keys"]) == expected_entity and "email" in expected_entity
    assert "amount" not in candidates["primary_keys"] and not column_report(result, "amount")["eligible"]
    assert candidates["composite_keys"] == [] and candidates["foreign_keys"] == []
    assert result.envelope.summary_metrics == {
        "primary_key_candidates": 2,
        "foreign_key_candidates": 0,
        "entity_key_candidates": len(expected_entity),
        "composite_key_candidates": 0,
    }
    assert result.envelope.data["composite_search"]["note"] == "not needed: a single column is a primary key candidate"
    assert result.envelope.data["foreign_key_note"].startswith("no reference_tables")


def test_patterns_and_the_key_score() -> None:
    result = run(people())
    ids, uuids, email = (column_report(result, name) for name in ("id", "uuid_col", "email"))
    assert (ids["value_pattern"], ids["name_pattern"], ids["pattern_score"]) == (
        "auto_increment",
        "identifier name",
        100,
    )
    assert (uuids["value_pattern"], uuids["pattern_score"]) == ("uuid", 100)
    assert (email["name_pattern"], email["pattern_score"]) == ("natural key name", 80)
    for report in (ids, uuids, email):
        expected = (
            0.4 * report["uniqueness_percentage"]
            + 0.3 * (100 - report["null_percentage"])
            + 0.3 * report["pattern_score"]
        )
        assert report["key_score"] == pytest.approx(expected, abs=0.01)
    assert result.envelope.data["best_key"]["column"] == "id"
    assert result.envelope.data["effectiveness"]["score"] == pytest.approx(100.0)


def test_a_column_with_nulls_is_a_primary_key_only_within_the_null_threshold() -> None:
    frame = people().select(ROW_INDEX_COLUMN, "nickname", "city")
    assert "nickname" not in run(frame).artifacts["key_candidates"]["primary_keys"]
    assert run(frame, pk_null_threshold=10.0).artifacts["key_candidates"]["primary_keys"] == ["nickname"]


def test_composite_keys_are_minimal_and_match_pandas() -> None:
    frame = orders()
    result = run(frame)
    data = frame.to_pandas()
    assert result.artifacts["key_candidates"]["primary_keys"] == []
    composite = result.artifacts["key_candidates"]["composite_keys"]
    assert ["order_no", "line"] in composite
    for columns in composite:
        assert not data.duplicated(subset=columns).any()
        for column in columns:  # minimal: no column alone identifies the rows
            assert data[column].duplicated().any()
    assert all(len(columns) == 2 for columns in composite)  # the search stops at the first size with keys
    search = result.envelope.data["composite_search"]
    assert search["combinations_tried"] + search["combinations_pruned"] == 6  # C(4, 2) pairs
    assert not search["capped"]
    assert result.envelope.summary_metrics["composite_key_candidates"] == len(composite)


def test_the_composite_search_is_capped_and_says_so() -> None:
    result = run(orders(), max_composite_combinations=1)
    search = result.envelope.data["composite_search"]
    assert search["capped"] and search["combinations_tried"] == 1
    assert "max_composite_combinations" in search["note"]
    assert any(alert.alert_id == "composite_search_capped" for alert in result.envelope.alerts)
    off = run(orders(), analyze_composite_keys=False)
    assert off.artifacts["key_candidates"]["composite_keys"] == []


def test_foreign_keys_by_overlap_with_reference_tables() -> None:
    frame = people()
    reference = {"customers": list(range(1, 501)), "cities": ["Berlin", "Paris", " Rome ", "Madrid"]}
    result = run(frame, reference_tables=reference)
    data = frame.to_pandas()
    distinct_refs = set(data["customer_ref"])
    expected = 100 * len(distinct_refs & set(range(1, 501))) / len(distinct_refs)
    links = {(link["column"], link["table"]): link for link in result.envelope.data["foreign_key_candidates"]}
    assert links[("customer_ref", "customers")]["overlap_percentage"] == pytest.approx(expected, abs=1e-3)
    assert links[("city", "cities")]["overlap_percentage"] == 100.0  # reference values are trimmed
    assert ("id", "customers") not in links  # 1..1000 against 1..500: 50 %, below fk_overlap_threshold
    loose = run(frame, reference_tables=reference, fk_overlap_threshold=50.0)
    assert any(
        link["column"] == "id" and link["overlap_percentage"] == 50.0
        for link in loose.envelope.data["foreign_key_candidates"]
    )
    assert result.envelope.summary_metrics["foreign_key_candidates"] == len(links)


def test_rows_repeating_a_primary_key_candidate_are_row_level_issues() -> None:
    frame = pl.DataFrame({"code": [f"C{i}" for i in range(995)] + ["C1", "C2", "C2", "C3", "C4"]})
    result = run(frame, pk_uniqueness_threshold=99.0)
    assert result.artifacts["key_candidates"]["primary_keys"] == ["code"]
    repeated = frame.to_pandas()["code"].duplicated(keep=False)
    issues = result.row_level_issues
    assert issues["row_index"].to_list() == [index + 1 for index in np.flatnonzero(repeated.to_numpy())]
    assert set(issues["issue_type"]) == {"duplicate_key_value"} and set(issues["column"]) == {"code"}
    assert result.envelope.issue_summary["total_issues"] == len(result.envelope.issues) + issues.height


def test_no_key_at_all_raises_an_alert() -> None:
    frame = pl.DataFrame({"city": ["Berlin", "Paris"] * 50, "size": [1, 2, 3, 4] * 25})
    result = run(frame)
    assert result.envelope.summary_metrics["primary_key_candidates"] == 0
    assert result.envelope.summary_metrics["composite_key_candidates"] == 0
    assert any(alert.alert_id == "no_primary_key" for alert in result.envelope.alerts)


@pytest.mark.parametrize(
    "params",
    [
        {"unknown": True},
        {"pk_uniqueness_threshold": 101},
        {"pk_null_threshold": -1},
        {"entity_key_uniqueness_min": 90, "entity_key_uniqueness_max": 80},
        {"max_composite_key_columns": 1},
        {"max_composite_key_columns": 6},
        {"max_composite_combinations": 0},
        {"reference_tables": {"t": [None]}},
        {"reference_tables": {"t": "1,2,3"}},
        {"analyze_composite_keys": "true"},
        {"fk_overlap_threshold": "70"},
    ],
)
def test_parameters_that_do_not_fit_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        KeyIdentifierParams(**params)


def test_reference_values_compare_as_text() -> None:
    frame = pl.DataFrame({"ref": ["1", "2", "3", " 4 "]})
    result = run(frame, reference_tables={"t": [1, 2.0, "3", "4"]})
    [link] = result.envelope.data["foreign_key_candidates"]
    assert (link["column"], link["overlap_percentage"], link["matched_values"]) == ("ref", 100.0, 4)
