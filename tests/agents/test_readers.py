from __future__ import annotations

import json
import re
import struct
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents import readers
from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.readers import SNIFF_BYTES, read_table, read_table_with_report, sniff_dialect
from agents.spill import spill_csv


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, separator: str) -> None:
    rows = [f"id{separator}name{separator}score"] + [f"{i}{separator}n{i}{separator}{i / 2}" for i in range(20)]
    path = write(tmp_path, "primary.csv", ("\n".join(rows) + "\n").encode())
    frame = read_table(path, "primary.csv")
    assert frame.columns == ["id", "name", "score"]
    assert frame.height == 20
    assert frame.schema["id"] == pl.Int64 and frame.schema["score"] == pl.Float64


def test_comma_inside_quotes_does_not_fool_the_sniffer(tmp_path: Path) -> None:
    rows = ["name;city"] + [f'"Doe, John {i}";"Paris, FR"' for i in range(10)]
    path = write(tmp_path, "primary.csv", ("\n".join(rows) + "\n").encode())
    assert sniff_dialect(path, "primary.csv").separator == ";"
    assert read_table(path, "primary.csv")["city"][0] == "Paris, FR"


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b"\xef\xbb\xbfname,city\nJos\xc3\xa9,K\xc3\xb6ln\n")
    frame = read_table(path, "primary.csv")
    assert frame.columns == ["name", "city"]
    assert frame.row(0) == ("José", "Köln")


def test_latin1_and_cp1252_are_transcoded(tmp_path: Path) -> None:
    content = "name,city,price\nJosé,Köln,10 €\nZoë,Málaga,5 €\n".encode("cp1252")
    path = write(tmp_path, "primary.csv", content)
    assert sniff_dialect(path, "primary.csv").encoding == "cp1252"
    frame = read_table(path, "primary.csv")
    assert frame["name"].to_list() == ["José", "Zoë"]
    assert frame["price"].to_list() == ["10 €", "5 €"]
    assert not list(tmp_path.glob(".utf8-*")), "the transcoded temporary file is removed"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("rows", [2, SNIFF_BYTES // 20])  # within the sniff window, and far past it
def test_utf16_without_a_bom_is_read_as_with_one(tmp_path: Path, encoding: str, rows: int) -> None:
    """Before, UTF-16 written without a byte-order mark was refused as binary (its NULs). The spill for files
    larger than memory reads it alike."""
    text = "id;name;note\n" + "".join(f"{i};Zoë {i};a 😀 b\n" for i in range(rows))
    bomless = write(tmp_path, "primary.csv", text.encode(encoding))
    with_bom = write(tmp_path, "bom.csv", text.encode("utf-16"))
    frame, report = read_table_with_report(bomless, "primary.csv")
    assert report["encoding"] == encoding and report["separator"] == ";"
    assert_frame_equal(frame, read_table(with_bom, "bom.csv"))
    assert frame["note"][0] == "a 😀 b" and frame.height == rows
    spilled = spill_csv(bomless, "primary.csv", tmp_path / "spill.parquet")
    assert_frame_equal(spilled.scan().collect(), frame)


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"a,b\n1,2\n3,4\n\n\n", [(1, 2), (3, 4)]),  # trailing blank lines (an editor's)
        (b"a,b\n\n1,2\n\n\n3,4\n", [(1, 2), (3, 4)]),  # blank lines between records
        (b"\n\na,b\n1,2\n\n3,4\n", [(1, 2), (3, 4)]),  # and before the header
        (b'a,b\r\n1,2\r\n\r\n,\r\n3,"x\r\n\r\ny"\r\n\r\n', [(1, "2"), (None, None), (3, "x\r\n\r\ny")]),
        (b"a\n1\n\n3\n\n", [(1,), (None,), (3,), (None,)]),  # one column: a blank line is its empty value
    ],
)
def test_blank_lines_are_no_records(tmp_path: Path, content: bytes, rows: list[tuple[Any, ...]]) -> None:
    """Before, each blank line of a file of several columns was read as a row of nulls (pandas and R skip them): a
    profile counted them, a clean quarantined them as duplicates. A line of empty fields (``,``) and a blank line
    inside a quoted value stay. The spill reads alike."""
    path = write(tmp_path, "primary.csv", content)
    frame, report = read_table_with_report(path, "primary.csv")
    assert frame.rows() == rows and report["rows"] == len(rows)
    spilled = spill_csv(path, "primary.csv", tmp_path / "spill.parquet")
    assert_frame_equal(spilled.scan().collect(), frame)
    assert spilled.report == report


def test_a_line_of_empty_fields_costs_no_record_by_record_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row of nulls sends the reader looking for blank lines record by record (the csv module, minutes on a file
    of gigabytes) only when the file's bytes hold an empty line at all."""
    path = write(tmp_path, "primary.csv", b"a,b\n1,2\n,\n3,4\r\n,\r\n")

    def walked(*args: Any) -> Any:
        raise AssertionError("the records were walked")

    monkeypatch.setattr(readers, "_records_with_line_numbers", walked)
    assert read_table(path, "primary.csv").rows() == [(1, 2), (None, None), (3, 4), (None, None)]
    spilled = spill_csv(path, "primary.csv", tmp_path / "spill.parquet")
    assert spilled.scan().collect().rows() == [(1, 2), (None, None), (3, 4), (None, None)]


