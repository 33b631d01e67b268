"""transform-my-data through agents.chain.run_tool: the outputs, the recipe that reproduces the output byte for byte,
an identity recipe that writes the input back byte for byte (its missing-value tokens as empty fields: they are
nulls, PRODUCT.md "Missing values"; as written with ``inputs.primary.null_tokens`` []), the failing cast, the
sentences in the result summary, and the dataset version's schema every tool records (``summary["dataset"]``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.options import RunOptions

TOOL = "transform-my-data"
INPUT = """\
id,code,email,country,signup,seen_at,amount,note
1,00123,ann@example.com,US,2024-01-05,2024-01-05T10:00:00Z,12.5,NA
2,0042,,CA,,2024-02-01T08:30:00Z,,fine
3,0007,bob@example.com,,2023-12-31,,NA,
4,01000,carla@mail.org,US,2024-03-01,2024-03-01T00:00:00Z,3.0,n/a
5,00999,bob@example.com,GB,2024-02-29,2024-02-29T23:59:59Z,abc,  spaced  
"""


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def write(tmp_path: Path, text: str = INPUT, name: str = "primary.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def transform(
    tmp_path: Path, primary: Path, out: str, inputs: dict[str, Any] | None = None, **parameters: Any
) -> dict[str, Any]:
    given = {"transformer": parameters, **({"inputs": inputs} if inputs is not None else {})}
    result = run_tool(TOOL, [], {"primary.csv": primary}, given, tmp_path / out, ignore)
    json.dumps(result, allow_nan=False)
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_recipe_and_summary(tmp_path: Path) -> None:
    primary = write(tmp_path)
    operations = [
        {"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}},
        {"op": "rename", "mapping": {"seen_at": "last_seen"}},
        {"op": "derive", "column": "year", "expression": "year(signup)"},
        {"op": "sort", "by": [{"column": "code", "descending": True}]},
    ]
    result = transform(tmp_path, primary, "out", operations=operations)
    out = tmp_path / "out"
    assert result["status"] == "success"
    names = [item["name"] for item in result["outputs"]]
    assert names[:3] == ["transformed_data.csv", "transformed_data.parquet", "recipe.json"]
    assert {"transform_report.json", "transform_report.xlsx"} <= set(names)
    assert "quarantine.csv" not in names and not (out / "quarantine.csv").exists()
    assert all((out / name).exists() for name in names)

    written = (out / "transformed_data.csv").read_text().splitlines()
    assert written[0] == "id,code,email,country,signup,last_seen,amount,note,year"
    # codes keep their zeros; the renamed timestamps keep their layout; rows sorted by code, descending
    assert written[1:] == [
        "4,01000,carla@mail.org,US,2024-03-01,2024-03-01T00:00:00Z,3.0,,2024",
        "5,00999,bob@example.com,GB,2024-02-29,2024-02-29T23:59:59Z,abc,  spaced  ,2024",
        "1,00123,ann@example.com,US,2024-01-05,2024-01-05T10:00:00Z,12.5,,2024",
        "3,0007,bob@example.com,,2023-12-31,,,,2023",
    ]
    parquet = pl.read_parquet(out / "transformed_data.parquet")
    assert parquet.columns == written[0].split(",")  # no row index column
    assert parquet.schema["signup"] == pl.Date and parquet.schema["code"] == pl.String
    assert parquet["id"].to_list() == [4, 5, 1, 3]

    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["tool_id"] == TOOL and recipe["recipe_version"] == 1
    assert [operation["op"] for operation in recipe["operations"]] == ["filter", "rename", "derive", "sort"]

    summary = result["summary"]
    assert summary["transformations"] == [
        "Dropped 1 row where email was null",
        "Renamed seen_at to last_seen",
        "Added column year = year(signup)",
        "Sorted rows by code descending (4 rows moved)",
    ]
    assert summary["rows_affected"] == 1 + 4  # the row dropped, the values derived
    assert summary["rows_out"] == 4 and summary["rows_quarantined"] == 0
    assert summary["dataset"]["name"] == "transformed_data.csv" and summary["dataset"]["rows"] == 4
    assert summary["dataset"]["columns"][-1] == {"name": "year", "dtype": "Int64"}
    assert {"name": "code", "dtype": "String"} in summary["dataset"]["columns"]
    steps = result["agents"]["transformer"]["data"]["steps"]
    assert [step["rows_affected"] for step in steps] == [1, 0, 4, 0]
    report = json.loads((out / "transform_report.json").read_text())
    assert report["summary"]["transformations"] == summary["transformations"]


def test_replaying_the_recipe_reproduces_the_output(tmp_path: Path) -> None:
    primary = write(tmp_path)
    operations = [
        {"op": "trim", "columns": ["note"]},
        {"op": "cast", "columns": ["amount"], "to": "number", "on_invalid": "null"},
        {"op": "fill_nulls", "columns": ["amount"], "strategy": "median"},
        {"op": "filter", "action": "keep", "where": {"column": "country", "cmp": "in", "value": ["US", "GB"]}},
        {"op": "derive", "column": "label", "expression": "concat(upper(country), '-', code)"},
        {"op": "deduplicate", "columns": ["email"], "keep": "last"},
        {"op": "case", "columns": ["email"], "to": "upper"},
    ]
    first = transform(tmp_path, primary, "first", operations=operations)
    recipe = json.loads((tmp_path / "first" / "recipe.json").read_text())
    again = transform(tmp_path, primary, "again", operations=recipe["operations"])
    assert sha256(tmp_path / "again" / "transformed_data.csv") == sha256(tmp_path / "first" / "transformed_data.csv")
    assert json.loads((tmp_path / "again" / "recipe.json").read_text()) == recipe
    assert again["summary"]["transformations"] == first["summary"]["transformations"]
    written = (tmp_path / "first" / "transformed_data.csv").read_text().splitlines()
    assert written[1:] == [
        "1,00123,ANN@EXAMPLE.COM,US,2024-01-05,2024-01-05T10:00:00Z,12.5,,US-00123",
        "4,01000,CARLA@MAIL.ORG,US,2024-03-01,2024-03-01T00:00:00Z,3.0,,US-01000",
        "5,00999,BOB@EXAMPLE.COM,GB,2024-02-29,2024-02-29T23:59:59Z,7.75,spaced,GB-00999",
    ]


def test_an_identity_recipe_writes_the_input_back_byte_for_byte(tmp_path: Path) -> None:
    primary = write(tmp_path)
    for out, operations in {
        "sorted": [{"op": "sort", "by": [{"column": "id"}]}],
        "nothing_to_fill": [{"op": "fill_nulls", "columns": ["id"], "strategy": "constant", "value": 0}],
        "renamed_back": [{"op": "rename", "mapping": {"seen_at": "x"}}, {"op": "rename", "mapping": {"x": "seen_at"}}],
    }.items():
        result = transform(tmp_path, primary, out, operations=operations)
        nulled = INPUT.replace(",NA\n", ",\n").replace(",NA,", ",,").replace(",n/a\n", ",\n")
        assert (tmp_path / out / "transformed_data.csv").read_text(encoding="utf-8") == nulled, out
        assert result["summary"]["rows_affected"] == 0
        as_written = transform(
            tmp_path, primary, f"{out}_as_written", {"primary": {"null_tokens": []}}, **{"operations": operations}
        )
        assert (tmp_path / f"{out}_as_written" / "transformed_data.csv").read_bytes() == primary.read_bytes(), out
        assert as_written["summary"]["rows_affected"] == 0
    assert result["summary"]["dataset"]["columns"][:2] == [
        {"name": "id", "dtype": "Int64"},
        {"name": "code", "dtype": "String"},
    ]


def test_a_cast_that_fails_fails_the_task(tmp_path: Path) -> None:
    primary = write(tmp_path)
    with pytest.raises(InvalidParametersError) as caught:
        transform(tmp_path, primary, "out", operations=[{"op": "cast", "columns": ["amount"], "to": "number"}])
    assert caught.value.code == "INVALID_PARAMETERS"
    assert caught.value.details["column"] == "amount" and caught.value.details["examples"] == ["abc"]
    assert "1 value of 'amount' cannot be converted to number" in caught.value.message


def test_the_seed_command(tmp_path: Path) -> None:
    rows = ["id,email"] + [f"{i},{'' if i % 4 == 0 else f'user{i}@example.com'}" for i in range(1, 601)]
    primary = write(tmp_path, "\n".join(rows) + "\n")
    result = transform(tmp_path, primary, "out", commands=["remove rows where email is null"])
    assert result["summary"]["transformations"] == ["Dropped 150 rows where email was null"]
    assert result["summary"]["rows_affected"] == 150
    step = result["agents"]["transformer"]["data"]["steps"][0]
    assert step["command"] == "remove rows where email is null" and step["origin"] == "commands[0]"


def test_a_division_by_zero_writes_empty_cells_and_says_so(tmp_path: Path) -> None:
    """The QA report's ``n / (n - n)``: the file held ``inf`` and the step said "0 empty values", with no alert."""
    primary = write(tmp_path, "id,n\n1,4\n2,0\n3,\n4,-2\n")
    result = transform(tmp_path, primary, "out", commands=["add column r = n / (n - n)"])
    written = (tmp_path / "out" / "transformed_data.csv").read_text().splitlines()
    assert written == ["id,n,r", "1,4,", "2,0,", "3,,", "4,-2,"]
    assert result["summary"]["transformations"] == [
        "Added column r = n / (n - n) (4 empty values, 3 of them divisions by zero)"
    ]
    envelope = result["agents"]["transformer"]
    assert envelope["data"]["steps"][0]["details"]["divisions_by_zero"] == 3
    alerts = [alert for alert in envelope["alerts"] if alert["category"] == "division_by_zero"]
    assert [alert["message"] for alert in alerts] == [
        "Step 1: 3 rows of 'r' (n / (n - n)) divide by zero and were left empty"
    ]


