"""The master chain's inputs: sources stacked with their labels and rows, the data contract, input names."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from agents import registry
from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, data_columns
from agents.errors import InvalidFileError
from agents.master.sources import read_contract, stack_sources


def test_sources_stack_with_their_labels_rows_and_every_column() -> None:
    primary = pl.DataFrame({"name": ["ann", "bob"], "zip": [1000, 2000]})
    crm = pl.DataFrame({"name": ["cy"], "zip": ["SW1A 1AA"], "email": ["cy@example.com"]})
    stacked = stack_sources([("primary", primary), ("crm", crm)])
    assert stacked.columns == [ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, "name", "zip", "email"]
    assert data_columns(stacked) == ["name", "zip", "email"]
    assert stacked[ROW_INDEX_COLUMN].to_list() == [1, 2, 3]
    assert stacked[SOURCE_COLUMN].to_list() == ["primary", "primary", "crm"]
    assert stacked[SOURCE_ROW_COLUMN].to_list() == [1, 2, 1]
    assert stacked["zip"].to_list() == ["1000", "2000", "SW1A 1AA"]  # an integer and a text column: text
    assert stacked["email"].to_list() == [None, None, "cy@example.com"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("schema.json", '{"required_columns": ["email"], "column_types": {"age": "integer"}}'),
        ("schema.yaml", "required_columns: [email]\ncolumn_types:\n  age: integer\n"),
    ],
)
def test_a_contract_reads_from_json_or_yaml(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert read_contract(path, name) == {"required_columns": ["email"], "column_types": {"age": "integer"}}


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("schema.yaml", "- a\n- b\n", "a data contract is a mapping"),
        ("schema.json", "{not json", "not a readable data contract"),
        ("schema.yaml", "!!python/object/apply:os.system ['true']", "not a readable data contract"),
        ("schema.yaml", "", "a data contract is a mapping"),
    ],
)
def test_a_contract_that_is_not_one_is_refused_with_a_reason(tmp_path: Path, name: str, text: str, said: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidFileError, match=said):
        read_contract(path, name)


def test_input_names_of_master_data() -> None:
    assert registry.input_role("source_crm.csv", "master-my-data") == "source"
    assert registry.input_role("source_shop.parquet", "master-my-data") == "source"
    assert registry.input_role("schema.yaml", "master-my-data") == "schema"
    assert registry.input_role("source_crm.csv", "clean-my-data") is None
    assert registry.input_role("source_CRM.csv", "master-my-data") is None  # labels are lowercase
    assert registry.source_label("source_crm.csv") == "crm"
    assert "application/yaml" in registry.accepted_content_types("schema.yaml")
    assert registry.input_set_problem(["primary.csv", "source_a.csv", "source_b.xlsx", "schema.json"]) is None
    assert "both source 'a'" in (registry.input_set_problem(["primary.csv", "source_a.csv", "source_a.json"]) or "")
    assert "both the primary" in (registry.input_set_problem(["primary.csv", "primary.xlsx"]) or "")
    too_many = ["primary.csv", *(f"source_s{index}.csv" for index in range(10))]
    assert "at most 9 sources" in (registry.input_set_problem(too_many) or "")


def test_the_primary_label_is_the_primarys() -> None:
    assert registry.input_role("source_primary.csv", "master-my-data") is None
    assert registry.input_role("source_primary2.csv", "master-my-data") == "source"


def test_a_contract_not_in_utf8_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_bytes("required_columns: [café]\n".encode("latin-1"))
    with pytest.raises(InvalidFileError, match="not UTF-8"):
        read_contract(path, "schema.yaml")


def test_user_columns_named_like_the_bookkeeping_are_renamed(tmp_path: Path) -> None:
    from agents.readers import read_table_with_report

    path = tmp_path / "primary.csv"
    path.write_text("__source__,__source_row__,name\nweb,7,ann\n")
    frame, report = read_table_with_report(path, "primary.csv")
    assert frame.columns == ["__source___2", "__source_row___2", "name"]
    assert [item["original"] for item in report["renamed_columns"]] == ["__source__", "__source_row__"]


@pytest.mark.parametrize("tool", ["clean-my-data", "master-my-data"])
def test_bytes_and_durations_are_written_as_text(tmp_path: Path, tool: str) -> None:
    import datetime as dt

    from agents.chain import run_tool

    source = tmp_path / "primary.parquet"
    pl.DataFrame(
        {
            "name": ["ann", "bob", "cy"],
            "blob": [b"\x00ab", None, b"xyz"],
            "took": [dt.timedelta(seconds=90), dt.timedelta(hours=2), None],
        }
    ).write_parquet(source)
    result = run_tool(tool, [], {"primary.parquet": source}, {}, tmp_path / "out", lambda *_: None)
    assert result["status"] in {"success", "partial"}
    data = "cleaned_data.csv" if tool == "clean-my-data" else "master_data.csv"
    written = pl.read_csv(tmp_path / "out" / data, infer_schema=False)
    assert written["blob"].to_list() == ["AGFi", None, "eHl6"]
    assert written["took"].to_list() == ["PT1M30S", "PT2H", None]


def test_columns_spelled_in_another_case_stack_as_one() -> None:
    from agents.master.sources import align_columns

    primary = pl.DataFrame({"name": ["ann"], "email": ["a@x.com"]})
    crm = pl.DataFrame({"Name": ["ann"], "EMAIL": ["a@x.com"], "Phone": ["1"]})
    both = pl.DataFrame({"NAME": ["x"], "Name": ["y"]})  # two spellings in one source: left alone
    aligned, renames = align_columns([("primary", primary), ("crm", crm), ("both", both)])
    assert aligned[1][1].columns == ["name", "email", "Phone"]
    assert aligned[2][1].columns == ["NAME", "Name"]
    assert renames == [
        {"source": "crm", "column": "Name", "renamed_to": "name"},
        {"source": "crm", "column": "EMAIL", "renamed_to": "email"},
    ]
    assert stack_sources(aligned[:2]).columns[3:] == ["name", "email", "Phone"]


def test_rows_a_contract_removes_stay_in_the_crosswalk(tmp_path: Path) -> None:
    from agents.chain import run_tool

    source = tmp_path / "primary.csv"
    source.write_text("name,email,age\nann,a@x.com,34\nbob,b@x.com,-3\ncy,c@x.com,51\nann,a@x.com,34\n")
    parameters = {
        "contract-enforcer": {
            "contract": {"value_constraints": {"age": {"min": 0, "max": 120}}},
            "default_value_strategy": "drop",
        }
    }
    run_tool("master-my-data", [], {"primary.csv": source}, parameters, tmp_path / "out", lambda *_: None)
    crosswalk = pl.read_csv(tmp_path / "out" / "crosswalk.csv")
    assert crosswalk["source_row"].to_list() == [1, 2, 3, 4]
    removed = crosswalk.filter(pl.col("source_row") == 2).row(0, named=True)
    assert removed["golden_id"] is None and removed["rule"] == "removed by contract-enforcer"
    kept = crosswalk.filter(pl.col("golden_id").is_not_null())
    assert kept.height == 3 and kept["golden_id"].n_unique() == 2  # ann twice: one golden record
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv")
    # review: the file had three empty columns first (_row_index, _agent_id, _reason)
    assert quarantine.columns[:3] == ["row_index", "agent_id", "reason"]
    removed_row = quarantine.row(0, named=True)
    assert (removed_row["row_index"], removed_row["agent_id"]) == (2, "contract-enforcer") and removed_row["reason"]
    assert quarantine["name"].to_list() == ["bob"]


def test_a_column_typed_differently_in_two_sources_stacks_as_written() -> None:
    import datetime as dt

    pairs = [
        ([dt.date(2020, 1, 1)], [5], ["2020-01-01", "5"]),  # a date never becomes a day number
        ([True], [dt.timedelta(days=1)], ["true", "P1D"]),  # types with no common one: no failure
        ([b"a"], ["s"], ["YQ==", "s"]),
        ([1], [2.5], [1.0, 2.5]),  # numbers stay numbers
    ]
    for first, second, expected in pairs:
        stacked = stack_sources([("primary", pl.DataFrame({"x": first})), ("crm", pl.DataFrame({"x": second}))])
        assert stacked["x"].to_list() == expected