@pytest.mark.parametrize(
    "content",
    [
        struct.pack("<200i", *range(200)),  # little-endian integers: NULs in high and low bytes alike
        struct.pack("<400H", *(1 + index % 200 for index in range(400))),  # 16-bit samples: NUL high bytes only
        b"RIFF\x00\x10\x00\x00WAVEfmt " + struct.pack("<400H", *(7 + index % 90 for index in range(400))),
        b"\x00" * 400,
        "id,name\n1,a\n".encode("utf-16-le")[:-4] + b"\x00\x00\x00\x00" * 20,  # text, then binary NULs
    ],
)
def test_binary_bytes_are_still_refused(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, "primary.csv", content)
    with pytest.raises(InvalidFileError, match="not text|empty"):
        read_table(path, "primary.csv")


def test_non_utf8_byte_after_the_sniff_window_is_transcoded(tmp_path: Path) -> None:
    filler = "".join(f"{i},plain\n" for i in range(SNIFF_BYTES // 8 + 100))
    content = b"id,word\n" + filler.encode() + "999,caf\xe9\n".encode("latin-1")
    path = write(tmp_path, "primary.csv", content)
    frame = read_table(path, "primary.csv")
    assert frame["word"][-1] == "café"


def test_tsv_extension_defaults_to_tab(tmp_path: Path) -> None:
    path = write(tmp_path, "baseline.tsv", b"a\tb\n1\t2\n3\t4\n")
    assert read_table(path, "baseline.tsv").shape == (2, 2)


def test_late_type_change_is_retried_as_string_not_failed(tmp_path: Path) -> None:
    rows = ["code,value"] + [f"{i},{i}" for i in range(12_000)] + ["A-17,3.5"]
    path = write(tmp_path, "primary.csv", ("\n".join(rows) + "\n").encode())
    frame = read_table(path, "primary.csv")
    assert frame.schema["code"] == pl.String
    assert frame.schema["value"] == pl.Float64  # an integer column that later holds 3.5 becomes float
    assert frame["code"][-1] == "A-17"
    assert frame.height == 12_001


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (b"\xef\xbb\xbf", "the file is empty"),
        (b"a,b,c\n", "has a header but no data rows"),
        (b"a,b\x00,c\n1,2,3\n", "not text"),
        (bytes(range(256)) * 10, "not text"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
    ],
)
def test_malformed_files_raise_invalid_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = write(tmp_path, "primary.csv", content)
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.csv")
    assert expected in raised.value.message
    assert raised.value.code == "INVALID_FILE"


def test_row_with_extra_fields_names_its_line(tmp_path: Path) -> None:
    lines = ["a,b,c,d"] + [f"{i},{i},{i},{i}" for i in range(5)] + ["9,9,9,9,9"] + ["1,2,3,4"]
    path = write(tmp_path, "primary.csv", ("\n".join(lines) + "\n").encode())
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.csv")
    assert raised.value.message == "primary.csv: line 7 has 5 fields, the header has 4"
    assert raised.value.details["line"] == 7


def test_short_row_names_its_line_even_though_polars_would_pad_it(tmp_path: Path) -> None:
    lines = ["a,b,c", "1,2,3", "4,5,6", "7,8", "1,2,3"]
    path = write(tmp_path, "primary.csv", ("\n".join(lines) + "\n").encode())
    with pytest.raises(InvalidFileError, match="line 4 has 2 fields, the header has 3"):
        read_table(path, "primary.csv")


def test_line_numbers_count_physical_lines_of_quoted_multiline_fields(tmp_path: Path) -> None:
    content = b'a,b\n1,"two\nlines"\n2,x\n3,y,z\n'
    path = write(tmp_path, "primary.csv", content)
    with pytest.raises(InvalidFileError, match="line 5 has 3 fields, the header has 2"):
        read_table(path, "primary.csv")


def test_trailing_empty_field_and_multiline_field_are_not_ragged(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b'a,b,c\n1,2,\n3,"x\ny",\n')
    frame = read_table(path, "primary.csv")
    assert frame.shape == (2, 3)
    assert frame["c"].null_count() == 2


def test_unsupported_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    with pytest.raises(InvalidFileError, match=r"unsupported format \.xls; upload one of \.csv"):
        read_table(path, "primary.xls")


# --- Every format -----------------------------------------------------------------------------------------


def sample_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "amount": [1.5, None, -2.25, 1_000_000.125],
            "label": ['Doe, "J"', "it's", None, "café €, 5"],
            "day": [date(2024, 1, 2), None, date(1999, 12, 31), date(2000, 2, 29)],
            "active": [True, False, None, True],
            "count": [10, None, -3, 0],
        }
    )


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path)


def _write_tsv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path, separator="\t")


def _write_single_quoted(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path, quote_char="'")


def _write_cp1252(frame: pl.DataFrame, path: Path) -> None:
    path.write_bytes(frame.write_csv(separator=";").encode("cp1252"))


def _write_xlsx(frame: pl.DataFrame, path: Path) -> None:
    frame.write_excel(path)


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path)


def _write_json(frame: pl.DataFrame, path: Path) -> None:
    frame.write_json(path)


