"""The drift-detector's statistics against SciPy/NumPy on generated data with known answers, its test
selection (Evidently's table), schema drift, row-level issues and parameters."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats
from scipy.spatial.distance import jensenshannon

from agents import registry
from agents.drift import stats as drift_stats
from agents.drift.detector import choose_test, run
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params.drift_detector import DriftDetectorParams


def _run(baseline: pl.DataFrame | None, current: pl.DataFrame, **params: Any) -> AgentResult:
    messages: list[float] = []
    result = run(
        AgentInputs(current, "primary.csv", baseline, "baseline.csv" if baseline is not None else None),
        DriftDetectorParams(**{"statistical_test": "kolmogorov_smirnov", **params}),
        lambda fraction, _: messages.append(fraction),
    )
    assert messages == sorted(messages) and messages[-1] == 1.0
    json.dumps(result.envelope.to_dict(), allow_nan=False)  # plain JSON, no NaN or numpy types
    return result


def field(result: AgentResult, name: str) -> dict[str, Any]:
    return next(f for f in result.envelope.data["fields"] if f["field_name"] == name)


def analysis(result: AgentResult, name: str) -> dict[str, Any]:
    return field(result, name)["drift_analysis"]


def numpy_bins(baseline: np.ndarray, current: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Independent binning: np.quantile inner edges, duplicates merged, open outer bins, [a, b)."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)[1:-1]))
    count = len(edges) + 1
    return (
        np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=count),
        np.bincount(np.searchsorted(edges, current, side="right"), minlength=count),
    )


def numpy_psi(expected: np.ndarray, actual: np.ndarray, floor: float = 1e-4) -> float:
    p = np.maximum(expected / expected.sum(), floor)
    q = np.maximum(actual / actual.sum(), floor)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.fixture(scope="module")
def shifted() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(11)
    n = 4000
    baseline = pl.DataFrame(
        {
            "amount": rng.lognormal(3.0, 0.8, n),
            "score": rng.normal(50, 10, n),
            "segment": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    current = pl.DataFrame(
        {
            "amount": rng.lognormal(3.3, 0.9, n),
            "score": rng.normal(50.2, 10, n),
            "segment": rng.choice(["a", "b", "c", "d"], n, p=[0.25, 0.25, 0.25, 0.25]),
        }
    )
    return baseline, current


# --- statistics against SciPy / NumPy ---------------------------------------------------------------------


def test_ks_psi_js_wasserstein_match_scipy_and_numpy(shifted: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    baseline, current = shifted
    result = _run(baseline, current)  # Agensium's default, set explicitly: kolmogorov_smirnov
    b, c = baseline["amount"].to_numpy(), current["amount"].to_numpy()
    a = analysis(result, "amount")

    ks = stats.ks_2samp(b, c)
    assert a["test"] == "ks" and a["p_value"] is not None
    assert a["statistic"] == pytest.approx(ks.statistic, abs=1e-12)
    assert a["p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    assert a["drift_detected"] is True and a["threshold"] == 0.05

    expected, actual = numpy_bins(b, c)
    assert a["psi_bins"] == 10 and not a["bins_per_value"]
    assert a["bin_edges"] == pytest.approx(np.quantile(b, np.linspace(0, 1, 11)[1:-1]).tolist(), rel=1e-12)
    assert a["psi_score"] == pytest.approx(numpy_psi(expected, actual), rel=1e-12)
    distance = jensenshannon(expected, actual, base=2)
    assert a["js_distance"] == pytest.approx(distance, rel=1e-9)
    assert a["js_divergence"] == pytest.approx(distance**2, rel=1e-9)
    assert 0 < a["js_divergence"] < a["js_distance"] < 1  # divergence and distance are not confused
    wasserstein = stats.wasserstein_distance(b, c)
    assert a["wasserstein_distance"] == pytest.approx(wasserstein, rel=1e-12)
    assert a["wasserstein_normed"] == pytest.approx(wasserstein / max(np.std(b), 0.001), rel=1e-12)
    assert a["severity"] == ("high" if a["psi_score"] > 0.25 else "medium" if a["psi_score"] > 0.1 else "low")

    f = field(result, "amount")
    assert f["baseline_statistics"]["mean"] == pytest.approx(b.mean(), rel=1e-12)
    assert f["baseline_statistics"]["median"] == pytest.approx(np.median(b), rel=1e-12)
    assert f["baseline_statistics"]["std"] == pytest.approx(b.std(ddof=1), rel=1e-12)
    assert f["current_statistics"]["max"] == pytest.approx(c.max())
    assert a["change_in_mean"] == pytest.approx(c.mean() - b.mean(), rel=1e-9)
    assert a["change_in_variance"] == pytest.approx(c.var(ddof=1) - b.var(ddof=1), rel=1e-9)


def test_chi2_really_runs_on_bins_and_categories(shifted: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    baseline, current = shifted
    result = _run(baseline, current, statistical_test="chi2")

    b, c = baseline["score"].to_numpy(), current["score"].to_numpy()
    table = np.vstack(numpy_bins(b, c))
    expected = stats.chi2_contingency(table)
    a = analysis(result, "score")
    assert a["test"] == "chi2"
    assert a["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert a["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)

    categories = ["a", "b", "c", "d"]
    counts = [
        [(baseline["segment"] == k).sum() for k in categories],
        [(current["segment"] == k).sum() for k in categories],
    ]
    expected = stats.chi2_contingency(np.array(counts))
    a = analysis(result, "segment")
    assert a["test"] == "chi2" and a["drift_detected"] is True
    assert a["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert a["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert a["psi_score"] == pytest.approx(numpy_psi(np.array(counts[0]), np.array(counts[1])), rel=1e-12)
    assert a["js_distance"] == pytest.approx(jensenshannon(counts[0], counts[1], base=2), rel=1e-9)
    assert a["wasserstein_distance"] is None and a["psi_bins"] == 4


def test_z_test_for_proportions_equals_uncorrected_chi_square() -> None:
    rng = np.random.default_rng(3)
    baseline = pl.DataFrame({"answer": rng.choice(["no", "yes"], 600, p=[0.6, 0.4])})
    current = pl.DataFrame({"answer": rng.choice(["no", "yes"], 700, p=[0.5, 0.5])})
    a = analysis(_run(baseline, current, statistical_test="auto"), "answer")
    table = np.array([[(frame["answer"] == value).sum() for value in ("no", "yes")] for frame in (baseline, current)])
    expected = stats.chi2_contingency(table, correction=False)
    assert a["test"] == "z" and "<= 1,000" in a["test_reason"]
    assert a["statistic"] ** 2 == pytest.approx(expected.statistic, rel=1e-9)
    assert a["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    p1, p2 = table[0, 0] / table[0].sum(), table[1, 0] / table[1].sum()
    assert math.copysign(1, a["statistic"]) == math.copysign(1, p1 - p2)


def test_count_statistics_against_scipy_directly() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        b, c = rng.integers(0, 200, k), rng.integers(0, 200, k)
        b[0], c[1] = b[0] + 1, c[1] + 1
        divergence, distance = drift_stats.jensen_shannon(b, c)
        assert distance == pytest.approx(jensenshannon(b, c, base=2), abs=1e-12)
        assert divergence == pytest.approx(jensenshannon(b, c, base=2) ** 2, abs=1e-12)
        assert drift_stats.psi(b, c, 1e-4) == pytest.approx(numpy_psi(b, c), rel=1e-12, abs=1e-15)
        kept = (b + c) > 0
        expected = stats.chi2_contingency(np.vstack([b[kept], c[kept]]))
        result = drift_stats.chi_square(b, c)
        assert result.statistic == pytest.approx(expected.statistic) and result.p_value == pytest.approx(
            expected.pvalue
        )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=30), st.lists(st.integers(0, 1000), min_size=1, max_size=30))
def test_psi_is_non_negative_and_zero_on_itself(first: list[int], second: list[int]) -> None:
    size = max(len(first), len(second))
    b = np.array(first + [0] * (size - len(first)))
    c = np.array(second + [0] * (size - len(second)))
    assert drift_stats.psi(b, c, 1e-4) >= 0
    assert abs(drift_stats.psi(b, b, 1e-4)) <= 1e-9
    assert abs(drift_stats.psi(c, c, 1e-4)) <= 1e-9


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=200), st.integers(2, 20))
def test_binned_psi_of_a_column_against_itself_is_zero(values: list[float], bins: int) -> None:
    array = np.sort(np.array(values))
    edges = drift_stats.quantile_edges(array, bins)
    below = drift_stats.below_edge_counts(array, edges)
    assert below == [int((array < edge).sum()) for edge in edges]
    counts = drift_stats.bin_counts(below, len(values))
    expected, _ = numpy_bins(array, array, bins)
    assert counts.tolist() == expected.tolist()
    assert drift_stats.psi(counts, counts, 1e-4) == 0.0


@pytest.mark.parametrize(
    ("sizes", "integers"),
    [((200_000, 200_000), False), ((200_000, 150_000), True), ((3_000, 12_000), False), ((800, 900), True)],
)
def test_one_merge_gives_scipys_ks_and_wasserstein(sizes: tuple[int, int], integers: bool) -> None:
    """Large samples take ks_2samp's asymptotic branch (the p-value from kstwo); small ones its exact one;
    integer values bring ties. Everything must be SciPy's number, not an approximation of it."""
    rng = np.random.default_rng(sizes[0] + sizes[1])
    if integers:
        b, c = rng.integers(0, 40, sizes[0]).astype(float), rng.integers(0, 41, sizes[1]).astype(float)
    else:
        b, c = rng.normal(0, 1, sizes[0]), rng.normal(0.01, 1.01, sizes[1])
    test, distance = drift_stats.compare_samples(np.sort(b), np.sort(c), ks=True)
    expected = stats.ks_2samp(b, c)
    assert test is not None
    assert test.statistic == pytest.approx(expected.statistic, rel=1e-12, abs=0)
    assert test.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert distance == pytest.approx(stats.wasserstein_distance(b, c), rel=1e-12)
    assert drift_stats.compare_samples(np.sort(b), np.sort(c), ks=False) == (None, distance)


