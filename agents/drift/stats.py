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

Numeric columns are sorted once per side and everything else reads the sorted arrays: the moments (one
pass of NumPy's own steps for mean, variance and std), quantile edges (NumPy's interpolation, without its
copy and partition), bin counts (``numpy.searchsorted``), per-value counts, and one merge of the two samples
(or, for samples of few distinct values, their per-value counts) that gives both the Kolmogorov–Smirnov
statistic and the Wasserstein distance with SciPy's own arithmetic (so the results are SciPy's to the last
bit) without SciPy re-sorting and arg-sorting each sample on every call.
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
    """Inner bin edges: the sorted baseline's ``1/bins .. (bins-1)/bins`` quantiles, duplicates merged."""
    if baseline.size == 0:
        return np.empty(0)
    return np.unique(sorted_quantiles(baseline, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def sorted_quantiles(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """``numpy.quantile(values, quantiles)`` (method ``linear``) of sorted, non-empty, finite values, with
    NumPy's arithmetic step for step (virtual index ``(n - 1) q``, its floor and the next place clipped to
    the last, ``gamma`` and the two-sided lerp), so to the last bit: read off the sorted values in place of
    NumPy's copy and partition of them, which on a column of a few dozen distinct values costs more than
    the column's sort."""
    count = values.size
    virtual = (count - 1) * quantiles
    previous = np.floor(virtual)
    following = previous + 1
    beyond = virtual >= count - 1
    previous[beyond] = following[beyond] = -1
    before = virtual < 0
    previous[before] = following[before] = 0
    previous_index, following_index = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - previous_index
    below, above = values[previous_index], values[following_index]
    step = above - below
    result = below + step * gamma
    np.subtract(above, step * (1 - gamma), out=result, where=gamma >= 0.5)
    return result


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
    costs more than counting them, so the caller sorts the tables it keeps (a handful of categories). One
    grouping of both files' values, each marked with its file, rather than a grouping per file and a join of
    the two: a free-text column's million values are hashed once, not twice."""

    def marked(frame: pl.LazyFrame, in_baseline: bool) -> pl.LazyFrame:
        return frame.select(value.alias("value"), pl.lit(in_baseline).alias("in_baseline"))

    both = pl.concat([marked(baseline, True), marked(current, False)]).drop_nulls("value")
    from_baseline = pl.col("in_baseline")
    return both.group_by("value").agg(
        from_baseline.sum().cast(pl.Int64).alias("baseline"), (~from_baseline).sum().cast(pl.Int64).alias("current")
    )


def value_counts(baseline: np.ndarray, current: np.ndarray) -> pl.DataFrame:
    """``value, baseline, current`` like ``category_counts``, sorted by value, from two sorted arrays."""
    union, b_aligned, c_aligned = _value_table(baseline, current)
    return pl.DataFrame({"value": union.astype(np.float64), "baseline": b_aligned, "current": c_aligned})


def _value_table(baseline: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted union of two sorted arrays' values and each array's count of each (0 where it lacks one)."""

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
    return union, b_aligned, c_aligned


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
TALLY_SHARE = 8  # samples with at most 1/8 as many distinct values as values are compared value by value


def compare_samples(
    baseline: np.ndarray, current: np.ndarray, *, ks: bool, distinct: int | None = None
) -> tuple[TestResult | None, float]:
    """(two-sided Kolmogorov–Smirnov test when ``ks``, Wasserstein distance) of two sorted, non-empty,
    finite samples: ``scipy.stats.ks_2samp`` (``method="auto"``) and ``scipy.stats.wasserstein_distance``
    to the last bit. ``distinct``: the two samples' numbers of distinct values added up, if known.

    Both read the two empirical CDFs at every value of the merged sample (``searchsorted(side="right")``,
    as SciPy does): KS is their largest difference, Wasserstein the sum of |difference| x gap to the next
    value. Small samples, where ks_2samp computes an exact p-value, go to ks_2samp itself; larger ones use
    its asymptotic branch, ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``.

    Only the last place of each run of equal merged values matters: elsewhere the gap to the next value is
    0, so its product adds nothing to Wasserstein's sum, and the CDFs' difference there is the run's. The
    places are read off one merge of the samples (``_merge``) or, when the samples have few distinct values
    (``TALLY_SHARE``), off their per-value counts (``_tallies``), without merging millions of values; either
    way Wasserstein is SciPy's sum over the same places (zeros in between), so the same number."""
    n1, n2 = baseline.size, current.size
    if distinct is None:
        distinct = _distinct(baseline) + _distinct(current)
    at_ends: np.ndarray | None
    if distinct * TALLY_SHARE <= n1 + n2 and not (_negative_zero(baseline) or _negative_zero(current)):
        at_ends, difference, gaps = _tallies(baseline, current)
    else:
        at_ends, difference, gaps = _merged_differences(baseline, current, ks)
    test: TestResult | None = None
    if ks and max(n1, n2) <= KS_EXACT_MAX_N:
        result = scipy_stats.ks_2samp(baseline, current)
        test = TestResult(float(result.statistic), float(result.pvalue))
    elif ks:
        assert at_ends is not None
        below = float(np.clip(-at_ends.min(), 0, 1))
        above = float(at_ends.max())
        statistic = below if below > above else above
        larger, smaller = sorted([float(n1), float(n2)], reverse=True)
        effective = larger * smaller / (larger + smaller)
        p_value = np.clip(scipy_stats.kstwo.sf(statistic, np.round(effective)), 0, 1)
        test = TestResult(statistic, float(p_value))
    del at_ends
    np.abs(difference, out=difference)
    distance = float(np.vecdot(difference[:-1], gaps))
    return test, distance


def _distinct(values: np.ndarray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0


def _negative_zero(values: np.ndarray) -> bool:
    """Whether the sorted values hold a -0.0 (equal to 0.0, but 0.0 - -0.0 is a signed gap: such samples
    take the merge, whose gaps are SciPy's to the sign)."""
    zeros = values[np.searchsorted(values, 0.0, side="left") : np.searchsorted(values, 0.0, side="right")]
    return bool(np.signbit(zeros).any())


def _merged_differences(
    baseline: np.ndarray, current: np.ndarray, ks: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(the CDFs' differences at the runs' last places when ``ks``, the difference of the running counts'
    shares at every place of the merged sample, the gaps between its consecutive values)."""
    n1, n2 = baseline.size, current.size
    merged, counts, from_baseline = _merge(baseline, current)
    difference = np.divide(counts, n1, out=counts.view(np.float64))  # each count becomes its share, in place
    del counts
    np.logical_not(from_baseline, out=from_baseline)
    current_counts = np.cumsum(from_baseline, dtype=np.int64)
    del from_baseline
    difference -= np.divide(current_counts, n2, out=current_counts.view(np.float64))
    del current_counts
    at_ends = None
    if ks:
        at_ends = difference
        run_ends = merged[1:] != merged[:-1]
        if not run_ends.all():  # ties: only a run's last place has both CDFs
            at_ends = difference[np.append(run_ends, True)]
        del run_ends
    gaps = np.diff(merged)
    return at_ends, difference, gaps


def _tallies(baseline: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_merged_differences`` from the samples' per-value counts: a run's last place in the merged sample
    is the number of values up to and including its value, less one; the differences and gaps go there and
    zeros everywhere else."""
    n1, n2 = baseline.size, current.size
    union, b_counts, c_counts = _value_table(baseline, current)
    b_cdf, c_cdf = np.cumsum(b_counts), np.cumsum(c_counts)
    at_ends = b_cdf / n1
    at_ends -= c_cdf / n2
    ends = b_cdf + c_cdf - 1
    difference = np.zeros(n1 + n2)
    difference[ends] = at_ends
    gaps = np.zeros(n1 + n2 - 1)
    gaps[ends[:-1]] = np.diff(union)
    return at_ends, difference, gaps


def _merge(baseline: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The merged sorted sample, at each of its places how many values of the baseline it holds up to there
    (a running count), and whether the place's value came from the baseline. A stable sort of the two sorted
    runs is a merge (timsort) in linear time; within a run of equal values the baseline's come first. The
    running counts are ``np.searchsorted(sample, merged, side="right")`` at each run's last place, short of
    it before (which ``compare_samples`` never reads)."""
    n1 = baseline.size
    values = np.concatenate((baseline, current))
    order = np.argsort(values, kind="stable")
    merged = values[order]
    del values
    from_baseline = order < n1
    counts = np.cumsum(from_baseline, dtype=np.int64, out=order)  # the order's memory, no longer needed
    return merged, counts, from_baseline


def wasserstein_normed(distance: float, baseline_std: float) -> float:
    """The distance over max(the baseline's std with ddof=0 (``Moments.population_std``), 0.001) (Evidently)."""
    return distance / max(baseline_std, WASSERSTEIN_STD_FLOOR)


@dataclass(frozen=True)
class Moments:
    mean: float
    variance: float | None  # ddof=1; None for a single value
    population_std: float  # ddof=0


def moments(values: np.ndarray) -> Moments:
    """``np.mean``, ``np.var(ddof=1)`` and ``np.std`` (ddof=0) of non-empty float64 values, to the last bit,
    with NumPy's own steps done once for the three: the values' sum over their number, the squares of the
    deviations from it, their sum over n - ddof (and the root of that for the std)."""
    count = values.size
    mean = np.add.reduce(values) / count
    deviations = np.subtract(values, mean)
    np.square(deviations, out=deviations)
    squares = np.add.reduce(deviations)
    del deviations
    variance = float(squares / (count - 1)) if count > 1 else None
    return Moments(float(mean), variance, float(np.sqrt(squares / count)))