def _write_ndjson(frame: pl.DataFrame, path: Path) -> None:
    frame.write_ndjson(path)


# Text and JSON carry dates as ISO text, read back as Date with their layout reported; XLSX and Parquet keep
# Date (no layout: they were never text).
ROUND_TRIPS = [
    ("primary.csv", _write_csv, False, {"format": "csv", "encoding": "utf-8", "separator": ",", "quote_char": '"'}),
    ("primary.tsv", _write_tsv, False, {"format": "csv", "separator": "\t", "quote_char": '"'}),
    ("primary.txt", _write_single_quoted, False, {"format": "csv", "separator": ",", "quote_char": "'"}),
    ("primary.csv", _write_cp1252, False, {"format": "csv", "encoding": "cp1252", "separator": ";"}),
    ("primary.xlsx", _write_xlsx, True, {"format": "xlsx", "sheet": "Sheet1", "encoding": None}),
    ("primary.parquet", _write_parquet, True, {"format": "parquet", "separator": None}),
    ("primary.json", _write_json, False, {"format": "json", "encoding": "utf-8"}),
    ("primary.ndjson", _write_ndjson, False, {"format": "ndjson", "encoding": "utf-8"}),
    ("primary.jsonl", _write_ndjson, False, {"format": "ndjson"}),
]


@pytest.mark.parametrize(
    ("name", "writer", "dates_typed", "facts"), ROUND_TRIPS, ids=[f"{n}-{w.__name__}" for n, w, _, _ in ROUND_TRIPS]
)
def test_the_same_frame_reads_back_equal_from_every_format(
    tmp_path: Path, name: str, writer: Any, dates_typed: bool, facts: dict[str, Any]
) -> None:
    frame = sample_frame()
    path = tmp_path / name
    writer(frame, path)
    read, report = read_table_with_report(path, name)
    assert_frame_equal(read, frame)
    assert report == {
        "format": report["format"],
        "encoding": report["encoding"],
        "separator": report["separator"],
        "quote_char": report["quote_char"],
        "sheet": report["sheet"],
        "rows": 4,
        "columns": 6,
        "renamed_columns": [],
        "dropped_empty_columns": [],
        "flattened_columns": [],
        "json_encoded_columns": [],
        "temporal_columns": {} if dates_typed else {"day": {"kind": "date", "format": "%Y-%m-%d", "time_zone": None}},
        "number_columns": {},
        "boolean_columns": {},
    }
    assert {key: report[key] for key in facts} == facts  # type: ignore[literal-required]
    assert read_table(path, name).equals(read)


def test_quote_sniffing_prefers_the_quote_that_opens_fields_when_both_parse_evenly(tmp_path: Path) -> None:
    # With '"' every record has 3 fields too, so consistency alone cannot tell: the quotes opening fields do.
    path = write(tmp_path, "primary.csv", b"'last, first','city'\n'Doe, J','Paris'\n'Roe, R','Lyon'\n")
    assert sniff_dialect(path, "primary.csv").quote_char == "'"
    frame = read_table(path, "primary.csv")
    assert frame.columns == ["last, first", "city"]
    assert frame["last, first"].to_list() == ["Doe, J", "Roe, R"]


def test_apostrophes_inside_double_quoted_csv_keep_the_double_quote(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b'name,note\n\'90s kid,"a, b"\nO\'Brien,"it\'s"\nx,y\n')
    dialect = sniff_dialect(path, "primary.csv")
    assert (dialect.separator, dialect.quote_char) == (",", '"')
    assert read_table(path, "primary.csv")["name"].to_list() == ["'90s kid", "O'Brien", "x"]


def test_ragged_line_is_found_with_the_sniffed_quote(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b"a,b\n'x, y',1\n'z',2,3\n")
    with pytest.raises(InvalidFileError, match="line 3 has 3 fields, the header has 2") as raised:
        read_table(path, "primary.csv")
    assert raised.value.details == {"file": "primary.csv", "line": 3, "fields": 3, "header_fields": 2}


@pytest.mark.parametrize(
    ("content", "line", "column", "problem"),
    [
        (b"a,b\nx,1\n" + b"y,2\n" * 10 + b'z" wide,3\nw,4\n', 13, 2, 'a " inside an unquoted field'),
        (b'a,b\n"x"y,1\n"ok",2\n', 2, 4, 'text follows the closing "'),
        (b'a,b\n1,2\n3,"4\n5,6\n', 3, 3, 'the " opening a field is never closed'),
        (b"name,n\n'Doe, J',1\nO'Brien,2\n", 3, 2, "a ' inside an unquoted field"),
    ],
)
def test_quoting_problems_name_line_and_column(
    tmp_path: Path, content: bytes, line: int, column: int, problem: str
) -> None:
    path = write(tmp_path, "primary.csv", content)
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.csv")
    assert raised.value.message == f"primary.csv: line {line}, column {column}: {problem}" + (
        " (quote the field)" if "inside" in problem else ""
    )
    assert raised.value.details == {"file": "primary.csv", "line": line, "column": column}


def test_quoted_multiline_fields_and_doubled_quotes_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b'a,b\n"multi\nline",1\n"say ""hi""",2\n')
    assert read_table(path, "primary.csv")["a"].to_list() == ["multi\nline", 'say "hi"']