def test_large_files_match_scipy_through_the_agent() -> None:
    rng = np.random.default_rng(23)
    n = 200_000
    baseline = pl.DataFrame({"x": rng.normal(100, 15, n), "k": rng.integers(0, 30, n)})
    current = pl.DataFrame({"x": rng.normal(100.15, 15, n), "k": rng.integers(0, 31, n)})
    result = _run(baseline, current)
    for name in ("x", "k"):
        b, c = baseline[name].to_numpy().astype(float), current[name].to_numpy().astype(float)
        a = analysis(result, name)
        ks = stats.ks_2samp(b, c)
        assert a["test"] == "ks"
        assert a["statistic"] == pytest.approx(ks.statistic, rel=1e-9)
        assert a["p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
        assert a["wasserstein_distance"] == pytest.approx(stats.wasserstein_distance(b, c), rel=1e-9)
        assert a["wasserstein_normed"] == pytest.approx(stats.wasserstein_distance(b, c) / np.std(b), rel=1e-9)
        f = field(result, name)
        assert f["baseline_statistics"]["std"] == pytest.approx(b.std(ddof=1), rel=1e-12)
        assert f["current_statistics"]["distinct"] == len(np.unique(c))
    k = analysis(result, "k")
    expected, actual = numpy_bins(baseline["k"].to_numpy().astype(float), current["k"].to_numpy().astype(float))
    assert k["psi_score"] == pytest.approx(numpy_psi(expected, actual), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=60),
    st.lists(st.integers(-5, 5), min_size=1, max_size=60),
)
def test_per_value_counts_match_polars(first: list[int], second: list[int]) -> None:
    b, c = np.sort(np.array(first, dtype=float)), np.sort(np.array(second, dtype=float))
    table = drift_stats.value_counts(b, c)
    expected = (
        drift_stats.category_counts(pl.LazyFrame({"v": b}), pl.LazyFrame({"v": c}), pl.col("v")).collect().sort("value")
    )
    assert table.to_dicts() == expected.to_dicts()


