"""contract-enforcer: a contract's ``integer`` (or ``float``) type does not cast codes. ``0800`` (Darwin's postcode),
``+44`` or ``007`` read as numbers only by losing a leading zero or sign, so they do not convert: the column stays as
written and those values are type mismatches, as the default "casts a contract's columns only when every value
converts" promises (QA pass 4, #22). A day/month order the values contradict is a guess, as a tie is."""

from __future__ import annotations

import polars as pl
import pytest

from tests.agents.master.test_contract_enforcer import issue_rows, run


@pytest.mark.parametrize("type_name", ["integer", "float"])
def test_codes_do_not_convert(type_name: str) -> None:
    frame = pl.DataFrame({"postcode": ["0800", "2000", "2600", None], "phone": ["+44", "12", "007", "13"]})
    contract = {
        "column_types": {"postcode": type_name, "phone": type_name},
        "value_constraints": {"postcode": {"pattern": "^[0-9]{4}$"}},
    }
    result = run(frame, contract)
    mismatched = issue_rows(result, "type_mismatch")
    assert len(mismatched) == 3, mismatched  # 0800, +44 and 007
    checks = {item["column"]: item for item in result.envelope.data["type_checks"]}
    assert not checks["postcode"]["cast"] and checks["postcode"]["invalid_values"] == 1
    assert not checks["phone"]["cast"] and checks["phone"]["invalid_values"] == 2
    assert result.frame is None or result.frame["postcode"].to_list() == ["0800", "2000", "2600", None]


def test_plain_numbers_still_convert() -> None:
    frame = pl.DataFrame({"n": [" 12", "0", "-3", "0.0", None]})
    result = run(frame, {"column_types": {"n": "float"}})
    assert issue_rows(result, "type_mismatch") == []
    assert result.frame is not None and result.frame["n"].to_list() == [12.0, 0.0, -3.0, 0.0, None]


def test_contradicted_day_month_order_is_not_cast() -> None:
    frame = pl.DataFrame({"d": ["03/15/2024", "04/20/2024", "13/05/2024", "05/06/2024"]})
    result = run(frame, {"column_types": {"d": "date"}})
    checks = {item["column"]: item for item in result.envelope.data["type_checks"]}
    assert not checks["d"]["cast"], checks["d"]
    assert result.frame is None or result.frame.schema["d"] == pl.String
