"""agents.spill reads a Parquet or NDJSON file as agents.readers does (structs flattened, nested values as JSON text,
Null columns as text, blank and repeated names tidied, ISO date text typed, late NDJSON keys kept): the same frame,
the same read report and the same errors. The chain streams such a primary above its threshold (a Parquet file's
size being its uncompressed data's), and each tool gives what its in-memory run gives."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from agents.chain import _check_header, _large_primary, run_tool
from agents.envelope import ROW_INDEX_COLUMN
from agents.errors import InvalidFileError
from agents.options import DEFAULT_MAX_COLUMNS, RunOptions
from agents.readers import MAX_NESTING_DEPTH, read_table_with_report
from agents.spill import parquet_data_bytes, spill_file

MANY = 10_050  # past the 10,000 rows a CSV's schema is inferred from (NDJSON's is inferred from every line)
Writer = Callable[[Path], object]


def _frame(frame: pl.DataFrame, **options: Any) -> Writer:
    return lambda path: frame.write_parquet(path, **options)


def _arrow(table: pa.Table, **options: Any) -> Writer:
    return lambda path: pq.write_table(table, path, **options)


def _bytes(content: bytes) -> Writer:
    return lambda path: path.write_bytes(content)


def _records(records: list[Any], *, bom: bool = False) -> bytes:
    text = "\n".join(json.dumps(record) for record in records) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def _deep_struct(levels: int) -> pl.DataFrame:
    column = pl.Series("v", [1])
    for _ in range(levels):
        column = pl.DataFrame({"x": column}).to_struct("v")
    return column.to_frame()


PEOPLE = pl.DataFrame(
    {
        "id": list(range(6)),
        "who": [
            {"name": "Ann", "tags": ["a", "b"], "home": {"city": "Oslo"}, "since": "2024-01-31"},
            {"name": "Bob", "tags": [], "home": None, "since": "2024-02-01"},
            None,
            {"name": None, "tags": None, "home": {"city": None}, "since": None},
            {"name": "Zoë", "tags": ["c"], "home": {"city": "Zürich"}, "since": "2024-02-03"},
            {"name": "Eve", "tags": ["d", None], "home": {"city": "Rome"}, "since": "2024-02-04"},
        ],
        "scores": [[1.5, None], [], None, [2.0], [3.0, 4.0], [5.0]],
        "nothing": [None] * 6,
        "day": ["2024-01-31", None, "2024-02-01", "2024-02-02", "2024-02-03", "2024-02-04"],
        "at": [f"2024-01-3{i % 2}T10:00:00Z" for i in range(6)],
        "zoned": [f"2024-01-3{i % 2}T10:00:00+02:00" for i in range(6)],
        "not a date": ["2024-1-31", "2024-01-31", None, "x", "2024-01-31", "2024-02-30"],
        "amount": [1, None, 3, 4, 5, 6],
        "ratio": [1.0, float("nan"), None, float("inf"), -0.0, 2.5],
    }
)
MIXED_TYPES = pl.DataFrame(
    {
        "u": pl.Series([1, 2, None], dtype=pl.UInt64),
        "i8": pl.Series([-1, 0, 1], dtype=pl.Int8),
        "f32": pl.Series([0.5, None, 1.25], dtype=pl.Float32),
        "dec": pl.Series([Decimal("1.10"), None, Decimal("-2.05")], dtype=pl.Decimal(10, 2)),
        "cat": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
        "enum": pl.Series(["lo", "hi", None], dtype=pl.Enum(["lo", "hi"])),
        "when": [dt.datetime(2024, 1, 1, 10), None, dt.datetime(2024, 1, 2)],
        "when_utc": pl.Series([dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 3)]).dt.replace_time_zone("UTC"),
        "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
        "time": [dt.time(10, 0), None, dt.time(23, 59, 59)],
        "took": [dt.timedelta(seconds=90), None, dt.timedelta(days=1)],
        "blob": [b"\x00\x01", None, b"abc"],
        "flag": [True, None, False],
        "fixed": pl.Series([[1, 2], [3, 4], None], dtype=pl.Array(pl.Int64, 2)),
        "empty struct": pl.Series([{"a": 1}, {"a": None}, None]).struct.field("a").to_frame().to_struct("s"),
    }
)
LATE_KEYS = [{"id": i, "v": i} for i in range(MANY)] + [
    {"id": MANY, "v": 0.5, "late": "x", "nested": {"deep": {"k": 1}, "list": [1, 2]}},
    {"id": MANY + 1, "v": 2, "nested": {"new": "2024-01-31"}, "when": "2024-01-31"},
]

PARQUET: dict[str, Writer] = {
    "structs, lists, nulls and dates": _frame(PEOPLE),
    "many row groups": _frame(
        pl.DataFrame(
            {
                "n": range(25_000),
                "x": [None if i % 7 == 0 else i / 3 for i in range(25_000)],
                "code": [f"{i % 1000:03d}" for i in range(25_000)],
                "day": [f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}" for i in range(25_000)],
            }
        ),
        row_group_size=1_000,
    ),
    "other types": _frame(MIXED_TYPES),
    "names": _arrow(
        pa.table(
            {
                "": [1, 2],
                " ": pa.array([None, None], pa.int64()),
                "*": ["a", "b"],
                "^a$": ["c", "d"],
                ROW_INDEX_COLUMN: [5, 6],
                "column_1": [7, 8],
                "s": [{"a": 1, "b": None}, {"a": 2, "b": None}],
                "s.a": [9, 9],
            }
        )
    ),
    "a null column written by pyarrow": _arrow(pa.table({"a": pa.array([None, None], pa.null()), "b": [1, 2]})),
    "repeated names": _arrow(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])),
    "only a blank column without values": _arrow(pa.table({" ": pa.array([None, None], pa.string())})),
    "no rows": _frame(pl.DataFrame(schema={"a": pl.Int64, "b": pl.String})),
    "no columns": _arrow(pa.table({})),
    "too deep": _frame(_deep_struct(MAX_NESTING_DEPTH + 1)),
    "deep but within the limit": _frame(_deep_struct(5)),
    "a CSV named .parquet": _bytes(b"a,b\n1,2\n"),
    "a PDF": _bytes(b"%PDF-1.7\n...PAR1"),
    "empty": _bytes(b""),
    "truncated": lambda path: path.write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1"),
}

MIXED_KINDS: list[dict[str, Any]] = [  # "f" has no string among its values: Polars refuses it
    {"a": 1, "b": True, "c": {"d": 1, "e": [1]}, "day": "2024-01-31", "n": 1, "f": 1},
    {"a": "x", "b": 2.5, "c": "no object", "day": "2024-02-01", "n": 2.5, "f": True},
    {"a": [1, {"x": "é"}], "b": None, "c": {"d": 2}, "n": None, "f": [1, 2.5]},
    {"a": {"": None}, "b": "yes", "": 1, "f": {"g": False}},
]

NDJSON: dict[str, tuple[str, bytes]] = {
    "late keys and types": ("primary.ndjson", _records(LATE_KEYS)),
    "a BOM": ("primary.jsonl", _records([{"a": 1, "d": "2024-01-31"}, {"a": 2, "d": "2024-02-01"}], bom=True)),
    "structs and lists": ("primary.ndjson", _records(PEOPLE.to_dicts())),
    "integers and floats": ("primary.ndjson", _records([{"n": 1, "m": 1.5}, {"n": 2.5, "m": 2}, {"n": None}])),
    "integer then text": ("primary.ndjson", _records([{"n": 1}, {"n": "x"}, {"n": True}])),
    "blank and odd keys": (
        "primary.ndjson",
        _records([{"": None, " ": 1, "*": 2, ROW_INDEX_COLUMN: 3}, {"": None, " ": None, "*": 4}]),
    ),
    "a repeated key": ("primary.ndjson", b'{"a": 1, "a": 2}\n{"a": 3}\n'),
    "an object then a number": ("primary.ndjson", _records([{"a": {"b": 1}}, {"a": 5}, {"a": [1]}])),
    "blank lines": ("primary.ndjson", b'\n{"a": 1}\n\n   \n{"a": 2}\n\n'),
    "CRLF": ("primary.ndjson", b'{"a": 1}\r\n{"a": 2}\r\n'),
    "no final newline": ("primary.ndjson", b'{"a": 1}\n{"a": 2}'),
    "only null values": ("primary.ndjson", _records([{"a": None}, {"a": None}])),
    "bad line": ("primary.ndjson", _records([{"a": 1}] * 5) + b'{"a": 2,}\n'),
    "bad line after many": ("primary.ndjson", b'{"a": 1}\n' * MANY + b'{"a" 2}\n'),
    "an array line": ("primary.ndjson", b'{"a": 1}\n[1, 2]\n'),
    "NaN": ("primary.ndjson", b'{"a": 1}\n{"a": NaN}\n'),
    "not UTF-8": ("primary.ndjson", b'{"a": "x"}\n{"a": "caf\xe9"}\n'),
    "UTF-16": ("primary.ndjson", '{"a": 1}\n'.encode("utf-16")),
    "a PDF": ("primary.ndjson", b"%PDF-1.7\n"),
    "too deep": ("primary.ndjson", b'{"a": ' + b"[" * MAX_NESTING_DEPTH + b"[]" + b"]" * MAX_NESTING_DEPTH + b"}\n"),
    "empty objects": ("primary.ndjson", b"{}\n{}\n"),
    "blank past the sniff window": ("primary.ndjson", b"\n" * 70_000),
    "empty": ("primary.ndjson", b""),
    "a JSON array": ("primary.ndjson", b'[{"a": 1}, {"a": 2}]\n'),
    # a field whose values change kind from record to record is read as text (agents.readers.mixed_fields)
    "mixed kinds": ("primary.ndjson", _records(MIXED_KINDS)),
    "mixed kinds with a BOM": ("primary.jsonl", _records(MIXED_KINDS, bom=True)),
    "a boolean among integers past many lines": ("primary.ndjson", b'{"a": 1}\n' * MANY + b'{"a": true}\n'),
    "an array among integers after blank lines": ("primary.ndjson", b'{"a": 1}\n\n  \n{"a": [1, 2]}\n'),
    "mixed kinds then a bad line": ("primary.ndjson", _records([{"a": 1}, {"a": [1]}]) + b'{"a": 2,}\n'),
    "mixed kinds then an array line": ("primary.ndjson", _records([{"a": 1}, {"a": [1]}]) + b"[1]\n"),
    "mixed kinds and text that looks like them": (
        "primary.ndjson",
        _records([{"a": 1, "s": "[true] {x}"}, {"a": [1], "s": "false"}, {"a": 2, "o": {"p": True}}, {"a": True}]),
    ),
    "a kind changing inside an object": ("primary.ndjson", _records([{"a": {"b": True}}, {"a": {"b": 1}}])),
}


def _compare(name: str, write: Writer, tmp_path: Path, *, max_columns: int = DEFAULT_MAX_COLUMNS) -> None:
    source = tmp_path / name
    write(source)
    try:
        expected, expected_report = read_table_with_report(source, name, max_columns=max_columns)
    except InvalidFileError as error:
        with pytest.raises(InvalidFileError) as raised:
            spill_file(source, name, tmp_path / "spill.parquet", max_columns=max_columns)
        assert (str(raised.value), raised.value.details) == (str(error), error.details)
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing left behind
        return
    spilled = spill_file(
        source,
        name,
        tmp_path / "spill.parquet",
        max_columns=max_columns,
        metadata=lambda report: {"k": str(report["rows"])},
    )
    assert_frame_equal(spilled.scan().collect(), expected, categorical_as_str=True)
    assert spilled.report == expected_report
    assert spilled.rows == expected.height
    assert pl.read_parquet_metadata(spilled.path)["k"] == str(expected.height)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "spill.parquet"])  # intermediates removed


@pytest.mark.parametrize("case", list(PARQUET))
def test_a_parquet_spill_reads_as_the_reader_does(case: str, tmp_path: Path) -> None:
    _compare("primary.parquet", PARQUET[case], tmp_path)


@pytest.mark.parametrize("case", list(NDJSON))
def test_an_ndjson_spill_reads_as_the_reader_does(case: str, tmp_path: Path) -> None:
    name, content = NDJSON[case]
    _compare(name, _bytes(content), tmp_path)


@pytest.mark.parametrize(
    ("name", "write"),
    [("primary.parquet", PARQUET["names"]), ("primary.ndjson", _bytes(NDJSON["structs and lists"][1]))],
)
def test_columns_past_the_limit_after_flattening_are_refused_alike(name: str, write: Writer, tmp_path: Path) -> None:
    _compare(name, write, tmp_path, max_columns=8)


def test_the_cases_cover_what_the_reader_changes(tmp_path: Path) -> None:
    """The comparisons above mean something only if the reader does flatten, encode, drop, rename and type here."""
    source = tmp_path / "primary.parquet"
    PARQUET["structs, lists, nulls and dates"](source)
    spilled = spill_file(source, "primary.parquet", tmp_path / "s.parquet")
    assert spilled.report["flattened_columns"] == ["who"]
    assert spilled.report["json_encoded_columns"] == ["who.tags", "who.home", "scores"]
    assert set(spilled.report["temporal_columns"]) == {"who.since", "day", "at", "zoned"}
    schema = spilled.scan().collect_schema()
    assert schema["nothing"] == pl.String and schema["not a date"] == pl.String and schema["who.since"] == pl.Date
    PARQUET["names"](source)
    spilled = spill_file(source, "primary.parquet", tmp_path / "s.parquet")
    assert spilled.report["dropped_empty_columns"] == [2]
    assert {item["original"] for item in spilled.report["renamed_columns"]} == {"", "*", "^a$", ROW_INDEX_COLUMN, "s.a"}

    source = tmp_path / "primary.ndjson"
    source.write_bytes(NDJSON["late keys and types"][1])
    spilled = spill_file(source, "primary.ndjson", tmp_path / "s.parquet")
    schema = spilled.scan().collect_schema()
    assert schema["v"] == pl.Float64 and schema["late"] == pl.String
    assert schema["when"] == pl.String  # a date layout is found among the first 1,000 rows (agents.layouts)
    assert "nested.new" in schema and spilled.report["json_encoded_columns"] == ["nested.deep", "nested.list"]

    source.write_bytes(NDJSON["mixed kinds"][1])
    spilled = spill_file(source, "primary.ndjson", tmp_path / "s.parquet")
    frame = spilled.scan().collect()
    assert frame.schema == pl.Schema(
        {
            "a": pl.String,
            "b": pl.String,
            "c": pl.String,
            "day": pl.Date,
            "n": pl.Float64,
            "f": pl.String,
            "column_7": pl.Int64,
        }
    )
    assert frame["f"].to_list() == ["1", "true", "[1, 2.5]", '{"g": false}']
    assert frame["a"].to_list() == ["1", "x", '[1, {"x": "é"}]', '{"": null}']
    assert frame["b"].to_list() == ["true", "2.5", None, "yes"]
    assert frame["c"].to_list() == ['{"d": 1, "e": [1]}', "no object", '{"d": 2}', None]


def test_the_chain_sizes_a_parquet_file_by_its_uncompressed_data(tmp_path: Path) -> None:
    source = tmp_path / "primary.parquet"
    pl.DataFrame({"x": ["the same long text " * 10] * 50_000}).write_parquet(source, compression="zstd")
    footer = pq.ParquetFile(source).metadata
    assert footer.row_group(0).total_byte_size < 1_000  # dictionary-encoded: the footer declares its dictionary
    data = parquet_data_bytes(source)
    assert data is not None and data >= 50_000 * 190 > 1_000 * source.stat().st_size  # the text, once read
    inputs = {"primary.parquet": source}
    assert _large_primary("clean-my-data", inputs, source.stat().st_size * 2) == ("primary.parquet", source)
    assert _large_primary("clean-my-data", inputs, data) is None
    assert _large_primary("master-my-data", inputs, 0) is None  # master does not stream
    not_parquet = tmp_path / "other.parquet"
    not_parquet.write_bytes(b"a,b\n1,2\n")
    assert parquet_data_bytes(not_parquet) is None
    assert _large_primary("clean-my-data", {"primary.parquet": not_parquet}, 0) == ("primary.parquet", not_parquet)
    too_deep = tmp_path / "deep.parquet"
    _deep_struct(MAX_NESTING_DEPTH + 1).write_parquet(too_deep)
    assert parquet_data_bytes(too_deep) is None  # pyarrow refuses its footer: the chain sizes it by the file's size
    json_array = tmp_path / "primary.json"
    json_array.write_bytes(b'[{"a": 1}]')
    assert _large_primary("clean-my-data", {"primary.json": json_array}, 0) is None  # read whole, as before


def test_a_parquet_schema_too_wide_is_refused_before_any_agent(tmp_path: Path) -> None:
    source = tmp_path / "primary.parquet"
    pl.DataFrame({f"c{i}": [i] for i in range(30)}).write_parquet(source)
    with pytest.raises(InvalidFileError, match="30 columns; the limit is 20"):
        _check_header("primary.parquet", source, 20)
    _check_header("primary.parquet", source, 30)


def test_a_format_without_a_spill_is_a_programming_error(tmp_path: Path) -> None:
    source = tmp_path / "primary.json"
    source.write_bytes(b'[{"a": 1}]')
    with pytest.raises(ValueError, match="no spill"):
        spill_file(source, "primary.json", tmp_path / "s.parquet")


# --- Each tool family on a streamed Parquet and NDJSON primary, against its in-memory run -------------------------

ROWS = 1_200


def _people(rows: int = ROWS) -> pl.DataFrame:
    """Data the clean agents have work on (as tests.agents.test_clean_streamed_chain's), with a struct column."""
    names = ["  Ann ", "ann", "BOB", "Bob  Smith", "NA", "", "Zoë"]
    amounts = ["12", "7.5", "N/A", "", "1,200", "x"]
    frame = pl.DataFrame(
        {
            "id": [i % 300 for i in range(rows)],
            "name": [names[i % 7] for i in range(rows)],
            "amount": [amounts[i % 6] if i % 50 else "3" for i in range(rows)],
            "score": [None if i % 11 == 0 else (i % 97) * 1.5 for i in range(rows)],
            "code": [f"{i % 40:03d}" for i in range(rows)],
            "day": [f"2024-02-{i % 28 + 1:02d}" if i % 9 else None for i in range(rows)],
            "email": [["a@x.org", "A@X.org", "b@y.com", "", "c@z.net"][i % 5] for i in range(rows)],
            "place": [{"city": ["Oslo", "Rome", "Lima"][i % 3], "zip": f"{i % 13:04d}"} for i in range(rows)],
        }
    )
    return pl.concat([frame, frame.slice(5, 55)])  # exact duplicate rows


@pytest.fixture(scope="module", params=["primary.parquet", "primary.ndjson"])
def primary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = str(request.param)
    path = tmp_path_factory.mktemp("data") / name
    frame = _people()
    if name.endswith(".parquet"):
        frame.write_parquet(path, row_group_size=500)
    else:
        frame.write_ndjson(path)
    return name, path


def _run(tool: str, agents: list[str], primary: tuple[str, Path], parameters: dict[str, Any], out: Path,
         threshold: int | None) -> dict[str, Any]:  # fmt: skip
    name, path = primary
    options = RunOptions(streaming_threshold_bytes=threshold)
    result = run_tool(tool, agents, {name: path}, parameters, out, lambda *_: None, run_options=options)
    json.dumps(result, allow_nan=False)
    streamed = result["summary"]["inputs"]["primary"].get("streamed")
    assert streamed is (True if threshold == 0 else None), tool
    return result


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    """As tests.agents.test_clean_streamed_chain compares runs: without times and the read reports."""
    agents = {
        agent_id: {key: value for key, value in envelope.items() if key != "execution_time_ms"}
        for agent_id, envelope in result["agents"].items()
    }
    manifest = agents.get("cleanse-writeback", {}).get("data", {}).get("manifest")
    if manifest is not None:
        manifest.pop("generated_at")
        for transformation in manifest["transformations"]:
            transformation.pop("duration_ms")
    steps = [{key: value for key, value in step.items() if key != "duration_ms"} for step in result.get("steps", [])]
    summary = {key: value for key, value in result["summary"].items() if key != "inputs"}
    return {"status": result["status"], "agents": agents, "steps": steps, "summary": summary,
            "outputs": result["outputs"]}  # fmt: skip


def _same_inputs(memory: dict[str, Any], streamed: dict[str, Any]) -> None:
    read = {key: value for key, value in streamed["summary"]["inputs"]["primary"].items() if key != "streamed"}
    assert read == memory["summary"]["inputs"]["primary"]
    assert read["flattened_columns"] == ["place"]


def test_a_streamed_clean_gives_what_the_in_memory_one_gives(tmp_path: Path, primary: tuple[str, Path]) -> None:
    memory = _run("clean-my-data", [], primary, {}, tmp_path / "memory", None)
    streamed = _run("clean-my-data", [], primary, {}, tmp_path / "streamed", 0)
    _same_inputs(memory, streamed)
    assert _comparable(streamed) == _comparable(memory)
    assert memory["summary"]["rows_quarantined"] == 55  # the exact duplicates
    for name in ("cleaned_data.csv", "quarantine.csv"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name


def test_a_streamed_transform_gives_what_the_in_memory_one_gives(tmp_path: Path, primary: tuple[str, Path]) -> None:
    parameters = {
        "transformer": {
            "operations": [
                {"op": "cast", "columns": ["amount"], "to": "number", "on_invalid": "null"},
                {"op": "fill_nulls", "columns": ["amount"], "strategy": "median"},
                {"op": "deduplicate"},
                {"op": "rename", "mapping": {"place.city": "city"}},
                {"op": "sort", "by": [{"column": "day", "descending": True}, {"column": "id"}]},
            ]
        }
    }
    memory = _run("transform-my-data", [], primary, parameters, tmp_path / "memory", None)
    streamed = _run("transform-my-data", [], primary, parameters, tmp_path / "streamed", 0)
    _same_inputs(memory, streamed)
    assert memory["status"] == "success"
    assert _comparable(streamed) == _comparable(memory)
    for name in ("transformed_data.csv", "recipe.json"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name
    assert pl.read_parquet(tmp_path / "streamed" / "transformed_data.parquet").equals(
        pl.read_parquet(tmp_path / "memory" / "transformed_data.parquet")
    )


def test_a_streamed_search_writes_what_the_in_memory_one_writes(tmp_path: Path, primary: tuple[str, Path]) -> None:
    parameters = {
        "searcher": {"keywords": ["oslo"], "ranges": [{"column": "score", "min": 10, "max": 100}]},
        "aggregator": {"group_by": ["place.city"], "metrics": [{"fn": "count"}, {"fn": "sum", "column": "score"}]},
    }
    memory = _run("search-my-data", [], primary, parameters, tmp_path / "memory", None)
    streamed = _run("search-my-data", [], primary, parameters, tmp_path / "streamed", 0)
    _same_inputs(memory, streamed)
    assert memory["status"] == "success"
    assert memory["agents"]["searcher"]["summary_metrics"]["rows_matched"] > 0
    assert _comparable(streamed) == _comparable(memory)
    for name in ("search_result.csv", "search_result.json"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name


def _rounded(value: Any) -> Any:
    """Floats to 9 significant digits: the streamed profile sums moments in another order (as for a CSV)."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def test_a_streamed_profile_gives_what_the_in_memory_one_gives(tmp_path: Path, primary: tuple[str, Path]) -> None:
    """The streamed profile's own known differences aside (agents.profile.streaming: memory_bytes is the file's
    size, the views' sampled_rows, no duplicate groups listed, the last digits of moments), its fields, samples,
    metrics and views are the in-memory profile's."""
    memory = _run("profile-my-data", ["unified-profiler"], primary, {}, tmp_path / "memory", None)
    streamed = _run("profile-my-data", ["unified-profiler"], primary, {}, tmp_path / "streamed", 0)
    left, right = streamed["agents"]["unified-profiler"], memory["agents"]["unified-profiler"]
    assert left["status"] == right["status"] == "success", left.get("error")
    assert _rounded(left["data"]["fields"]) == _rounded(right["data"]["fields"])
    assert left["data"]["samples"] == right["data"]["samples"]
    assert _rounded(left["summary_metrics"]) == _rounded(right["summary_metrics"])
    for view in ("correlations", "missing_patterns"):
        assert {k: v for k, v in left["data"][view].items() if k != "sampled_rows"} == right["data"][view], view
    names = [field["field_name"] for field in right["data"]["fields"]]
    assert names == ["id", "name", "amount", "score", "code", "day", "email", "place.city", "place.zip"]