TOP_SCHEMA = {"value": pl.String, "current": pl.Int64}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.text("abc", min_size=1, max_size=3), st.integers(1, 4)), max_size=40),
    st.integers(0, 12),
)
def test_most_frequent_values_are_the_head_of_the_full_sort(rows: list[tuple[str, int]], limit: int) -> None:
    from agents.drift.detector import _most_frequent

    counts = dict(rows)  # one count per value, as in a table of value counts
    table = pl.DataFrame({"value": list(counts), "current": list(counts.values())}, schema=TOP_SCHEMA)
    expected = table.sort("current", "value", descending=[True, False]).head(limit)["value"].to_list()
    assert _most_frequent(table, "current", limit) == expected


def test_iso_text_parses_as_polars_infers_it() -> None:
    """The explicit-format fast path must give what format inference gives, and only be taken when every
    value has the ISO shape; names and e-mails are never parsed at all."""
    from agents.drift.detector import _parse_temporal_text

    n = 10_050  # more than the 10,000-row sample the format is chosen on
    days = [(date(2019, 1, 1) + timedelta(days=d % 3000)).isoformat() for d in range(n)]
    frame = pl.DataFrame(
        {
            "day": [f" {d}\t" if i % 7 == 0 else d for i, d in enumerate(days)],
            "stamp": [f"{d}T{i % 24:02d}:{i % 60:02d}:05" for i, d in enumerate(days)],
            "spaced": [f"{d} 23:59:{i % 60:02d}" for i, d in enumerate(days)],
            "mixed": [d if i % 2 else f"{d}T08:30:00.250" for i, d in enumerate(days)],
            "late": [f"{d} 10:00:00" if i < 10_000 else f"{d} 10:00:00.5" for i, d in enumerate(days)],
            "invalid": [*days[:-1], "2019-02-30"],
            "nulls": [None if i % 3 == 0 else d for i, d in enumerate(days)],
            "email": [f"user{i}@example.com" for i in range(n)],
        }
    )
    parsed, again = _parse_temporal_text(frame, frame)
    inferred = frame.select(
        pl.col(name).str.strip_chars().str.to_datetime(strict=False, time_unit="us") for name in frame.columns[:-1]
    )
    assert parsed.select(frame.columns[:-1]).equals(inferred) and again.equals(parsed)
    assert parsed.schema["email"] == pl.String and parsed["email"].equals(frame["email"])
    assert parsed["mixed"].null_count() == 0 and parsed["invalid"].null_count() == 1
    assert parsed["late"].null_count() == 0  # the late fractional seconds sent the column back to inference
    assert parsed["day"].null_count() == 0


