"""Card numbers read as integers (exported unquoted) are personal data like the same numbers as text: the
digits-only value rule (issuer prefix, 13-19 digits, Luhn check digit) applies to integer columns in the profiler,
score-risk and governance-checker, while ordinary integer ids and amounts stay clear of it. The Luhn check is
recomputed here in plain Python."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import AgentInputs, AgentResult
from agents.params.governance_checker import GovernanceCheckerParams
from agents.params.score_risk import ScoreRiskParams
from agents.profile import profiler
from agents.profile.params import ProfilerParams
from agents.profile.pii import card_number
from agents.quality import governance, risk

# well-known test cards: Visa 16 and 13, Mastercard, Amex 15, Discover, Diners 14, JCB, Mastercard 2-series
CARDS = [
    4111111111111111,
    5500005555555559,
    340000000000009,
    6011000000000004,
    4012888888881881,
    5105105105105100,
    378282246310005,
    4222222222222,
    30569309025904,
    3530111333300000,
    2221000000000009,
]


def luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit >= 5 else digit * 2
        total += digit
    return total % 10 == 0


def cards_frame(rows: int = 40) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "payment_ref": [CARDS[i % len(CARDS)] for i in range(rows)],
            "order_id": [4_000_000_000_000_000 + i for i in range(rows)],  # 16 digits, Visa prefix: 1 in 10 Luhn
            "amount": [1000 + 37 * i for i in range(rows)],
            "x": list(range(rows)),
        }
    )


def run_agent(module: Any, frame: pl.DataFrame, params: Any) -> AgentResult:
    return module.run(AgentInputs(frame, "primary.csv"), params, lambda fraction, message: None)  # type: ignore[no-any-return]


def assessment(result: AgentResult, name: str) -> dict[str, Any]:
    return next(item for item in result.envelope.data["field_risk_assessments"] if item["field_name"] == name)


def test_the_card_rule_agrees_with_luhn_computed_here() -> None:
    rng = random.Random(5)
    numbers = [str(card) for card in CARDS] + [str(rng.randrange(10**12, 10**19)) for _ in range(3000)]
    numbers += ["-4111111111111111", "4111111111111112", "41111111111", "0", "4111 1111 1111 1111"]
    got = pl.Series(numbers).to_frame("v").select(card_number(pl.col("v"))).to_series().to_list()
    prefixes = ("4", "51", "52", "53", "54", "55", "34", "37", "36", "38", "6011", "65", "62")
    for number, flagged in zip(numbers, got, strict=True):
        if flagged:
            assert number.isdigit() and 13 <= len(number) <= 19 and luhn(number), number
    assert all(got[: len(CARDS)])
    # every valid 16-digit Visa/Mastercard/Amex-prefixed number of the random ones is found
    for number, flagged in zip(numbers, got, strict=True):
        if number.isdigit() and luhn(number) and number.startswith(prefixes) and len(number) == 16:
            if number.startswith(("4", "51", "52", "53", "54", "55", "6011", "65", "62")):
                assert flagged, number
    assert pl.Series([None], dtype=pl.String).to_frame("v").select(card_number(pl.col("v"))).item() is None


def test_score_risk_finds_card_numbers_in_an_integer_column() -> None:
    frame = cards_frame()
    assert frame.schema["payment_ref"] == pl.Int64
    result = run_agent(risk, frame, ScoreRiskParams())
    item = assessment(result, "payment_ref")
    assert item["pii_type"] == "credit_card"
    assert item["detection"]["by_value"] == "credit_card"
    assert item["detection"]["value_match_share"] == 1.0
    assert (item["risk_score"], item["risk_level"]) == (80, "high")
    assert item["compliance_frameworks"] == ["CCPA", "GDPR", "PCI-DSS"]
    for name in ("order_id", "amount", "x"):  # ids and amounts: no card numbers
        other = assessment(result, name)
        assert other["detection"]["by_value"] is None and other["risk_level"] == "low", name
    # the unlabelled column's sampled card numbers are reported masked
    issues = result.row_level_issues
    assert set(issues["column"].to_list()) == {"payment_ref"}
    assert issues.height == 40 and set(issues["value"].to_list()) <= {f"{str(c)[:2]}***" for c in CARDS}
    assert "PCI-DSS" in result.envelope.data["risk_summary"]["compliance_frameworks_impacted"]


def test_integer_ids_that_are_sometimes_luhn_valid_are_not_cards() -> None:
    rng = random.Random(7)
    frame = pl.DataFrame({"ref": [rng.randrange(4 * 10**15, 5 * 10**15) for _ in range(500)]})
    shares = sum(luhn(str(value)) for value in frame["ref"]) / frame.height
    assert 0.05 < shares < 0.2  # about one in ten pass the check digit alone
    item = assessment(run_agent(risk, frame, ScoreRiskParams()), "ref")
    assert item["detection"]["by_value"] is None and item["pii_type"] is None
    assert item["detection"]["value_match_share"] == pytest.approx(
        sum(luhn(str(frame["ref"][i])) for i in range(0, 500, 5)) / 100
    )


def test_card_numbers_need_a_majority_of_the_sampled_values() -> None:
    values = [CARDS[i % len(CARDS)] if i % 2 == 0 else 1_000_000 + i for i in range(100)]  # half cards
    item = assessment(run_agent(risk, pl.DataFrame({"ref": values}), ScoreRiskParams()), "ref")
    assert item["detection"]["value_match_share"] == 0.5 and item["detection"]["by_value"] is None


def test_the_profiler_and_governance_find_integer_card_numbers() -> None:
    frame = cards_frame()
    result = run_agent(profiler, frame, ProfilerParams())
    fields = {field["field_name"]: field for field in result.envelope.data["fields"]}
    card = fields["payment_ref"]
    assert card["data_type"] == "integer"
    assert card["properties"]["estimated_pii_type"] == "credit_card"
    assert card["properties"]["estimated_sensitivity_level"] == "high"
    assert card["properties"]["pii_detection"]["by_value"] == "credit_card"
    assert card["semantic_type"] == "credit_card"
    for name in ("order_id", "amount", "x"):
        assert fields[name]["properties"]["estimated_pii_type"] is None, name
        assert fields[name]["semantic_type"] != "credit_card", name

    found = governance._pii_fields(frame, list(frame.columns), GovernanceCheckerParams().pii_sample_size)
    assert found == [
        {"field_name": "payment_ref", "pii_type": "credit_card", "by_name": None, "by_value": "credit_card"}
    ]


def test_profile_chain_reads_unquoted_card_numbers_as_integers_and_flags_them(tmp_path: Path) -> None:
    """The QA repro: 40 card numbers exported unquoted, read as Int64 by the chain's reader."""
    rows = ["payment_ref,x"] + [f"{CARDS[i % 8]},{i}" for i in range(40)]
    path = tmp_path / "primary.csv"
    path.write_text("\n".join(rows) + "\n")
    result = run_tool(
        "profile-my-data",
        ["unified-profiler", "score-risk"],
        {"primary.csv": path},
        {},
        tmp_path / "out",
        lambda percent, agent, message: None,
    )
    item = result["agents"]["score-risk"]["data"]["field_risk_assessments"][0]
    assert item["data_type"] == "Int64"
    assert item["pii_type"] == "credit_card" and item["risk_level"] == "high"
    assert "PCI-DSS" in item["compliance_frameworks"]
    field = result["agents"]["unified-profiler"]["data"]["fields"][0]
    assert field["properties"]["estimated_pii_type"] == "credit_card"


def test_the_streaming_profiler_finds_integer_card_numbers(tmp_path: Path) -> None:
    from agents.profile.streaming import profile_large

    path = tmp_path / "primary.csv"
    cards_frame(400).write_csv(path)
    result = profile_large(path, ProfilerParams(), lambda fraction, message: None)
    fields = {field["field_name"]: field for field in result.envelope.data["fields"]}
    assert fields["payment_ref"]["data_type"] == "integer"
    assert fields["payment_ref"]["properties"]["estimated_pii_type"] == "credit_card"
    assert fields["order_id"]["properties"]["estimated_pii_type"] is None
