"""semantic-mapper in the master chain: a column the user's data contract names keeps its name, and columns
of the same meaning from different sources are lined up into one (or the line-up is proposed), never when a
source holds values in both; "first" and "last" are a given name and a surname."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import AgentInputs, AgentResult, data_columns
from agents.master import semantic
from agents.master.contract import CONTRACT_COLUMNS_ARTIFACT
from agents.master.roles import detect_roles
from agents.master.sources import stack_sources
from agents.params.semantic_mapper import SemanticMapperParams

PRIMARY = pl.DataFrame(
    {
        "customer_id": ["C001", "C002", "C003", "C004"],
        "full_name": ["John Smith", "Maria Garcia", "Li Wei", "Anna Mueller"],
        "email": ["john@acme.com", "maria@globex.es", "li@initech.cn", "anna@example.de"],
        "dob": [dt.date(1980, 5, 1), dt.date(1975, 12, 31), dt.date(1990, 1, 15), dt.date(1985, 7, 20)],
    }
)
CRM = pl.DataFrame(
    {
        "first": ["John", "Maria", "Robert"],
        "last": ["Smith", "Garcia", "Brown"],
        "email": ["john@acme.com", "maria@globex.es", "rob@brown.com"],
        "Birth Date": ["01/05/1980", "31/12/1975", "04/04/1960"],
    }
)


def run(frame: pl.DataFrame, *, contract: dict[str, Any] | None = None, artifacts: Any = None, **params: Any) -> Any:
    inputs = AgentInputs(frame, "primary.csv", contract=contract, artifacts=artifacts or {})
    result: AgentResult = semantic.run(inputs, SemanticMapperParams(**params), lambda *_: None)
    assert result.envelope.status == "success"
    return result


def statuses(result: AgentResult) -> dict[str, str]:
    return {item["column"]: item["status"] for item in result.envelope.data["mappings"]}


def test_first_and_last_are_a_given_name_and_a_surname_only_as_the_whole_name() -> None:
    frame = pl.DataFrame(
        {
            "first": ["John", "Maria", "Robert"],
            "last": ["Smith", "Garcia", "Brown"],
            "first_order_date": ["2024-01-02", "2024-02-03", "2024-03-04"],
            "last_login": ["2024-01-02", "2024-02-03", "2024-03-04"],
        }
    )
    roles = {name: role.role for name, role in detect_roles(frame).items()}
    assert roles["first"] == "given_name" and roles["last"] == "surname"
    assert roles["first_order_date"] != "given_name" and roles["last_login"] != "surname"
    # the name says it, the values do not: half the name's confidence, under the threshold of a mapping
    dates = detect_roles(pl.DataFrame({"first": ["2024-01-02", "2024-02-03"], "last": ["2024-03-04", "2024-04-05"]}))
    assert dates["first"].role != "given_name" or dates["first"].confidence < 0.7
    assert dates["last"].role != "surname" or dates["last"].confidence < 0.7


@pytest.mark.parametrize("how", ["uploaded", "artifact"])
def test_columns_a_contract_names_keep_their_names_and_roles(how: str) -> None:
    frame = stack_sources(
        [
            (
                "primary",
                pl.DataFrame(
                    {
                        "given_name": ["Ann", "Bob"],
                        "surname": ["Lee", "Ray"],
                        "postcode": ["2000", "3000"],
                        "suburb": ["Ryde", "Kew"],
                    }
                ),
            )
        ]  # noqa: E501
    )
    named = ["given_name", "surname", "postcode"]
    if how == "uploaded":
        result = run(frame, contract={"required_columns": named})
    else:
        result = run(frame, artifacts={CONTRACT_COLUMNS_ARTIFACT: named})
    assert result.frame is not None
    assert data_columns(result.frame) == ["given_name", "surname", "postcode", "city"]  # suburb is no contract's
    found = statuses(result)
    assert found == {
        "given_name": "contract_name",
        "surname": "contract_name",
        "postcode": "contract_name",
        "suburb": "applied",
    }
    roles = result.envelope.data["semantic_roles"]
    assert {name: roles[name]["role"] for name in named} == {
        "given_name": "given_name",
        "surname": "surname",
        "postcode": "postcode",
    }
    assert result.envelope.summary_metrics["mapped_columns"] == 4
    # without a contract the same columns take their standard names
    plain = run(frame)
    assert plain.frame is not None and data_columns(plain.frame) == ["first_name", "last_name", "zip_code", "city"]


def test_columns_of_the_same_meaning_from_two_sources_are_lined_up() -> None:
    frame = stack_sources([("primary", PRIMARY), ("crm", CRM)])
    result = run(frame)
    assert result.frame is not None
    assert data_columns(result.frame) == ["customer_id", "full_name", "email", "birth_date", "first_name", "last_name"]
    # every value of both columns is in the one column, the text read day-first (31/12/1975 decides the order)
    assert result.frame["birth_date"].to_list() == [
        *PRIMARY["dob"].to_list(),
        dt.date(1980, 5, 1),
        dt.date(1975, 12, 31),
        dt.date(1960, 4, 4),
    ]
    found = statuses(result)
    assert found["dob"] == "applied" and found["Birth Date"] == "lined_up"
    assert found["first"] == "applied" and found["last"] == "applied"
    [line_up] = result.envelope.data["lined_up_columns"]
    assert line_up == {
        "column": "birth_date",
        "columns": ["dob", "Birth Date"],
        "sources": {"dob": ["primary"], "Birth Date": ["crm"]},
        "applied": True,
        "dtype": "Date",
    }
    mapping = next(item for item in result.envelope.data["mappings"] if item["column"] == "Birth Date")
    assert mapping["new_column"] == "birth_date" and mapping["applied"] is True
    assert result.envelope.data["renamed_columns"]["Birth Date"] == "birth_date"
    assert result.envelope.data["proposals"] == []
    assert result.envelope.data["semantic_roles"]["birth_date"]["role"] == "date_of_birth"


def test_dates_whose_day_month_order_is_a_tie_are_lined_up_as_text_as_written() -> None:
    crm = CRM.with_columns(pl.Series("Birth Date", ["01/05/1980", "02/03/1975", "04/04/1960"]))
    frame = stack_sources([("primary", PRIMARY), ("crm", crm)])
    result = run(frame)
    assert result.frame is not None
    assert result.frame.schema["birth_date"] == pl.String
    assert result.frame["birth_date"].to_list() == [
        "1980-05-01",
        "1975-12-31",
        "1990-01-15",
        "1985-07-20",
        "01/05/1980",
        "02/03/1975",
        "04/04/1960",
    ]


def test_columns_a_source_holds_values_in_both_are_not_lined_up() -> None:
    both = CRM.with_columns(pl.Series("dob", ["1980-05-01", None, None]).str.to_date())
    frame = stack_sources([("primary", PRIMARY), ("crm", both)])
    result = run(frame)
    assert result.frame is not None
    assert "Birth Date" in result.frame.columns and "birth_date" in result.frame.columns
    assert statuses(result)["Birth Date"] == "duplicate_target"
    assert result.envelope.data["lined_up_columns"] == []
    assert not [item for item in result.envelope.data["proposals"] if item["action"] == "line_up_columns"]


def test_one_source_alone_is_never_lined_up() -> None:
    frame = stack_sources([("primary", pl.DataFrame({"dob": ["1980-05-01", None], "birthday": [None, "1975-12-31"]}))])
    result = run(frame)
    assert statuses(result)["birthday"] == "duplicate_target"
    assert result.envelope.data["lined_up_columns"] == []


def test_a_line_up_with_a_guessed_mapping_is_proposed_with_the_mappings_that_apply_it() -> None:
    crm = CRM.rename({"Birth Date": "when"})  # a date of birth only by its values: a guess
    frame = stack_sources([("primary", PRIMARY), ("crm", crm)])
    result = run(frame)
    assert result.frame is not None
    assert "when" in result.frame.columns and "birth_date" in result.frame.columns
    [proposal] = [item for item in result.envelope.data["proposals"] if item["action"] == "line_up_columns"]
    assert proposal["apply"] == {"semantic-mapper": {"custom_column_mappings": {"when": "birth_date"}}}
    assert proposal["columns"] == ["dob", "when"]
    assert result.envelope.data["lined_up_columns"][0]["applied"] is False
    applied = run(frame, **proposal["apply"]["semantic-mapper"])
    assert applied.frame is not None
    assert "when" not in applied.frame.columns and applied.frame["birth_date"].null_count() == 0
    # the custom mapping is the surer one: it takes the name, dob is lined up into it, at dob's place
    assert {statuses(applied)[name] for name in ("dob", "when")} == {"applied", "lined_up"}
    assert data_columns(applied.frame) == ["customer_id", "full_name", "email", "birth_date", "first_name", "last_name"]


def test_without_apply_mappings_the_line_up_is_proposed_and_nothing_changes() -> None:
    frame = stack_sources([("primary", PRIMARY), ("crm", CRM)])
    result = run(frame, apply_mappings=False)
    assert result.frame is None
    [proposal] = [item for item in result.envelope.data["proposals"] if item["action"] == "line_up_columns"]
    assert proposal["apply"] == {"semantic-mapper": {"apply_mappings": True}}


def test_a_contract_column_takes_in_its_counterpart_of_another_source_under_its_own_name() -> None:
    primary = pl.DataFrame({"given_name": ["Ann", "Bob"], "postcode": ["2000", "3000"]})
    crm = pl.DataFrame({"first_name": ["Cy", "Di"], "zip": ["4000", "5000"]})
    frame = stack_sources([("primary", primary), ("crm", crm)])
    result = run(frame, contract={"required_columns": ["given_name", "postcode"]})
    assert result.frame is not None
    assert data_columns(result.frame) == ["given_name", "postcode"]
    assert result.frame["given_name"].to_list() == ["Ann", "Bob", "Cy", "Di"]
    assert result.frame["postcode"].to_list() == ["2000", "3000", "4000", "5000"]
    assert statuses(result) == {
        "given_name": "contract_name",
        "postcode": "contract_name",
        "first_name": "lined_up",
        "zip": "lined_up",
    }


def test_the_chain_keeps_the_contracts_names_and_lines_up_the_sources(tmp_path: Path) -> None:
    PRIMARY.write_csv(tmp_path / "primary.csv")
    CRM.write_csv(tmp_path / "source_crm.csv")
    (tmp_path / "schema.yaml").write_text("required_columns: [full_name, email]\noptional_columns: [dob]\n")
    inputs = {name: tmp_path / name for name in ("primary.csv", "source_crm.csv", "schema.yaml")}
    result = run_tool("master-my-data", [], inputs, {}, tmp_path / "out", lambda *_: None)
    assert all(agent["status"] == "success" for agent in result["agents"].values())
    master = pl.read_csv(tmp_path / "out" / "master_data.csv", infer_schema=False)
    data = [name for name in master.columns if name not in ("golden_id", "trust_score", "source_count", "record_count")]
    # dob is the contract's: it keeps its name and takes in the CRM's Birth Date
    assert data == ["customer_id", "full_name", "email", "dob", "first_name", "last_name"]
    assert master.height == 5  # John, Maria (both sources), Li, Anna, Robert
    robert = master.filter(pl.col("email") == "rob@brown.com").row(0, named=True)
    assert robert["dob"] == "1960-04-04" and robert["first_name"] == "Robert"
    assert master["dob"].null_count() == 0


def test_the_chain_shows_a_proposed_line_up_in_its_summary(tmp_path: Path) -> None:
    PRIMARY.write_csv(tmp_path / "primary.csv")
    CRM.rename({"Birth Date": "when"}).write_csv(tmp_path / "source_crm.csv")
    inputs = {name: tmp_path / name for name in ("primary.csv", "source_crm.csv")}
    result = run_tool("master-my-data", [], inputs, {}, tmp_path / "out", lambda *_: None)
    [proposal] = [item for item in result["summary"]["proposals"] if item["action"] == "line_up_columns"]
    assert proposal["apply"] == {"semantic-mapper": {"custom_column_mappings": {"when": "birth_date"}}}
    assert "'dob' + 'when' -> 'birth_date'" in proposal["description"]
    applied = run_tool("master-my-data", [], inputs, proposal["apply"], tmp_path / "applied", lambda *_: None)
    assert not [item for item in applied["summary"]["proposals"] if item["action"] == "line_up_columns"]
    master = pl.read_csv(tmp_path / "applied" / "master_data.csv", infer_schema=False)
    assert "when" not in master.columns and master["birth_date"].null_count() == 0


@pytest.mark.parametrize("key", ["country", "Country", "land"])
def test_a_value_mapping_reaches_every_column_lined_up_into_one(key: str) -> None:
    """custom_value_mappings keyed by the standard name or by either column maps the values of both sources once
    they are one column (review: only the one column the key named was mapped, the other source's values not)."""
    primary = pl.DataFrame({"email": ["a@x.com", "b@x.com"], "land": ["UK", "FR"]})
    crm = pl.DataFrame({"email": ["c@x.com"], "Country": ["UK"]})
    frame = stack_sources([("primary", primary), ("crm", crm)])
    result = run(
        frame,
        custom_column_mappings={"land": "country", "Country": "country"},
        custom_value_mappings={key: {"UK": "United Kingdom"}},
        apply_builtin_value_mappings=False,
    )
    assert result.frame is not None
    assert result.frame["country"].to_list() == ["United Kingdom", "FR", "United Kingdom"]
