"""The drift statistics: binning and counting with Polars, the tests on small count arrays or on NumPy
copies of a numeric column's non-null values.

Conventions (also published in the envelope's ``data.conventions``):

- numeric bins: inner edges at the baseline's ``i/bins`` quantiles (``numpy.quantile``, linear), duplicate
  edges merged, the outer bins open-ended; each bin is ``[a, b)``, so a value equal to an edge falls in the
  bin above it (``numpy.searchsorted(edges, x, side="right")``);
- PSI = Σ (q − p)·ln(q / p) over bin (or category) shares p (baseline) and q (current), each share raised
  to ``floor`` first (Agensium's 0.0001) and not renormalised, so identical data give exactly 0;
- Jensen–Shannon: ``divergence`` is JS(p‖q) in bits (0..1), ``distance`` its square root, which is what
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` returns (Agensium reported the distance under the
  divergence's name);
- chi-square: ``scipy.stats.chi2_contingency`` of the 2×k table of counts (columns empty on both sides
  dropped; Yates' correction, SciPy's default, applies when k = 2);
- z-test for two proportions (Evidently's ``z``): the share of the first category (sorted) in each file,
  pooled standard error, two-sided normal p-value; z² equals the uncorrected 2×2 chi-square;
- Wasserstein: ``scipy.stats.wasserstein_distance``, normed by ``max(baseline std (ddof=0), 0.001)``
  (Evidently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats as scipy_stats

WASSERSTEIN_STD_FLOOR = 0.001


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float | None


def quantile_edges(baseline: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges: the baseline's ``1/bins .. (bins-1)/bins`` quantiles, duplicates merged."""
    if baseline.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(baseline, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def below_edge_expressions(value: pl.Expr, edges: np.ndarray, prefix: str) -> list[pl.Expr]:
    """One count per edge: the values strictly below it (nulls never count); with the non-null count they
    give every bin's count (``bin_counts``). Summing comparisons keeps it one vectorised pass per edge."""
    return [(value < float(edge)).sum().alias(f"{prefix}:{index}") for index, edge in enumerate(edges)]


def bin_counts(below: list[int], total: int) -> np.ndarray:
    """Counts of the ``len(below) + 1`` bins ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    cumulative = np.asarray([0, *below, total], dtype=np.int64)
    return np.diff(cumulative)


def category_counts(baseline: pl.LazyFrame, current: pl.LazyFrame, value: pl.Expr) -> pl.LazyFrame:
    """``value, baseline, current``: the count of every non-null value in each file, over the union of the
    values (0 where a file lacks one), sorted by value."""

    def counts(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
        grouped = frame.select(value.alias("value")).drop_nulls().group_by("value")
        return grouped.agg(pl.len().cast(pl.Int64).alias(name))

    joined = counts(baseline, "baseline").join(counts(current, "current"), on="value", how="full", coalesce=True)
    return joined.with_columns(pl.col("baseline", "current").fill_null(0)).sort("value")


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def psi(baseline_counts: np.ndarray, current_counts: np.ndarray, floor: float) -> float:
    expected = np.maximum(shares(np.asarray(baseline_counts, dtype=np.float64)), floor)
    actual = np.maximum(shares(np.asarray(current_counts, dtype=np.float64)), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def jensen_shannon(baseline_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """(divergence in bits, distance = sqrt(divergence))."""
    p = shares(np.asarray(baseline_counts, dtype=np.float64))
    q = shares(np.asarray(current_counts, dtype=np.float64))
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        present = a > 0
        return float(np.sum(a[present] * np.log2(a[present] / m[present])))

    divergence = min(1.0, max(0.0, (kl(p) + kl(q)) / 2))
    return divergence, math.sqrt(divergence)


def chi_square(baseline_counts: np.ndarray, current_counts: np.ndarray) -> TestResult:
    table = np.vstack([baseline_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return TestResult(0.0, 1.0)
    result = scipy_stats.chi2_contingency(table)
    return TestResult(float(result.statistic), float(result.pvalue))


def z_test_proportions(baseline_counts: np.ndarray, current_counts: np.ndarray) -> TestResult:
    """Two-proportion z-test of the first category's share (a column with at most two values)."""
    n1, n2 = float(np.sum(baseline_counts)), float(np.sum(current_counts))
    if n1 == 0 or n2 == 0 or len(baseline_counts) < 2:
        return TestResult(0.0, 1.0)
    p1, p2 = float(baseline_counts[0]) / n1, float(current_counts[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return TestResult(0.0, 1.0)
    z = (p1 - p2) / math.sqrt(variance)
    return TestResult(z, float(2 * scipy_stats.norm.sf(abs(z))))


def kolmogorov_smirnov(baseline: np.ndarray, current: np.ndarray) -> TestResult:
    result = scipy_stats.ks_2samp(baseline, current)
    return TestResult(float(result.statistic), float(result.pvalue))


def wasserstein(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(distance, distance / max(baseline std with ddof=0, 0.001))."""
    distance = float(scipy_stats.wasserstein_distance(baseline, current))
    return distance, distance / max(float(np.std(baseline)), WASSERSTEIN_STD_FLOOR)
