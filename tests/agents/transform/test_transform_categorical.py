"""Categorical and Enum columns are text to transform-my-data. clean-my-data's type-fixer turns low-cardinality text
into Categorical and records that dtype in its dataset's schema, which the transform route checks commands against
before it makes a task: text commands on a cleaned dataset were refused there ("'contains' works on text; column
'manufacturer' holds text categories (Categorical)"). Here the chain runs as the service runs it: clean-my-data
through ``run_tool``, the route's check against the schema its run recorded, then transform-my-data on its
``cleaned_data.csv`` handed over as the chained task's primary (service.versions); the results must be those of the
same commands on the raw upload. A primary that really holds Categorical/Enum columns (a Parquet upload) gives the
same output as its text, in memory and streamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN
from service.lifecycle import _check_transform, recorded_schema
from service.versions import DatasetVersion, with_version_options
from tests.agents.transform.test_transform_streamed import assert_same_run, in_memory

TOOL = "transform-my-data"
MAKERS = ["BOEING", "AIRBUS INDUSTRIE", "EMBRAER", "BOMBARDIER INC"]
ENGINES = ["Turbo-fan", "Turbo-jet", "Reciprocating"]


def ignore(*args: Any) -> None:
    pass


def planes_csv() -> str:
    """120 planes: manufacturer and engine repeat enough for the type-fixer to make them Categorical; nothing in
    them for clean-my-data to change, so the cleaned dataset holds the same values as the upload."""
    lines = ["tailnum,manufacturer,engine,seats,contact"]
    for i in range(1, 121):
        domain = "acme.com" if i % 2 else "fleet.example.org"
        lines.append(f"N{i:04d},{MAKERS[i % 4]},{ENGINES[i % 3]},{50 + (i * 7) % 300},ops{i}@{domain}")
    return "\n".join(lines) + "\n"


# Every text operation, comparison and function on the categorical columns (the QA report's commands first).
COMMANDS = [
    "keep rows where manufacturer contains BOEING",
    "lowercase manufacturer",
    "trim manufacturer",
    "keep rows where manufacturer starts with AIR",
    "replace text INDUSTRIE with IND in manufacturer",
    "add column maker = lower(manufacturer)",
    "remove rows where engine ends with fan",
    "keep rows where manufacturer contains boeing ignoring case",
    "keep rows where manufacturer = embraer ignoring case",
    "keep rows where engine in (Turbo-fan, Reciprocating)",
    "keep rows where manufacturer > BOEING",
    "keep rows where manufacturer between AIRBUS and BOEING",
    "keep rows where manufacturer != column engine",
    "uppercase",
    "trim",
    "replace EMBRAER with Embraer S.A. in manufacturer",
    "fill missing engine with unknown",
    "add column label = concat(manufacturer, ' / ', engine)",
    "add column letters = length(engine)",
    "add column maker_copy = coalesce(manufacturer, engine)",
    "sort by manufacturer descending, tailnum",
    "convert engine to text",
]


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The upload and clean-my-data's result on it (run once: the commands below share it)."""
    folder = tmp_path_factory.mktemp("planes")
    raw = folder / "primary.csv"
    raw.write_text(planes_csv(), encoding="utf-8")
    result = run_tool("clean-my-data", [], {"primary.csv": raw}, {}, folder / "clean", ignore)
    return raw, result


