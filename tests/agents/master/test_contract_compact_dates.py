"""contract-enforcer's ``date`` type reads compact dates ``19850314`` (ISO 8601 basic, ``YYYYMMDD``), as the other
master agents read them (roles, survivorship, the ER normalisation): such values were critical ``type_mismatch``
violations, text or integer, and the column was never cast. Exactly the valid calendar dates of a four-digit year
from agents.values.MIN_YEAR on are read (as agents.values.parse_temporal reads one), no other run of digits."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from agents.master.contract import compact_date
from tests.agents.master.test_contract_enforcer import issue_rows, run

GOOD = ["19850314", "20000229", " 19991231 ", "10000101", "99991231"]
BAD = ["19851314", "19850230", "19000229", "09990101", "1985031", "198503140", "1985-0314", "+1985031"]


def test_compact_date_reads_valid_eight_digit_dates_only() -> None:
    values = pl.Series([*GOOD, *BAD, None], dtype=pl.String)
    read = pl.select(compact_date(pl.lit(values))).to_series().to_list()
    assert read == [
        dt.date(1985, 3, 14),
        dt.date(2000, 2, 29),
        dt.date(1999, 12, 31),
        dt.date(1000, 1, 1),
        dt.date(9999, 12, 31),
        *[None] * (len(BAD) + 1),
    ]


def test_text_compact_dates_are_dates_and_are_cast() -> None:
    frame = pl.DataFrame({"dob": ["19850314", "20000229", None, "N/A"], "mixed": ["19850314", "1990-07-01", "", None]})
    result = run(frame, {"column_types": {"dob": "date", "mixed": "date"}})
    assert issue_rows(result, "type_mismatch") == []
    assert result.frame is not None
    assert result.frame.schema["dob"] == result.frame.schema["mixed"] == pl.Date
    assert result.frame["dob"].to_list() == [dt.date(1985, 3, 14), dt.date(2000, 2, 29), None, None]
    assert result.frame["mixed"].to_list() == [dt.date(1985, 3, 14), dt.date(1990, 7, 1), None, None]
    checks = {item["column"]: item for item in result.envelope.data["type_checks"]}
    assert checks["dob"]["cast"] and checks["dob"]["invalid_values"] == 0


def test_integer_compact_dates_are_dates() -> None:
    """A CSV column of 19850314 is read as integers: each is a date when its eight digits are one."""
    frame = pl.DataFrame({"dob": [19850314, 20000229, None, 19851314, 1985031]})
    result = run(frame, {"column_types": {"dob": "date"}})
    rows = [row for row, _ in issue_rows(result, "type_mismatch")]
    assert len(rows) == 2  # 19851314 (no month 13) and 1985031 (seven digits)
    checks = {item["column"]: item for item in result.envelope.data["type_checks"]}
    assert checks["dob"]["invalid_values"] == 2 and not checks["dob"]["cast"]


@pytest.mark.parametrize("value", BAD)
def test_other_digits_are_no_dates(value: str) -> None:
    frame = pl.DataFrame({"dob": ["19850314", value]})
    result = run(frame, {"column_types": {"dob": "date"}})
    assert len(issue_rows(result, "type_mismatch")) == 1
    assert result.frame is None or result.frame.schema["dob"] == pl.String


def test_a_datetime_column_does_not_take_compact_digits() -> None:
    """Only the ``date`` type reads them (the brief's scope): a ``datetime`` column of 19850314 stays a mismatch."""
    frame = pl.DataFrame({"at": ["19850314", "2024-03-01 10:00"]})
    result = run(frame, {"column_types": {"at": "datetime"}})
    assert len(issue_rows(result, "type_mismatch")) == 1
