"""A C0 control character in a JSON, NDJSON or Parquet string (QA #21): Polars reads ``"a\\u0000b"`` (and a lone
surrogate escape ``"\\ud800"``, which it turns into NUL) into the frame; clean-my-data wrote it raw to
cleaned_data.csv, and every later task on that version failed "the file is not text (it contains binary bytes such
as NUL)". Such a file is now refused when it is read, as a CSV holding NUL is: INVALID_FILE naming the column and
the data row, in memory and streamed (agents.spill). Tab, line feed, carriage return stay ordinary text.

Also (QA #9): a .json file that is not JSON at all (``{not json``, a truncated ``{"a": 1``) is reported as the
malformed JSON it is (line, column), not as "a JSON object … name the file .ndjson"."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.options import RunOptions
from agents.readers import read_table_with_report

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def ignore_progress(*_: object) -> None:
    return None


def _write(directory: Path, file_format: str, strings: list[str]) -> Path:
    """A file of two fields, ``id`` and ``s``, one record per string, the string escaped as JSON escapes it."""
    path = directory / f"primary.{file_format}"
    frame = pl.DataFrame({"id": list(range(1, len(strings) + 1)), "s": strings})
    if file_format == "parquet":
        frame.write_parquet(path)
    elif file_format == "ndjson":
        frame.write_ndjson(path)
    else:
        frame.write_json(path)
    return path


def _run(path: Path, out: Path, mode: str) -> dict:
    return run_tool("clean-my-data", [], {path.name: path}, {}, out, ignore_progress, run_options=MODES[mode])


CASES = [
    (file_format, mode)
    for file_format in ("json", "ndjson", "parquet")
    for mode in MODES
    if not (file_format == "json" and mode == "streamed")  # a JSON array has no spill: the reader reads it
]


@pytest.mark.parametrize(("file_format", "mode"), CASES)
@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1f"])
def test_a_control_character_in_a_string_is_refused_naming_column_and_row(
    tmp_path: Path, file_format: str, mode: str, character: str
) -> None:
    path = _write(tmp_path, file_format, ["ok", "fine", f"a{character}b", "ok"])
    with pytest.raises(InvalidFileError) as caught:
        _run(path, tmp_path / "out", mode)
    assert caught.value.details["column"] == "s" and caught.value.details["row"] == 3
    assert "column 's', row 3" in str(caught.value)
    assert not (tmp_path / "out" / "cleaned_data.csv").exists()


@pytest.mark.parametrize("file_format", ["json", "ndjson"])
def test_a_lone_surrogate_escape_is_refused(tmp_path: Path, file_format: str) -> None:
    """Polars reads "\\ud800" as NUL: written raw, the cleaned CSV was not text any more."""
    record = '{"id": 1, "s": "bad \\ud800 x"}'
    path = tmp_path / f"primary.{file_format}"
    path.write_text(f"[{record}]" if file_format == "json" else record + "\n", encoding="utf-8")
    with pytest.raises(InvalidFileError, match=r"column 's', row 1 .*U\+0000"):
        read_table_with_report(path, path.name)


@pytest.mark.parametrize(("file_format", "mode"), CASES)
def test_tab_newline_and_carriage_return_are_text_and_the_clean_output_reads_back(
    tmp_path: Path, file_format: str, mode: str
) -> None:
    strings = ["a\tb", "line\nbreak", "cr\r\nlf", "plain \x1b[0m", "é"]
    path = _write(tmp_path, file_format, strings)
    result = _run(path, tmp_path / "out", mode)
    assert result["status"] == "success"
    cleaned = tmp_path / "out" / "cleaned_data.csv"
    with cleaned.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == len(strings) + 1  # the cleaner may trim whitespace: the values are not compared
    frame, _ = read_table_with_report(cleaned, "cleaned_data.csv")  # the next task on this version reads it
    assert frame.height == len(strings)


def test_a_control_character_in_a_flattened_field_names_the_flattened_column(tmp_path: Path) -> None:
    path = tmp_path / "primary.ndjson"
    path.write_text('{"id": 1, "m": {"t": "x"}}\n{"id": 2, "m": {"t": "y\\u0007"}}\n', encoding="utf-8")
    with pytest.raises(InvalidFileError) as caught:
        read_table_with_report(path, path.name)
    assert caught.value.details == {"file": path.name, "column": "m.t", "row": 2, "character": "U+0007"}


@pytest.mark.parametrize("text", ["{not json", '{"a": 1', '{\n  "a": 1,\n  oops\n}'])
def test_a_json_file_that_is_not_json_is_reported_as_malformed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "primary.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidFileError, match=r"malformed JSON at line \d+, column \d+: ") as caught:
        read_table_with_report(path, path.name)
    assert "ndjson" not in str(caught.value)


def test_a_json_object_that_is_json_still_asks_for_an_array(tmp_path: Path) -> None:
    path = tmp_path / "primary.json"
    path.write_text('{"a": 1}\n', encoding="utf-8")
    with pytest.raises(InvalidFileError, match="found a JSON object, expected an array of records"):
        read_table_with_report(path, path.name)
