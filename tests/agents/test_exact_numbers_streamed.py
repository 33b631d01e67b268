"""An NDJSON file large enough to be streamed (agents.spill.spill_ndjson) keeps its numbers as the in-memory reader
keeps them (tests/agents/test_exact_numbers_json.py): a field holding a number no double holds is text, those
numbers as written, listed in ``numbers_kept_as_text`` (QA: the streamed read parsed them as doubles,
``1.123456789012345678`` became ``1.1234567890123457``)."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.options import RunOptions
from agents.readers import read_table_with_report
from agents.spill import spill_file

from .test_exact_numbers_json import KEPT, RECORDS

CASES: dict[str, list[str]] = {
    "decimals no double holds, in fields and fields of objects": RECORDS,
    "past a double's range and past 128 bits": [
        f'{{"id": 1, "tiny": 1e-400, "wide": {2**130}, "nines": {"9" * 45}}}',
        '{"id": 2, "tiny": 0.5, "wide": 7, "nines": -3}',
    ],
    "short numbers past a double's range": ['{"a": 1e-400, "b": 0.0}', '{"a": 0.5, "b": 1e-5}'],
    "a short one too large": ['{"a": -2E-999, "b": 0.0}', '{"a": 1e400, "b": 1e-5}'],
    "integers a double does not hold among decimals": [
        '{"id": 1234567890123456789, "wide": 12345678901234567890, "score": 9007199254740993, "tag": 9007199254740993}',
        '{"id": 2, "wide": 3, "score": 0.5, "tag": "x"}',
    ],
    "the same integers without decimals": [
        '{"id": 1234567890123456789, "wide": 12345678901234567890, "score": 9007199254740993, "tag": 9007199254740993}',
        '{"id": 2, "wide": 3, "score": 5, "tag": "x"}',
    ],
    "long numbers a double gives back": [
        '{"a": 0.8444218515250481, "b": 12345678901234567890, "c": "x1.123456789012345678"}',
        '{"a": -44.0875753669041, "b": 1, "c": "1e-400"}',
    ],
    "a colon before a long number in a string": [
        '{"a": 0.8444218515250481, "b": 12345678901234567890, "c": "x: 1.123456789012345678"}',
        '{"a": -44.0875753669041, "b": 1, "c": "1e-400"}',
    ],
    "a colon in a string beside such a number": [
        '{"note": "rate: 1.123456789012345678", "amount": 1.123456789012345678, "tag": "z"}',
        '{"note": "x", "amount": 2, "tag": "y"}',
    ],
    "the mark in the file": [
        '{"note": "rate: 1.123456789012345678", "amount": 1.123456789012345678, "tag": "\\u001e1"}',
        '{"note": "x", "amount": 2, "tag": "y"}',
    ],
    "several JSON kinds in a field": [
        *RECORDS,
        '{"tx": true, "amount": false, "price": 1, "lat": 2, "meta": {"w": 5, "fee": [1, 2]}}',
    ],
    "a malformed line": ['{"a": 1.123456789012345678}', '{"a": 2,}'],
    "a struct whose objects are sometimes null": [
        '{"k": 1, "m": {"x": 1.123456789012345678, "y": "a"}}',
        '{"k": 2, "m": null}',
        '{"k": 3}',
        '{"k": 4, "m": {"x": 2.5}}',
    ],
    "odd field names": [
        '{"*": 1.123456789012345678, "^a$": 1, "r0": 2, "t0": "x", "": 3}',
        '{"*": 2, "^a$": 1, "r0": 2, "t0": "y", "": 4}',
    ],
}


def _write(directory: Path, records: list[str], *, bom: bool = False) -> Path:
    path = directory / "primary.ndjson"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(records) + "\n").encode())
    return path


def _compare(path: Path, directory: Path) -> None:
    """The spill gives the reader's frame and read report, or its error; no intermediate file is left behind."""
    before = sorted(p.name for p in directory.iterdir())
    try:
        expected, expected_report = read_table_with_report(path, path.name)
    except InvalidFileError as error:
        with pytest.raises(InvalidFileError) as raised:
            spill_file(path, path.name, directory / "spill.parquet")
        assert (str(raised.value), raised.value.details) == (str(error), error.details)
        assert sorted(p.name for p in directory.iterdir()) == before
        return
    spilled = spill_file(path, path.name, directory / "spill.parquet")
    assert_frame_equal(spilled.scan().collect(), expected)
    assert spilled.report == expected_report
    assert sorted(p.name for p in directory.iterdir()) == sorted([*before, "spill.parquet"])


@pytest.mark.parametrize("case", list(CASES))
def test_the_spill_keeps_numbers_as_the_reader_does(case: str, tmp_path: Path) -> None:
    _compare(_write(tmp_path, CASES[case]), tmp_path)


@pytest.mark.parametrize("case", ["decimals no double holds, in fields and fields of objects", "a malformed line"])
def test_with_a_bom(case: str, tmp_path: Path) -> None:
    _compare(_write(tmp_path, CASES[case], bom=True), tmp_path)


def test_the_spill_of_such_numbers_is_text_as_written(tmp_path: Path) -> None:
    """The comparisons above mean something only if the spill does keep such numbers (it read them as doubles)."""
    spilled = spill_file(_write(tmp_path, RECORDS), "primary.ndjson", tmp_path / "spill.parquet")
    frame = spilled.scan().collect()
    assert frame["amount"].to_list() == ["1.123456789012345678", "0.000000000000000001", "12345678901234567.5", "2.5"]
    assert frame["meta.fee"].to_list() == ["2.5", "12345678901234567.5", None, "1.0000000000000001"]
    assert frame.schema["lat"] == pl.Float64 and frame.schema["meta.w"] == pl.Int64
    assert spilled.report.get("numbers_kept_as_text") == KEPT


def test_many_rows_in_several_batches(tmp_path: Path) -> None:
    """Past a batch of the streaming engine: the rows of the copy stay aligned with the rows of the file."""
    records = [
        f'{{"i": {i}, "amount": {"1.123456789012345678" if i % 997 == 0 else i / 4}, "s": {{"f": {i}.5, "g": "{i}"}}}}'
        for i in range(60_000)
    ]
    records[30_001] = '{"i": 30001, "amount": 2.5, "s": {"f": 0.100000000000000005551, "g": "x"}}'
    _compare(_write(tmp_path, records), tmp_path)


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_a_streamed_clean_writes_what_the_in_memory_one_writes(tmp_path: Path) -> None:
    path = _write(tmp_path, RECORDS)
    results = {}
    for mode, threshold in (("memory", None), ("streamed", 0)):
        options = RunOptions(streaming_threshold_bytes=threshold)
        results[mode] = run_tool(
            "clean-my-data", [], {path.name: path}, {}, tmp_path / mode, lambda *_: None, run_options=options
        )
        assert results[mode]["status"] == "success"
    assert results["streamed"]["summary"]["inputs"]["primary"]["streamed"] is True
    assert results["streamed"]["summary"]["inputs"]["primary"]["numbers_kept_as_text"] == KEPT
    memory, streamed = (_cells(tmp_path / mode / "cleaned_data.csv") for mode in ("memory", "streamed"))
    assert streamed == memory
    assert [row[memory[0].index("amount")] for row in memory[1:]][0] == "1.123456789012345678"
