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

Numeric columns are sorted once per side and everything else reads the sorted arrays: quantile edges, bin
counts (``numpy.searchsorted``), per-value counts, and one merge of the two samples that gives both the
Kolmogorov–Smirnov statistic and the Wasserstein distance with SciPy's own arithmetic (so the results are
SciPy's to the last bit) without SciPy re-sorting and arg-sorting each sample on every call.
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


def below_edge_counts(sorted_values: np.ndarray, edges: np.ndarray) -> list[int]:
    """One count per edge: the values strictly below it, read off the sorted non-null values; with their
    number they give every bin's count (``bin_counts``)."""
    return [int(count) for count in np.searchsorted(sorted_values, edges, side="left")]


def bin_counts(below: list[int], total: int) -> np.ndarray:
    """Counts of the ``len(below) + 1`` bins ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    cumulative = np.asarray([0, *below, total], dtype=np.int64)
    return np.diff(cumulative)


def category_counts(baseline: pl.LazyFrame, current: pl.LazyFrame, value: pl.Expr) -> pl.LazyFrame:
    """``value, baseline, current``: the count of every non-null value in each file, over the union of the
    values (0 where a file lacks one), in no particular order: sorting a free-text column's million values
    costs more than counting them, so the caller sorts the tables it keeps (a handful of categories)."""

    def counts(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
        grouped = frame.select(value.alias("value")).drop_nulls().group_by("value")
        return grouped.agg(pl.len().cast(pl.Int64).alias(name))

    joined = counts(baseline, "baseline").join(counts(current, "current"), on="value", how="full", coalesce=True)
    return joined.with_columns(pl.col("baseline", "current").fill_null(0))


def value_counts(baseline: np.ndarray, current: np.ndarray) -> pl.DataFrame:
    """``value, baseline, current`` like ``category_counts``, sorted by value, from two sorted arrays."""

    def runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if values.size == 0:
            return values[:0], np.empty(0, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
        return values[starts], np.diff(np.append(starts, values.size))

    (b_values, b_counts), (c_values, c_counts) = runs(baseline), runs(current)
    union = np.union1d(b_values, c_values)
    b_aligned, c_aligned = np.zeros(union.size, dtype=np.int64), np.zeros(union.size, dtype=np.int64)
    b_aligned[np.searchsorted(union, b_values)] = b_counts
    c_aligned[np.searchsorted(union, c_values)] = c_counts
    return pl.DataFrame({"value": union.astype(np.float64), "baseline": b_aligned, "current": c_aligned})


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


KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp(method="auto") is exact up to this sample size


def compare_samples(baseline: np.ndarray, current: np.ndarray, *, ks: bool) -> tuple[TestResult | None, float]:
    """(two-sided Kolmogorov–Smirnov test when ``ks``, Wasserstein distance) of two sorted, non-empty,
    finite samples: ``scipy.stats.ks_2samp`` (``method="auto"``) and ``scipy.stats.wasserstein_distance``
    to the last bit, from one merge of the samples.

    Both read the two empirical CDFs at every value of the merged sample (``searchsorted(side="right")``,
    as SciPy does): KS is their largest difference, Wasserstein the sum of |difference| x gap to the next
    value. Small samples, where ks_2samp computes an exact p-value, go to ks_2samp itself; larger ones use
    its asymptotic branch, ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``."""
    n1, n2 = baseline.size, current.size
    merged, baseline_counts, current_counts = _merge(baseline, current)
    difference = baseline_counts / n1
    del baseline_counts
    difference -= current_counts / n2
    del current_counts
    test: TestResult | None = None
    if ks and max(n1, n2) <= KS_EXACT_MAX_N:
        result = scipy_stats.ks_2samp(baseline, current)
        test = TestResult(float(result.statistic), float(result.pvalue))
    elif ks:
        below = float(np.clip(-difference.min(), 0, 1))
        above = float(difference.max())
        statistic = below if below > above else above
        larger, smaller = sorted([float(n1), float(n2)], reverse=True)
        effective = larger * smaller / (larger + smaller)
        p_value = np.clip(scipy_stats.kstwo.sf(statistic, np.round(effective)), 0, 1)
        test = TestResult(statistic, float(p_value))
    gaps = np.diff(merged)
    del merged
    np.abs(difference, out=difference)
    distance = float(np.vecdot(difference[:-1], gaps))
    return test, distance


def _merge(baseline: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The merged sorted sample and, at each of its values, how many values of each sample are <= it:
    exactly ``np.searchsorted(sample, merged, side="right")``, in linear time. A stable sort of the two sorted
    runs is a merge (timsort), which of them each place came from gives running counts, and every value of
    a run of equal values takes the count at the run's end."""
    n1, n2 = baseline.size, current.size
    values = np.concatenate((baseline, current))
    order = np.argsort(values, kind="stable")
    merged = values[order]
    del values
    baseline_counts = np.cumsum(order < n1, dtype=np.int64)
    del order
    current_counts = np.arange(1, n1 + n2 + 1, dtype=np.int64)
    current_counts -= baseline_counts
    run_ends = np.flatnonzero(merged[1:] != merged[:-1])
    if run_ends.size + 1 < merged.size:  # ties: every value of a run counts the whole run
        run_ends = np.append(run_ends, merged.size - 1)
        lengths = np.diff(run_ends, prepend=-1)
        baseline_counts = np.repeat(baseline_counts[run_ends], lengths)
        current_counts = np.repeat(current_counts[run_ends], lengths)
    return merged, baseline_counts, current_counts


def wasserstein_normed(distance: float, baseline: np.ndarray) -> float:
    """The distance over max(baseline std with ddof=0, 0.001) (Evidently)."""
    return distance / max(float(np.std(baseline)), WASSERSTEIN_STD_FLOOR)