def test_every_tool_records_its_dataset(tmp_path: Path) -> None:
    primary = write(tmp_path)
    cleaned = run_tool("clean-my-data", [], {"primary.csv": primary}, {}, tmp_path / "clean", ignore)
    dataset = cleaned["summary"]["dataset"]
    frame = pl.read_csv(tmp_path / "clean" / "cleaned_data.csv")
    assert dataset["name"] == "cleaned_data.csv" and dataset["rows"] == frame.height == cleaned["summary"]["rows_out"]
    assert [column["name"] for column in dataset["columns"]] == frame.columns

    profiled = run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": primary}, {}, tmp_path / "p", ignore)
    dataset = profiled["summary"]["dataset"]
    assert dataset["name"] == "primary.csv" and dataset["rows"] == 5
    dtypes = {column["name"]: column["dtype"] for column in dataset["columns"]}
    assert dtypes["signup"] == "Date" and dtypes["seen_at"] == "Datetime(time_unit='us', time_zone='UTC')"
    assert dtypes["amount"] == "String" and dtypes["note"] == "String"  # text, as a transform reads it

    streamed = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {"primary.csv": primary},
        {},
        tmp_path / "streamed",
        ignore,
        run_options=RunOptions(streaming_threshold_bytes=10),
    )
    assert streamed["summary"]["inputs"]["primary"]["streamed"] is True
    dataset = streamed["summary"]["dataset"]
    assert dataset["name"] == "primary.csv" and dataset["rows"] == 5
    assert [column["name"] for column in dataset["columns"]] == list(dtypes)

    transformed = transform(tmp_path, primary, "t", operations=[{"op": "drop_columns", "columns": ["note"]}])
    dataset = transformed["summary"]["dataset"]
    assert dataset["name"] == "transformed_data.csv" and dataset["rows"] == 5
    assert "note" not in [column["name"] for column in dataset["columns"]]
