"""JSON and NDJSON numbers come back as they were written, as CSV ones do (tests/agents/test_exact_numbers.py).

Polars parses a JSON number straight to a float: ``1.123456789012345678`` became ``1.1234567890123457``, ``1e-400``
became 0, an integer past 128 bits became null (a JSON array) or failed the file (NDJSON). Such a field is now text,
those numbers as written, and the read report says so (``numbers_kept_as_text``), as it does for a CSV column."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.layouts import BEYOND_DOUBLE
from agents.options import RunOptions
from agents.readers import (
    BEYOND_INT128,
    _read_exact_json,
    _read_quoted_json,
    exact_numbers_kind,
    may_hold_long_numbers,
    numbers_no_double_holds,
    read_table_with_report,
)

RECORDS = [
    '{"tx": 1, "amount": 1.123456789012345678, "price": 2.50, "lat": 48.053808600000004, "meta": {"w": 1, "fee": 2.5}}',
    '{"tx": 2, "amount": 0.000000000000000001, "price": 3.75, "lat": 1.5, "meta": {"w": 2,"fee": 12345678901234567.5}}',
    '{"tx": 3, "amount": 12345678901234567.5, "price": 4, "lat": -2.25, "meta": {"w": 3, "fee": null}}',
    '{"tx": 4, "amount": 2.5, "price": 5.25, "lat": 0.1, "meta": {"w": 4, "fee": 1.0000000000000001}}',
]
KEPT = {
    "amount": {"reason": BEYOND_DOUBLE, "values": 2, "example": "1.123456789012345678"},
    "meta.fee": {"reason": BEYOND_DOUBLE, "values": 2, "example": "12345678901234567.5"},
}
FORMATS = ["ndjson", "json"]


def _write(directory: Path, file_format: str, records: list[str], name: str = "primary") -> Path:
    path = directory / f"{name}.{file_format}"
    text = "\n".join(records) + "\n" if file_format == "ndjson" else "[\n" + ",\n".join(records) + "\n]\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_field_holding_a_number_no_double_holds_is_text_as_written(tmp_path: Path, file_format: str) -> None:
    path = _write(tmp_path, file_format, RECORDS)
    frame, report = read_table_with_report(path, path.name)
    assert frame.schema["amount"] == pl.String and frame.schema["meta.fee"] == pl.String
    # the numbers a double does not hold as written, the others as Polars writes a number in a text column
    assert frame["amount"].to_list() == ["1.123456789012345678", "0.000000000000000001", "12345678901234567.5", "2.5"]
    assert frame["meta.fee"].to_list() == ["2.5", "12345678901234567.5", None, "1.0000000000000001"]
    # the other number fields as before: a long number a double gives back (%.17g of 48.0538086) is no reason
    assert frame.schema["price"] == frame.schema["lat"] == pl.Float64
    assert frame["lat"].to_list() == [48.053808600000004, 1.5, -2.25, 0.1]
    assert frame.schema["tx"] == frame.schema["meta.w"] == pl.Int64
    assert report.get("numbers_kept_as_text") == KEPT
    assert report["flattened_columns"] == ["meta"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_values_past_a_doubles_range_and_integers_past_128_bits(tmp_path: Path, file_format: str) -> None:
    """1e-400 read as 0; 2**130 (a double holds it, Int128 does not) read as null in a JSON array, and refused with
    ``InvalidNumber`` in NDJSON, as was a number past 2**128; 45 nines too."""
    records = [
        f'{{"id": 1, "tiny": 1e-400, "wide": {2**130}, "nines": {"9" * 45}}}',
        '{"id": 2, "tiny": 0.5, "wide": 7, "nines": -3}',
    ]
    path = _write(tmp_path, file_format, records)
    frame, report = read_table_with_report(path, path.name)
    assert frame.schema["id"] == pl.Int64
    assert frame.select("tiny", "wide", "nines").rows() == [("1e-400", str(2**130), "9" * 45), ("0.5", "7", "-3")]
    assert report.get("numbers_kept_as_text") == {
        "tiny": {"reason": BEYOND_DOUBLE, "values": 1, "example": "1e-400"},
        "wide": {"reason": BEYOND_INT128, "values": 1, "example": str(2**130)},
        "nines": {"reason": BEYOND_INT128, "values": 1, "example": "9" * 45},
    }


@pytest.mark.parametrize("file_format", FORMATS)
def test_files_without_such_numbers_read_as_before(tmp_path: Path, file_format: str) -> None:
    """Long numbers a double gives back (Python's repr of random floats, 20-digit integers: Int128) change nothing."""
    records = [
        '{"a": 0.8444218515250481, "b": 12345678901234567890, "c": "x1.123456789012345678"}',
        '{"a": -44.0875753669041, "b": 1, "c": "1e-400"}',
    ]
    path = _write(tmp_path, file_format, records)
    assert may_hold_long_numbers(path)
    assert exact_numbers_kind(path) == "integers"  # the text in strings is no number
    frame, report = read_table_with_report(path, path.name)
    assert frame.schema == pl.Schema({"a": pl.Float64, "b": pl.Int128, "c": pl.String})
    assert frame.rows() == [
        (0.8444218515250481, 12345678901234567890, "x1.123456789012345678"),
        (-44.0875753669041, 1, "1e-400"),
    ]
    assert "numbers_kept_as_text" not in report
    # a string that the cheap scan takes for a number: looked at by the json module, the same frame
    records[0] = records[0].replace("x1.1", "x: 1.1")
    path = _write(tmp_path, file_format, records, "colon")
    assert exact_numbers_kind(path) == "numbers"
    again, report = read_table_with_report(path, path.name)
    assert again.equals(frame.with_columns(pl.Series("c", ["x: 1.123456789012345678", "1e-400"])))
    assert "numbers_kept_as_text" not in report
    short = _write(tmp_path, file_format, ['{"a": 1.5, "b": "e", "c": 12}'], "short")
    assert not may_hold_long_numbers(short)


def test_the_cheap_test_finds_every_long_number_wherever_it_starts(tmp_path: Path) -> None:
    """8 aligned bytes of digits: a run of 16 digits holds some, whatever its offset; 15 may not."""
    for offset in range(8):
        path = tmp_path / f"o{offset}.ndjson"
        path.write_bytes(b'{"k": "' + b"x" * offset + b'", "v": 1234567890123456}\n')
        assert may_hold_long_numbers(path)


@pytest.mark.parametrize("file_format", FORMATS)
def test_short_numbers_past_a_doubles_range(tmp_path: Path, file_format: str) -> None:
    """No long run of digits for the cheap test: 1e-400 is found as a 0 read from a file holding "e-", 1e400 as the
    number Polars refuses."""
    for value in ("1e-400", "-2E-999", "1e400"):
        path = _write(tmp_path, file_format, [f'{{"a": {value}, "b": 0.0}}', '{"a": 0.5, "b": 1e-5}'], "short")
        assert not may_hold_long_numbers(path)
        frame, report = read_table_with_report(path, path.name)
        assert frame["a"].to_list() == [value, "0.5"] and frame["b"].to_list() == [0.0, 1e-5]
        assert report.get("numbers_kept_as_text") == {"a": {"reason": BEYOND_DOUBLE, "values": 1, "example": value}}


@pytest.mark.parametrize("file_format", FORMATS)
def test_the_json_module_path_reads_alike(tmp_path: Path, file_format: str) -> None:
    """A file Polars cannot read as it is (a field of several JSON kinds, an integer past 2**128 in NDJSON) is read by
    the json module: the same columns, the same report."""
    path = _write(tmp_path, file_format, RECORDS)
    fast = _read_quoted_json(path, path.name, ndjson=file_format == "ndjson")
    slow = _read_exact_json(path, path.name, numbers_no_double_holds(path), ndjson=file_format == "ndjson")
    assert fast is not None
    assert fast.frame.equals(slow.frame) and fast.exact_fields == slow.exact_fields
    mixed = [*RECORDS, '{"tx": true, "amount": false, "price": 1, "lat": 2, "meta": {"w": 5, "fee": [1, 2]}}']
    path = _write(tmp_path, file_format, mixed, "mixed")
    assert _read_quoted_json(path, path.name, ndjson=file_format == "ndjson") is None
    frame, report = read_table_with_report(path, path.name)
    assert frame["tx"].to_list() == ["1", "2", "3", "4", "true"]
    assert frame["amount"].to_list() == [
        "1.123456789012345678",
        "0.000000000000000001",
        "12345678901234567.5",
        "2.5",
        "false",
    ]
    assert frame["meta.fee"].to_list() == ["2.5", "12345678901234567.5", None, "1.0000000000000001", "[1, 2]"]
    assert report.get("numbers_kept_as_text") == KEPT


def test_a_mark_in_the_file_or_a_colon_in_a_string_takes_the_json_module_path(tmp_path: Path) -> None:
    records = [
        '{"note": "rate: 1.123456789012345678", "amount": 1.123456789012345678, "tag": "\\u001e1"}',
        '{"note": "x", "amount": 2, "tag": "y"}',
    ]
    path = _write(tmp_path, "ndjson", records)
    assert _read_quoted_json(path, path.name, ndjson=True) is None
    # the mark is a control character: read by the json module path, then refused as a CSV holding it is
    with pytest.raises(InvalidFileError, match=r"column 'tag', row 1 holds a control character \(U\+001E\)"):
        read_table_with_report(path, path.name)
    path = _write(tmp_path, "ndjson", [record.replace('"\\u001e1"', '"z"') for record in records])
    assert _read_quoted_json(path, path.name, ndjson=True) is None  # the colon in a string
    frame, report = read_table_with_report(path, path.name)
    assert frame.rows() == [("rate: 1.123456789012345678", "1.123456789012345678", "z"), ("x", "2", "y")]
    assert report.get("numbers_kept_as_text") == {
        "amount": {"reason": BEYOND_DOUBLE, "values": 1, "example": "1.123456789012345678"}
    }


def test_a_malformed_file_with_such_a_number_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"a": 1.123456789012345678}\n{"a": 2,}\n', encoding="utf-8")
    with pytest.raises(Exception, match="line 2") as caught:
        read_table_with_report(path, path.name)
    assert type(caught.value).__name__ == "InvalidFileError"


