"""outlier-remover leaves identifiers and codes alone (QA #12): a key whose values jump (ids 1..50 then
100001..100005), a running number with jumps, phone numbers and postal codes are labels, not measurements. By default
they are not analysed, and the output says which were skipped and why; naming them in ``columns`` analyses them. In
memory, streamed, and through the clean chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from agents.chain import run_tool
from agents.clean import outliers
from agents.envelope import AgentResult
from agents.options import RunOptions
from agents.params.outlier_remover import OutlierRemoverParams
from tests.agents.clean_support import ROW, indexed, run
from tests.agents.streamed_support import assert_same_streamed_run

ROWS = 60


def coded_frame() -> pl.DataFrame:
    """Identifiers and codes with values that iqr bounds put outside (jumps, foreign phone numbers, far zip codes),
    beside measurements with outliers of their own."""
    rng = np.random.default_rng(12)
    amount = rng.normal(100, 4, ROWS)
    amount[[3, 40]] = [400.0, -150.0]
    minutes = rng.integers(10, 20, ROWS)
    minutes[7] = 500
    jumps = [100_001, 100_002, 100_003, 100_004, 100_005]
    return indexed(
        {
            "id": list(range(1, ROWS - 4)) + jumps,
            "order_no": list(range(1001, 1001 + ROWS - 5)) + jumps,
            "phone": [2_015_550_100 + i for i in range(ROWS - 3)] + [442_071_234_567, 33_142_685_300, 4_915_123_456],
            "zip": [10_001 + i % 40 for i in range(ROWS - 2)] + [99_501, 96_799],
            "phone_minutes": minutes,  # named like a phone, but small whole numbers: a measurement
            "amount": amount,
        },
        list(range(1, ROWS + 1)),
    )


SKIPPED = ["id", "order_no", "phone", "zip"]
MEASURED = ["phone_minutes", "amount"]


def flagged_columns(result: AgentResult) -> set[str]:
    return set(result.row_level_issues["column"].to_list())


def test_identifiers_and_codes_are_not_checked_for_outliers_by_default() -> None:
    result = run(outliers.run, coded_frame(), OutlierRemoverParams())
    data = result.envelope.data
    assert list(data["identifier_columns_skipped"]) == SKIPPED
    reasons = data["identifier_columns_skipped"]
    assert reasons["id"].startswith("named as a key") and "not a measurement" in reasons["id"]
    assert "running number" in reasons["order_no"]
    assert "phone number" in reasons["phone"] and "postal code" in reasons["zip"]
    assert list(data["outlier_summary"]) == MEASURED and data["numeric_columns"] == MEASURED
    assert result.envelope.summary_metrics["columns_analyzed"] == len(MEASURED)
    assert flagged_columns(result) == set(MEASURED)  # the measurements' outliers are still found
    for item in data["proposals"]:
        assert set(item["columns"]) <= set(MEASURED)
    alert = next(a for a in result.envelope.alerts if a.alert_id.endswith("identifier_columns_skipped"))
    assert alert.severity == "low" and "id, order_no, phone, zip" in alert.message


def test_removing_outliers_keeps_the_rows_of_jumping_ids() -> None:
    frame = coded_frame()
    result = run(outliers.run, frame, OutlierRemoverParams(removal_strategy="remove"))
    assert result.removed is not None and result.frame is not None
    assert sorted(result.removed[ROW].to_list()) == [4, 8, 41]  # the amount and minutes outliers only
    assert result.frame["id"].tail(5).to_list() == [100_001, 100_002, 100_003, 100_004, 100_005]


def test_columns_named_by_the_user_are_analysed_even_when_identifiers() -> None:
    result = run(outliers.run, coded_frame(), OutlierRemoverParams(columns=["id", "phone"]))
    data = result.envelope.data
    assert data["identifier_columns_skipped"] == {}
    assert list(data["outlier_summary"]) == ["id", "phone"]
    flagged = result.row_level_issues.filter(pl.col("column") == "id")["row_index"].to_list()
    assert flagged == list(range(ROWS - 4, ROWS + 1))


def test_measurements_that_merely_look_unique_are_still_analysed() -> None:
    """Distinct integers that are no running number and no key (revenue in whole units) stay measurements."""
    rng = np.random.default_rng(3)
    revenue = rng.choice(np.arange(1_000, 100_000), size=ROWS, replace=False)
    revenue[5] = 10_000_000
    result = run(outliers.run, indexed({"revenue": revenue}, list(range(1, ROWS + 1))), OutlierRemoverParams())
    assert result.envelope.data["identifier_columns_skipped"] == {}
    assert 6 in result.row_level_issues["row_index"].to_list()


@pytest.mark.parametrize("strategy", ["flag", "remove", "impute_median"])
def test_streamed_run_skips_the_same_columns(strategy: str, tmp_path: Path) -> None:
    params = OutlierRemoverParams(removal_strategy=strategy)  # type: ignore[arg-type]
    result = assert_same_streamed_run(outliers.run, coded_frame(), params, tmp_path, 7)
    assert list(result.envelope.data["identifier_columns_skipped"]) == SKIPPED


def write_jumping_ids(path: Path) -> Path:
    """The QA file: ids 1..50 then 100001..100005, amounts around 100."""
    rng = np.random.default_rng(6)
    ids = [*range(1, 51), *range(100_001, 100_006)]
    amounts = [f"{value:.2f}" for value in rng.uniform(90, 110, len(ids))]
    path.write_text("id,amount\n" + "".join(f"{i},{a}\n" for i, a in zip(ids, amounts, strict=True)))
    return path


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
@pytest.mark.parametrize(
    "parameters", [{}, {"outlier-remover": {"removal_strategy": "remove"}}], ids=["flag", "remove"]
)
def test_the_clean_chain_neither_proposes_nor_removes_rows_for_jumping_ids(
    tmp_path: Path, streamed: bool, parameters: dict[str, Any]
) -> None:
    source = write_jumping_ids(tmp_path / "primary.csv")
    options = RunOptions(streaming_threshold_bytes=0 if streamed else None)
    out = tmp_path / "out"
    result = run_tool(
        "clean-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None, run_options=options
    )
    summary = result["summary"]
    assert summary["inputs"]["primary"].get("streamed", False) is streamed
    assert not [item for item in summary["proposals"] if item["agent_id"] == "outlier-remover"]
    assert summary["rows_out"] == 55
    assert (out / "cleaned_data.csv").read_text() == source.read_text()