# --- XLSX -------------------------------------------------------------------------------------------------


def _workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    workbook = xlsxwriter.Workbook(path)
    for sheet_name, rows in sheets.items():
        worksheet = workbook.add_worksheet(sheet_name)
        for row_number, row in enumerate(rows):
            worksheet.write_row(row_number, 0, row)
    workbook.close()
    return path


def test_sheet_by_name_and_by_position(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "primary.xlsx",
        {"First": [["a"], [1], [2]], "Sales": [["region", "total"], ["north", 10.5], ["south", 3.0]]},
    )
    assert read_table(path, "primary.xlsx")["a"].to_list() == [1, 2]
    by_name, report = read_table_with_report(path, "primary.xlsx", sheet="Sales")
    assert report["sheet"] == "Sales"
    assert by_name.rows() == [("north", 10.5), ("south", 3.0)]
    assert read_table(path, "primary.xlsx", sheet=1).equals(by_name)
    assert read_table(path, "primary.xlsx", sheet="sales").equals(by_name)  # Excel names ignore case
    assert read_table(path, "primary.xlsx", sheet=0).columns == ["a"]


@pytest.mark.parametrize(("sheet", "problem"), [("Nope", "no sheet named 'Nope'"), (2, "no sheet at position 2")])
def test_unknown_sheet_lists_the_available_ones(tmp_path: Path, sheet: str | int, problem: str) -> None:
    path = _workbook(tmp_path / "primary.xlsx", {"First": [["a"], [1]], "Sales": [["b"], [2]]})
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.xlsx", sheet=sheet)
    assert problem in raised.value.message
    assert raised.value.message.endswith("the workbook's sheets are 'First', 'Sales'")
    assert raised.value.details == {"file": "primary.xlsx", "sheet": sheet, "available_sheets": ["First", "Sales"]}


def test_sheet_option_on_a_csv_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b"a,b\n1,2\n")
    with pytest.raises(InvalidFileError, match="applies to .xlsx workbooks only"):
        read_table(path, "primary.csv", sheet="Sales")


def test_a_late_text_cell_widens_the_xlsx_column_instead_of_becoming_null(tmp_path: Path) -> None:
    rows: list[list[Any]] = [["code", "value"], *([i, i * 0.5] for i in range(1500)), ["A-17", 2.0]]
    path = _workbook(tmp_path / "primary.xlsx", {"Data": rows})
    frame = read_table(path, "primary.xlsx")
    assert frame.schema["code"] == pl.String
    assert frame["code"][-1] == "A-17"
    assert frame["code"].null_count() == 0
    assert frame.height == 1501


def test_xlsx_blank_and_repeated_headers_are_renamed(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "primary.xlsx",
        {"Data": [["a", "a", None, "b", None], [1, 2, 0, "x", None], [3, 4, 0, "y", None]]},
    )
    frame, report = read_table_with_report(path, "primary.xlsx")
    # The unnamed column of zeros is data and stays (Polars alone would drop it); the empty one goes.
    assert frame.columns == ["a", "a_2", "column_3", "b"]
    assert frame.rows() == [(1, 2, 0, "x"), (3, 4, 0, "y")]
    assert report["renamed_columns"] == [
        {"position": 2, "original": "a", "renamed_to": "a_2"},
        {"position": 3, "original": "", "renamed_to": "column_3"},
    ]


def test_a_genuine_numbered_xlsx_header_is_not_reported_as_renamed(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "primary.xlsx", {"Data": [["a", "a_1"], [1, 2]]})
    frame, report = read_table_with_report(path, "primary.xlsx")
    assert frame.columns == ["a", "a_1"]
    assert report["renamed_columns"] == []


def _zip_with_sheet_part(path: Path, member_size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * member_size)
    return path


def test_a_highly_compressed_workbook_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _zip_with_sheet_part(tmp_path / "primary.xlsx", 8 << 20)
    assert path.stat().st_size < 64 * 1024
    monkeypatch.setattr(readers, "XLSX_MAX_UNCOMPRESSED_BYTES", 1 << 20)
    monkeypatch.setattr(readers.fastexcel, "read_excel", _never_called)
    with pytest.raises(InvalidFileError, match="likely decompression bomb") as raised:
        read_table(path, "primary.xlsx")
    assert raised.value.details["uncompressed_bytes"] == (8 << 20) + len("<Types/>")
    assert raised.value.details["compressed_bytes"] == path.stat().st_size


def test_the_bomb_limit_needs_both_size_and_ratio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "primary.xlsx"
    sample_frame().write_excel(path)
    monkeypatch.setattr(readers, "XLSX_MAX_UNCOMPRESSED_BYTES", 1)  # every workbook is "large" now
    assert read_table(path, "primary.xlsx").height == 4  # ... but a real workbook's ratio is low


def test_a_central_directory_declaring_gigabytes_is_refused_with_default_limits(tmp_path: Path) -> None:
    path = _zip_with_sheet_part(tmp_path / "primary.xlsx", 1000)
    data = bytearray(path.read_bytes())
    member = b"xl/worksheets/sheet1.xml"
    entry = data.rindex(b"PK\x01\x02", 0, data.rindex(member))  # the sheet's central directory entry
    struct.pack_into("<I", data, entry + 24, 3 << 30)  # declared uncompressed size: 3 GiB
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidFileError, match="likely decompression bomb"):
        read_table(path, "primary.xlsx")


