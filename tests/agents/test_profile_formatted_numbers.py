"""Numbers written with grouped thousands, a currency symbol or a percent sign ("1,418.91", "$5.17", "72%") are
numbers stored as text to the profiler, as to the type-fixer, with the type-fixer's parameter that converts them
(QA: the profile called them ``identifier`` and ``code``, with no alert)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from agents.chain import run_tool
from agents.envelope import AgentInputs, AgentResult
from agents.profile.params import ProfilerParams
from agents.profile.pii import text_signals
from agents.profile.profiler import run as profile

ROWS = 60


def _profiled(frame: pl.DataFrame) -> tuple[dict[str, dict[str, Any]], dict[str | None, Any]]:
    result: AgentResult = profile(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda _f, _m: None)
    alerts = {alert.field_name: alert for alert in result.envelope.alerts if alert.category == "numeric_in_string"}
    return {field["field_name"]: field for field in result.envelope.data["fields"]}, alerts


def _money() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "amount": [f"{1000 + i * 7.31:,.2f}" for i in range(ROWS)],  # "1,000.00", ...
            "pct": [f"{(i * 13) % 100}%" for i in range(ROWS)],
            "price": [f"${1 + i * 0.61:.2f}" for i in range(ROWS)],
            "zip": [f"{(i * 7919) % 100000:05d}" for i in range(ROWS)],
            "area": [f"({200 + i})" for i in range(ROWS)],  # area codes, or accounting negatives: not decided here
            "ambiguous": ["1,500", "2,250"] * (ROWS // 2),  # 1500, or 1.5 with a decimal comma
            "sku": [f"A{i:03d}" for i in range(ROWS)],
        }
    )


def test_formatted_numbers_are_numbers_stored_as_text_with_the_parameter_that_converts_them() -> None:
    fields, alerts = _profiled(_money())
    for name in ("amount", "pct", "price", "zip"):
        assert fields[name]["semantic_type"] == "numeric_string", name
        assert fields[name]["quality_indicators"]["validity"] == 100.0
    assert "conversion_parameters" not in fields["amount"]["properties"]  # converted by default
    assert fields["pct"]["properties"]["conversion_parameters"] == ["convert_percentages"]
    assert fields["price"]["properties"]["conversion_parameters"] == ["convert_currency"]
    assert fields["zip"]["properties"]["conversion_parameters"] == ["convert_codes"]
    assert set(alerts) == {"amount", "pct", "price", "zip"}
    assert "convert_percentages: true" in alerts["pct"].recommendation
    assert "convert_currency: true" in alerts["price"].recommendation
    assert alerts["amount"].recommendation.endswith("(Clean My Data: type-fixer)")
    for name in ("area", "ambiguous", "sku"):  # no number the type-fixer reads without a judgement call on commas
        assert fields[name]["semantic_type"] != "numeric_string", name


def test_text_signals_read_numbers_as_the_type_fixer_does() -> None:
    sample = pl.DataFrame(
        {
            "grouped": ["1,418.91", "12,000", "7", "x"],  # a point in the column: its commas group thousands
            "ambiguous": ["1,500", "2,250", "7", "x"],
            "marked": ["$5.17", "72%", "1e3", "(12)"],
        }
    )
    signals = text_signals(sample, ["grouped", "ambiguous", "marked"])
    assert signals["grouped"].numeric_share == 0.75
    assert signals["ambiguous"].numeric_share == 0.25
    assert signals["marked"].numeric_share == 0.75
    assert signals["marked"].currency_share == signals["marked"].percent_share == 0.25


def test_the_type_fixer_proposes_what_the_profile_recommends(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    _money().write_csv(source)
    fields, _ = _profiled(pl.read_csv(source, infer_schema=False))
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, tmp_path / "out", lambda *_: None)
    proposed = {
        parameter
        for proposal in result["summary"]["proposals"]
        for parameter in proposal["apply"].get("type-fixer", {})
    }
    recommended = {
        parameter for field in fields.values() for parameter in field["properties"].get("conversion_parameters", [])
    }
    assert recommended == {"convert_percentages", "convert_currency", "convert_codes"}
    assert recommended <= proposed
