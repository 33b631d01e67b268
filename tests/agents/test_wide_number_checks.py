"""Checks over many columns at once give what the same checks give one column at a time: the missing-token counts
(stacked lists, one query) and the numbers no double holds (columns stacked into one past a few dozen)."""

from __future__ import annotations

import random

import polars as pl
import pytest

from agents import layouts
from agents.values import count_missing_tokens

VALUES = [
    "1", "0.123456789012345671", "9007199254740993", "1e400", " 12345678901234567.5 ", None, "abc", "",
    "0.10000000000000001", "1.50", "-3", "1e-400", "2.5", " NA ", "n/a", "NULL", "-nan", "#N/A N/A", "none",
]  # fmt: skip


def random_frame(seed: int, width: int, height: int) -> pl.DataFrame:
    rng = random.Random(seed)
    columns = {f"c{i}": [rng.choice(VALUES) for _ in range(height)] for i in range(width)}
    return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))


@pytest.mark.parametrize("seed", range(12))
def test_numbers_beyond_a_double_stacked_equal_one_column_at_a_time(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = random_frame(seed, width=40 + seed, height=seed * 3)
    monkeypatch.setattr(layouts, "STACKED_CELLS", 7 + seed)  # several groups of columns
    stacked = layouts.beyond_double_columns(frame, frame.columns)
    one_by_one: dict[str, dict[str, object]] = {}
    for name in frame.columns:
        one_by_one |= layouts.beyond_double_columns(frame.select(name), [name])
    assert stacked == one_by_one
    assert list(stacked) == [name for name in frame.columns if name in one_by_one]
    if seed:
        assert stacked  # the values above make some column hold one


def test_the_first_value_of_a_stacked_column_is_its_first_in_row_order() -> None:
    frame = pl.DataFrame({f"c{i}": ["1", "1e400", "0.123456789012345671"] for i in range(layouts.STACKED_COLUMNS + 1)})
    found = layouts.beyond_double_columns(frame, frame.columns)
    assert found["c0"] == {"reason": layouts.BEYOND_DOUBLE, "values": 2, "example": "1e400"}
    assert len(found) == frame.width


@pytest.mark.parametrize("seed", range(8))
def test_missing_tokens_of_many_columns_equal_one_column_at_a_time(seed: int) -> None:
    frame = random_frame(100 + seed, width=30 + seed, height=2 + seed * 4).with_columns(
        pl.Series("f", [float("nan"), 1.0] * (1 + seed * 2)).head(2 + seed * 4)
    )
    together = count_missing_tokens(frame)
    one_by_one: dict[str, dict[str, int]] = {}
    for name in frame.columns:
        one_by_one |= count_missing_tokens(frame.select(name))
    assert together == one_by_one
    for counts in together.values():
        assert list(counts.values()) == sorted(counts.values(), reverse=True)
    assert together  # tokens were drawn