def _never_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("the workbook was opened")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"id,name\n1,a\n", "not an XLSX workbook (it is not a valid ZIP archive)"),
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 600, "not an XLSX workbook (this is a legacy Office document"),
        (b"PK\x03\x04" + b"\x00" * 100, "not an XLSX workbook"),
    ],
)
def test_corrupt_xlsx(tmp_path: Path, content: bytes, expected: str) -> None:
    path = write(tmp_path, "primary.xlsx", content)
    with pytest.raises(InvalidFileError, match=re.escape(expected)):
        read_table(path, "primary.xlsx")


def test_a_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "primary.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(InvalidFileError, match="could not be read as an XLSX workbook"):
        read_table(path, "primary.xlsx")


# --- Parquet ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"PAR1" + b"\x07" * 40 + b"PAR1", "could not be read as Parquet"),
        (b"id,name\n1,a\n", "not a Parquet file (it lacks the PAR1 markers)"),
        (b"PK\x03\x04" + b"\x00" * 40, "not a Parquet file (this is a ZIP archive"),
        (b"PAR1" + b"\x07" * 40, "a Parquet file cut short or damaged (it lacks the closing PAR1 marker)"),
    ],
)
def test_corrupt_parquet(tmp_path: Path, content: bytes, expected: str) -> None:
    path = write(tmp_path, "primary.parquet", content)
    with pytest.raises(InvalidFileError, match=re.escape(expected)):
        read_table(path, "primary.parquet")


def test_nested_parquet_values_become_flat_scalars(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "point": [{"x": 1.5, "tags": ["a"]}, None],
            "scores": [[1, 2], None],
            "empty": [None, None],
        }
    )
    path = tmp_path / "primary.parquet"
    frame.write_parquet(path)
    read, report = read_table_with_report(path, "primary.parquet")
    assert read.columns == ["id", "point.x", "point.tags", "scores", "empty"]
    assert read.schema["empty"] == pl.String  # a named column of nulls stays, as text
    assert read.rows() == [(1, 1.5, '["a"]', "[1,2]", None), (2, None, None, None, None)]
    assert report["flattened_columns"] == ["point"]
    assert report["json_encoded_columns"] == ["point.tags", "scores"]


# --- JSON and NDJSON --------------------------------------------------------------------------------------


def test_nested_json_is_flattened_one_level_and_lists_become_json_text(tmp_path: Path) -> None:
    records = [
        {"id": 1, "address": {"city": "Paris", "geo": {"lat": 48.8}}, "tags": ["a", "b, c"]},
        {"id": 2, "address": None, "tags": None},
        {"id": 3, "address": {"city": "Lyon", "geo": None}, "tags": []},
    ]
    path = write(tmp_path, "primary.json", json.dumps(records).encode())
    frame, report = read_table_with_report(path, "primary.json")
    assert frame.columns == ["id", "address.city", "address.geo", "tags"]
    assert frame["address.city"].to_list() == ["Paris", None, "Lyon"]
    assert frame["address.geo"].to_list() == ['{"lat":48.8}', None, None]
    assert [None if text is None else json.loads(text) for text in frame["tags"]] == [["a", "b, c"], None, []]
    assert report["flattened_columns"] == ["address"]
    assert report["json_encoded_columns"] == ["address.geo", "tags"]
    # Downstream string operations work on every text column.
    lengths = frame.select(pl.col(pl.String).str.len_chars())
    assert lengths.width == 3