def ignore_progress(*_: object) -> None:
    return None


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


@pytest.mark.parametrize(
    ("file_format", "mode"), [("ndjson", "in_memory"), ("json", "in_memory"), ("json", "streamed")]
)
def test_clean_writes_such_numbers_back_as_written(tmp_path: Path, file_format: str, mode: str) -> None:
    """clean-my-data wrote 1.1234567890123457 (cells_changed 0). A JSON array has no spill: its streamed run reads
    it with the reader too. (An NDJSON file's streamed run reads it through agents.spill.spill_ndjson.)"""
    path = _write(tmp_path, file_format, RECORDS)
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {path.name: path}, {}, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    rows = _cells(out / "cleaned_data.csv")
    column = rows[0].index("amount")
    assert [row[column] for row in rows[1:]] == [
        "1.123456789012345678",
        "0.000000000000000001",
        "12345678901234567.5",
        "2.5",
    ]
    fee = rows[0].index("meta.fee")
    assert [row[fee] for row in rows[1:]] == ["2.5", "12345678901234567.5", "", "1.0000000000000001"]
    inputs: dict[str, Any] = result["summary"]["inputs"]["primary"]
    assert inputs["numbers_kept_as_text"] == KEPT
    assert json.loads(json.dumps(inputs["numbers_kept_as_text"])) == KEPT


