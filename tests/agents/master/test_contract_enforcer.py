"""contract-enforcer: violations counted against independent answers, the defaults that never destroy data
(lossless renames and casts only; drops and nulls proposed), the strategies that do change data when asked,
where the contract comes from, and contracts and parameters refused."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from agents.envelope import (
    REMOVED_ROWS_SCHEMA,
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    AgentInputs,
    AgentResult,
    data_columns,
)
from agents.errors import InvalidParametersError
from agents.master import contract as enforcer
from agents.master.sources import stack_sources
from agents.params.contract_enforcer import ContractEnforcerParams

AGES = ["30", "N/A", "200", "41", "12", "7", "", "55"]
CUSTOMERS = ["1", "2", "3", "3", "x", "6", "7", "8"]
STATUS = ["active", "gone", "active", "active", None, "inactive", "active", "paused"]
ZIPS = ["12345", "1234", "54321", "99999", "00001", "ABCDE", "11111", "22222"]
CONTRACT: dict[str, Any] = {
    "required_columns": ["customer_id", "email"],
    "optional_columns": ["zip"],
    "column_types": {"customer_id": "integer", "age": "int"},
    "column_mappings": {"cust": "customer_id"},
    "value_constraints": {
        "age": {"min": 0, "max": 120},
        "status": {"allowed_values": ["active", "inactive"]},
        "zip": {"pattern": r"[0-9]{5}"},
    },
    "uniqueness_constraints": ["customer_id"],
}


def customers() -> pl.DataFrame:
    data = {"cust": CUSTOMERS, "age": AGES, "status": STATUS, "zip": ZIPS, "junk": list(range(8))}
    return stack_sources([("primary", pl.DataFrame(data))])


def run(frame: pl.DataFrame, upload: dict[str, Any] | None = None, **params: Any) -> AgentResult:
    """The agent with ``upload`` as the uploaded schema file and ``params`` as its parameters."""
    model = ContractEnforcerParams(**params)
    seen: list[float] = []
    inputs = AgentInputs(frame, "primary.csv", contract=upload)
    result = enforcer.run(inputs, model, lambda fraction, _m: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success" and envelope["data"]["parameters"] == model.model_dump()
    assert result.row_level_issues.schema == pl.Schema(ROW_LEVEL_ISSUE_SCHEMA)
    assert result.removed is not None and dict(result.removed.schema) == REMOVED_ROWS_SCHEMA
    return result


def issue_rows(result: AgentResult, issue_type: str) -> list[tuple[int, str]]:
    rows = result.row_level_issues.filter(pl.col("issue_type") == issue_type).sort("row_index")
    return list(zip(rows["row_index"].to_list(), rows["column"].to_list(), strict=True))


def test_no_contract_means_nothing_to_enforce() -> None:
    frame = customers()
    result = run(frame)
    assert result.frame is None and result.removed is not None and result.removed.height == 0
    assert result.envelope.data["contract_source"] == "none"
    assert "nothing to enforce" in result.envelope.data["notes"][0]
    assert result.envelope.summary_metrics == {
        "original_columns": 5,
        "final_columns": 5,
        "violations_count": 0,
        "critical_violations": 0,
        "warnings_count": 0,
        "transformations_applied": 0,
    }


def test_violations_are_found_and_counted() -> None:
    result = run(customers(), CONTRACT)
    # Independent answers, from the lists above (row index = position + 1).
    ages = [int(value) if value.strip() not in ("", "N/A") else None for value in AGES]
    out_of_range = [i + 1 for i, age in enumerate(ages) if age is not None and not 0 <= age <= 120]
    not_allowed = [i + 1 for i, value in enumerate(STATUS) if value is not None and value not in ("active", "inactive")]
    bad_zip = [i + 1 for i, value in enumerate(ZIPS) if not (len(value) == 5 and value.isdigit())]
    repeated = [i + 1 for i, value in enumerate(CUSTOMERS) if CUSTOMERS.count(value) > 1]
    not_integer = [i + 1 for i, value in enumerate(CUSTOMERS) if not value.isdigit()]
    assert [row for row, _ in issue_rows(result, "out_of_range")] == out_of_range == [3]
    assert [row for row, _ in issue_rows(result, "value_not_allowed")] == not_allowed == [2, 8]
    assert [row for row, _ in issue_rows(result, "pattern_mismatch")] == bad_zip == [2, 6]
    assert [row for row, _ in issue_rows(result, "uniqueness_violation")] == repeated == [3, 4]
    assert issue_rows(result, "type_mismatch") == [(row, "customer_id") for row in not_integer]
    critical = 1 + len(not_integer) + len(repeated)  # missing 'email', the non-integer id, the repeated ids
    warnings = 1 + len(out_of_range) + len(not_allowed) + len(bad_zip)  # 'junk' is not in the contract
    metrics = result.envelope.summary_metrics
    assert (metrics["critical_violations"], metrics["warnings_count"]) == (critical, warnings)
    assert metrics["violations_count"] == critical + warnings
    assert result.envelope.data["missing_required_columns"] == ["email"]
    assert result.envelope.data["extra_columns"] == ["junk"]
    assert {issue.issue_type for issue in result.envelope.issues} == {"missing_required_column", "extra_column"}
    severities = dict(zip(result.row_level_issues["issue_type"], result.row_level_issues["severity"], strict=True))
    assert severities["type_mismatch"] == "critical" and severities["out_of_range"] == "warning"


def test_by_default_only_lossless_changes_are_made() -> None:
    frame = customers()
    result = run(frame, CONTRACT)
    assert result.frame is not None and result.removed is not None
    assert result.removed.height == 0 and result.frame.height == frame.height
    assert result.frame[ROW_INDEX_COLUMN].equals(frame[ROW_INDEX_COLUMN])
    # renamed, and 'age' cast (every value reads as an integer or is missing); 'customer_id' has an 'x': kept as text
    assert data_columns(result.frame) == ["customer_id", "age", "status", "zip", "junk"]
    assert result.frame.schema["age"] == pl.Int64 and result.frame.schema["customer_id"] == pl.String
    assert result.frame["age"].to_list() == [30, None, 200, 41, 12, 7, None, 55]  # "N/A" and "" were missing
    assert result.frame["customer_id"].to_list() == CUSTOMERS
    for column in ("status", "zip", "junk"):  # invalid values are not emptied, extra columns not dropped
        assert result.frame[column].equals(frame[column])
    assert [item["action"] for item in result.envelope.data["transformations"]] == ["rename", "cast"]
    assert result.envelope.summary_metrics["transformations_applied"] == 2
    proposals = {item["action"]: item for item in result.envelope.data["proposals"]}
    assert proposals["drop_extra_columns"]["columns"] == ["junk"]
    invalid = {(2, "status"), (8, "status"), (2, "zip"), (6, "zip"), (3, "age"), (5, "customer_id")}
    listed = result.row_level_issues.filter(pl.col("issue_type") != "uniqueness_violation")
    assert set(zip(listed["row_index"].to_list(), listed["column"].to_list(), strict=True)) == invalid
    assert proposals["null_invalid_values"]["cells_affected"] == len(invalid)
    assert proposals["drop_invalid_rows"]["rows_affected"] == len({row for row, _ in invalid})
    assert proposals["null_invalid_values"]["apply"] == {"contract-enforcer": {"default_value_strategy": "null"}}


def test_the_null_strategy_empties_exactly_the_invalid_cells() -> None:
    frame = customers()
    result = run(frame, CONTRACT, default_value_strategy="null")
    assert result.frame is not None and result.frame.height == frame.height
    assert result.frame.schema["customer_id"] == pl.Int64
    assert result.frame["customer_id"].to_list() == [1, 2, 3, 3, None, 6, 7, 8]
    assert result.frame["age"].to_list() == [30, None, None, 41, 12, 7, None, 55]
    assert result.frame["status"].to_list() == ["active", None, "active", "active", None, "inactive", "active", None]
    assert result.frame["zip"].to_list() == ["12345", None, "54321", "99999", "00001", None, "11111", "22222"]
    nulled = sum(item["cells"] for item in result.envelope.data["transformations"] if item["action"] == "null_invalid")
    before = sum(frame[c].null_count() for c in ("status", "zip")) + 2  # age had "N/A" and "" (missing already)
    after = sum(result.frame[c].null_count() for c in ("customer_id", "age", "status", "zip"))
    assert nulled == 6 and after - before == nulled


def test_the_drop_strategy_removes_the_rows_with_their_reasons() -> None:
    frame = customers()
    result = run(frame, CONTRACT, default_value_strategy="drop", drop_extra_columns=True)
    assert result.removed is not None and result.frame is not None
    removed = dict(zip(result.removed[ROW_INDEX_COLUMN].to_list(), result.removed["reason"].to_list(), strict=True))
    assert sorted(removed) == [2, 3, 5, 6, 8]
    assert removed[3] == "breaks the data contract: is outside [0, 120]"
    assert removed[2] == "breaks the data contract: is not one of [active, inactive]; does not match /[0-9]{5}/"
    assert result.frame[ROW_INDEX_COLUMN].to_list() == [1, 4, 7]
    assert "junk" not in result.frame.columns
    assert result.envelope.summary_metrics["final_columns"] == 4


def test_the_default_strategy_writes_the_constraint_default() -> None:
    contract = {"value_constraints": {"status": {"allowed_values": ["active", "inactive"], "default": "unknown"}}}
    result = run(customers(), contract, default_value_strategy="default")
    assert result.frame is not None
    assert result.frame["status"].to_list() == [
        "active",
        "unknown",
        "active",
        "active",
        None,
        "inactive",
        "active",
        "unknown",
    ]
    bad = {"column_types": {"age": "integer"}, "value_constraints": {"age": {"max": 120, "default": "old"}}}
    with pytest.raises(InvalidParametersError, match="default"):
        run(customers(), bad, default_value_strategy="default")


def test_auto_transform_false_and_enforce_values_false() -> None:
    frame = customers()
    result = run(frame, CONTRACT, auto_transform=False, default_value_strategy="null")
    assert result.frame is None
    actions = {item["action"] for item in result.envelope.data["proposals"]}
    assert {"rename_columns", "cast_types", "drop_extra_columns", "null_invalid_values"} <= actions
    lenient = run(frame, CONTRACT, enforce_values=False, default_value_strategy="null")
    assert lenient.frame is not None
    assert lenient.frame["status"].to_list() == STATUS  # value violations reported, not fixed
    assert len(issue_rows(lenient, "value_not_allowed")) == 2
    assert lenient.frame["customer_id"].to_list() == [1, 2, 3, 3, None, 6, 7, 8]  # type failures still handled


def test_renames_never_overwrite_a_column() -> None:
    frame = customers().with_columns(pl.lit("z").alias("customer_id"))
    result = run(frame, {"column_mappings": {"cust": "customer_id"}, "required_columns": ["customer_id"]})
    assert result.frame is None  # nothing applied
    assert any(issue.issue_type == "rename_conflict" for issue in result.envelope.issues)
    kept = run(customers(), {"column_mappings": {"cust": "customer_id"}}, rename_columns=False)
    assert kept.frame is None
    assert kept.envelope.data["proposals"][0]["action"] == "rename_columns"


def test_strict_mode_makes_value_violations_critical() -> None:
    relaxed = run(customers(), CONTRACT).envelope.summary_metrics
    strict = run(customers(), CONTRACT, strict_mode=True).envelope.summary_metrics
    assert strict["violations_count"] == relaxed["violations_count"]
    assert strict["warnings_count"] == 0
    assert strict["critical_violations"] == relaxed["critical_violations"] + relaxed["warnings_count"]


def test_dates_are_cast_only_when_the_day_month_order_is_known() -> None:
    frame = pl.DataFrame({"day": ["03/04/2024", "05/06/2024"], "when": ["2024-01-31", "2024-02-29"]})
    result = run(frame, {"column_types": {"day": "date", "when": "date"}})
    assert result.frame is not None
    assert result.frame.schema["when"] == pl.Date and result.frame.schema["day"] == pl.String
    checks = {item["column"]: item for item in result.envelope.data["type_checks"]}
    assert not checks["day"]["cast"] and "tie" in checks["day"]["note"]
    assert checks["when"]["cast"] and checks["when"]["invalid_values"] == 0


def test_the_contract_comes_from_the_upload_unless_the_parameter_gives_one() -> None:
    uploaded = run(customers(), {"required_columns": ["email"]})
    assert uploaded.envelope.data["contract_source"] == "schema file"
    assert uploaded.envelope.data["missing_required_columns"] == ["email"]
    both = run(customers(), {"required_columns": ["email"]}, contract={"required_columns": ["phone"]})
    assert both.envelope.data["contract_source"] == "parameter"
    assert both.envelope.data["missing_required_columns"] == ["phone"]


@pytest.mark.parametrize(
    "contract",
    [
        {"required_column": ["a"]},  # a typo is refused, not ignored
        {"column_types": {"age": "integr"}},
        {"value_constraints": {"age": {}}},
        {"value_constraints": {"age": {"min": 5, "max": 1}}},
        {"uniqueness_constraints": "customer_id"},
        {"uniqueness_constraints": [[]]},  # before: Polars' "cannot return empty fold" failed the agent
    ],
)
def test_an_uploaded_contract_that_does_not_fit_is_refused(contract: dict[str, Any]) -> None:
    with pytest.raises(InvalidParametersError) as error:
        run(customers(), contract)
    assert error.value.field == "contract"


def test_a_column_named_twice_in_a_key_is_checked_once() -> None:
    """Before, ``[["customer_id", "customer_id"]]`` failed the agent (Polars: multiple fields of one name)."""
    twice = run(
        customers(), contract={**CONTRACT, "uniqueness_constraints": [["customer_id", "status", "customer_id"]]}
    )
    once = run(customers(), contract={**CONTRACT, "uniqueness_constraints": [["customer_id", "status"]]})
    assert (
        issue_rows(twice, "uniqueness_violation")
        == issue_rows(once, "uniqueness_violation")
        == [(3, "customer_id, status"), (4, "customer_id, status")]
    )
    assert twice.row_level_issues.equals(once.row_level_issues)


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="a uniqueness constraint given as a list names one column at least"):
        ContractEnforcerParams(contract={"uniqueness_constraints": ["customer_id", []]})


@pytest.mark.parametrize("pattern", ["(", "[a-", "(?=a)b", r"(\w)\1"])
def test_a_pattern_that_does_not_compile_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidParametersError, match="invalid regular expression") as error:
        run(customers(), contract={"value_constraints": {"zip": {"pattern": pattern}}})
    assert error.value.field == "contract.value_constraints.zip.pattern"


def test_patterns_run_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in Python's re on "aaa...b"; Rust's regex answers at once.
    frame = pl.DataFrame({"code": ["a" * 5000 + "b", "aaa"]})
    result = run(frame, {"value_constraints": {"code": {"pattern": "(a+)+"}}})
    assert issue_rows(result, "pattern_mismatch") == [(1, "code")]


@pytest.mark.parametrize(
    "params",
    [
        {"unknown": 1},
        {"default_value_strategy": "nul"},
        {"strict_mode": "false"},
        {"excellent_threshold": 80, "good_threshold": 90},
        {"contract": {"required_columns": "a"}},
        {"contract": {"column_types": {"a": 1}}},
        {"schema_compliance_weight": 2},
        # Polars reads these as patterns: before, the renamed column failed the agent (a duplicate output name)
        {"contract": {"column_mappings": {"cust": "*"}}},
        {"contract": {"column_mappings": {"cust": "^customer_id$"}}},
    ],
)
def test_parameters_that_do_not_fit_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ContractEnforcerParams(**params)
