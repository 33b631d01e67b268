"""The profiler's numbers against independent NumPy/SciPy computations on generated data."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from agents.chain import run_tool
from agents.envelope import AgentInputs, AgentResult
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.profile.profiler import ProfilerParams, run
from agents.readers import read_table

N = 3000
NULL_ROWS = [3, 50, 777, 2999]  # 1-based data rows where "value" is empty
OUTLIER_ROWS = [10, 20, 30, 40, 1500]


def _dataset(rng: np.random.Generator) -> pl.DataFrame:
    value = rng.normal(10.0, 3.0, N)
    for row in OUTLIER_ROWS:
        value[row - 1] = 100.0 + row
    counts = rng.integers(-5, 20, N)
    category = rng.choice(["a", "b", "c"], size=N, p=[0.85, 0.1, 0.05])
    frame = pl.DataFrame(
        {
            "id": np.arange(1, N + 1),
            "value": value,
            "counts": counts,
            "category": category,
            "constant": ["same"] * N,
            "contact_email": [f"user{i % 1000}@example.com" for i in range(N)],
            "signup": [f"{1 + i % 12:02d}/{1 + i % 28:02d}/2024" for i in range(N)],  # text dates (ISO ones are typed)
            "amount_text": [f"{i * 1.5:.1f}" if i % 10 else "unknown" for i in range(N)],
            "code": [f"AB{i % 90 + 10}" for i in range(N)],
            "empty": [None] * N,
        },
        schema_overrides={"empty": pl.String},
    )
    mask = pl.Series([row in NULL_ROWS for row in range(1, N + 1)])
    return frame.with_columns(pl.when(mask).then(None).otherwise(pl.col("value")).alias("value"))


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame, AgentResult]:
    path = tmp_path_factory.mktemp("profile") / "primary.csv"
    _dataset(np.random.default_rng(7)).write_csv(path)
    frame = read_table(path, "primary.csv")
    messages: list[tuple[float, str]] = []
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: messages.append((f, m)))
    assert [f for f, _ in messages] == sorted(f for f, _ in messages) and messages[-1][0] == 1.0
    return path, frame, result


def field(result: AgentResult, name: str) -> dict[str, Any]:
    return next(f for f in result.envelope.data["fields"] if f["field_name"] == name)


def test_numeric_statistics_match_numpy_and_scipy(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, frame, result = profiled
    x = frame["value"].drop_nulls().to_numpy()
    s = field(result, "value")["statistics"]
    assert s["count"] == len(x) == N - len(NULL_ROWS)
    assert s["min"] == pytest.approx(x.min()) and s["max"] == pytest.approx(x.max())
    assert s["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert s["std"] == pytest.approx(x.std(ddof=1), rel=1e-10)
    assert s["variance"] == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert s["sum"] == pytest.approx(x.sum(), rel=1e-12)
    assert s["skewness"] == pytest.approx(stats.skew(x, bias=False), rel=1e-8)
    assert s["kurtosis"] == pytest.approx(stats.kurtosis(x, fisher=True, bias=False), rel=1e-8)
    for label, q in {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}.items():
        assert s[label] == pytest.approx(np.quantile(x, q), rel=1e-12), label
    assert s["median"] == pytest.approx(np.median(x))
    q1, q3 = np.quantile(x, [0.25, 0.75])
    lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    assert s["iqr"] == pytest.approx(q3 - q1)
    assert (s["outlier_lower_bound"], s["outlier_upper_bound"]) == (pytest.approx(lower), pytest.approx(upper))
    assert s["outlier_count"] == int(((x < lower) | (x > upper)).sum())
    assert s["outlier_count"] >= len(OUTLIER_ROWS)
    assert s["outlier_percentage"] == pytest.approx(100 * s["outlier_count"] / len(x), abs=1e-4)
    assert s["zscore_outlier_count"] == int((np.abs(x - x.mean()) > 3 * x.std(ddof=1)).sum())
    histogram = field(result, "value")["distribution"]["histogram"]
    expected_counts, expected_edges = np.histogram(x, bins=20, range=(x.min(), x.max()))
    assert histogram["counts"] == expected_counts.tolist()
    assert histogram["bin_edges"] == pytest.approx(expected_edges.tolist())


def test_integer_counts_zeros_negatives_and_entropy(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, frame, result = profiled
    x = frame["counts"].to_numpy()
    profile = field(result, "counts")
    s, properties = profile["statistics"], profile["properties"]
    values, counts = np.unique(x, return_counts=True)
    assert properties["unique_count"] == len(values)
    assert properties["values_seen_once"] == int((counts == 1).sum())
    assert properties["unique_percentage"] == pytest.approx(100 * len(values) / N, abs=1e-4)
    assert s["zeros_count"] == int((x == 0).sum()) and s["negatives_count"] == int((x < 0).sum())
    assert s["entropy"] == pytest.approx(stats.entropy(counts, base=2), rel=1e-9)
    top = profile["distribution"]["top_values"]
    expected = sorted(zip(counts.tolist(), values.tolist(), strict=True), key=lambda item: (-item[0], item[1]))[:10]
    assert [(item["count"], item["value"]) for item in top] == expected
    assert top[0]["percentage"] == pytest.approx(100 * expected[0][0] / N, abs=1e-4)


def test_null_and_unique_counts_for_every_column(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, frame, result = profiled
    for name in frame.columns:
        series = frame[name]
        properties = field(result, name)["properties"]
        assert properties["null_count"] == series.null_count(), name
        assert properties["null_percentage"] == pytest.approx(100 * series.null_count() / N, abs=1e-4), name
        assert properties["unique_count"] == len(set(series.drop_nulls().to_list())), name
    assert field(result, "value")["properties"]["null_count"] == len(NULL_ROWS)


def test_high_cardinality_strings_top_values_and_lengths(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, frame, result = profiled
    emails = frame["contact_email"].to_list()
    profile = field(result, "contact_email")
    counts = Counter(emails)
    assert profile["properties"]["unique_count"] == len(counts) == 1000
    assert {item["value"]: item["count"] for item in profile["distribution"]["top_values"]}.items() <= counts.items()
    lengths = [len(email) for email in emails]
    s = profile["statistics"]
    assert (s["min_length"], s["max_length"]) == (min(lengths), max(lengths))
    assert s["mean_length"] == pytest.approx(sum(lengths) / len(lengths))
    assert s["entropy"] == pytest.approx(stats.entropy(list(counts.values()), base=2))


def test_unique_integer_identifier(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, _, result = profiled
    profile = field(result, "id")
    assert profile["properties"]["unique_count"] == N and profile["properties"]["is_unique"]
    assert profile["semantic_type"] == "identifier"
    assert [item["value"] for item in profile["distribution"]["top_values"]] == list(range(1, 11))
    assert profile["statistics"]["entropy"] == pytest.approx(math.log2(N))


def alert_categories(result: AgentResult, name: str | None) -> set[str]:
    return {alert.category for alert in result.envelope.alerts if alert.field_name == name}


def test_alerts_fire_on_data_built_to_trigger_them(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, _, result = profiled
    assert "constant" in alert_categories(result, "constant")
    assert alert_categories(result, "empty") == {"all_missing"}
    assert "unique" in alert_categories(result, "id")
    assert "outliers" not in alert_categories(result, "value")  # 5 of 2996 is under the 5 % threshold
    assert {"pii_detected"} <= alert_categories(result, "contact_email")
    assert field(result, "contact_email")["properties"]["pii_detection"]["method"] == "name+value"
    assert "type_date" in alert_categories(result, "signup")
    assert "numeric_in_string" in alert_categories(result, "amount_text")
    assert "constant_length" in alert_categories(result, "code")
    assert "imbalance" in alert_categories(result, "category")
    assert "zeros" not in alert_categories(result, "counts")  # ~4 % zeros, threshold 10 %
    severities = {alert.alert_id: alert.severity for alert in result.envelope.alerts}
    assert severities["all_missing:empty"] == "critical"


def test_threshold_parameters_change_which_alerts_fire(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, frame, _ = profiled
    strict = ProfilerParams(outlier_alert_threshold=0.1, zeros_alert_threshold=1.0, null_alert_threshold=0.1)
    result = run(AgentInputs(frame, "primary.csv"), strict, lambda f, m: None)
    assert "outliers" in alert_categories(result, "value")
    assert "zeros" in alert_categories(result, "counts")
    assert {a.severity for a in result.envelope.alerts if a.category == "high_missing" and a.field_name == "value"} == {
        "critical"
    }
    assert result.envelope.data["overrides"]["outlier_alert_threshold"] == 0.1
    assert result.envelope.data["overrides"]["top_n_values"] is None
    assert result.envelope.data["defaults"]["outlier_alert_threshold"] == 5.0


def test_clean_data_raises_no_alerts_beyond_unique(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame(
        {
            "measure": rng.normal(100, 10, 2000),
            "size": rng.uniform(1, 50, 2000),
            "group": rng.choice(["north", "south", "east", "west"], 2000),
        }
    )
    path = tmp_path / "primary.csv"
    frame.write_csv(path)
    result = run(AgentInputs(read_table(path, "primary.csv"), "primary.csv"), ProfilerParams(), lambda f, m: None)
    assert {alert.category for alert in result.envelope.alerts} <= {"unique"}
    assert result.envelope.data["quality_summary"]["quality_grade"] == "A"
    assert result.envelope.data["dataset"]["duplicate_rows"] == 0
    assert result.envelope.row_level_issues == [] or all(
        issue["issue_type"].startswith("outlier") for issue in result.envelope.row_level_issues
    )


def test_duplicate_rows_are_counted_exactly(tmp_path: Path) -> None:
    rows = [(i % 7, f"k{i % 5}") for i in range(200)]
    frame = pl.DataFrame(rows, schema=["a", "b"], orient="row")
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    assert result.envelope.data["dataset"]["duplicate_rows"] == len(rows) - len(set(rows))
    assert "duplicate_rows" in alert_categories(result, None)


def test_row_index_is_the_data_row_of_the_file(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    path, _, result = profiled
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    value_column = header.index("value")
    issues = result.row_level_issues
    missing = sorted(
        issues.filter((pl.col("column") == "value") & (pl.col("issue_type") == "missing_value"))["row_index"]
    )
    assert missing == NULL_ROWS
    for row_index in missing:
        assert lines[row_index].split(",")[value_column] == ""  # file line row_index + 1 (1-based)
    outliers = issues.filter((pl.col("column") == "value") & (pl.col("issue_type") == "outlier_iqr"))
    assert set(OUTLIER_ROWS) <= set(outliers["row_index"].to_list())
    for row_index, value in outliers.select("row_index", "value").iter_rows():
        assert float(lines[row_index].split(",")[value_column]) == pytest.approx(float(value))
    assert result.envelope.data["row_index_base"] == 1


def test_row_level_issues_are_capped_inline_but_counted_in_full(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"a": [None] * 1500 + [1.0] * 500, "b": [None] * 2000}, schema={"a": pl.Float64, "b": pl.String}
    )
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    assert len(result.envelope.row_level_issues) == 1000
    assert result.envelope.data["row_level_issues_total"] == 3500 == result.row_level_issues.height
    inline_rows = [issue["row_index"] for issue in result.envelope.row_level_issues]
    assert inline_rows == sorted(inline_rows) and inline_rows[0] == 1
    assert result.envelope.issue_summary["by_type"]["missing_value"] == 3500
    capped = run(AgentInputs(frame, "p.csv"), ProfilerParams(max_stored_row_level_issues=100), lambda f, m: None)
    assert capped.row_level_issues.height == 100
    assert capped.envelope.data["row_level_issues_total"] == 3500
    assert capped.envelope.data["row_level_issues_truncated"] is True


def test_quality_scores_and_grade(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, _, result = profiled
    profile = field(result, "value")
    indicators = profile["quality_indicators"]
    assert indicators["completeness"] == pytest.approx(100 - 100 * len(NULL_ROWS) / N, abs=0.01)
    assert profile["quality_score"] == pytest.approx(
        (indicators["completeness"] + indicators["validity"] + indicators["consistency"]) / 3, abs=0.01
    )
    empty = field(result, "empty")
    assert empty["quality_score"] == 0.0
    summary = result.envelope.data["quality_summary"]
    scores = [f["quality_score"] for f in result.envelope.data["fields"]]
    assert summary["overall_quality_score"] == pytest.approx(sum(scores) / len(scores), abs=0.01)
    assert summary["quality_grade"] in {"A", "B", "C", "D", "F"}
    assert "empty" in summary["fields_requiring_attention"]


def test_envelope_shape(profiled: tuple[Path, pl.DataFrame, AgentResult]) -> None:
    _, _, result = profiled
    envelope = result.envelope.to_dict()
    assert set(envelope) >= {
        "status",
        "agent_id",
        "agent_name",
        "execution_time_ms",
        "summary_metrics",
        "data",
        "alerts",
        "issues",
        "row_level_issues",
        "issue_summary",
        "recommendations",
        "executive_summary",
    }
    assert envelope["agent_id"] == "unified-profiler" and envelope["status"] == "success"
    assert {"defaults", "overrides", "parameters", "fields", "quality_summary"} <= set(envelope["data"])
    alert = envelope["alerts"][0]
    assert set(alert) >= {"alert_id", "severity", "category", "message", "affected_fields_count", "recommendation"}
    assert envelope["summary_metrics"]["total_rows"] == N


@pytest.mark.parametrize(
    ("raw", "field_name"),
    [
        ({"top_n_values": "10"}, "top_n_values"),
        ({"no_such_field": 1}, "no_such_field"),
        ({"null_alert_threshold": 150}, "null_alert_threshold"),
    ],
)
def test_parameters_are_strict(raw: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ProfilerParams.model_validate(raw)
    assert raised.value.errors()[0]["loc"] == (field_name,)


def test_top_values_of_a_mostly_unique_column_are_completed_with_values_seen_once() -> None:
    values = [f"v{i}" for i in range(5000)]
    values[100:103] = ["v0", "v0", "v1"]  # v0 three times, v1 twice; every other value once
    frame = pl.DataFrame({"key": values})
    profile = run(AgentInputs(frame, "p.csv"), ProfilerParams(top_n_values=5), lambda f, m: None).envelope.data[
        "fields"
    ][0]
    counts = Counter(values)
    top = profile["distribution"]["top_values"]
    assert [(item["value"], item["count"]) for item in top[:2]] == [("v0", 3), ("v1", 2)]
    assert len(top) == 5 and all(counts[item["value"]] == item["count"] == 1 for item in top[2:])
    assert profile["properties"]["unique_count"] == len(counts)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)), min_size=1, max_size=80
    ),
    words=st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "zz", ""])), min_size=1, max_size=80),
)
def test_counts_add_up_on_any_data(values: list[float | None], words: list[str | None]) -> None:
    rows = min(len(values), len(words))
    frame = pl.DataFrame(
        {"v": pl.Series(values[:rows], dtype=pl.Float64), "w": pl.Series(words[:rows], dtype=pl.String)}
    )
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda *a: None)
    for field in result.envelope.data["fields"]:
        properties = field["properties"]
        assert properties["null_count"] + properties["non_null_count"] == rows
        assert properties["row_count"] == rows
        column = frame[field["field_name"]].drop_nulls()
        if column.dtype == pl.String:  # an empty text is a missing value (PRODUCT.md)
            column = column.filter(column.str.strip_chars() != "")
        assert properties["unique_count"] == column.n_unique()
        top = field["distribution"]["top_values"]
        assert sum(item["count"] for item in top) <= column.len()
    present = np.array([v for v in values[:rows] if v is not None])
    numeric = next(f for f in result.envelope.data["fields"] if f["field_name"] == "v")["statistics"]
    if present.size:
        assert numeric["min"] == present.min() and numeric["max"] == present.max()
        assert math.isclose(numeric["mean"], present.mean(), rel_tol=1e-9, abs_tol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# missing-value tokens (PRODUCT.md "Missing values")


@pytest.mark.parametrize("token", list(DEFAULT_NULL_TOKENS))
def test_null_counts_equal_pandas_for_each_token(tmp_path: Path, token: str) -> None:
    import pandas as pd

    rows = 60
    path = tmp_path / "primary.csv"
    pl.DataFrame(
        {
            "number": [token if i % 7 == 0 else str(i * 1.5) for i in range(rows)],
            "integer": [token if i % 5 == 0 else str(i) for i in range(rows)],
            "text": [token if i % 4 == 0 else "" if i % 9 == 0 else f"name {i}" for i in range(rows)],
            "clean": [str(i) for i in range(rows)],
        }
    ).write_csv(path)
    expected = pd.read_csv(path).isna().sum().to_dict()
    out = tmp_path / "out"
    result = run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, out, lambda *_: None)
    fields = {f["field_name"]: f for f in result["agents"]["unified-profiler"]["data"]["fields"]}
    assert {name: fields[name]["properties"]["null_count"] for name in expected} == expected
    number_tokens = fields["number"]["properties"]["null_tokens"]
    assert list(number_tokens.values()) == [9] and set(number_tokens) <= {token, "NaN"}  # NaN: read as a float
    # typed as its other values are (where Polars reads the token as a float NaN, the column is float)
    read_as_float = pl.read_csv(path).schema["integer"].is_float()
    assert fields["integer"]["data_type"] == ("float" if read_as_float else "integer")
    assert fields["text"]["properties"]["null_tokens"] == {token: 15, "": 5}  # "": quoted empty fields
    assert fields["clean"]["properties"]["null_tokens"] == {}
    # Polars' rule, on request: only empty fields are missing.
    polars_rule = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {"primary.csv": path},
        {"unified-profiler": {"null_tokens": []}},
        tmp_path / "out2",
        lambda *_: None,
    )
    raw = pl.read_csv(path)
    polars_fields = polars_rule["agents"]["unified-profiler"]["data"]["fields"]
    assert {f["field_name"]: f["properties"]["null_count"] for f in polars_fields} == {
        name: raw[name].null_count() for name in raw.columns
    }


def test_tokens_are_matched_after_trimming_and_every_profile_agent_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    path.write_text("age,city\n31, NA \n40,Boston\nN/A,NULL\n22,\n")
    result = run_tool("profile-my-data", [], {"primary.csv": path}, {}, tmp_path / "out", lambda *_: None)
    fields = {f["field_name"]: f for f in result["agents"]["unified-profiler"]["data"]["fields"]}
    assert fields["age"]["properties"]["null_count"] == 1 and fields["age"]["data_type"] == "integer"
    assert fields["city"]["properties"]["null_count"] == 3
    assert fields["city"]["properties"]["null_tokens"] == {"NA": 1, "NULL": 1}
    assert result["summary"]["inputs"]["primary"]["missing_tokens"]["values_nulled"] == 3
    readiness = result["agents"]["readiness-rater"]
    assert readiness["status"] == "success"
    scores = {item["component"]: item["score"] for item in readiness["data"]["component_scores"]}
    assert scores["completeness"] == pytest.approx(100 * (8 - 4) / 8, abs=0.01)  # 4 of 8 cells missing