# --- verdicts and test selection ---------------------------------------------------------------------------


@pytest.mark.parametrize("test", ["kolmogorov_smirnov", "chi2", "wasserstein", "auto", "psi", "jensen_shannon"])
def test_identical_data_shows_no_drift_anywhere(test: str) -> None:
    rng = np.random.default_rng(8)
    n = 1500
    frame = pl.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "few": rng.integers(0, 4, n),
            "flag": rng.random(n) < 0.3,
            "city": rng.choice(["paris", "rome", "oslo"], n),
            "day": [date(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 90, n)],
        }
    )
    result = _run(frame, frame, statistical_test=test)
    for f in result.envelope.data["fields"]:
        a = f["drift_analysis"]
        assert a["drift_detected"] is False and a["severity"] == "none", (test, f["field_name"], a)
        assert a["psi_score"] == 0.0 and a["js_divergence"] == 0.0
        assert a["wasserstein_distance"] in (None, 0.0)
    summary = result.envelope.data["drift_summary"]
    assert summary["drifted_fields"] == 0 and summary["dataset_stability"] == "stable"
    assert result.envelope.summary_metrics["dataset_drift"] is False
    assert result.row_level_issues.height == 0


def _strong_shift(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(shift: float, weights: list[float], share: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "continuous": rng.normal(100 + shift, 15, n),
                "level": rng.choice([1, 2, 3, 4], n, p=weights),
                "binary": rng.choice([0, 1], n, p=[share, 1 - share]),
                "colour": rng.choice(["red", "green", "blue", "black"], n, p=weights),
                "active": rng.random(n) < share,
            }
        )

    return frame(0, [0.4, 0.4, 0.1, 0.1], 0.5), frame(30, [0.1, 0.2, 0.3, 0.4], 0.2)


def test_auto_picks_evidently_tests_for_a_small_reference() -> None:
    baseline, current = _strong_shift(400, 1)
    result = _run(baseline, current, statistical_test="auto")
    expected = {"continuous": "ks", "level": "chi2", "binary": "z", "colour": "chi2", "active": "z"}
    for name, test in expected.items():
        a = analysis(result, name)
        assert a["test"] == test, (name, a["test_reason"])
        assert a["test_reason"].startswith("auto (Evidently)")
        assert a["drift_detected"] is True and a["p_value"] < 0.05, name
    assert result.envelope.data["drift_summary"]["dataset_drift"] is True
    assert result.envelope.summary_metrics["drift_share"] == 1.0
    assert any(alert.category == "dataset_drift" for alert in result.envelope.alerts)


def test_auto_picks_distance_tests_for_a_large_reference() -> None:
    baseline, current = _strong_shift(3000, 2)
    result = _run(baseline, current, statistical_test="auto")
    expected = {
        "continuous": "wasserstein",
        "level": "jensen_shannon",
        "binary": "jensen_shannon",
        "colour": "jensen_shannon",
        "active": "jensen_shannon",
    }
    for name, test in expected.items():
        a = analysis(result, name)
        assert a["test"] == test and a["p_value"] is None and "> 1,000" in a["test_reason"], name
        assert a["drift_detected"] is True and a["statistic"] >= 0.1
    a = analysis(result, "continuous")
    assert a["statistic"] == pytest.approx(a["wasserstein_normed"]) and a["wasserstein_normed"] > 1
    assert analysis(result, "colour")["statistic"] == pytest.approx(analysis(result, "colour")["js_distance"])
    assert analysis(result, "level")["bins_per_value"] is True


def test_choose_test_table() -> None:
    assert choose_test("auto", "numeric", 1000, None, 1000)[0] == "ks"
    assert choose_test("auto", "numeric", 1001, None, 1000)[0] == "wasserstein"
    assert choose_test("auto", "numeric", 50, 5, 1000)[0] == "chi2"
    assert choose_test("auto", "numeric", 50, 3, 1000)[0] == "chi2"
    assert choose_test("auto", "datetime", 50, 2, 1000)[0] == "z"
    assert choose_test("auto", "numeric", 5000, 5, 1000)[0] == "jensen_shannon"
    assert choose_test("auto", "categorical", 50, 2, 1000)[0] == "z"
    assert choose_test("auto", "categorical", 50, 30, 1000)[0] == "chi2"
    assert choose_test("auto", "boolean", 5000, 2, 1000)[0] == "jensen_shannon"
    test, reason = choose_test("kolmogorov_smirnov", "categorical", 500, 4, 1000)
    assert test == "chi2" and "numeric columns only" in reason
    test, reason = choose_test("wasserstein", "categorical", 5000, 4, 1000)
    assert test == "jensen_shannon" and "numeric columns only" in reason
    assert choose_test("kolmogorov_smirnov", "numeric", 5000, None, 1000)[0] == "ks"
    assert choose_test("psi", "categorical", 10, 3, 1000)[0] == "psi"


