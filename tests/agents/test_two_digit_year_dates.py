"""Dates written with a 2-digit year (``13/04/55``: 1955 or 2055?) have a century that is a guess, as a day/month
order is when no value decides it (QA pass 8, D11; PRODUCT.md "Defaults that never destroy data"): a default clean
keeps such a column as written and proposes the conversion with the century rule it would use; asked for
(``convert_ambiguous_dates``), it converts. Master's contract does not cast it, a search refuses a time range on it,
and the profile reads it saying which century rule it assumed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.clean import standardization, type_fixer
from agents.errors import InvalidParametersError
from agents.params.field_standardization import FieldStandardizationParams
from agents.params.type_fixer import TypeFixerParams
from agents.values import distinct_counts, plan_dates
from tests.agents.clean_support import framed, run_agent
from tests.agents.master.test_contract_enforcer import run as run_contract
from tests.agents.test_type_fixer_streamed import assert_streamed_as_in_memory

BIRTHS = ["13/04/55", "01/02/61", "25/12/48", "30/06/90"]  # day/month: 2055, 2061, 2048 and 1990 by the rule
US_BIRTHS = ["04/13/55", "02/01/61", "12/25/48", "06/30/90"]
TWO_DIGIT_YEAR_RULE = "a 2-digit year 00-69 read as 2000-2069, 70-99 as 1970-1999"  # agents.values' (Polars' %y)
CSV = "id,dob\n" + "".join(f"{n},{value}\n" for n, value in enumerate(BIRTHS, 1))


def ignore(*_: object) -> None:
    return None


def clean(tmp_path: Path, text: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    source = tmp_path / "primary.csv"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, parameters, out, ignore)
    assert result["status"] == "success"
    return result, pl.read_csv(out / "cleaned_data.csv", infer_schema=False)["dob"].to_list()


def test_the_plan_states_the_century_rule() -> None:
    plan = plan_dates(distinct_counts(pl.DataFrame({"dob": BIRTHS}), "dob"), "dob")
    assert getattr(plan, "two_digit_years", None) == {
        "values": 4,
        "rule": TWO_DIGIT_YEAR_RULE,
        "earliest": "1990-06-30",
        "latest": "2061-02-01",
    }
    assert plan.describe()["two_digit_years"] == plan.two_digit_years
    four_digits = plan_dates(distinct_counts(pl.DataFrame({"d": ["13/04/1955", "01/02/1961"]}), "d"), "d")
    assert getattr(four_digits, "two_digit_years", None) is None and "two_digit_years" not in four_digits.describe()


@pytest.mark.parametrize("values", [BIRTHS, US_BIRTHS], ids=["day_month", "month_day"])
def test_the_type_fixer_keeps_them_as_written_and_proposes_the_conversion(values: list[str]) -> None:
    frame = framed({"dob": values})
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None and result.frame["dob"].to_list() == values
    [decision] = [d for d in result.envelope.data["type_analysis"]["columns"] if d["field_name"] == "dob"]
    assert "2-digit year whose century is a guess" in decision["reason"], decision
    [proposed] = [p for p in result.envelope.data["proposals"] if p["action"] == "convert_ambiguous_dates"]
    assert proposed["columns"] == ["dob"] and proposed["apply"] == {"type-fixer": {"convert_ambiguous_dates": True}}
    assert TWO_DIGIT_YEAR_RULE in proposed["description"] and "2061-02-01" in proposed["description"]
    applied = run_agent(type_fixer, frame, TypeFixerParams(convert_ambiguous_dates=True))
    assert applied.frame is not None
    assert applied.frame["dob"].to_list() == [
        dt.date(2055, 4, 13), dt.date(2061, 2, 1), dt.date(2048, 12, 25), dt.date(1990, 6, 30)
    ]  # fmt: skip


def test_a_default_clean_writes_them_as_written_and_the_opt_in_converts(tmp_path: Path) -> None:
    result, written = clean(tmp_path, CSV, {})
    assert written == BIRTHS
    skipped = result["agents"]["field-standardization"]["data"]["columns"]
    assert any("century is a guess" in str(column.get("date_rewrite_skipped")) for column in skipped), skipped
    _, converted = clean(tmp_path, CSV, {"type-fixer": {"convert_ambiguous_dates": True}})
    assert converted == ["2055-04-13", "2061-02-01", "2048-12-25", "1990-06-30"]


def test_field_standardization_does_not_rewrite_them_unless_the_target_has_a_two_digit_year() -> None:
    frame = framed({"dob": US_BIRTHS})
    result = run_agent(standardization, frame, FieldStandardizationParams())
    assert result.frame is not None and result.frame["dob"].to_list() == US_BIRTHS
    # a 2-digit target writes no century: rewriting the order guesses none
    same = run_agent(standardization, frame, FieldStandardizationParams(target_date_format="%d/%m/%y"))
    assert same.frame is not None and same.frame["dob"].to_list() == BIRTHS


def test_streamed_as_in_memory(tmp_path: Path) -> None:
    streamed = assert_streamed_as_in_memory(framed({"dob": BIRTHS}), TypeFixerParams(), tmp_path)
    assert streamed.scan is not None and streamed.scan.collect()["dob"].to_list() == BIRTHS


def test_the_contract_does_not_cast_them() -> None:
    frame = pl.DataFrame({"dob": BIRTHS, "when": ["1955-04-13", "1961-02-01", "1948-12-25", "1990-06-30"]})
    result = run_contract(frame, {"column_types": {"dob": "date", "when": "date"}})
    assert result.frame is not None
    assert result.frame.schema["dob"] == pl.String and result.frame.schema["when"] == pl.Date
    checks = {item["column"]: item for item in result.envelope.data["type_checks"]}
    assert not checks["dob"]["cast"] and "century is a guess" in checks["dob"]["note"]


def test_a_time_range_on_them_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    path.write_text(CSV, encoding="utf-8")
    parameters = {"searcher": {"time_ranges": [{"column": "dob", "from": "1950-01-01", "to": "1959-12-31"}]}}
    with pytest.raises(InvalidParametersError, match="2-digit year have a century that is a guess") as refused:
        run_tool("search-my-data", [], {"primary.csv": path}, parameters, tmp_path / "out", ignore)
    assert refused.value.details.get("reason") == "type_mismatch"


def test_the_profile_says_which_century_rule_it_assumed(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    path.write_text(CSV, encoding="utf-8")
    result = run_tool("profile-my-data", [], {"primary.csv": path}, {}, tmp_path / "out", ignore)
    envelope = result["agents"]["unified-profiler"]
    [field] = [f for f in envelope["data"]["fields"] if f["field_name"] == "dob"]
    assert field["semantic_type"] == "date_string"
    profile = field["datetime_profile"]
    years = profile["read_from_text"]["two_digit_years"]
    assert years["rule"] == TWO_DIGIT_YEAR_RULE and years["values"] == 4
    assert (profile["min"], profile["max"]) == (years["earliest"], years["latest"]) == ("1990-06-30", "2061-02-01")
    [alert] = [a for a in envelope["alerts"] if a["alert_id"] == "type_date:dob"]
    assert "century is a guess" in alert["message"] and TWO_DIGIT_YEAR_RULE in alert["message"]
    json.dumps(envelope, allow_nan=False)
