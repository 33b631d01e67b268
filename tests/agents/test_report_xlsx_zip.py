"""The workbook's zip (agents.reports.xlsx_zip): with zipfile's deflate settings, byte for byte the file
xlsxwriter writes through zipfile; with its own, the same parts in the same order, a valid archive."""

from __future__ import annotations

import random
import zipfile
import zlib
from pathlib import Path

import pytest
from xlsxwriter.exceptions import FileSizeError
from xlsxwriter.workbook import Workbook

from agents.reports import xlsx_zip
from agents.reports.excel import write_excel_report
from agents.reports.fast_xlsx import FastWorkbook, FastWorksheet
from agents.reports.xlsx_zip import ZIP_TIME, write_zip
from tests.agents.test_report_fast_xlsx import CREATED, REPORT_OPTIONS, fill, parts
from tests.agents.test_reports import CLEAN_STEPS, CLEAN_SUMMARY, clean_envelopes


def zipfile_deflate(data: bytes) -> bytes:
    """What zipfile writes for a deflated entry without a compression level of its own."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture
def as_zipfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_zip, "deflate", zipfile_deflate)


LABELS = ["a & b", "<tag>", 'say "hi"', "x\x01y", "_x0041_", "line\nbreak", "\ufffe", " padded ", "émoji 🎉"]


def charted(book: Workbook) -> None:
    """A sheet with a table and charts of each type the reports draw (their own parts: chart, drawing,
    relationships), over labels that need escaping and missing values."""
    book.set_properties({"created": CREATED, "title": "Zipped"})
    sheet = book.add_worksheet("Table & chart")
    sheet.write_row(0, 0, ["label", "count", "share"])
    for index in range(1, 30):
        sheet.write_row(index, 0, [f"{LABELS[index % len(LABELS)]} {index}", index * index, None if index % 7 else 0.5])
    sheet.add_table(0, 0, 29, 2, {"columns": [{"header": "label"}, {"header": "count"}, {"header": "share"}]})
    for position, kind in enumerate(["column", "bar", "line", "pie"]):
        chart = book.add_chart({"type": kind, "name": f"{kind} & more"})
        assert chart is not None
        for column in (1, 2):
            chart.add_series(
                {
                    "name": LABELS[column],
                    "categories": ["Table & chart", 1, 0, 29, 0],
                    "values": ["Table & chart", 1, column, 29, column],
                }
            )
        chart.set_title({"name": LABELS[position]})
        chart.set_x_axis({"name": "x & y", "num_font": {"rotation": -45, "size": 8}})
        sheet.insert_chart(2 + 16 * position, 4, chart)
    book.add_worksheet("Empty")
    book.close()


def test_with_zipfiles_settings_the_file_is_xlsxwriters(tmp_path: Path, as_zipfile: None) -> None:
    fill(FastWorkbook(str(tmp_path / "fast-odd.xlsx"), REPORT_OPTIONS), FastWorksheet)
    fill(Workbook(str(tmp_path / "stock-odd.xlsx"), REPORT_OPTIONS), None)
    charted(FastWorkbook(str(tmp_path / "fast-chart.xlsx"), REPORT_OPTIONS))
    charted(Workbook(str(tmp_path / "stock-chart.xlsx"), REPORT_OPTIONS))
    assert (tmp_path / "fast-odd.xlsx").read_bytes() == (tmp_path / "stock-odd.xlsx").read_bytes()
    assert (tmp_path / "fast-chart.xlsx").read_bytes() == (tmp_path / "stock-chart.xlsx").read_bytes()


@pytest.mark.parametrize(
    "entries",
    [
        [("a.xml", b"<a/>"), ("empty.xml", b""), ("xl/media/image1.png", bytes(range(256)) * 40)],
        [("naïve/ünïcode.xml", "ünïcode 🎉".encode()), ("x" * 300 + ".xml", b"<x>" * 10_000)],
        [],
    ],
    ids=["parts", "non-ascii names", "none"],
)
def test_write_zip_as_zipfile_writes_it(tmp_path: Path, as_zipfile: None, entries: list[tuple[str, bytes]]) -> None:
    write_zip(tmp_path / "ours.zip", entries)
    with zipfile.ZipFile(tmp_path / "theirs.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    assert (tmp_path / "ours.zip").read_bytes() == (tmp_path / "theirs.zip").read_bytes()


def test_own_settings_zip_the_same_parts_smaller_windows_included(tmp_path: Path) -> None:
    """The report's own settings (level 1, windows sized to the parts): the same names in the same order, the
    same contents, a valid archive; a whole report as well as a small workbook."""
    charted(FastWorkbook(str(tmp_path / "fast.xlsx"), REPORT_OPTIONS))
    charted(Workbook(str(tmp_path / "stock.xlsx"), REPORT_OPTIONS))
    write_excel_report(
        tmp_path / "report.xlsx", "clean-my-data", clean_envelopes(), steps=CLEAN_STEPS, summary=CLEAN_SUMMARY
    )
    for name in ("fast.xlsx", "report.xlsx"):
        with zipfile.ZipFile(tmp_path / name) as archive:
            assert archive.testzip() is None
            assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    with zipfile.ZipFile(tmp_path / "fast.xlsx") as ours, zipfile.ZipFile(tmp_path / "stock.xlsx") as theirs:
        assert ours.namelist() == theirs.namelist()
        for name in ours.namelist():
            assert ours.read(name) == theirs.read(name), name
    assert parts(tmp_path / "fast.xlsx") == parts(tmp_path / "stock.xlsx")


def test_deflate_round_trips_every_size() -> None:
    for size in (0, 1, 255, 256, 257, 511, 512, 513, 4096, 32_767, 32_768, 32_769, 100_000):
        data = bytes((index * 7 + index // 13) % 251 for index in range(size))
        assert zlib.decompress(xlsx_zip.deflate(data), -15) == data


def test_an_archive_needing_zip64_is_refused_as_xlsxwriter_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx_zip, "ZIP64_LIMIT", 1_000)
    with pytest.raises(zipfile.LargeZipFile):
        write_zip(tmp_path / "big.zip", [("big.xml", b"x" * 2_000)])
    with pytest.raises(zipfile.LargeZipFile):
        # each part below the limit, the third one's offset above it (random bytes do not compress)
        write_zip(tmp_path / "many.zip", [(f"{index}.bin", random.Random(index).randbytes(900)) for index in range(3)])
    with pytest.raises(FileSizeError):
        charted(FastWorkbook(str(tmp_path / "book.xlsx"), REPORT_OPTIONS))


def test_a_zip64_workbook_is_zipped_by_xlsxwriter(tmp_path: Path) -> None:
    options = {**REPORT_OPTIONS, "use_zip64": True}
    charted(FastWorkbook(str(tmp_path / "fast.xlsx"), options))
    charted(Workbook(str(tmp_path / "stock.xlsx"), options))
    assert (tmp_path / "fast.xlsx").read_bytes() == (tmp_path / "stock.xlsx").read_bytes()
