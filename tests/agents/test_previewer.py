"""cleanse-previewer: simulated rules' statistics against NumPy/SciPy (the data itself unchanged), impact levels,
default rules and parameter errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError
from scipy import stats

from agents.clean import previewer
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params.cleanse_previewer import CleansePreviewerParams
from tests.agents.clean_support import (
    framed,
    run_agent,
)


def previewer_frame(rng: np.random.Generator, n: int = 400) -> pl.DataFrame:
    x = rng.normal(50.0, 10.0, n)
    x[[3, n // 2, n - 1]] = [400.0, -300.0, 500.0]
    nulls = set(rng.choice(n, 40, replace=False).tolist())
    rows = np.sort(rng.choice(np.arange(1, 5 * n), n, replace=False)).tolist()
    frame = framed(
        {
            "x": [None if i in nulls else float(v) for i, v in enumerate(x)],
            "group": [["a", "b", "c"][i % 3] if i % 7 else None for i in range(n)],
            "amount": [f"{v:.2f}" if i % 20 else "unknown" for i, v in enumerate(rng.uniform(0, 100, n))],
        },
        rows,
    )
    duplicate = frame.head(5).with_columns(pl.Series(ROW_INDEX_COLUMN, [5 * n + i for i in range(5)], pl.Int64))
    return pl.concat([frame, duplicate])


def rule_result(result: AgentResult, rule_id: str) -> dict[str, Any]:
    return next(item for item in result.envelope.data["simulated_results"] if item["rule_id"] == rule_id)


def test_previewer_statistics_match_numpy_and_scipy_and_data_is_unchanged() -> None:
    frame = previewer_frame(np.random.default_rng(11))
    snapshot = frame.clone()
    params = CleansePreviewerParams.model_validate(
        {
            "preview_rules": [
                {"rule_id": "mean", "type": "impute_nulls", "target_columns": ["x"], "strategy": "mean"},
                {"rule_id": "iqr", "type": "remove_outliers", "target_columns": ["x"], "method": "iqr"},
                {
                    "rule_id": "z",
                    "type": "remove_outliers",
                    "target_columns": ["x"],
                    "method": "zscore",
                    "threshold": 2.5,
                },
                {"rule_id": "dups", "type": "drop_duplicates"},
                {"rule_id": "nulls", "type": "drop_nulls", "target_columns": ["group"]},
                {"rule_id": "convert", "type": "convert_types", "target_columns": ["amount"], "target_type": "float"},
                {"rule_id": "drop", "type": "drop_columns", "target_columns": ["group"]},
            ]
        }
    )
    result = run_agent(previewer, frame, params)
    assert result.frame is frame and frame.equals(snapshot)
    assert result.removed is not None and result.removed.height == 0

    x = frame["x"].drop_nulls().to_numpy()
    filled = frame["x"].fill_null(x.mean()).to_numpy()
    change = rule_result(result, "mean")["changes"]["column_level_changes"]["x"]
    assert change["mean_before"] == pytest.approx(x.mean()) and change["mean_after"] == pytest.approx(filled.mean())
    assert change["std_before"] == pytest.approx(x.std(ddof=1)) and change["std_after"] == pytest.approx(
        filled.std(ddof=1)
    )
    assert change["skewness_before"] == pytest.approx(stats.skew(x, bias=False), rel=1e-6)
    assert change["kurtosis_after"] == pytest.approx(stats.kurtosis(filled, bias=False), rel=1e-6)
    assert change["null_count_change"] == -40
    assert rule_result(result, "mean")["rows_affected"] == 40

    q1, q3 = np.quantile(x, [0.25, 0.75])
    iqr_outliers = int(((x < q1 - 1.5 * (q3 - q1)) | (x > q3 + 1.5 * (q3 - q1))).sum())
    iqr = rule_result(result, "iqr")
    assert iqr["rows_affected"] == iqr_outliers >= 3 and iqr["changes"]["row_change"] == -iqr_outliers
    z_outliers = int((np.abs(x - x.mean()) / x.std(ddof=1) > 2.5).sum())
    assert rule_result(result, "z")["rows_affected"] == z_outliers
    assert rule_result(result, "dups")["rows_affected"] == 5
    assert rule_result(result, "nulls")["rows_affected"] == frame["group"].null_count()
    convert = rule_result(result, "convert")
    not_numbers = int((frame["amount"] == "unknown").sum())
    assert not_numbers >= 20
    assert convert["changes"]["column_level_changes"]["amount"]["conversion_failures"] == not_numbers
    assert convert["changes"]["column_level_changes"]["amount"]["dtype_after"] == "Float64"
    failures = result.row_level_issues.filter(pl.col("issue_type") == "preview_conversion_failure")
    expected_rows = frame.filter(pl.col("amount") == "unknown")[ROW_INDEX_COLUMN].to_list()
    assert sorted(failures["row_index"].to_list()) == expected_rows

    drop = rule_result(result, "drop")
    assert drop["impact_level"] == "high" and drop["risk_assessment"]["is_risky"]
    metrics = result.envelope.summary_metrics
    assert metrics["total_rules_previewed"] == 7 and metrics["safe_to_execute"] is False
    levels = [item["impact_level"] for item in result.envelope.data["simulated_results"]]
    assert metrics["high_impact_rules"] == levels.count("high")
    assert metrics["medium_impact_rules"] + metrics["low_impact_rules"] == 7 - levels.count("high")


def test_previewer_impact_levels_follow_thresholds() -> None:
    frame = framed({"v": [float(i) for i in range(100)]}, list(range(1, 101)))
    frame = frame.with_columns(pl.when(pl.col(ROW_INDEX_COLUMN) <= 7).then(None).otherwise(pl.col("v")).alias("v"))
    rule = {"rule_id": "drop", "type": "drop_nulls", "target_columns": ["v"]}  # removes 7 % of the rows
    for high, medium, level in ((10, 5, "medium"), (6, 5, "high"), (20, 10, "low")):
        params = CleansePreviewerParams.model_validate(
            {"preview_rules": [rule], "impact_threshold_high": high, "impact_threshold_medium": medium}
        )
        result = run_agent(previewer, frame, params)
        assert rule_result(result, "drop")["impact_level"] == level
        assert result.envelope.summary_metrics["safe_to_execute"] is True  # 7 % < 20 % row loss


def test_previewer_default_rules_and_rule_errors() -> None:
    frame = previewer_frame(np.random.default_rng(3), 60)
    result = run_agent(previewer, frame, CleansePreviewerParams())
    data = result.envelope.data
    assert data["rules_source"] == "default" and "default" in data["note"]
    assert [item["rule_type"] for item in data["simulated_results"]] == [
        "drop_duplicates",
        "impute_nulls",
        "impute_nulls",
        "remove_outliers",
    ]
    targets = [item["target_columns"] for item in data["simulated_results"][1:]]
    assert targets == [["x"], ["group"], ["x"]]  # x: the only numeric data column
    bad = CleansePreviewerParams.model_validate(
        {"preview_rules": [{"type": "impute_nulls", "target_columns": ["group"], "strategy": "median"}]}
    )
    failed = run_agent(previewer, frame, bad)
    assert failed.envelope.data["simulated_results"][0]["status"] == "error"
    assert failed.envelope.summary_metrics["failed_simulations"] == 1


@pytest.mark.parametrize(
    "rule",
    [
        {"type": "drop_nulls"},
        {"type": "impute_nulls", "strategy": "median"},
        {"type": "remove_outliers"},
        {"type": "drop_duplicates"},
        {"type": "drop_columns"},
        {"type": "convert_types", "target_type": "string"},
    ],
)
def test_a_column_named_twice_is_a_target_once(rule: dict[str, Any]) -> None:
    """Before, ``target_columns: ["x", "x"]`` failed the agent (Polars: a duplicate output name)."""
    frame = previewer_frame(np.random.default_rng(5), 60)
    twice, once = (
        run_agent(
            previewer,
            frame,
            CleansePreviewerParams.model_validate({"preview_rules": [{**rule, "target_columns": columns}]}),
        )
        for columns in (["x", "amount", "x"], ["x", "amount"])
    )
    assert twice.envelope.status == once.envelope.status == "success"
    assert twice.envelope.data == once.envelope.data
    assert once.envelope.data["simulated_results"][0]["target_columns"] == ["x", "amount"]


def test_previewer_parameter_errors() -> None:
    frame = framed({"v": [1.0, 2.0]})
    params = CleansePreviewerParams.model_validate(
        {"preview_rules": [{"type": "drop_nulls", "target_columns": ["nope"]}]}
    )
    with pytest.raises(InvalidParametersError) as error:
        previewer.run(AgentInputs(frame, "p.csv"), params, lambda *_: None)
    assert error.value.field == "preview_rules.0.target_columns"
    for raw in (
        {"preview_rules": [{"type": "explode"}]},
        {"preview_rules": [{"type": "drop_columns"}]},
        {"preview_rules": [{"type": "impute_nulls", "strategy": "constant"}]},
        {"impact_threshold_high": 3, "impact_threshold_medium": 5},
        {"confidence_level": 0.5},
    ):
        with pytest.raises(ValidationError):
            CleansePreviewerParams.model_validate(raw)
