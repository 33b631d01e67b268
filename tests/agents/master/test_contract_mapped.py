"""contract-enforcer runs before semantic-mapper in the master chain (PRODUCT.md fixes the order), so it checks
the contract against the columns as semantic-mapper would map them (QA row 7): a contract naming the standard
columns the output uses (first_name, email, birth_date) is checked on every source's values of those fields,
with no false "missing required value" for a source that spells the column differently, no "not in the data"
for a column the mapping creates, and the rules of those columns applied to every source. Counted apart with
Polars over the inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from agents.chain import run_tool
from agents.envelope import AgentInputs, data_columns
from agents.master import contract as enforcer
from agents.master.sources import stack_sources
from agents.params.contract_enforcer import ContractEnforcerParams, DataContract

PRIMARY: dict[str, list[Any]] = {
    "first_name": ["Émilie", "Jürgen", "Łukasz", "Zoë", "Ana", "John"],
    "last_name": ["Dubois", "Weiß", "Nowak", "O'Brien", "Silva", "Smith"],
    "email": ["emilie@mail.fr", "juergen@web.de", "lukasz@wp.pl", "zoe@eircom.ie", "ana@uol.com.br", "john@acme.com"],
    "dob": ["1985-03-14", "1970-11-02", "1992-07-30", "1979-12-24", "1999-09-09", "1980-01-01"],
    "city": ["Paris", "Berlin", "Warszawa", "Dublin", "São Paulo", "New York"],
}
CRM: dict[str, list[Any]] = {
    "GivenName": ["Émilie", "Jurgen", "Zoë", "Ana"],
    "Surname": ["DUBOIS", "WEISS", "O'BRIEN", None],
    "E-Mail": ["EMILIE@MAIL.FR", "JUERGEN@WEB.DE", "zoe@eircom.ie", "ANA@UOL.COM.BR"],
    "BirthDate": ["14/03/1985", "02/11/1970", "24/12/1979", "09/09/1999"],
    "Town": ["Paris", "Berlin", "Dublin", "Lisboa"],
}
SHOP: list[dict[str, Any]] = [
    {"name": "Émilie Dubois", "mail": "emilie@mail.fr", "born": "1985-03-14"},
    {"name": "Łukasz Nowak", "mail": "lukasz@wp.pl", "born": "1992-07-30"},
    {"name": "John Smith", "mail": None, "born": "1980-01-01"},
]
PATTERN = "^[a-z0-9._]+@[a-z0-9.]+$"
CONTRACT: dict[str, Any] = {
    "required_columns": ["first_name", "last_name", "email"],
    "column_types": {"birth_date": "date"},
    "value_constraints": {"email": {"pattern": PATTERN}, "city": {"allowed_values": ["Paris", "Berlin", "Dublin"]}},
}


def write_inputs(tmp: Path) -> dict[str, Path]:
    pl.DataFrame(PRIMARY).write_csv(tmp / "primary.csv")
    pl.DataFrame(CRM).write_csv(tmp / "source_crm.csv")
    (tmp / "source_shop.json").write_text(json.dumps(SHOP))
    (tmp / "schema.yaml").write_text(yaml.safe_dump(CONTRACT))
    return {name: tmp / name for name in ("primary.csv", "source_crm.csv", "source_shop.json", "schema.yaml")}


def violations(data: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {
        (item["type"], item["column"]): item["count"] for item in data["violations"] if item["type"] != "extra_column"
    }


def test_the_contract_is_checked_on_the_columns_as_mapped(tmp_path: Path) -> None:
    result = run_tool("master-my-data", [], write_inputs(tmp_path), {}, tmp_path / "out", lambda *_: None)
    assert result["status"] == "success", {agent: item["status"] for agent, item in result["agents"].items()}
    data = result["agents"]["contract-enforcer"]["data"]
    assert data["notes"] == []  # birth_date is in the data once dob, BirthDate and born are lined up
    # Counted apart: the fields of every source, under the contract's names.
    first = [*PRIMARY["first_name"], *CRM["GivenName"], *[None] * len(SHOP)]
    last = [*PRIMARY["last_name"], *CRM["Surname"], *[None] * len(SHOP)]
    email = [*PRIMARY["email"], *CRM["E-Mail"], *(row["mail"] for row in SHOP)]
    city = [*PRIMARY["city"], *CRM["Town"], *[None] * len(SHOP)]
    expected = {
        ("missing_required_value", "first_name"): sum(value is None for value in first),
        ("missing_required_value", "last_name"): sum(value is None for value in last),
        ("missing_required_value", "email"): sum(value is None for value in email),
        ("pattern_mismatch", "email"): pl.Series(email).drop_nulls().str.contains(PATTERN).not_().sum(),
        ("value_not_allowed", "city"): sum(value not in (None, "Paris", "Berlin", "Dublin") for value in city),
    }
    assert violations(data) == {key: count for key, count in expected.items() if count}
    assert expected[("missing_required_value", "first_name")] == len(SHOP)  # the shop has full names only
    assert expected[("missing_required_value", "email")] == 1 and expected[("pattern_mismatch", "email")] == 3
    # the three sources' dates, lined up, are all dates: checked, none fails
    assert all(item["invalid_values"] == 0 for item in data["type_checks"])
    assert data["mapped_columns"] == {
        "dob": "birth_date",
        "GivenName": "first_name",
        "Surname": "last_name",
        "E-Mail": "email",
        "mail": "email",
        "BirthDate": "birth_date",
        "born": "birth_date",
        "Town": "city",
    }
    issues = {
        (issue["column"], issue["issue_type"]) for issue in result["agents"]["contract-enforcer"]["row_level_issues"]
    }
    assert {column for column, _ in issues} <= {"first_name", "last_name", "email", "city"}
    # semantic-mapper finds the contract's columns in place; the golden records carry them
    master = pl.read_csv(tmp_path / "out" / "master_data.csv", infer_schema=False)
    assert {"first_name", "last_name", "email", "birth_date", "city"} <= set(master.columns)
    assert not {"GivenName", "E-Mail", "mail", "dob", "BirthDate", "born", "Town"} & set(master.columns)


def test_rename_columns_decides_whether_the_data_goes_on_mapped() -> None:
    frame = stack_sources(
        [
            ("primary", pl.DataFrame({"dob": PRIMARY["dob"], "Mail": PRIMARY["email"]})),
            ("crm", pl.DataFrame({"BirthDate": CRM["BirthDate"], "E-Mail": CRM["E-Mail"]})),
        ]
    )
    contract = DataContract.model_validate({"required_columns": ["email"], "column_types": {"birth_date": "date"}})
    mapped = enforcer.run(AgentInputs(frame, "primary.csv"), ContractEnforcerParams(contract=contract), lambda *_: None)
    assert mapped.frame is not None and data_columns(mapped.frame) == ["birth_date", "email"]
    assert mapped.frame["email"].to_list() == [*PRIMARY["email"], *CRM["E-Mail"]]
    assert mapped.envelope.data["mapped_columns"] == {
        "dob": "birth_date",
        "Mail": "email",
        "BirthDate": "birth_date",
        "E-Mail": "email",
    }
    assert violations(mapped.envelope.data) == {} and mapped.envelope.data["notes"] == []
    # Without rename_columns the data keeps its names: the columns of two sources are checked each on its own,
    # and the report says so (the old behaviour, now explained).
    params = ContractEnforcerParams(contract=contract, rename_columns=False)
    kept = enforcer.run(AgentInputs(frame, "primary.csv"), params, lambda *_: None)
    notes = kept.envelope.data["notes"]
    assert any("'dob' + 'BirthDate' -> 'birth_date'; 'Mail' + 'E-Mail' -> 'email'" in note for note in notes), notes
    assert kept.frame is None and kept.envelope.data["mapped_columns"] == {}
    assert ("missing_required_column", "email") in violations(kept.envelope.data)