def test_default_ks_reports_effect_sizes_and_falls_back_for_categories(
    shifted: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    baseline, current = shifted
    result = _run(baseline, current)
    a = analysis(result, "segment")
    assert a["test"] == "jensen_shannon" and "numeric columns only" in a["test_reason"]  # 4,000 > 1,000 rows
    score = analysis(result, "score")  # a 0.02-sigma shift: KS decides, PSI/JS/Wasserstein stay small
    assert score["psi_score"] < 0.1 and score["wasserstein_normed"] < 0.1 and score["js_distance"] < 0.1
    assert result.envelope.data["defaults"]["statistical_test"] == "auto"
    assert result.envelope.data["parameters"]["statistical_test"] == "kolmogorov_smirnov"
    assert result.envelope.data["overrides"]["statistical_test"] == "kolmogorov_smirnov"


def test_categorical_shift_new_and_missing_categories_and_row_issues() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    baseline = pl.DataFrame({"country": rng.choice(["fr", "de", "it", "es"], n)})
    values = rng.choice(["fr", "de", "it", "pt", "nl"], n, p=[0.3, 0.3, 0.2, 0.15, 0.05])
    current = pl.DataFrame({"country": values})
    result = _run(baseline, current, max_new_category_issues=7)
    a = analysis(result, "country")
    assert a["drift_detected"] is True and a["severity"] == "high"
    assert a["new_categories"] == ["pt", "nl"] and a["missing_categories"] == ["es"]
    assert a["new_category_rows"] == int(np.isin(values, ["pt", "nl"]).sum())
    issues = result.row_level_issues.filter(pl.col("column") == "country")
    expected_rows = (np.flatnonzero(np.isin(values, ["pt", "nl"])) + 1)[:7]
    assert issues["row_index"].to_list() == expected_rows.tolist()
    assert issues["value"].to_list() == values[expected_rows - 1].tolist()
    assert set(issues["issue_type"]) == {"new_category"}
    assert any(issue.issue_type == "new_categories" for issue in result.envelope.issues)


def test_zscore_row_issues_use_the_file_rows_and_the_baseline_moments() -> None:
    rng = np.random.default_rng(9)
    baseline = pl.DataFrame({"latency": rng.normal(100, 10, 3000)})
    shifted = rng.normal(120, 10, 2500)
    shifted[[5, 77]] = np.nan  # row 6 becomes null below, row 78 stays NaN
    current = pl.DataFrame({"latency": shifted}, nan_to_null=False).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("latency")).alias("latency")
    )
    result = _run(baseline, current, statistical_test="auto")
    assert analysis(result, "latency")["drift_detected"] is True
    b = baseline["latency"].to_numpy()
    z = (shifted - b.mean()) / b.std(ddof=1)
    expected = np.flatnonzero(np.nan_to_num(np.abs(z), nan=0.0) > 2.0) + 1
    issues = result.row_level_issues
    assert issues["row_index"].to_list() == expected.tolist()
    severe = np.nan_to_num(np.abs(z), nan=0.0)[expected - 1] > 4.0
    assert issues["severity"].to_list() == np.where(severe, "warning", "info").tolist()
    assert result.envelope.data["row_level_issues_by_type"]["distribution_shift"] == len(expected)
    assert field(result, "latency")["current_statistics"]["null_count"] == 2  # NaN counts as missing

    # In the clean chain a frame carries the input file's rows: those are the ones reported.
    numbered = current.with_columns(pl.int_range(1, current.height + 1, dtype=pl.Int64).mul(3).alias(ROW_INDEX_COLUMN))
    renumbered = _run(baseline, numbered, statistical_test="auto").row_level_issues
    assert renumbered["row_index"].to_list() == (expected * 3).tolist()


def test_datetime_columns_compare_as_epoch_numbers() -> None:
    rng = np.random.default_rng(2)
    start = date(2024, 1, 1)
    baseline = pl.DataFrame({"day": [start + timedelta(days=int(d)) for d in rng.integers(0, 200, 3000)]})
    current = pl.DataFrame({"day": [start + timedelta(days=int(d) + 100) for d in rng.integers(0, 200, 3000)]})
    result = _run(baseline, current)
    f = field(result, "day")
    assert f["column_type"] == "datetime" and f["value_unit"] == "epoch_seconds"
    b = np.array([(d - date(1970, 1, 1)).days * 86400.0 for d in baseline["day"].to_list()])
    c = np.array([(d - date(1970, 1, 1)).days * 86400.0 for d in current["day"].to_list()])
    assert f["drift_analysis"]["statistic"] == pytest.approx(stats.ks_2samp(b, c).statistic)
    assert f["drift_analysis"]["wasserstein_distance"] == pytest.approx(stats.wasserstein_distance(b, c))
    assert f["drift_analysis"]["change_in_mean"] == pytest.approx(100 * 86400, rel=0.05)
    assert result.row_level_issues.height == 0  # z-score issues are for numeric columns only


