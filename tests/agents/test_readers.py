from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from agents.errors import InvalidFileError
from agents.readers import SNIFF_BYTES, read_table, sniff_dialect


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
    path = write(tmp_path, "primary.parquet", b"PAR1")
    with pytest.raises(InvalidFileError, match="unsupported format"):
        read_table(path, "primary.parquet")
