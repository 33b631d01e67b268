"""Speed paths of the clean chain (issue 15, flights) against the way they replaced, on seeded frames with the awkward
values: each must give the same numbers to the last bit, the sign of a zero included.

- ``common.quantile_pairs`` (both quantiles of a column from one list quantile) against two single quantiles, as
  ``outliers.compute_bounds`` used them;
- ``common.repeat_candidates`` (hashes counted before a mask is built) against its definition;
- the previewer's row-removing rules with their mask computed once (``previewer._with_mask``) against the rule's
  expression evaluated where it is used;
- ``duplicates._pattern_pairs`` narrowed by two columns against one."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import polars as pl
import pytest

from agents.clean import common, duplicates, outliers, previewer
from agents.clean.common import quantile_pairs
from agents.envelope import AgentInputs
from agents.params.cleanse_previewer import CleansePreviewerParams
from agents.params.duplicate_resolver import DuplicateResolverParams
from agents.params.outlier_remover import OutlierRemoverParams
from tests.agents.clean_support import ROW
from tests.agents.test_clean_speed_paths import assert_same, speed_frame

PAIRS = [(0.25, 0.75), (0.01, 0.99), (0.0, 1.0), (0.5, 0.5)]


def bits(value: float | None) -> bytes | None:
    """A float's bytes (-0.0 and 0.0 differ), None as None."""
    return None if value is None else struct.pack("<d", value)


def awkward_column(rng: np.random.Generator, kind: int, n: int) -> pl.Series:
    """Mostly signed zeros, rounded values (-0.0 among them), or values with NaN, infinities and nulls."""
    values = rng.normal(size=n) * 10.0 ** int(rng.integers(-3, 6))
    if kind == 0:
        values = np.where(rng.random(n) < 0.6, np.where(rng.random(n) < 0.5, -0.0, 0.0), values)
    elif kind == 1:
        values = np.round(values / 10.0 ** int(rng.integers(0, 6)))
    else:
        values[rng.random(n) < 0.2] = np.nan
        values[rng.random(n) < 0.05] = np.inf
        values[rng.random(n) < 0.05] = -np.inf
    series = pl.Series("x", values)
    return pl.select(pl.when(pl.int_range(n) % 7 == 3).then(None).otherwise(series).alias("x")).to_series()


def awkward_frame(seed: int, n: int = 400) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {f"c{kind}": awkward_column(rng, kind, n).alias(f"c{kind}") for kind in range(3)}
    frame = pl.DataFrame(columns).with_columns(pl.Series("i", rng.integers(-2, 3, n)))
    half = n // 2  # in two chunks, as a file read by several threads
    return pl.concat([frame.head(half), frame.tail(n - half)], rechunk=False)


def singles(frame: pl.DataFrame, value: pl.Expr, low: float, high: float) -> tuple[Any, Any]:
    row = frame.select(value.quantile(low, "linear").alias("a"), value.quantile(high, "linear").alias("b")).row(0)
    return row[0], row[1]


@pytest.mark.parametrize("seed", range(40))
def test_quantile_pairs_are_the_single_quantiles_to_the_sign_of_zero(seed: int) -> None:
    frame = awkward_frame(seed).rechunk()
    finite = [
        pl.when(pl.col(name).cast(pl.Float64).is_finite()).then(pl.col(name).cast(pl.Float64)) for name in frame.columns
    ]
    not_nan = [
        pl.col(name).cast(pl.Float64).filter(pl.col(name).cast(pl.Float64).is_not_nan()) for name in frame.columns
    ]
    for values in (finite, not_nan):
        for low, high in PAIRS:
            pairs, extra = quantile_pairs(frame, values, low, high, [pl.len().alias("rows")])
            assert extra == {"rows": frame.height}
            for value, pair in zip(values, pairs, strict=True):
                assert [bits(item) for item in pair] == [bits(item) for item in singles(frame, value, low, high)]