def test_text_columns_are_listed_untested() -> None:
    baseline = pl.DataFrame({"comment": [f"note {i}" for i in range(1000)], "n": np.arange(1000)})
    current = pl.DataFrame({"comment": [f"note {i}" for i in range(500, 1600)], "n": np.arange(1100)})
    result = _run(baseline, current)
    a = analysis(result, "comment")
    assert field(result, "comment")["column_type"] == "text"
    assert a["test"] is None and a["drift_detected"] is False and a["severity"] == "none"
    assert a["new_category_count"] == 600 and a["missing_category_count"] == 500
    assert result.envelope.data["drift_summary"]["fields_analyzed"] == 1  # only "n" is tested
    # chi2 treats every string column as categorical
    assert field(_run(baseline, current, statistical_test="chi2"), "comment")["column_type"] == "categorical"


# --- schema, skips, parameters ----------------------------------------------------------------------------


def test_schema_drift_added_removed_retyped_and_order() -> None:
    rng = np.random.default_rng(6)
    n = 500
    baseline = pl.DataFrame(
        {"id": np.arange(n), "price": rng.integers(1, 100, n), "code": rng.integers(0, 9, n), "legacy": np.ones(n)}
    )
    current = pl.DataFrame(
        {
            "code": [str(v) for v in rng.integers(0, 9, n)],
            "id": np.arange(n),
            "price": rng.integers(1, 100, n).astype(float),
            "channel": ["web"] * n,
        }
    )
    result = _run(baseline, current)
    schema = result.envelope.data["schema_drift"]
    assert schema["added_columns"] == ["channel"] and schema["removed_columns"] == ["legacy"]
    assert schema["retyped_columns"] == [
        {"field_name": "code", "baseline_type": "Int64", "current_type": "String"},
        {"field_name": "price", "baseline_type": "Int64", "current_type": "Float64"},
    ]
    assert schema["order_changed"] is True
    assert [f["field_name"] for f in result.envelope.data["fields"]] == ["id", "price"]  # numeric both sides
    skipped = result.envelope.data["skipped_fields"]
    assert [s["field_name"] for s in skipped] == ["code"] and "type changed" in skipped[0]["reason"]
    categories = {alert.category: alert.severity for alert in result.envelope.alerts}
    assert categories["schema_removed_columns"] == "critical" and categories["schema_type_change"] == "high"
    assert categories["schema_added_columns"] == "medium" and categories["schema_column_order"] == "low"
    assert {issue.issue_type for issue in result.envelope.issues} >= {"missing_column", "new_column", "type_change"}
    cards = {card.summary_id: card for card in result.envelope.executive_summary}
    assert cards["schema-changes"].value == "5" and set(cards) >= {"drift-share", "drifted-columns", "average-psi"}


def test_no_baseline_is_a_successful_skip() -> None:
    result = _run(None, pl.DataFrame({"x": [1, 2, 3]}))
    envelope = result.envelope
    assert envelope.status == "success" and envelope.data["skipped"] is True and envelope.data["skip_reason"]
    assert envelope.data["fields"] == []
    assert envelope.summary_metrics == {
        "fields_analyzed": 0,
        "drift_detected_count": 0,
        "drift_severity_high": 0,
        "drift_severity_medium": 0,
        "drift_severity_low": 0,
        "average_psi_score": 0.0,
        "dataset_drift": False,
        "drift_share": 0.0,
    }


def test_columns_below_min_sample_size_are_skipped() -> None:
    rng = np.random.default_rng(1)
    sparse = [float(v) if i % 20 == 0 else None for i, v in enumerate(rng.normal(size=1000))]  # 50 values
    baseline = pl.DataFrame({"dense": rng.normal(size=1000), "sparse": sparse})
    current = pl.DataFrame({"dense": rng.normal(size=1000), "sparse": sparse})
    result = _run(baseline, current)
    assert [f["field_name"] for f in result.envelope.data["fields"]] == ["dense"]
    (skipped,) = result.envelope.data["skipped_fields"]
    assert skipped["field_name"] == "sparse" and "min_sample_size (100)" in skipped["reason"]
    assert [f["field_name"] for f in _run(baseline, current, min_sample_size=50).envelope.data["fields"]] == [
        "dense",
        "sparse",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"statistical_test": "anderson_darling"},
        {"significance_level": 1.5},
        {"min_sample_size": 0},
        {"min_sample_size": 100.5},
        {"psi_bins": 1},
        {"drift_share": 0},
        {"unknown_option": True},
    ],
)
def test_bad_parameters_fail_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DriftDetectorParams(**bad)
    with pytest.raises(InvalidParametersError) as raised:
        registry.parse_parameters("drift-detector", bad)
    assert raised.value.agent_id == "drift-detector"


