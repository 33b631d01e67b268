"""The reader's fast typing (integer text, dates written as text) against the definitions it replaces: the same
frame and the same layouts on columns built to hit every case, and Polars' parsing assumptions it rests on."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents import readers
from agents.errors import InvalidFileError
from agents.layouts import (
    TextLayout,
    _lossless,
    apply_layouts,
    find_layouts,
    type_temporal_text,
)
from agents.readers import _typed_numbers, _written_otherwise, read_table_with_report


def reference_typed_integers(frame: pl.DataFrame, integers: dict[str, pl.DataType]) -> pl.DataFrame:
    """What _typed_integers did value by value before the width sums (kept here as its definition)."""
    typed = []
    for name, dtype in integers.items():
        text = frame[name]
        cast = text.cast(dtype, strict=False)
        code = bool(frame.select(_written_otherwise(pl.col(name)).any()).item())
        failed = bool((cast.is_null() & text.is_not_null()).any())
        if not code and not failed:
            typed.append(cast)
        elif failed and not code and not (text.cast(pl.Float64, strict=False).is_null() & text.is_not_null()).any():
            if not any(beyond_a_double(value) for value in text.drop_nulls()):  # else it stays text (QA 6 #1)
                typed.append(text.cast(pl.Float64))
    return frame.with_columns(typed) if typed else frame


def beyond_a_double(text: str) -> bool:
    """Whether the number ``text`` holds a value its double does not give back (agents.layouts.beyond_double's
    definition, value by value with Python's decimals): not the value of the double's shortest text, nor of the
    double correctly rounded to as many significant digits as the text has."""
    value = float(text)
    if not math.isfinite(value):
        return True
    exact = Decimal(text.strip())
    digits = len(exact.normalize().as_tuple().digits) if exact else 1
    return exact != Decimal(repr(value)) and exact != Decimal(f"{value:.{digits - 1}e}")


def reference_temporal(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, TextLayout]]:
    """The layouts every value of which reads and writes back (find_layouts: one check per value), applied."""
    layouts = find_layouts(frame)
    return apply_layouts(frame, layouts), layouts


INTEGER_TEXTS = [
    "0", "7", "10", "-1", "-10", "99", "100", "-100", "123456789", "-9223372036854775808", "9223372036854775807",
    "1000000000000000000", "-1000000000000000000", "999999999999999999", "-999999999999999999",
]  # fmt: skip
ODD_TEXTS = [
    "007", "00", "-0", "-07", "+5", "+0", "0.5", "-0.5", "+1.5", "1.5", "1e3", " 5", "5 ", "abc", "", "-",
    "+", "09223372036854775807", "+9223372036854775807", "-09223372036854775808", "9223372036854775808",
    "99999999999999999999", "٣", "1_000",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.sampled_from(INTEGER_TEXTS), st.sampled_from(ODD_TEXTS), st.none()), max_size=8),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 1000),
)
def test_typed_integers_match_the_value_by_value_definition(columns: list[list[str | None]], seed: int) -> None:
    random.seed(seed)
    height = max(len(values) for values in columns) or 1
    frame = pl.DataFrame(
        {
            f"c{i}": pl.Series(values + [None] * (height - len(values)), dtype=pl.String)
            for i, values in enumerate(columns)
        }
    )
    integers: dict[str, pl.DataType] = {name: pl.Int64() for name in frame.columns}
    assert_frame_equal(_typed_numbers(frame, integers, [])[0], reference_typed_integers(frame, integers))


@pytest.mark.parametrize(
    "values",
    [
        [str(value) for value in range(-1200, 1200)],
        [str(10**power) for power in range(19)] + [str(-(10**power)) for power in range(19)],
        [str(10**power - 1) for power in range(1, 19)] + ["-9223372036854775808", "9223372036854775807"],
        [str(value) for value in range(1000)] + ["0123"],  # one code among a thousand integers
        [str(value) for value in range(1000)] + ["+12"],
        [str(value) for value in range(1000)] + ["-012"],
        ["-0"] + [str(value) for value in range(1, 1000)],
        [None, None],
    ],
)
def test_the_width_sums_decide_as_each_value_would(values: list[str | None]) -> None:
    frame = pl.DataFrame({"n": pl.Series(values, dtype=pl.String), "m": pl.Series(values[::-1], dtype=pl.String)})
    integers: dict[str, pl.DataType] = {"n": pl.Int64(), "m": pl.Int64()}
    assert_frame_equal(_typed_numbers(frame, integers, [])[0], reference_typed_integers(frame, integers))


def test_polars_casts_to_integers_only_signs_and_ascii_digits() -> None:
    """The width sums rest on this: text that converts to an integer is never shorter than the integer's own
    text (a sign, then digits); a Polars that accepted "1e3" or " 5" would break it."""
    accepted = ["5", "+5", "-5", "007", "-0", "+0"]
    refused = ["1e3", " 5", "5 ", "1_000", "0x10", "5.0", "٣", "５", "1,000", "5\r", "--5", "+-5", ""]
    assert pl.Series(accepted).cast(pl.Int64, strict=False).null_count() == 0
    assert pl.Series(refused).cast(pl.Int64, strict=False).null_count() == len(refused)


TEMPORAL_COLUMNS: dict[str, list[str | None]] = {
    "date": ["2013-01-01", "2013-12-31", None, "2020-02-29"],
    "bad_day": ["2013-01-01", "2013-02-30"],
    "short_month": ["2013-01-01", "2013-1-01"],
    "space_month": ["2013-01-01", "2013- 1-01"],
    "signed_year": ["2013-01-01", "+013-01-01"],
    "space_year": ["2013-01-01", " 013-01-01"],
    "datetime": ["2013-01-01T10:00:00", "2013-01-01T23:59:59"],
    "leap_second": ["2013-01-01T10:00:00", "2013-01-01T10:00:60"],
    "space_hour": ["2013-01-01 10:00", "2013-01-01  1:00"],
    "minutes": ["2013-01-01 10:00", "2013-01-01 10:05"],
    "millis": ["2013-01-01T10:00:00.123", "2013-01-01T10:00:00.500"],
    "one_digit_fraction": ["2013-01-01T10:00:00.1", "2013-01-01T10:00:00.5"],
    "micros": ["2013-01-01T10:00:00.123456", "2013-01-01T10:00:00.000001"],
    "nanos": ["2013-01-01T10:00:00.123456789Z", "2013-01-01T10:00:00.000000001Z"],
    "utc": ["2013-01-01T10:00:00Z", "2013-06-01T10:00:00Z"],
    "offset": ["2013-01-01T10:00:00+02:00", "2013-06-01T10:00:00+02:00"],
    "offset_compact": ["2013-01-01T10:00:00+0200", "2013-06-01T10:00:00+0200"],
    "two_offsets": ["2013-01-01T10:00:00+01:00", "2013-06-01T10:00:00+02:00"],
    "late_text": ["2013-01-01", "unknown"],
    "text": ["a", "b"],
}


@pytest.mark.parametrize("repeat", [1, 600])  # 600: the first rows repeat values, so the parse uses the cache
def test_type_temporal_text_matches_the_value_by_value_check(repeat: int) -> None:
    height = max(len(values) for values in TEMPORAL_COLUMNS.values()) * repeat
    frame = pl.DataFrame(
        {
            name: pl.Series([values[i % len(values)] for i in range(height)], dtype=pl.String)
            for name, values in TEMPORAL_COLUMNS.items()
        }
    )
    typed, layouts = type_temporal_text(frame)
    expected, expected_layouts = reference_temporal(frame)
    assert layouts == expected_layouts
    assert_frame_equal(typed, expected)
    assert {"date", "datetime", "minutes", "millis", "micros", "nanos", "utc", "offset"} <= set(layouts)
    assert not {"bad_day", "short_month", "space_month", "signed_year", "leap_second", "two_offsets"} & set(layouts)
    assert not {"space_year", "space_hour", "one_digit_fraction", "late_text", "text"} & set(layouts)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789-: T+Z.٣５\u00a0", min_size=8, max_size=24).map(
            lambda text: "2013-01-01" + text[10:]
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_timestamps_are_typed_only_when_every_value_writes_back(values: list[str]) -> None:
    frame = pl.DataFrame({"when": pl.Series(values, dtype=pl.String)})
    typed, layouts = type_temporal_text(frame)
    expected, expected_layouts = reference_temporal(frame)
    assert layouts == expected_layouts
    assert_frame_equal(typed, expected)
    for name, layout in layouts.items():  # and what is typed reads back as written
        assert frame.select(_lossless(pl.col(name), layout.parse(pl.col(name)), layout)).item()


def test_the_reader_on_a_file_of_every_case(tmp_path: Path) -> None:
    rows = ["id,code,amount,plus,when,stamp"]
    rows += [f"{i},{i:03d},{i},{i},2013-01-{1 + i % 28:02d},2013-01-01T10:{i % 60:02d}:00Z" for i in range(12_000)]
    rows += ["12000,12000,2.5,+5,2013-02-01,2013-01-01T10:00:00Z"]  # past the rows the schema scan reads
    path = tmp_path / "primary.csv"
    path.write_text("\n".join(rows) + "\n")
    frame, report = read_table_with_report(path, "primary.csv")
    expected: dict[str, pl.DataType] = {
        "id": pl.Int64(),
        "code": pl.String(),
        "amount": pl.Float64(),
        "plus": pl.String(),
        "when": pl.Date(),
        "stamp": pl.Datetime("us", "UTC"),
    }
    assert dict(frame.schema) == expected
    assert frame["code"][:3].to_list() == ["000", "001", "002"]
    assert frame["plus"][-1] == "+5"
    assert set(report["temporal_columns"]) == {"when", "stamp"}


@pytest.mark.parametrize(
    ("content", "full"),
    [
        (b"a,b,c\n1,2,\n3,4,5\n", True),
        (b"a,b,c\r\n1,2,\r\n3,4,5\r\n", True),
        (b"a,b,c\n1,2,\n3,4,5", True),  # no newline after the last row
        (b"a,b,c\n1,2,\n3,4\n", False),  # a short row
        (b"a,b,c\n1,2,\n\n3,4,5\n", False),  # a blank line: the bytes alone do not settle it
        (b'a,b,c\n1,"2,x",\n3,4,5\n', False),  # a quote: separators may sit inside fields
        (b"a,b,c\n1,2,3,\n3,4\n", True),  # one long, one short: they balance, but Polars refuses the long one first
    ],
)
def test_the_short_row_scan_is_skipped_only_when_the_bytes_show_every_row_full(
    tmp_path: Path, content: bytes, full: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "primary.csv"
    path.write_bytes(content)
    dialect = readers.sniff_dialect(path, "primary.csv")
    lines = [line for line in content.splitlines() if line]
    assert readers._every_line_full(path, dialect, 3, len(lines) - 1 + content.count(b"\n\n")) is full

    def outcome() -> object:
        try:
            return read_table_with_report(path, "primary.csv")[0].rows()
        except InvalidFileError as error:
            return error.message

    fast = outcome()
    monkeypatch.setattr(readers, "_every_line_full", lambda *_: False)  # the line-by-line scan every time
    assert fast == outcome()


@pytest.mark.parametrize("late", ["2013-01-05", "2013-1-05", "2013- 1-05", None])
def test_many_repeated_dates_whose_first_rows_all_differ(late: str | None) -> None:
    """5,000 rows of 1,000 dates, the first thousand all different (parsed without Polars' cache): one odd value
    at the end keeps the column text, as a check of every value would."""
    first = [f"{date}" for date in pl.date_range(pl.date(2013, 1, 1), pl.date(2015, 9, 27), eager=True).cast(pl.String)]
    values: list[str | None] = [*first, *(first[i % 1000] for i in range(3999)), late]
    frame = pl.DataFrame({"day": pl.Series(values, dtype=pl.String)})
    typed, layouts = type_temporal_text(frame)
    expected, expected_layouts = reference_temporal(frame)
    assert layouts == expected_layouts
    assert_frame_equal(typed, expected)
    assert ("day" in layouts) is (late in ("2013-01-05", None))
