"""Resolution of JSON operations (and commands) against a schema: column readings, literal typing, the schema as it
evolves through the operations, the dtypes the executor must produce, and every refusal with its details."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import TypeAdapter

from agents.errors import InvalidParametersError
from agents.params.transformer import Operation, TransformerParams
from agents.transform.resolve import DATETIME_DTYPE, Resolved, kind_of, resolve

SCHEMA: dict[str, str] = {
    "id": "Int64",
    "email": "String",
    "emails": "String",
    "age": "Int32",
    "price": "Float64",
    "quantity": "Int64",
    "country": "String",
    "signup_date": "Date",
    "last_seen": "Datetime(time_unit='us', time_zone='UTC')",
    "active": "Boolean",
    "Unit Price": "Float64",
    "tags": "List(String)",
    "small": "UInt8",
}


def run(*operations: dict[str, Any], commands: list[str] | None = None, schema: dict[str, str] = SCHEMA) -> Resolved:
    params = TransformerParams.model_validate({"operations": list(operations), "commands": commands or []})
    return resolve(params, schema)


def refused(*operations: dict[str, Any], commands: list[str] | None = None) -> dict[str, Any]:
    with pytest.raises(InvalidParametersError) as caught:
        run(*operations, commands=commands)
    details = caught.value.details
    assert details["agent_id"] == "transformer"
    assert set(details) == {"agent_id", "field", "command", "position", "reason", "suggestions"}
    assert caught.value.message
    return details | {"message": caught.value.message}


def where(column: str, cmp: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"op": "filter", "action": "keep", "where": {"column": column, "cmp": cmp, "value": value, **extra}}


def comparison(column: str, cmp: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"column": column, "cmp": cmp, "value": value, "value_column": None, "case_sensitive": True, **extra}


def test_importing_the_resolver_and_the_grammar_does_not_import_polars() -> None:
    code = (
        "import sys\n"
        "import agents.transform.resolve, agents.transform.commands, agents.transform.expressions\n"
        "from agents.params.transformer import TransformerParams\n"
        "params = TransformerParams(commands=['remove rows where a is null'])\n"
        "agents.transform.resolve.resolve(params, {'a': 'Int64'})\n"
        "assert 'polars' not in sys.modules, 'polars was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".", timeout=60)


# ---------------------------------------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ("written", "column", "note"),
    [
        ("email", "email", None),
        ("EMAIL", "email", "column 'EMAIL' read as 'email' (ignoring case)"),
        ("unit price", "Unit Price", "column 'unit price' read as 'Unit Price' (ignoring case)"),
        ("unit_price", "Unit Price", "column 'unit_price' read as 'Unit Price' (ignoring case and separators)"),
        ("signup date", "signup_date", "column 'signup date' read as 'signup_date' (ignoring case and separators)"),
        ("SignupDate", "signup_date", "column 'SignupDate' read as 'signup_date' (ignoring case and separators)"),
        ("quantiy", "quantity", "column 'quantiy' read as 'quantity' (closest spelling)"),
        ("cuontry", "country", "column 'cuontry' read as 'country' (closest spelling)"),
        ("singup_date", "signup_date", "column 'singup_date' read as 'signup_date' (closest spelling)"),
    ],
)
def test_a_column_reads_exactly_then_by_case_then_by_separators_then_by_one_close_spelling(
    written: str, column: str, note: str | None
) -> None:
    resolved = run({"op": "sort", "by": [{"column": written}]})  # a filter reads no close spelling
    assert resolved.operations[0]["by"][0]["column"] == column
    assert resolved.notes == [[note] if note else []]


@pytest.mark.parametrize(
    ("written", "reason", "suggestions"),
    [
        ("emal", "ambiguous_column", ["email", "emails"]),  # one edit from email, two from emails: not clear enough
        ("emial", "ambiguous_column", ["email", "emails"]),
        ("phone", "unknown_column", []),
        ("ag", "unknown_column", ["age"]),  # names of 3 characters or fewer are never read as a typo
        ("unit", "unknown_column", ["Unit Price"]),
    ],
)
def test_an_unclear_column_is_refused_with_suggestions(written: str, reason: str, suggestions: list[str]) -> None:
    details = refused(where(written, "is_null"))
    assert details["reason"] == reason
    assert details["suggestions"][: len(suggestions)] == suggestions
    assert details["field"] == "operations[0].where.column"
    assert details["command"] is None and details["position"] is None


def test_a_name_with_other_numbers_is_never_read_as_a_typo() -> None:
    with pytest.raises(InvalidParametersError) as caught:
        run(where("item2", "is_null"), schema={"item1": "Int64", "other": "String"})
    assert (caught.value.details["reason"], caught.value.details["suggestions"]) == ("unknown_column", ["item1"])
    sort = {"op": "sort", "by": [{"column": "itme1"}]}
    assert run(sort, schema={"item1": "Int64"}).operations[0]["by"][0]["column"] == "item1"


def test_two_columns_equal_but_for_case_make_a_caseless_name_ambiguous() -> None:
    schema = {"Email": "String", "email": "String"}
    assert run(where("email", "is_null"), schema=schema).operations[0]["where"]["column"] == "email"
    with pytest.raises(InvalidParametersError) as caught:
        run(where("EMAIL", "is_null"), schema=schema)
    assert caught.value.details["reason"] == "ambiguous_column"
    assert caught.value.details["suggestions"] == ["Email", "email"]


def test_the_message_names_the_closest_columns() -> None:
    schema = {"email_address": "String", "age": "Int64"}
    with pytest.raises(InvalidParametersError) as caught:
        run(where("emial", "is_null"), schema=schema)
    assert caught.value.message == "no column 'emial'; did you mean 'email_address'?"
    with pytest.raises(InvalidParametersError) as caught:
        run(where("zzz", "is_null"), schema=schema)
    assert caught.value.message == "no column 'zzz' (the columns are 'email_address', 'age')"


# ---------------------------------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("column", "cmp", "value", "typed"),
    [
        ("age", ">=", "18", 18),
        ("age", ">=", 18.0, 18),
        ("age", ">", "17.5", 17.5),
        ("age", "==", " +18 ", 18),
        ("small", ">", "300", 300),  # a comparison may fall outside the dtype's range
        ("price", "<", "10", 10.0),
        ("price", "<", 10, 10.0),
        ("price", "<", "1e3", 1000.0),
        ("active", "==", "yes", True),
        ("active", "==", "FALSE", False),
        ("active", "==", 1, True),
        ("signup_date", ">", " 2024-01-31 ", "2024-01-31"),
        ("last_seen", ">=", "2024-01-31", "2024-01-31T00:00:00"),
        ("last_seen", ">", "2024-01-31", "2024-01-31"),  # kept date-only: after that whole day
        ("last_seen", "<=", " 2024-01-31 ", "2024-01-31"),  # to the end of that day
        ("last_seen", ">", "2024-01-31 10:30", "2024-01-31T10:30:00"),
        ("last_seen", ">", "2024-01-31T10:30:00Z", "2024-01-31T10:30:00+00:00"),
        ("country", "==", "US", "US"),
        ("country", "==", 5, "5"),
        ("country", "==", True, "true"),
        ("country", "contains", 12, "12"),
    ],
)
def test_literals_are_typed_by_their_column(column: str, cmp: str, value: Any, typed: Any) -> None:
    resolved = run(where(column, cmp, value))
    assert resolved.operations[0]["where"]["value"] == typed
    assert type(resolved.operations[0]["where"]["value"]) is type(typed)


@pytest.mark.parametrize(
    ("column", "cmp", "value"),
    [
        ("age", ">", "abc"),
        ("age", ">", True),
        ("age", ">", "nan"),
        ("age", ">", "inf"),
        ("price", "==", "1,000"),
        ("active", "==", "maybe"),
        ("signup_date", ">", "2024-02-30"),
        ("signup_date", ">", "31/01/2024"),
        ("signup_date", ">", 20240131),
        ("last_seen", "<", "yesterday"),
    ],
)
def test_a_literal_of_the_wrong_type_is_refused(column: str, cmp: str, value: Any) -> None:
    details = refused(where(column, cmp, value))
    assert details["reason"] == "type_mismatch"
    assert details["field"] == "operations[0].where.value"
    assert f"column '{column}'" in details["message"]


def test_a_filled_value_must_fit_the_column_exactly() -> None:
    fill = {"op": "fill_nulls", "columns": ["age"], "strategy": "constant"}
    assert run(fill | {"value": "7"}).operations[0]["value"] == 7
    assert refused(fill | {"value": 7.5})["reason"] == "type_mismatch"
    small = {"op": "fill_nulls", "columns": ["small"], "strategy": "constant"}
    assert refused(small | {"value": 300})["reason"] == "type_mismatch"
    assert refused(small | {"value": -1})["reason"] == "type_mismatch"


def test_a_constant_that_types_differently_per_column_splits_the_operation() -> None:
    resolved = run(
        {"op": "fill_nulls", "columns": ["age", "quantity"], "strategy": "constant", "value": "0"},
        {"op": "fill_nulls", "columns": ["age", "price", "country"], "strategy": "constant", "value": "0"},
    )
    assert resolved.operations == [
        {"op": "fill_nulls", "columns": ["age", "quantity"], "strategy": "constant", "value": 0},
        {"op": "fill_nulls", "columns": ["age"], "strategy": "constant", "value": 0},
        {"op": "fill_nulls", "columns": ["price"], "strategy": "constant", "value": 0.0},
        {"op": "fill_nulls", "columns": ["country"], "strategy": "constant", "value": "0"},
    ]
    assert resolved.origins == ["operations[0]", "operations[1]", "operations[1]", "operations[1]"]


# ---------------------------------------------------------------------------------------------------- conditions


def test_a_nested_condition_resolves_every_comparison_and_gives_the_full_model_json() -> None:
    resolved = run(
        {
            "op": "filter",
            "action": "remove",
            "where": {
                "any": [
                    {"all": [{"column": "AGE", "cmp": "between", "value": ["18", 65]}]},
                    {"not": {"column": "country", "cmp": "in", "value": ["US", "CA"], "case_sensitive": False}},
                    {"column": "price", "cmp": ">", "value_column": "unit price"},
                    {"column": "email", "cmp": "ends_with", "value": ".org", "case_sensitive": False},
                ]
            },
        }
    )
    assert resolved.operations == [
        {
            "op": "filter",
            "action": "remove",
            "where": {
                "any": [
                    {"all": [comparison("age", "between", [18, 65])]},
                    {"not": comparison("country", "in", ["US", "CA"], case_sensitive=False)},
                    comparison("price", ">", None, value_column="Unit Price"),
                    comparison("email", "ends_with", ".org", case_sensitive=False),
                ]
            },
        }
    ]
    assert resolved.notes == [
        [
            "column 'AGE' read as 'age' (ignoring case)",
            "column 'unit price' read as 'Unit Price' (ignoring case)",
        ]
    ]


def test_case_sensitivity_is_kept_only_for_text() -> None:
    resolved = run(where("age", "==", 3, case_sensitive=False))
    assert resolved.operations[0]["where"]["case_sensitive"] is True


@pytest.mark.parametrize(
    ("condition", "reason", "field"),
    [
        ({"column": "age", "cmp": "between", "value": [1]}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "between", "value": 1}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "in", "value": "US"}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "in", "value": []}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "in", "value": [1, None]}, "invalid_value", "where.value[1]"),
        ({"column": "age", "cmp": "in", "value": [1, "x"]}, "type_mismatch", "where.value[1]"),
        ({"column": "age", "cmp": "==", "value": None}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "==", "value": [1]}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "is_null", "value": 1}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "contains", "value": "1"}, "type_mismatch", "where.column"),
        ({"column": "signup_date", "cmp": "starts_with", "value": "2024"}, "type_mismatch", "where.column"),
        ({"column": "active", "cmp": ">", "value": True}, "type_mismatch", "where.column"),
        ({"column": "tags", "cmp": "==", "value": "x"}, "type_mismatch", "where.column"),
        ({"column": "email", "cmp": "contains", "value": True}, "type_mismatch", "where.value"),
        ({"column": "age", "cmp": ">", "value": 1, "value_column": "price"}, "invalid_value", "where.value"),
        ({"column": "age", "cmp": "in", "value_column": "price"}, "invalid_value", "where.cmp"),
        ({"column": "age", "cmp": ">", "value_column": "email"}, "type_mismatch", "where.value_column"),
        ({"column": "active", "cmp": ">", "value_column": "active"}, "type_mismatch", "where.value_column"),
        ({"column": "age", "cmp": ">", "value_column": "nope"}, "unknown_column", "where.value_column"),
        (
            {"all": [{"column": "age", "cmp": "is_null"}, {"column": "x", "cmp": "is_null"}]},
            "unknown_column",
            "where.all[1].column",
        ),
        ({"not": {"any": [{"column": "age", "cmp": ">", "value": "old"}]}}, "type_mismatch", "where.not.any[0].value"),
    ],
)
def test_a_comparison_that_cannot_hold_is_refused(condition: dict[str, Any], reason: str, field: str) -> None:
    details = refused({"op": "filter", "action": "keep", "where": condition})
    assert (details["reason"], details["field"]) == (reason, f"operations[0].{field}")


def test_a_condition_nested_too_deeply_is_refused() -> None:
    condition: dict[str, Any] = {"column": "age", "cmp": "is_null"}
    for _ in range(70):
        condition = {"not": condition}
    assert refused({"op": "filter", "action": "keep", "where": condition})["reason"] == "too_deep"


# ---------------------------------------------------------------------------------------------------- schema


def test_the_schema_evolves_through_every_operation() -> None:
    resolved = run(
        {"op": "rename", "mapping": {"email": "mail", "Unit Price": "unit_price"}},
        {"op": "drop_columns", "columns": ["tags", "emails"]},
        {"op": "derive", "column": "total", "expression": "unit_price * quantity"},
        {"op": "cast", "columns": ["age", "total"], "to": "text"},
        {"op": "reorder", "columns": ["total", "MAIL"]},
        {"op": "keep_columns", "columns": ["mail", "total", "id", "age", "price"]},
        {"op": "filter", "action": "keep", "where": {"column": "age", "cmp": "==", "value": 18}},
    )
    assert resolved.schema_after == {
        "total": "String",
        "mail": "String",
        "id": "Int64",
        "age": "String",
        "price": "Float64",
    }
    assert resolved.operations[-1]["where"]["value"] == "18"  # age is text by now
    assert resolved.operations[3] == {
        "op": "cast",
        "columns": ["age", "total"],
        "to": "text",
        "format": None,
        "on_invalid": "fail",
    }


def test_a_renamed_or_dropped_column_is_gone_for_later_operations() -> None:
    details = refused({"op": "rename", "mapping": {"email": "mail"}}, where("email", "is_null"))
    assert (details["reason"], details["field"], details["suggestions"]) == (
        "ambiguous_column",  # one edit from the renamed 'mail' and from 'emails'
        "operations[1].where.column",
        ["mail", "emails", "small"],
    )
    assert (
        refused({"op": "drop_columns", "columns": ["price"]}, where("price", "is_null"))["reason"] == "unknown_column"
    )


def test_a_rename_may_swap_names_but_not_collide() -> None:
    resolved = run({"op": "rename", "mapping": {"email": "emails", "emails": "email"}})
    assert list(resolved.schema_after)[1:3] == ["emails", "email"]
    details = refused({"op": "rename", "mapping": {"email": "age"}})
    assert (details["reason"], details["field"]) == ("column_exists", "operations[0].mapping.email")
    details = refused({"op": "rename", "mapping": {"email": "x", "EMAIL": "y"}})
    assert details["reason"] == "duplicate_column"
    assert refused({"op": "rename", "mapping": {"email": "  "}})["reason"] == "invalid_value"


@pytest.mark.parametrize(
    ("source", "to", "dtype"),
    [
        ("quantity", "number", "Int64"),
        ("active", "number", "Int64"),
        ("price", "number", "Float64"),
        ("country", "number", "Float64"),
        ("price", "integer", "Int64"),
        ("age", "float", "Float64"),
        ("signup_date", "text", "String"),
        ("country", "date", "Date"),
        ("last_seen", "date", "Date"),
        ("country", "datetime", DATETIME_DTYPE),
        ("signup_date", "datetime", DATETIME_DTYPE),
        ("last_seen", "datetime", "Datetime(time_unit='us', time_zone='UTC')"),
        ("country", "boolean", "Boolean"),
        ("small", "boolean", "Boolean"),
    ],
)
def test_a_cast_gives_the_documented_dtype(source: str, to: str, dtype: str) -> None:
    assert run({"op": "cast", "columns": [source], "to": to}).schema_after[source] == dtype


@pytest.mark.parametrize(
    ("operation", "reason", "field"),
    [
        ({"op": "cast", "columns": ["signup_date"], "to": "number"}, "unsupported_cast", "columns[0]"),
        ({"op": "cast", "columns": ["price", "tags"], "to": "text"}, "unsupported_cast", "columns[1]"),
        ({"op": "cast", "columns": ["price"], "to": "date"}, "unsupported_cast", "columns[0]"),
        ({"op": "cast", "columns": ["price"], "to": "boolean"}, "unsupported_cast", "columns[0]"),
        ({"op": "cast", "columns": ["price"], "to": "integer", "format": "%d"}, "format_not_applicable", "format"),
        ({"op": "cast", "columns": ["signup_date"], "to": "date", "format": "%d"}, "format_not_applicable", "format"),
        ({"op": "cast", "columns": ["country"], "to": "date", "format": "dd/mm/yyyy"}, "invalid_format", "format"),
        ({"op": "cast", "columns": ["country"], "to": "date", "format": "%d/%m/%"}, "invalid_format", "format"),
    ],
)
def test_a_cast_that_cannot_work_is_refused(operation: dict[str, Any], reason: str, field: str) -> None:
    details = refused(operation)
    assert (details["reason"], details["field"]) == (reason, f"operations[0].{field}")


def test_formats_apply_to_text_read_as_dates_and_dates_written_as_text() -> None:
    resolved = run(
        {"op": "cast", "columns": ["country"], "to": "date", "format": "%d/%m/%Y", "on_invalid": "null"},
        {"op": "cast", "columns": ["last_seen"], "to": "text", "format": "%Y-%m-%dT%H:%M:%S%.3f%z"},
    )
    assert resolved.schema_after["country"] == "Date"
    assert resolved.operations[0]["on_invalid"] == "null"


@pytest.mark.parametrize(
    ("expression", "dtype"),
    [
        ("quantity * 2", "Int64"),
        ("quantity + age", "Int64"),
        ("quantity * price", "Float64"),
        ("quantity / 2", "Float64"),
        ("quantity % 3", "Int64"),
        ("-quantity", "Int64"),
        ("-1.5", "Float64"),
        ("round(price, 2)", "Float64"),
        ("round(quantity)", "Int64"),
        ("abs(small)", "Int64"),
        ("floor(price)", "Float64"),
        ("lower(email)", "String"),
        ("trim(country)", "String"),
        ("length(email)", "Int64"),
        ("concat(email, ' ', age, active, signup_date)", "String"),
        ("coalesce(quantity, age, 0)", "Int64"),
        ("coalesce(price, 0)", "Float64"),
        ("coalesce(email, country, 'n/a')", "String"),
        ("coalesce(signup_date, signup_date)", "Date"),
        ("coalesce(null, email)", "String"),
        ("year(signup_date)", "Int64"),
        ("month(last_seen) + 1", "Int64"),
        ("'constant'", "String"),
        ("true", "Boolean"),
        ("`Unit Price` * quantity", "Float64"),
    ],
)
def test_a_derived_column_gets_the_dtype_of_its_expression(expression: str, dtype: str) -> None:
    resolved = run({"op": "derive", "column": "new", "expression": expression})
    assert resolved.schema_after["new"] == dtype
    assert list(resolved.schema_after)[-1] == "new"


def test_a_derive_expression_is_rendered_canonically_with_exact_names() -> None:
    resolved = run({"op": "derive", "column": "total", "expression": "ROUND( unit_price*QUANTITY ,2 )"})
    assert resolved.operations == [
        {"op": "derive", "column": "total", "expression": "round(`Unit Price` * quantity, 2)"}
    ]
    assert resolved.notes == [
        [
            "column 'unit_price' read as 'Unit Price' (ignoring case and separators)",
            "column 'QUANTITY' read as 'quantity' (ignoring case)",
        ]
    ]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("email + 1", "type_mismatch"),
        ("lower(price)", "type_mismatch"),
        ("year(country)", "type_mismatch"),
        ("length(age)", "type_mismatch"),
        ("active * 2", "type_mismatch"),
        ("coalesce(email, age)", "type_mismatch"),
        ("coalesce(signup_date, last_seen)", "type_mismatch"),
        ("concat(tags, email)", "type_mismatch"),
        ("null", "invalid_value"),
        ("nope * 2", "unknown_column"),
        ("exec('x')", "unknown_function"),
        ("price +", "syntax"),
    ],
)
def test_a_derive_expression_of_the_wrong_types_is_refused(expression: str, reason: str) -> None:
    details = refused({"op": "derive", "column": "new", "expression": expression})
    assert (details["reason"], details["field"]) == (reason, "operations[0].expression")


def test_derive_refuses_an_existing_column_and_a_blank_name() -> None:
    assert refused({"op": "derive", "column": "price", "expression": "1"})["reason"] == "column_exists"
    assert refused({"op": "derive", "column": " ", "expression": "1"})["reason"] == "invalid_value"


@pytest.mark.parametrize("name", ["*", "^a$", "^.*$"])
def test_a_name_polars_reads_as_a_pattern_is_refused(name: str) -> None:
    """Before, a column renamed or derived as ``*`` or ``^…$`` passed, and every later ``pl.col`` of it addressed
    other columns: the transformer's outputs failed with Polars' duplicate output name (an exception, no report)."""
    renamed = refused({"op": "rename", "mapping": {"email": name}})
    derived = refused({"op": "derive", "column": name, "expression": "1"})
    commanded = refused(commands=[f"rename email to `{name}`"])
    for details in (renamed, derived, commanded):
        assert details["reason"] == "invalid_value" and "cannot name a column" in details["message"]
    assert renamed["field"] == "operations[0].mapping.email" and derived["field"] == "operations[0].column"
    assert run({"op": "rename", "mapping": {"email": "^a"}}).schema_after["^a"] == "String"  # not a pattern


@pytest.mark.parametrize(
    ("operation", "reason", "field"),
    [
        ({"op": "fill_nulls", "columns": ["country"], "strategy": "mean"}, "type_mismatch", "columns[0]"),
        (
            {"op": "fill_nulls", "columns": ["price", "signup_date"], "strategy": "median"},
            "type_mismatch",
            "columns[1]",
        ),
        ({"op": "fill_nulls", "columns": ["price"], "strategy": "constant"}, "invalid_value", "value"),
        ({"op": "fill_nulls", "columns": ["price"], "strategy": "mode", "value": 1}, "invalid_value", "value"),
        ({"op": "drop_columns", "columns": list(SCHEMA)}, "no_columns_left", "columns"),
        ({"op": "trim", "columns": ["price"]}, "type_mismatch", "columns[0]"),
        ({"op": "case", "columns": ["email", "active"], "to": "upper"}, "type_mismatch", "columns[1]"),
        ({"op": "replace", "columns": ["age"], "old": "x", "new": 1}, "type_mismatch", "old"),
        ({"op": "replace", "columns": ["age"], "old": 1, "new": "x"}, "type_mismatch", "new"),
        ({"op": "replace", "columns": ["age"], "old": None, "new": 1}, "invalid_value", "old"),
        ({"op": "replace", "columns": ["tags"], "old": "a", "new": "b"}, "type_mismatch", "columns[0]"),
        (
            {"op": "replace", "columns": ["age"], "old": "1", "new": "2", "whole_value": False},
            "type_mismatch",
            "columns[0]",
        ),
        ({"op": "replace", "columns": ["email"], "old": "", "new": "x", "whole_value": False}, "invalid_value", "old"),
        ({"op": "sort", "by": [{"column": "nope"}]}, "unknown_column", "by[0].column"),
        ({"op": "deduplicate", "columns": ["email", "nope"]}, "unknown_column", "columns[1]"),
    ],
)
def test_other_operations_refuse_what_cannot_work(operation: dict[str, Any], reason: str, field: str) -> None:
    details = refused(operation)
    assert (details["reason"], details["field"]) == (reason, f"operations[0].{field}")


def test_trim_and_case_without_columns_name_every_text_column() -> None:
    resolved = run({"op": "trim"}, {"op": "case", "to": "title"}, {"op": "drop_columns", "columns": ["emails"]})
    assert resolved.operations[0] == {"op": "trim", "columns": ["email", "emails", "country"]}
    assert resolved.operations[1] == {"op": "case", "columns": ["email", "emails", "country"], "to": "title"}
    with pytest.raises(InvalidParametersError) as caught:
        resolve(TransformerParams.model_validate({"operations": [{"op": "trim"}]}), {"n": "Int64"})
    assert caught.value.details["reason"] == "no_text_columns"


def test_repeated_columns_are_used_once_and_noted() -> None:
    resolved = run(
        {"op": "drop_columns", "columns": ["email", "EMAIL"]},
        {"op": "sort", "by": [{"column": "age"}, {"column": "age", "descending": True}]},
    )
    assert resolved.operations[0]["columns"] == ["email"]
    assert resolved.operations[1]["by"] == [{"column": "age", "descending": False}]
    assert resolved.notes[0][-1] == "column 'email' named twice; used once"


def test_replace_types_old_and_new_and_substring_replace_keeps_text() -> None:
    resolved = run(
        {"op": "replace", "columns": ["age", "quantity"], "old": "-1", "new": None},
        {"op": "replace", "columns": ["country"], "old": "N/A", "new": ""},
        {"op": "replace", "columns": ["email"], "old": "@old.com", "new": None, "whole_value": False},
        {"op": "replace", "columns": ["active"], "old": "no", "new": "yes"},
    )
    assert resolved.operations == [
        {"op": "replace", "columns": ["age", "quantity"], "old": -1, "new": None, "whole_value": True},
        {"op": "replace", "columns": ["country"], "old": "N/A", "new": "", "whole_value": True},
        {"op": "replace", "columns": ["email"], "old": "@old.com", "new": "", "whole_value": False},
        {"op": "replace", "columns": ["active"], "old": False, "new": True, "whole_value": True},
    ]


# ---------------------------------------------------------------------------------------------------- output


def test_operations_run_first_then_commands_and_each_keeps_its_origin() -> None:
    resolved = run(
        {"op": "rename", "mapping": {"email": "mail"}},
        commands=["remove rows where mail is null", "sort by age descending"],
    )
    assert resolved.origins == ["operations[0]", "remove rows where mail is null", "sort by age descending"]
    assert resolved.operations[1]["where"] == comparison("mail", "is_null")
    adapter: TypeAdapter[Any] = TypeAdapter(Operation)
    for operation in resolved.operations:
        assert adapter.dump_python(adapter.validate_python(operation), by_alias=True, mode="json") == operation


@pytest.mark.parametrize(
    ("command", "reason", "position", "suggestions"),
    [
        ("remove rows where emial is null", "ambiguous_column", 18, ["email", "emails"]),
        ("remove rows where age > abc", "type_mismatch", 24, []),
        ("keep rows where country = US and nope = 1", "unknown_column", 33, []),
        ("rename email to age", "column_exists", 16, []),
        ("rename emali to mail", "ambiguous_column", 7, ["email", "emails"]),
        ("add column total = price * nope", "unknown_column", 27, []),
        ("add column total = lower(price)", "type_mismatch", 19, []),
        ("add column total = price +", "syntax", 26, []),
        ("add column total = price $ 2", "syntax", 25, []),
        ("sort by price, nope", "unknown_column", 15, []),
        ("remove rows were email is null", "syntax", 12, ["'where'", "'with'", "'without'"]),
        ("delte rows where age > 1", "unknown_operation", 0, ["delete"]),
    ],
)
def test_a_refused_command_says_where_and_why(command: str, reason: str, position: int, suggestions: list[str]) -> None:
    details = refused(commands=["sort by age", command])
    assert details["field"] == "commands[1]"
    assert details["command"] == command
    assert (details["reason"], details["position"]) == (reason, position)
    assert details["suggestions"][: len(suggestions)] == suggestions


def test_an_expression_reads_unicode_names_and_its_errors_count_in_the_command() -> None:
    """QA #18: ``年齢 * 2`` failed with "unexpected character '年' at position 0" (counted in the expression, while
    the details said 18); a condition read the same name."""
    schema = {"年齢": "Int64", "name": "String"}
    params = TransformerParams(commands=["add column age2 = 年齢 * 2", "remove rows where 年齢 < 30"])
    resolved = resolve(params, schema)
    assert resolved.operations[0] == {"op": "derive", "column": "age2", "expression": "年齢 * 2"}
    assert resolved.schema_after["age2"] == "Int64"
    command = "add column age2 = 年齢 $ 2"
    with pytest.raises(InvalidParametersError) as caught:
        resolve(TransformerParams(commands=[command]), schema)
    assert caught.value.message == "unexpected character '$' at position 21"
    assert caught.value.details["position"] == 21 and command[21] == "$"
    operation = {"op": "derive", "column": "age2", "expression": "年齢 $ 2"}  # JSON: counted in the expression
    with pytest.raises(InvalidParametersError) as caught:
        resolve(TransformerParams.model_validate({"operations": [operation]}), schema)
    assert caught.value.message == "unexpected character '$' at position 3"


def test_a_too_long_command_is_refused_even_when_the_model_was_bypassed() -> None:
    params = TransformerParams.model_construct(operations=[], commands=["sort by " + "a" * 600])
    with pytest.raises(InvalidParametersError) as caught:
        resolve(params, SCHEMA)
    assert caught.value.details["reason"] == "too_long"


def test_dtype_families() -> None:
    assert [kind_of(d) for d in ("Int8", "UInt64", "Float32", "Decimal(precision=10, scale=2)", "String")] == [
        "int",
        "int",
        "float",
        "float",
        "text",
    ]
    assert [kind_of(d) for d in ("Categorical", "Enum(categories=['a'])", "Boolean", "Date", DATETIME_DTYPE)] == [
        "category",
        "category",
        "bool",
        "date",
        "datetime",
    ]
    assert [kind_of(d) for d in ("Time", "Duration(time_unit='us')", "List(Int64)", "Null", "Binary")] == ["other"] * 5