def test_a_whole_number_float_is_an_integer_parameter() -> None:
    """JSON Schema's "integer" admits 100.0 (the OpenAPI document says integer): the strict model takes it as 100."""
    params = registry.parse_parameters("drift-detector", {"min_sample_size": 100.0, "psi_bins": 12.0})
    assert isinstance(params, DriftDetectorParams) and params.min_sample_size == 100
    assert params.psi_bins == 12


def test_registered_with_agensium_defaults() -> None:
    spec = registry.agent("drift-detector")
    assert spec.credits == 40 and registry.load_run(spec) is run
    params = registry.parse_parameters("drift-detector", {"statistical_test": "chi2", "significance_level": 0.01})
    assert isinstance(params, DriftDetectorParams) and params.min_sample_size == 100
    assert DriftDetectorParams().statistical_test == "auto"


def test_envelope_follows_the_shared_contract(shifted: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    baseline, current = shifted
    extra = [
        pl.Series("note", [f"n{i}" for i in range(baseline.height)]),
        pl.Series("flag", [i % 3 == 0 for i in range(baseline.height)]),
    ]
    result = _run(baseline.with_columns(extra), current.with_columns(extra))
    analysis_keys = {
        "test", "test_reason", "statistic", "p_value", "threshold", "drift_detected", "severity", "psi_score",
        "psi_bins", "js_divergence", "js_distance", "wasserstein_distance", "wasserstein_normed", "change_in_mean",
        "change_in_median", "change_in_variance", "null_percentage_change", "distinct_change", "new_categories",
        "missing_categories",
    }  # fmt: skip
    statistics_keys = {"count", "null_count", "null_percentage", "distinct", "mean", "median", "std", "min", "max"}
    fields = result.envelope.data["fields"]
    assert {f["column_type"] for f in fields} == {"numeric", "categorical", "text", "boolean"}
    assert len({tuple(f["drift_analysis"]) for f in fields}) == 1  # the same keys, in the same order, everywhere
    for f in fields:
        assert analysis_keys <= set(f["drift_analysis"]) and isinstance(f["drift_interpretation"], str)
        assert set(f["baseline_statistics"]) == set(f["current_statistics"]) == statistics_keys
        assert f["drift_analysis"]["test"] in {None, "ks", "chi2", "z", "wasserstein", "jensen_shannon", "psi"}
    summary = result.envelope.data["drift_summary"]
    assert {
        "fields_analyzed", "drifted_fields", "drift_share", "drift_share_threshold", "dataset_drift",
        "overall_drift_score", "dataset_stability", "average_psi_score",
    } <= set(summary)  # fmt: skip
    assert summary["fields_analyzed"] == 4 and summary["fields_not_tested"] == 1  # "note" is text
    metrics = result.envelope.summary_metrics
    assert (
        metrics["drift_detected_count"]
        == summary["drifted_fields"]
        == sum(f["drift_analysis"]["drift_detected"] for f in fields)
    )
    assert metrics["drift_share"] == pytest.approx(summary["drifted_fields"] / 4)
    assert metrics["average_psi_score"] == pytest.approx(
        np.mean([f["drift_analysis"]["psi_score"] for f in fields if f["drift_analysis"]["test"]]), abs=1e-6
    )
    assert set(result.envelope.data) >= {"skipped", "skip_reason", "skipped_fields", "schema_drift", "parameters"}
    assert result.envelope.issue_summary["total_issues"] >= result.row_level_issues.height


def test_iso_date_text_is_compared_as_dates_not_as_thousands_of_categories() -> None:
    from datetime import date, timedelta

    from agents.drift.detector import run
    from agents.envelope import AgentInputs
    from agents.params.drift_detector import DriftDetectorParams

    rng = np.random.default_rng(5)

    def days(n: int) -> list[str]:
        return [(date(2015, 1, 1) + timedelta(days=int(d))).isoformat() for d in rng.integers(0, 3000, n)]

    baseline = pl.DataFrame({"signup": days(50_000), "note": ["x"] * 50_000})
    current = pl.DataFrame({"signup": days(50_000), "note": ["x"] * 50_000})
    result = run(AgentInputs(current, "primary.csv", baseline, "baseline.csv"), DriftDetectorParams(), lambda *a: None)
    field = next(f for f in result.envelope.data["fields"] if f["field_name"] == "signup")
    assert field["column_type"] == "datetime"
    assert field["drift_analysis"]["drift_detected"] is False  # same distribution: no drift
    shifted = pl.DataFrame({"signup": [d.replace("2015", "2023") for d in days(50_000)], "note": ["x"] * 50_000})
    result = run(AgentInputs(shifted, "primary.csv", baseline, "baseline.csv"), DriftDetectorParams(), lambda *a: None)
    field = next(f for f in result.envelope.data["fields"] if f["field_name"] == "signup")
    assert field["drift_analysis"]["drift_detected"] is True


def _messy(n: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    """Data on which Polars 2.1's streaming engine panicked while building the row-level issues."""

    def make(n, seed, shift=0.0):
        rng = np.random.default_rng(seed)
        ids = np.arange(1, n + 1)
        amount = rng.normal(100 + shift * 30, 20, n).round(2)
        amount[rng.choice(n, 20, replace=False)] = rng.choice([9999.0, -5000.0, 25000.0], 20)
        amount_list = amount.tolist()
        for i in rng.choice(n, int(n * 0.05), replace=False):
            amount_list[i] = None
        cities_base = [
            "New York",
            "new york",
            " New York ",
            "Boston",
            "BOSTON",
            "Chicago",
            "chicago ",
            "Austin",
            "Seattle",
            "Denver",
        ]
        p = np.array([20, 5, 3, 15, 3, 14, 3, 12, 15, 10], float)
        if shift:
            p = np.array([10, 5, 3, 10, 3, 10, 3, 30, 16, 10], float)
        city = rng.choice(cities_base, n, p=p / p.sum()).tolist()
        for i in rng.choice(n, int(n * 0.02), replace=False):
            city[i] = None
        names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]
        email = [f"{rng.choice(names)}.{i}@example.com" if rng.random() > 0.03 else "not-an-email" for i in ids]
        prices = rng.lognormal(6 + shift * 0.3, 1, n)
        price = [f"${v:,.2f}" for v in prices]
        days = rng.integers(0, 700, n)
        base = np.datetime64("2023-01-01")
        date = [str(base + int(d)) for d in days]
        for i in rng.choice(n, 30, replace=False):
            date[i] = "not a date"
        status = rng.choice(["active", "inactive", "pending"], n, p=[0.7, 0.2, 0.1]).tolist()
        phone = [f"+1-555-{rng.integers(100, 999)}-{rng.integers(1000, 9999)}" for _ in ids]
        df = pl.DataFrame(
            {
                "customer_id": ids,
                "amount": amount_list,
                "city": city,
                "email": email,
                "price": price,
                "signup_date": date,
                "status": status,
                "phone": phone,
                "score": rng.integers(0, 100, n),
            }
        )
        dup = df.sample(15, seed=seed)
        return pl.concat([df, dup])

    return make(n, seed, shift)


def test_row_level_issues_survive_the_data_that_made_polars_panic(tmp_path: Path) -> None:
    from agents.drift.detector import run
    from agents.envelope import AgentInputs
    from agents.params.drift_detector import DriftDetectorParams
    from agents.readers import read_table

    _messy(5000, 1).write_csv(tmp_path / "primary.csv")
    _messy(4000, 2, shift=1.0).write_csv(tmp_path / "baseline.csv")
    primary = read_table(tmp_path / "primary.csv", "primary.csv")
    baseline = read_table(tmp_path / "baseline.csv", "baseline.csv")
    params = DriftDetectorParams(statistical_test="kolmogorov_smirnov")
    result = run(AgentInputs(primary, "primary.csv", baseline, "baseline.csv"), params, lambda *a: None)
    assert result.envelope.status == "success"
    assert result.row_level_issues.height > 0
    assert set(result.row_level_issues["column"].unique()) >= {"amount"}


def test_the_default_picks_the_test_per_column_as_evidently_does() -> None:
    rng = np.random.default_rng(11)

    def frame(rows: int, shift: float) -> pl.DataFrame:
        return pl.DataFrame(
            {"amount": rng.normal(100 + shift, 10, rows), "segment": rng.choice(["a", "b", "c"], rows).tolist()}
        )

    def default_run(baseline: pl.DataFrame, current: pl.DataFrame) -> AgentResult:
        inputs = AgentInputs(current, "primary.csv", baseline, "baseline.csv")
        return run(inputs, DriftDetectorParams(), lambda *a: None)

    small = default_run(frame(800, 0), frame(800, 0))  # reference <= 1,000 rows: p-value tests
    assert analysis(small, "amount")["test"] == "ks" and analysis(small, "segment")["test"] == "chi2"
    # A large reference: distances. A 0.05-sigma shift on 200k rows is no drift (KS alone would flag it).
    large = default_run(frame(200_000, 0), frame(200_000, 0.5))
    amount = analysis(large, "amount")
    assert amount["test"] == "wasserstein" and amount["drift_detected"] is False
    assert analysis(large, "segment")["test"] == "jensen_shannon"
    assert stats.ks_2samp(*(f["amount"].to_numpy() for f in (frame(200_000, 0), frame(200_000, 0.5)))).pvalue < 0.05