@pytest.mark.parametrize("file_format", FORMATS)
def test_integers_a_double_does_not_hold_are_lost_only_among_decimals(tmp_path: Path, file_format: str) -> None:
    """Polars reads a field of integers exactly (Int64, Int128); with a decimal in it, as Float64: 9007199254740993
    (2**53 + 1) became 9007199254740992.0. Only such a field is kept as text."""
    records = [
        '{"id": 1234567890123456789, "wide": 12345678901234567890, "score": 9007199254740993, "tag": 9007199254740993}',
        '{"id": 2, "wide": 3, "score": 0.5, "tag": "x"}',
    ]
    path = _write(tmp_path, file_format, records)
    frame, report = read_table_with_report(path, path.name)
    assert frame.schema == pl.Schema({"id": pl.Int64, "wide": pl.Int128, "score": pl.String, "tag": pl.String})
    assert frame.rows() == [
        (1234567890123456789, 12345678901234567890, "9007199254740993", "9007199254740993"),
        (2, 3, "0.5", "x"),
    ]
    assert report.get("numbers_kept_as_text") == {
        "score": {"reason": BEYOND_DOUBLE, "values": 1, "example": "9007199254740993"}
    }
    slow = _read_exact_json(path, path.name, numbers_no_double_holds(path), ndjson=file_format == "ndjson")
    assert slow.frame.equals(frame) and dict(slow.exact_fields) == {("score", None): KEPT_SCORE}
    # the same integers without a decimal beside them: no second read
    path = _write(tmp_path, file_format, [records[0], '{"id": 2, "wide": 3, "score": 5, "tag": "x"}'], "ints")
    frame, report = read_table_with_report(path, path.name)
    assert frame.schema["score"] == pl.Int64 and frame["score"].to_list() == [9007199254740993, 5]
    assert "numbers_kept_as_text" not in report


KEPT_SCORE = {"reason": BEYOND_DOUBLE, "values": 1, "example": "9007199254740993"}