def test_quantile_pairs_without_values() -> None:
    frame = pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64})
    assert quantile_pairs(frame, [pl.col("x")], 0.25, 0.75) == ([(None, None)], {})
    assert quantile_pairs(frame.clear(), [pl.col("x")], 0.25, 0.75) == ([(None, None)], {})
    assert quantile_pairs(frame, [], 0.25, 0.75, [pl.len().alias("n")]) == ([], {"n": 2})


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("method", ["iqr", "percentile", "z_score"])
def test_outlier_bounds_as_with_single_quantiles(seed: int, method: str) -> None:
    frame = awkward_frame(seed)
    columns = frame.columns
    params = OutlierRemoverParams(detection_method=method)  # type: ignore[arg-type]
    exprs = [expr for index, name in enumerate(columns) for expr in outliers._bound_exprs(index, name, params)]
    expected = outliers._bounds_of(columns, frame.rechunk().select(exprs).row(0, named=True), params)
    found = outliers.compute_bounds(frame, columns, params)
    assert [repr(item) for item in found] == [repr(item) for item in expected]
    for item, reference in zip(found, expected, strict=True):
        assert [bits(value) for value in (item.lower, item.upper)] == [
            bits(value) for value in (reference.lower, reference.upper)
        ]


@pytest.mark.parametrize(("seed", "id_kind"), [(seed, kind) for seed in range(3) for kind in ("none", "repeat")])
def test_repeat_candidates_as_defined(seed: int, id_kind: str) -> None:
    frame = speed_frame(seed, id_kind)
    keys = [name for name in frame.columns if name != ROW]
    for rows in (frame, frame.unique(subset=keys, maintain_order=True), frame.head(1)):
        found = common.repeat_candidates(rows, keys)
        repeated = rows.select(keys).hash_rows(seed=0).is_duplicated()
        if rows.height < 2 or common.has_identifier(rows, keys) or not repeated.any():  # noqa: PLR2004
            assert found is None
        else:
            assert found is not None
            assert found.equals(repeated)


def test_previewer_mask_once_as_evaluated_where_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row-removing rule (with repeats, without, nulls, outliers) and the default rules."""
    rules = [
        previewer.PreviewRule(type="drop_duplicates", rule_id="all"),
        previewer.PreviewRule(type="drop_duplicates", target_columns=["name"], rule_id="names"),
        previewer.PreviewRule(type="drop_nulls", rule_id="nulls"),
        previewer.PreviewRule(type="remove_outliers", target_columns=["amount"], method="zscore", rule_id="z"),
        previewer.PreviewRule(type="remove_outliers", target_columns=["amount"], rule_id="iqr"),
    ]
    for seed, id_kind in [(0, "unique"), (1, "repeat"), (2, "none")]:
        frame = speed_frame(seed, id_kind)
        for params in (CleansePreviewerParams(), CleansePreviewerParams(preview_rules=rules)):
            fast = previewer.run(AgentInputs(frame, "primary.csv"), params, lambda _f, _m: None)
            with monkeypatch.context() as patch:
                patch.setattr(previewer, "_with_mask", lambda _frame, simulation: simulation)
                general = previewer.run(AgentInputs(frame, "primary.csv"), params, lambda _f, _m: None)
            assert_same(fast, general)


def gappy_frame(seed: int, n: int = 3000) -> pl.DataFrame:
    """Rows copied with some cells emptied (each subsumed by its original), over a timestamp shared by many rows."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "hour": rng.integers(0, 40, n),
            "flight": rng.integers(0, 300, n),
            "delay": pl.Series(rng.integers(-5, 30, n)).cast(pl.Float64),
            "tail": [f"N{int(v)}" for v in rng.integers(0, 200, n)],
            "dest": pl.Series(rng.choice(["BOS", "LAX", "ORD"], n)),
        }
    )
    copies = frame.sample(n // 10, seed=seed).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("delay")).alias("delay"),
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("tail")).alias("tail"),
    )
    blanks = frame.sample(n // 20, seed=seed + 1).with_columns(pl.lit(None, pl.String).alias("dest"))
    mixed = pl.concat([frame, copies, blanks]).sample(fraction=1.0, shuffle=True, seed=seed)
    return mixed.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("merge_strategy", ["remove_duplicates", "merge_smart"])
def test_missing_values_pairs_narrowed_by_two_columns_as_by_one(
    seed: int, merge_strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = gappy_frame(seed)
    params = DuplicateResolverParams(detection_types=["missing_values"], merge_strategy=merge_strategy)  # type: ignore[arg-type]
    fast = duplicates.run(AgentInputs(frame, "primary.csv"), params, lambda _f, _m: None)
    assert fast.envelope.summary_metrics["duplicates_detected"] > 0  # the pairs are there to be found
    for narrowing in (1, 5):
        monkeypatch.setattr(duplicates, "NARROWING_COLUMNS", narrowing)
        general = duplicates.run(AgentInputs(frame, "primary.csv"), params, lambda _f, _m: None)
        assert_same(fast, general)
