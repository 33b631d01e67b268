"""semantic-mapper: columns renamed to the standard vocabulary only where nothing is lost, clashes reported,
values mapped with every changed cell counted (against an independent count), the built-in spellings
proposed by default with their counts and applied on request, the roles artifact, and parameters refused
when they do not fit."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from agents.envelope import (
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    SOURCE_COLUMN,
    SOURCE_ROW_COLUMN,
    AgentInputs,
    AgentResult,
    data_columns,
)
from agents.errors import InvalidParametersError
from agents.master import semantic
from agents.master.roles import ColumnRole, detect_roles
from agents.master.sources import stack_sources
from agents.params.semantic_mapper import SemanticMapperParams

COUNTRIES = ["U.S.A", "United States", "Germany", "usa", None, "USA", "u.k.", "France", "United  States of America"]
SPELLED = {"U.S.A": "USA", "United States": "USA", "usa": "USA", "u.k.": "UK", "United  States of America": "USA"}
N = len(COUNTRIES)
BOOKKEEPING = [ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN]


def customers() -> pl.DataFrame:
    data = {
        "first_name": ["Anna", "Bob", "Carla", "Dirk", "Eve", "Fritz", "Gina", "Hans", "Ines"],
        "LastName": ["Meyer", "Smith", "Jones", "Brown", "Miller", "Wagner", "Klein", "Wolf", "Lang"],
        "E-mail": [f"user{i}@example.com" for i in range(N)],
        "Country": COUNTRIES,
        "created_at": ["2024-01-0" + str(i + 1) for i in range(N)],
        "customer_id": list(range(101, 101 + N)),
        "amount": [float(i) * 1.5 for i in range(N)],
        "notes": ["called", "prefers e-mail", "vip", "ok", "left a message", "", "refund", "call back", "new"],
    }
    return stack_sources([("primary", pl.DataFrame(data))])


def run(frame: pl.DataFrame, **params: Any) -> AgentResult:
    model = SemanticMapperParams(**params)
    seen: list[float] = []
    result = semantic.run(AgentInputs(frame, "primary.csv"), model, lambda fraction, _m: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success"
    assert envelope["data"]["parameters"] == model.model_dump()
    assert result.row_level_issues.schema == pl.Schema(ROW_LEVEL_ISSUE_SCHEMA)
    return result


def mappings(result: AgentResult) -> dict[str, dict[str, Any]]:
    return {item["column"]: item for item in result.envelope.data["mappings"]}


def test_columns_are_renamed_to_standard_names_and_values_standardised() -> None:
    frame = customers()
    result = run(frame, apply_builtin_value_mappings=True)
    assert result.frame is not None
    assert result.frame.columns == [
        *BOOKKEEPING,
        "first_name",
        "last_name",
        "email",
        "country",
        "created_date",
        "customer_id",
        "amount",  # 'price' is only what its name says (no value confirms it): proposed, not applied
        "notes",
    ]
    found = mappings(result)
    assert found["first_name"]["status"] == "already_standard"
    assert found["LastName"] | {"confidence": None} == {
        "column": "LastName",
        "standard_name": "last_name",
        "confidence": None,
        "method": "name+value",
        "applied": True,
        "status": "applied",
        "reason": "renamed",
        "new_column": "last_name",
    }
    # created_at's dates confirm its date name; nothing in amount's values confirms 'price'
    assert found["created_at"]["method"] == "name+value" and found["created_at"]["status"] == "applied"
    assert found["amount"]["standard_name"] == "price" and found["amount"]["method"] == "name"
    assert found["amount"]["status"] == "guessed" and not found["amount"]["applied"]
    assert "notes" not in found
    # Country spellings: an independent count of the cells that change.
    changed = sum(1 for value in COUNTRIES if value in SPELLED)
    assert result.frame["country"].to_list() == [SPELLED.get(value, value) if value else None for value in COUNTRIES]
    [guess] = result.envelope.data["proposals"]
    assert guess["apply"] == {"semantic-mapper": {"custom_column_mappings": {"amount": "price"}}}
    assert result.envelope.summary_metrics == {
        "mapped_columns": 7,
        "unmapped_columns": 1,
        "high_confidence_mappings": 7,
        "average_confidence": pytest.approx(result.envelope.summary_metrics["average_confidence"]),
        "total_value_mappings": changed,
        "total_transformations": 4 + changed,  # LastName, E-mail, Country, created_at renamed
    }
    assert 0.9 <= result.envelope.summary_metrics["average_confidence"] <= 1.0


def test_built_in_spellings_are_proposed_by_default_with_their_counts() -> None:
    """Ours: Agensium replaces "U.S.A" by "USA" with apply_mappings; we propose it, each spelling with the
    cells it would change, and the fragment that applies it."""
    frame = customers()
    result = run(frame)
    assert result.frame is not None  # the columns are renamed (nothing is lost)
    assert result.frame["country"].to_list() == COUNTRIES
    [mapping] = result.envelope.data["value_mappings"]
    counts = Counter(value for value in COUNTRIES if value in SPELLED)
    assert mapping | {"changes": None} == {
        "column": "country",
        "source": "built_in",
        "replacements": len(semantic.COUNTRY_SPELLINGS),
        "cells_changed": sum(counts.values()),
        "applied": False,
        "changes": None,
    }
    assert mapping["changes"] == sorted(
        [{"value": value, "replacement": SPELLED[value], "cells": count} for value, count in counts.items()],
        key=lambda change: (-change["cells"], change["value"]),
    )
    guess, item = result.envelope.data["proposals"]
    assert guess["proposal_id"] == "semantic-mapper:custom_column_mappings" and guess["columns"] == ["amount"]
    assert item["proposal_id"] == "semantic-mapper:apply_builtin_value_mappings"
    assert item["apply"] == {"semantic-mapper": {"apply_builtin_value_mappings": True}}
    assert item["columns"] == ["country"] and item["cells_affected"] == sum(counts.values())
    assert "'U.S.A' -> 'USA' (1)" in item["description"]
    metrics = result.envelope.summary_metrics
    assert metrics["total_value_mappings"] == 0 and metrics["total_transformations"] == 4  # the renames
    filled = sum(value is not None for value in COUNTRIES)
    consistency = result.envelope.data["effectiveness"]["components"]["value_consistency"]
    assert consistency == pytest.approx(100.0 - 100.0 * sum(counts.values()) / filled, abs=0.01)
    # The proposal's fragment applies exactly what it listed.
    applied = run(frame, **item["apply"]["semantic-mapper"])
    assert applied.frame is not None and applied.envelope.data["proposals"] == [guess]
    assert applied.frame["country"].to_list() == [SPELLED.get(value, value) if value else None for value in COUNTRIES]
    assert applied.envelope.summary_metrics["total_value_mappings"] == sum(counts.values())


def test_nothing_is_lost_rows_bookkeeping_and_other_values_are_kept() -> None:
    frame = customers()
    result = run(frame, apply_builtin_value_mappings=True)
    assert result.frame is not None and result.removed is None
    assert result.frame.select(BOOKKEEPING).equals(frame.select(BOOKKEEPING))
    renamed = {item["column"]: item["new_column"] for item in result.envelope.data["mappings"]}
    for column in data_columns(frame):
        new = renamed.get(column, column)
        assert result.frame[new].null_count() == frame[column].null_count()
        if column != "Country":
            assert result.frame[new].equals(frame[column].alias(new))


def test_a_name_already_taken_is_reported_not_applied() -> None:
    frame = customers().with_columns(pl.lit("x").alias("email"), pl.col("first_name").alias("FirstName"))
    result = run(frame)
    found = mappings(result)
    assert found["E-mail"]["status"] == "name_taken" and not found["E-mail"]["applied"]
    assert found["E-mail"]["reason"] == "the data already has a column 'email'"
    assert found["FirstName"]["status"] == "duplicate_target"  # first_name already holds the standard name
    assert result.frame is not None
    assert {"E-mail", "email", "FirstName", "first_name"} <= set(result.frame.columns)
    assert result.frame["email"].to_list() == ["x"] * N
    conflicts = [issue for issue in result.envelope.issues if issue.issue_type == "mapping_conflict"]
    assert {issue.field_name for issue in conflicts} == {"E-mail", "FirstName"}


def test_apply_mappings_false_changes_nothing_and_proposes() -> None:
    frame = customers()
    result = run(frame, apply_mappings=False)
    assert result.frame is None
    assert result.envelope.summary_metrics["total_value_mappings"] == 0
    assert result.envelope.summary_metrics["total_transformations"] == 0
    item, guess, built_in = result.envelope.data["proposals"]
    assert item["apply"] == {"semantic-mapper": {"apply_mappings": True}}
    assert item["cells_affected"] == 0 and set(item["columns"]) == {"LastName", "E-mail", "Country", "created_at"}
    assert guess["apply"] == {
        "semantic-mapper": {"custom_column_mappings": {"amount": "price"}, "apply_mappings": True}
    }
    assert built_in["apply"] == {"semantic-mapper": {"apply_builtin_value_mappings": True, "apply_mappings": True}}
    assert built_in["cells_affected"] == 5 and built_in["columns"] == ["Country"]
    assert set(result.artifacts["semantic_roles"]) == set(data_columns(frame))


@pytest.mark.parametrize("built_in", [False, True])
def test_custom_mappings_take_precedence_and_count_their_cells(built_in: bool) -> None:
    """The user's own value mappings are applied; the built-in spellings only on request."""
    frame = customers()
    result = run(
        frame,
        custom_column_mappings={"notes": "status", "Country": "country"},
        custom_value_mappings={"country": {"Germany": "DEU", "USA": "United States"}, "notes": {"ok": "OK"}},
        apply_builtin_value_mappings=built_in,
    )
    assert result.frame is not None
    assert mappings(result)["notes"] | {"reason": None} == {
        "column": "notes",
        "standard_name": "status",
        "confidence": 1.0,
        "method": "custom",
        "applied": True,
        "status": "applied",
        "reason": None,
        "new_column": "status",
    }
    # custom wins over the built-in spellings on the cells it names ("USA" becomes "United States").
    if built_in:
        assert result.frame["country"].to_list()[:6] == ["USA", "USA", "DEU", "USA", None, "United States"]
    else:
        assert result.frame["country"].to_list()[:6] == ["U.S.A", "United States", "DEU", "usa", None, "United States"]
    by_source = {
        (item["column"], item["source"]): (item["cells_changed"], item["applied"])
        for item in result.envelope.data["value_mappings"]
    }
    assert by_source == {
        ("country", "built_in"): (5, built_in),
        ("country", "custom"): (2, True),
        ("status", "custom"): (1, True),
    }
    assert result.envelope.summary_metrics["total_value_mappings"] == (8 if built_in else 3)