def test_flattened_names_that_collide_are_renamed(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.json", b'[{"a.b": 1, "a": {"b": 2}}]')
    frame, report = read_table_with_report(path, "primary.json")
    assert frame.columns == ["a.b", "a.b_2"]
    assert frame.row(0) == (1, 2)
    assert report["renamed_columns"] == [{"position": 2, "original": "a.b", "renamed_to": "a.b_2"}]


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.json", b'[\n  {"a": 1},\n  {"a": 2,}\n]\n')
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.json")
    assert raised.value.message.startswith("primary.json: malformed JSON at line 3, column 11")
    assert raised.value.details == {"file": "primary.json", "line": 3, "column": 11}


@pytest.mark.parametrize(
    ("content", "expected", "line", "column"),
    [
        (b'{"a": [1, 2], "b": [3, 4]}', "found a JSON object, expected an array of records", 1, None),
        (b"[1, 2, 3]", "element 1 of the array (line 1, column 2) is a number, not an object", 1, 2),
        (b'[\n  {"a": 1},\n  "x"\n]', "element 2 of the array (line 3, column 3) is a string", 3, 3),
        (b'[{"a": 1}, null]', "element 2 of the array (line 1, column 12) is null", 1, 12),
        (b'"hello"', "found a string, expected an array of records", 1, None),
    ],
)
def test_json_that_is_not_an_array_of_records(
    tmp_path: Path, content: bytes, expected: str, line: int, column: int | None
) -> None:
    path = write(tmp_path, "primary.json", content)
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.json")
    assert expected in raised.value.message
    assert raised.value.details.get("line") == line
    assert raised.value.details.get("column") == column


def test_non_utf8_and_nan_json(tmp_path: Path) -> None:
    content = '[{"a": 1},\n {"a": "café"}]'.encode("latin-1")
    path = write(tmp_path, "primary.json", content)
    with pytest.raises(InvalidFileError, match="not UTF-8 text") as raised:
        read_table(path, "primary.json")
    assert (raised.value.details["line"], raised.value.details["column"]) == (2, content.index(b"\xe9") - 11 + 1)
    path = write(tmp_path, "primary.json", b'[{"a": NaN}]')
    with pytest.raises(InvalidFileError, match="NaN is not valid JSON"):
        read_table(path, "primary.json")


def test_json_late_type_change_widens_to_string(tmp_path: Path) -> None:
    records = [{"code": i} for i in range(300)] + [{"code": "A-17", "extra": True}]
    path = write(tmp_path, "primary.json", json.dumps(records).encode())
    frame = read_table(path, "primary.json")
    assert frame.schema["code"] == pl.String
    assert frame["code"].to_list() == [str(i) for i in range(300)] + ["A-17"]
    assert frame["extra"].to_list() == [None] * 300 + [True]


def test_ndjson_ignores_blank_lines_and_a_bom_and_keeps_late_keys(tmp_path: Path) -> None:
    lines = [json.dumps({"a": i}) for i in range(300)] + ["", "   ", '{"a": 300, "late": "x"}', ""]
    path = write(tmp_path, "primary.ndjson", b"\xef\xbb\xbf" + "\n".join(lines).encode())
    frame = read_table(path, "primary.ndjson")
    assert frame.height == 301
    assert frame["a"].to_list() == list(range(301))
    assert frame["late"].to_list() == [None] * 300 + ["x"]


@pytest.mark.parametrize(
    ("content", "expected", "line", "column"),
    [
        (b'{"a": 1}\n\n{"a": 2}\n{"a":3,,}\n', "malformed JSON at line 4, column 8", 4, 8),
        (b'{"a": 1}\n[1, 2]\n', "line 2 holds a JSON array, not an object", 2, 1),
        (b'{"a": 1}\nnull\n', "line 2 holds null, not an object", 2, 1),
        (b'{"a": 1} {"a": 2}\n', "malformed JSON at line 1, column 10: Extra data", 1, 10),
        ('{"a": 1}\n{"a": "é"}\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9 at line 2, column 8)", 2, 8),
    ],
)
def test_malformed_ndjson_names_its_line(tmp_path: Path, content: bytes, expected: str, line: int, column: int) -> None:
    path = write(tmp_path, "primary.ndjson", content)
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.ndjson")
    assert expected in raised.value.message
    assert raised.value.details["line"] == line
    assert raised.value.details["column"] == column


MIXED_KINDS: dict[str, tuple[list[dict[str, Any]], pl.DataType, list[Any]]] = {
    # records, the type of "a", its values; a field of other kinds beside it keeps its type
    "an integer then text": ([{"a": 1}, {"a": "x"}], pl.String(), ["1", "x"]),
    "an integer then an array": ([{"a": 1}, {"a": [1, 2]}], pl.String(), ["1", "[1, 2]"]),
    "a boolean then a float": ([{"a": True}, {"a": 2.5}], pl.String(), ["true", "2.5"]),
    "a boolean then an integer": ([{"a": True}, {"a": 1}, {"a": False}], pl.String(), ["true", "1", "false"]),
    "an integer then a boolean": ([{"a": 1}, {"a": True}], pl.String(), ["1", "true"]),
    "an object then text": (
        [{"a": {"b": 1, "c": [1.5, "é"]}}, {"a": "x"}],
        pl.String(),
        ['{"b": 1, "c": [1.5, "é"]}', "x"],
    ),
    "text then an object": ([{"a": "x"}, {"a": {"b": None}}], pl.String(), ["x", '{"b": null}']),
    "an array then an object": ([{"a": [1]}, {"a": {"b": 1}}], pl.String(), ["[1]", '{"b": 1}']),
    "every kind and nulls": (
        [{"a": None}, {"a": 1}, {"a": 2.5}, {"a": "x"}, {"a": True}, {"a": [None]}, {"a": {}}, {}],
        pl.String(),
        [None, "1", "2.5", "x", "true", "[null]", "{}", None],
    ),
    "integers and floats": ([{"a": 1}, {"a": 2.5}, {"a": None}], pl.Float64(), [1.0, 2.5, None]),
}


def _as_json(records: list[dict[str, Any]], name: str) -> bytes:
    if name.endswith(".json"):
        return json.dumps(records, ensure_ascii=False).encode()
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


@pytest.mark.parametrize("name", ["primary.json", "primary.ndjson"])
@pytest.mark.parametrize("case", list(MIXED_KINDS))
def test_a_field_of_several_json_kinds_is_read_as_text(tmp_path: Path, name: str, case: str) -> None:
    """Valid JSON whose values change kind from record to record (exports of pandas, APIs) is read, not refused
    with Polars' "failed to determine supertype" or "cannot parse 'true' (bool) as Int64"; nor is a boolean read
    as 1 among numbers. A string is its text, a number as Polars writes it, an object or array its JSON text."""
    records, dtype, values = MIXED_KINDS[case]
    others = [{"n": index, "s": {"t": f"v{index}"}} for index in range(len(records))]
    path = write(
        tmp_path, name, _as_json([{**other, **record} for other, record in zip(others, records, strict=True)], name)
    )
    frame, report = read_table_with_report(path, name)
    assert frame.schema == pl.Schema({"n": pl.Int64(), "s.t": pl.String(), "a": dtype})
    assert frame["a"].to_list() == values
    assert frame["n"].to_list() == list(range(len(records)))
    assert report["flattened_columns"] == ["s"] and report["rows"] == len(records)


def test_json_and_ndjson_of_the_same_mixed_records_read_alike(tmp_path: Path) -> None:
    records = [{"a": 1, "b": True, "c": {"d": 1}}, {"a": [1, {"x": 2}], "b": 7, "c": "none"}, {"a": "z", "b": None}]
    array = read_table_with_report(write(tmp_path, "primary.json", _as_json(records, "primary.json")), "primary.json")
    lines = read_table_with_report(write(tmp_path, "p.ndjson", _as_json(records, "p.ndjson")), "p.ndjson")
    assert_frame_equal(array[0], lines[0])
    assert array[0].to_dicts() == [
        {"a": "1", "b": "true", "c": '{"d": 1}'},
        {"a": '[1, {"x": 2}]', "b": "7", "c": "none"},
        {"a": "z", "b": None, "c": None},
    ]
    assert {**array[1], "format": "ndjson"} == lines[1]


def test_booleans_beside_zeros_and_ones_keep_their_types(tmp_path: Path) -> None:
    """The JSON array reader's check for a boolean read as a number (a 0/1 column in a file with true or false) reads
    such a column again as text: a column of numbers beside a column of booleans stays as it was."""
    records = [{"n": index % 2, "x": index / 2, "b": index % 3 == 0, "s": "true"} for index in range(6)]
    frame = read_table(write(tmp_path, "primary.json", json.dumps(records).encode()), "primary.json")
    assert frame.schema == pl.Schema({"n": pl.Int64(), "x": pl.Float64(), "b": pl.Boolean(), "s": pl.String()})
    assert frame.to_dicts() == records


def test_a_late_change_of_kind_in_a_long_ndjson_with_a_bom(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + b'{"a": 1, "b": "x"}\n' * 20_000 + b'\n{"a": [1], "b": "y"}\n'
    frame = read_table(write(tmp_path, "primary.jsonl", content), "primary.jsonl")
    assert frame.schema == pl.Schema({"a": pl.String(), "b": pl.String()})
    assert frame["a"].to_list() == ["1"] * 20_000 + ["[1]"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("primary.ndjson", b'{"a": 1}\n{"a": [1]}\n{"a": 2,}\n', "malformed JSON at line 3, column 9"),
        ("primary.ndjson", b'{"a": 1}\n{"a": [1]}\n{"a": NaN}\n', "line 3: NaN is not valid JSON"),
        ("primary.ndjson", b'{"a": 1}\n{"a": [1]}\n[1]\n', "line 3 holds a JSON array, not an object"),
        ("primary.json", b'[{"a": 1}, {"a": [1]}, 5]', "element 3 of the array (line 1, column 24) is a number"),
        # a kind that changes inside an object or an array is not read as text: Polars' message, as before
        ("primary.ndjson", b'{"a": {"b": true}}\n{"a": {"b": 1}}\n', "could not be read as NDJSON"),
        ("primary.ndjson", b'{"a": [[1]]}\n{"a": [1]}\n', "could not be read as NDJSON"),
    ],
)
def test_a_file_of_mixed_kinds_with_a_fault_is_refused_for_the_fault(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    with pytest.raises(InvalidFileError) as raised:
        read_table(write(tmp_path, name, content), name)
    assert expected in raised.value.message


# --- Empty files, names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("primary.csv", b"", "the file is empty"),
        ("primary.tsv", b"a\tb\n", "has a header but no data rows"),
        ("primary.json", b"", "the file is empty"),
        ("primary.json", b" \n\t\n", "the file is empty"),
        ("primary.json", b"[ ]", "the JSON array is empty: no data rows"),
        ("primary.json", b"[{}, {}]", "the records have no fields"),
        ("primary.ndjson", b"", "the file is empty"),
        ("primary.jsonl", b"\n  \n\n", "the file is empty"),
        ("primary.parquet", b"", "the file is empty"),
        ("primary.xlsx", b"", "the file is empty"),
    ],
)
def test_empty_files_of_every_format(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(InvalidFileError, match=re.escape(expected)) as raised:
        read_table(path, name)
    assert raised.value.details["file"] == name


def test_parquet_with_a_schema_but_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "primary.parquet"
    sample_frame().clear().write_parquet(path)
    with pytest.raises(InvalidFileError, match="no data rows"):
        read_table(path, "primary.parquet")


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [("Empty", "the sheet 'Empty' is empty"), ("HeaderOnly", "the sheet 'HeaderOnly' has a header but no data rows")],
)
def test_empty_and_header_only_sheets(tmp_path: Path, sheet: str, expected: str) -> None:
    path = _workbook(tmp_path / "primary.xlsx", {"Empty": [], "HeaderOnly": [["a", "b"]]})
    with pytest.raises(InvalidFileError, match=re.escape(expected)) as raised:
        read_table(path, "primary.xlsx", sheet=sheet)
    assert raised.value.details == {"file": "primary.xlsx", "sheet": sheet}


def test_duplicate_and_blank_csv_headers_are_renamed_deterministically(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b"a,a,,b,a_2, \n1,2,3,4,5,6\n")
    frame, report = read_table_with_report(path, "primary.csv")
    assert frame.columns == ["a", "a_3", "column_3", "b", "a_2", "column_6"]
    assert frame.row(0) == (1, 2, 3, 4, 5, 6)
    assert report["renamed_columns"] == [
        {"position": 2, "original": "a", "renamed_to": "a_3"},
        {"position": 3, "original": "", "renamed_to": "column_3"},
        {"position": 6, "original": " ", "renamed_to": "column_6"},
    ]


def test_trailing_separators_make_no_empty_column(tmp_path: Path) -> None:
    path = write(tmp_path, "primary.csv", b"a,b,\n1,2,\n3,4,\n")
    frame, report = read_table_with_report(path, "primary.csv")
    assert frame.columns == ["a", "b"]
    assert report["dropped_empty_columns"] == [3]


def test_blank_json_key_the_reserved_row_index_name_and_selectors_are_renamed(tmp_path: Path) -> None:
    """A column "*" or "^…$" (selectors to pl.col: every column, a regular expression) kept so, every agent would
    address the wrong columns."""
    path = write(tmp_path, "primary.json", b'[{"": 1, "__row_index__": 2, "*": 3, "^a$": 4, "a": 5}]')
    frame, report = read_table_with_report(path, "primary.json")
    assert frame.columns == ["column_1", "__row_index___2", "column_3", "column_4", "a"]
    assert frame.row(0) == (1, 2, 3, 4, 5)
    renamed = [(entry["original"], entry["renamed_to"]) for entry in report["renamed_columns"]]
    assert renamed == [("", "column_1"), ("__row_index__", "__row_index___2"), ("*", "column_3"), ("^a$", "column_4")]


def test_a_csv_header_of_selectors_profiles_and_cleans(tmp_path: Path) -> None:
    """Before, "*" broke the reader's date typing and "^a$" its integer typing: the task failed."""
    path = write(tmp_path, "primary.csv", b"a,*,^a$,a_x\n1,x,007,2024-01-01\n2,y,3,2024-01-02\n")
    for tool in ("profile-my-data", "clean-my-data"):
        result = run_tool(tool, [], {"primary.csv": path}, {}, tmp_path / tool, lambda *_: None)
        assert result["status"] == "success", result["agents"]
        assert result["summary"]["columns"] == 4


@given(st.lists(st.sampled_from(["a", "a_2", "b", "", " ", "column_1", "__row_index__"]), min_size=1, max_size=8))
def test_unique_names_are_unique_and_keep_first_occurrences(names: list[str]) -> None:
    columns = list(enumerate(names, 1))
    final, renamed = readers._unique_names(columns)
    assert len(set(final)) == len(final)
    assert all(name.strip() for name in final) and "__row_index__" not in final
    first = {name: index for index, name in reversed(list(enumerate(names)))}
    for index, name in enumerate(names):
        if name.strip() and name != "__row_index__" and first[name] == index:
            assert final[index] == name
    assert [entry["position"] for entry in renamed] == [
        i + 1 for i, (a, b) in enumerate(zip(names, final, strict=True)) if a != b
    ]
    assert readers._unique_names(columns) == (final, renamed)


def test_integer_looking_codes_keep_their_text_and_late_values_widen_the_type(tmp_path: Path) -> None:
    """A column the schema scan takes for integers stays text when a value would not be written back as read
    (a leading zero, a sign), and widens to Float64 or text for a decimal or a word past the scanned rows."""
    scanned = readers.INFER_SCHEMA_LENGTH + 5
    rows = [f"{i},{i},{i},{i},{i},{i}" for i in range(1, scanned)]
    rows += ["9,02134,1.5,x,+7,-0", "10,12345,2,y,8,3"]
    path = tmp_path / "primary.csv"
    path.write_text("id,zip,amount,word,signed,neg\n" + "\n".join(rows) + "\n")
    frame = readers.read_table(path, "primary.csv")
    assert frame.schema == pl.Schema(
        {"id": pl.Int64, "zip": pl.String, "amount": pl.Float64} | dict.fromkeys(["word", "signed", "neg"], pl.String)
    )
    assert frame["zip"][-2] == "02134" and frame["signed"][-2] == "+7" and frame["neg"][-2] == "-0"
    assert frame["amount"][-2] == 1.5 and frame["id"].sum() == sum(range(1, scanned)) + 19


def test_clean_my_data_writes_leading_zero_codes_back(tmp_path: Path) -> None:
    from agents.chain import run_tool

    path = tmp_path / "primary.csv"
    path.write_text("id,zip,name\n1,00123,a\n2,02134,b\n3,12345,c\n")
    run_tool("clean-my-data", [], {"primary.csv": path}, {}, tmp_path / "out", lambda *_: None)
    assert (tmp_path / "out" / "cleaned_data.csv").read_text() == path.read_text()
