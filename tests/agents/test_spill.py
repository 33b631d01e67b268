"""agents.spill reads a delimited file as agents.readers does: the same frame (values, dtypes, names), the same read
report and the same errors, from a typed Parquet spill written by Polars' streaming engine."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.options import RunOptions
from agents.readers import read_table_with_report
from agents.spill import spill_csv

MANY = 10_050  # past the 10,000 rows the schema is inferred from


def _lines(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


CASES: dict[str, tuple[str, bytes]] = {
    "mixed": (
        "primary.csv",
        _lines(
            "id,amount,name,day,at,zoned",
            [
                "1,2.5,Ann,2024-01-31,2024-01-31T10:00:00,2024-01-31T10:00:00+02:00",
                "2,,Bob,2024-02-01,2024-02-01T11:30:00,2024-02-01T11:30:00+02:00",
                "3,7,,2024-02-02,,2024-02-02T12:00:00+02:00",
            ],
        ),
    ),
    "codes": (
        "primary.csv",
        _lines("zip,signed,plus,plain", ["007,-0,+5,1", "02134,-07,6,2", "12,3,7,3"]),
    ),
    "decimal after the inferred rows": (
        "primary.csv",
        _lines("n,m", [f"{i},{i}" for i in range(MANY)] + ["0.5,x"]),
    ),
    "integer past Int64": (
        "primary.csv",
        _lines("n", [str(i) for i in range(MANY)] + ["99999999999999999999999"]),
    ),
    "names": (
        "primary.csv",
        _lines("a,,a,*,^a$, ", ["1,,2,3,4,x", "5,,6,7,8,"]),
    ),
    "tsv": ("primary.tsv", b"a\tb\n1\tx y\n2\tz\n"),
    "semicolons and quotes": ("primary.csv", b'a;b\n"1;2";x\n"3";"y ""q"""\n'),
    "cp1252": ("primary.csv", "city,n\nZürich,1\nSão Paulo,2\n€uro,3\n".encode("cp1252")),
    "utf-16": ("primary.csv", "city,n\nZürich,1\nOslo,2\n".encode("utf-16")),
    "cp1252 after the sniff window": (
        "primary.csv",
        _lines("word,n", ["plain,1"] * 8_000) + "caf\xe9,2\n".encode("cp1252"),
    ),
    "short row": ("primary.csv", _lines("a,b,c", ["1,2,3", "4,5", "6,7,8"])),
    "long row": ("primary.csv", _lines("a,b", ["1,2", "3,4,5"])),
    "stray quote": ("primary.csv", _lines("a,b", ['1,x"y', "2,z"])),
    "header only": ("primary.csv", b"a,b\n"),
    "a repeat named as Polars names it": ("primary.csv", b"a,a_duplicated_0,a\n1,2,3\n"),
    "carriage returns alone": ("primary.csv", b"a,b\r1,2\r3,4\r"),
    "empty": ("primary.csv", b"\n\n"),
    "one blank column": ("primary.csv", b",\n,\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_spill_reads_as_the_reader_does(case: str, tmp_path: Path) -> None:
    name, content = CASES[case]
    source = tmp_path / name
    source.write_bytes(content)
    try:
        expected, expected_report = read_table_with_report(source, name)
    except InvalidFileError as error:
        with pytest.raises(InvalidFileError) as raised:
            spill_csv(source, name, tmp_path / "spill.parquet")
        assert (str(raised.value), raised.value.details) == (str(error), error.details)
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing left behind
        return
    spilled = spill_csv(source, name, tmp_path / "spill.parquet", metadata=lambda report: {"k": str(report["rows"])})
    assert_frame_equal(spilled.scan().collect(), expected)
    assert spilled.report == expected_report
    assert spilled.rows == expected.height
    assert pl.read_parquet_metadata(spilled.path)["k"] == str(expected.height)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "spill.parquet"])  # intermediates removed


def test_the_cases_cover_every_typing_outcome(tmp_path: Path) -> None:
    """The comparison above means something only if the reader does type and keep codes in these files."""
    source = tmp_path / "primary.csv"
    source.write_bytes(CASES["codes"][1])
    frame = spill_csv(source, "primary.csv", tmp_path / "s.parquet").scan().collect()
    assert frame.schema == {"zip": pl.String, "signed": pl.String, "plus": pl.String, "plain": pl.Int64}
    source.write_bytes(CASES["decimal after the inferred rows"][1])
    frame = spill_csv(source, "primary.csv", tmp_path / "s.parquet").scan().collect()
    assert frame.schema == {"n": pl.Float64, "m": pl.String}
    source.write_bytes(CASES["mixed"][1])
    spilled = spill_csv(source, "primary.csv", tmp_path / "s.parquet")
    assert spilled.scan().collect_schema()["day"] == pl.Date
    assert set(spilled.report["temporal_columns"]) == {"day", "at", "zoned"}


def test_a_header_wider_than_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_bytes(_lines(",".join(f"c{i}" for i in range(30)), [",".join("1" * 30)]))
    with pytest.raises(InvalidFileError, match="30 columns; the limit is 20"):
        spill_csv(source, "primary.csv", tmp_path / "s.parquet", max_columns=20)
    assert not (tmp_path / "s.parquet").exists()


def test_the_streamed_profile_types_the_file_as_the_in_memory_one(tmp_path: Path) -> None:
    """Before the spill, the streamed profile let Polars type "007" as the integer 7 and "*" broke it."""
    source = tmp_path / "primary.csv"
    rows = [f"{i:03d},{i % 7},{'+' if i % 2 else ''}{i},x{i},2024-01-{i % 28 + 1:02d}" for i in range(300)]
    source.write_bytes(_lines("zip,n,signed,*,day", rows))

    def types(directory: str, threshold: int | None) -> dict[str, tuple[str, str]]:
        options = RunOptions(streaming_threshold_bytes=threshold)
        result = run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": source}, {}, tmp_path / directory,
                          lambda *_: None, run_options=options)  # fmt: skip
        assert result["summary"]["inputs"]["primary"].get("streamed") is (True if threshold == 0 else None)
        fields = result["agents"]["unified-profiler"]["data"]["fields"]
        return {field["field_name"]: (field["data_type"], field["polars_dtype"]) for field in fields}

    in_memory = types("memory", None)
    assert in_memory["zip"][1] == "String" and in_memory["n"][1] == "Int64" and in_memory["column_4"][1] == "String"
    assert types("streamed", 0) == in_memory