def test_the_threshold_and_auto_detection() -> None:
    frame = customers()
    strict = run(frame, confidence_threshold=0.95)
    assert {item["column"] for item in strict.envelope.data["mappings"] if item["status"] == "below_threshold"} == {
        "created_at",
        "amount",
    }
    manual = run(frame, auto_detect_semantics=False, custom_column_mappings={"E-mail": "email"})
    assert [item["column"] for item in manual.envelope.data["mappings"]] == ["E-mail"]
    assert manual.envelope.summary_metrics["mapped_columns"] == 1
    assert manual.frame is not None and "email" in manual.frame.columns


def test_the_roles_artifact_is_keyed_by_the_returned_columns() -> None:
    result = run(customers())
    assert result.frame is not None
    roles = result.artifacts["semantic_roles"]
    assert list(roles) == data_columns(result.frame)
    assert all(isinstance(role, ColumnRole) for role in roles.values())
    assert roles["last_name"].role == "surname" and roles["email"].role == "email"
    assert result.envelope.data["semantic_roles"]["email"]["role"] == "email"
    assert roles == detect_roles(result.frame)  # the evidence carried over equals sampling the new frame again


@pytest.mark.parametrize(
    "params",
    [
        {"unknown": 1},
        {"confidence_threshold": 1.5},
        {"confidence_threshold": "0.7"},
        {"custom_column_mappings": {"a": 1}},
        {"custom_value_mappings": {"a": ["x"]}},
        {"apply_mappings": "yes"},
        {"mapping_coverage_weight": -0.1},
        # Polars reads these as patterns: before, the column renamed so failed the chain's outputs
        {"custom_column_mappings": {"email": "*"}},
        {"custom_column_mappings": {"email": "^e.*$"}},
    ],
)
def test_parameters_that_do_not_fit_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SemanticMapperParams(**params)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"custom_column_mappings": {"nope": "email"}}, "custom_column_mappings"),
        ({"custom_column_mappings": {"notes": ROW_INDEX_COLUMN}}, "custom_column_mappings.notes"),
        ({"custom_value_mappings": {"nope": {"a": "b"}}}, "custom_value_mappings"),
        ({"custom_value_mappings": {"customer_id": {"1": "2"}}}, "custom_value_mappings.customer_id"),
    ],
)
def test_parameters_naming_what_the_data_lacks_are_refused(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParametersError) as error:
        semantic.run(AgentInputs(customers(), "primary.csv"), SemanticMapperParams(**params), lambda _f, _m: None)
    assert error.value.field == field and error.value.agent_id == "semantic-mapper"