def test_the_cleaned_dataset_records_categorical_columns(cleaned: tuple[Path, dict[str, Any]]) -> None:
    """The premise: the type-fixer made the repeated text Categorical, and the cleaned file holds the upload's
    values (so the transform of either must give the same output)."""
    raw, result = cleaned
    schema = recorded_schema(result["summary"]["dataset"])
    assert schema is not None
    assert schema["manufacturer"] == "Categorical" and schema["engine"] == "Categorical"
    cleaned_csv = raw.parent / "clean" / "cleaned_data.csv"
    assert cleaned_csv.read_text(encoding="utf-8") == raw.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_text_command_on_a_cleaned_dataset_runs_as_on_the_upload(
    command: str, cleaned: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    raw, result = cleaned
    transformer = {"commands": [command]}
    _check_transform(transformer, result["summary"]["dataset"])  # the route's check: was a 422 before any task
    # The worker's run of the chained task: the source's dataset version becomes its primary, read as uploaded.
    version = DatasetVersion("source", "cleaned_data.csv", "key", {})
    parameters = with_version_options({"transformer": transformer}, version)
    source = raw.parent / "clean" / version.name
    chained = run_tool(TOOL, [], {version.local_name: source}, parameters, tmp_path / "chained", ignore)
    direct = run_tool(TOOL, [], {"primary.csv": raw}, {"transformer": transformer}, tmp_path / "direct", ignore)
    assert chained["status"] == direct["status"] == "success"
    assert chained["summary"]["transformations"] == direct["summary"]["transformations"]
    assert chained["summary"]["rows_affected"] == direct["summary"]["rows_affected"]
    written = (tmp_path / "chained" / "transformed_data.csv").read_bytes()
    assert written == (tmp_path / "direct" / "transformed_data.csv").read_bytes()


def test_the_report_s_commands_give_their_figures(cleaned: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    raw, result = cleaned
    source = raw.parent / "clean" / "cleaned_data.csv"
    parameters = {
        "transformer": {"commands": ["keep rows where manufacturer contains BOEING", "lowercase manufacturer"]}
    }
    _check_transform(parameters["transformer"], result["summary"]["dataset"])
    run = run_tool(TOOL, [], {"primary.csv": source}, parameters, tmp_path / "out", ignore)
    assert run["summary"]["transformations"] == [
        "Kept 30 rows where manufacturer contains BOEING (ignoring case) (dropped 90)",
        "Lowercased 30 manufacturer values",
    ]
    written = pl.read_csv(tmp_path / "out" / "transformed_data.csv")
    assert set(written["manufacturer"]) == {"boeing"} and written.height == 30


# ---------------------------------------------------------------------------------------------------- typed data


def planes(categories: bool) -> pl.DataFrame:
    """The planes as a typed primary: manufacturer Categorical and engine an Enum (``categories``), or both text;
    a few empty cells for the fills."""
    frame = pl.read_csv(planes_csv().encode(), infer_schema_length=0).with_columns(pl.col("seats").cast(pl.Int64))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 3).then(None).otherwise(pl.col("engine")).alias("engine"),
        pl.when(pl.int_range(pl.len()) % 23 == 5).then(None).otherwise(pl.col("manufacturer")).alias("manufacturer"),
    )
    if categories:
        frame = frame.with_columns(
            pl.col("manufacturer").cast(pl.Categorical),
            pl.col("engine").cast(pl.Enum(list(reversed(ENGINES)))),  # its category order is not the text order
        )
    return frame


TYPED_COMMANDS = [
    *COMMANDS,
    "fill missing manufacturer with the most frequent value",
    "fill missing engine with previous value",
    "replace missing values in engine with Unknown",
    "convert engine to integer and set invalid values to empty",
    "keep rows where engine < Turbo-jet",
]


@pytest.mark.parametrize("command", TYPED_COMMANDS)
def test_a_categorical_primary_gives_the_output_of_its_text(command: str, tmp_path: Path) -> None:
    """A Parquet upload with Categorical/Enum columns: the CSV written is the one its text gives, and every column an
    operation writes is text (String), as resolution said it would be."""
    outputs = {}
    for categories in (True, False):
        primary = tmp_path / f"{categories}" / "primary.parquet"
        primary.parent.mkdir()
        planes(categories).write_parquet(primary)
        parameters = {"transformer": {"commands": [command]}}
        result = run_tool(TOOL, [], {"primary.parquet": primary}, parameters, primary.parent / "out", ignore)
        assert result["status"] == "success"
        data = result["agents"]["transformer"]["data"]
        assert data["schema_after"] == data["schema_expected"]
        outputs[categories] = (primary.parent / "out" / "transformed_data.csv").read_bytes(), data
    typed, text = outputs[True], outputs[False]
    assert typed[0] == text[0]
    assert typed[1]["transformations"] == text[1]["transformations"]
    assert [step["rows_affected"] for step in typed[1]["steps"]] == [step["rows_affected"] for step in text[1]["steps"]]


def test_a_column_written_becomes_text_and_the_others_keep_their_categories() -> None:
    frame = (
        planes(True).with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
    )
    result = in_memory(frame, [{"op": "case", "columns": ["manufacturer"], "to": "lower"}])
    assert result.frame is not None
    assert result.frame.schema["manufacturer"] == pl.String
    assert isinstance(result.frame.schema["engine"], pl.Enum)
    step = result.envelope.data["steps"][0]
    assert step["columns_retyped"] == {"manufacturer": {"before": "Categorical", "after": "String"}}
    assert step["rows_affected"] == planes(True)["manufacturer"].drop_nulls().len()  # every value changed


def test_categorical_columns_streamed_as_in_memory(tmp_path: Path) -> None:
    frame = (
        planes(True).with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
    )
    operations: list[dict[str, Any]] = [
        {"op": "filter", "action": "remove", "where": {"column": "engine", "cmp": "ends_with", "value": "jet"}},
        {"op": "fill_nulls", "columns": ["manufacturer"], "strategy": "mode"},
        {"op": "fill_nulls", "columns": ["engine"], "strategy": "constant", "value": "none"},
        {"op": "trim", "columns": None},
        {"op": "derive", "column": "maker", "expression": "upper(manufacturer)"},
        {"op": "filter", "action": "keep", "where": {"column": "manufacturer", "cmp": ">=", "value": "BOEING"}},
    ]
    result = assert_same_run(frame, operations, tmp_path)
    assert result.scan is not None
    out = result.scan.collect()
    assert out.schema["manufacturer"] == out.schema["engine"] == out.schema["maker"] == pl.String
    assert out["manufacturer"].null_count() == 0 and "none" in set(out["engine"])
