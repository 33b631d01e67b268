"""agents/values.py: date planning (its character pre-filter changes no count) and the parsing of early years."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import values as value_readers
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.values import count_missing_tokens


def _brute_force_counts(values: pl.DataFrame, formats: list[value_readers.TemporalFormat]) -> dict[str, int]:
    """Every format tried on every date-like value, one at a time (the definition the plan must match)."""
    readable = values.filter(value_readers.date_like(pl.col("value")))
    return {
        fmt.pattern: int(
            readable.filter(value_readers.parse_temporal(pl.col("value"), fmt).is_not_null())["count"].sum() or 0
        )
        for fmt in formats
    }


DATE_PIECES = ["2024", "0999", "1000", "24", "1", "02", "12", "13", "31", "Mar", "march", "OCT", "Sept"]
DATE_SEPARATORS = ["-", "/", ".", " ", "T", ":", ", ", "Z", "", "+", "_", "é", ".5"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(DATE_PIECES), st.sampled_from(DATE_SEPARATORS)), min_size=2, max_size=7),
        min_size=1,
        max_size=60,
    )
)
def test_plan_dates_counts_match_trying_every_format_on_every_value(pieces: list[list[tuple[str, str]]]) -> None:
    texts = ["".join(piece + separator for piece, separator in value)[:-1] for value in pieces]
    texts += [
        "2024-01-05",
        "01/02/2024",
        "5 Mar 2024",
        "5 OCT 2024",
        "OCT 5, 2024",
        "31-Oct-2024",
        "2024-01-05T10:00:00.5",
        "2024-01-05 10:00",
        "0999-01-01",
    ]
    values = value_readers.distinct_counts(pl.DataFrame({"x": texts}), "x")
    custom = value_readers.TemporalFormat("%A %d %B %Y", "date")  # a directive the pre-filter does not know
    formats = [*value_readers.TEMPORAL_FORMATS, custom]
    plan = value_readers.plan_dates(values, "x", formats)
    expected = _brute_force_counts(values, formats)
    assert dict((fmt.pattern, count) for fmt, count in plan.formats) == {k: v for k, v in expected.items() if v}
    readable = values.filter(value_readers.date_like(pl.col("value")))
    union = pl.any_horizontal([value_readers.parse_temporal(pl.col("value"), fmt).is_not_null() for fmt in formats])
    assert plan.parsed == int(readable.filter(union)["count"].sum() or 0)


def test_parse_temporal_keeps_year_1000_and_empties_earlier_four_digit_years() -> None:
    frame = pl.DataFrame({"x": ["1000-01-01", "0999-12-31", " 2024-02-29 ", "0024-01-01", None]})
    date = value_readers.TemporalFormat("%Y-%m-%d", "date")
    assert frame.select(value_readers.parse_temporal(pl.col("x"), date)).to_series().to_list() == [
        dt.date(1000, 1, 1),
        None,
        dt.date(2024, 2, 29),
        None,
        None,
    ]
    stamps = pl.DataFrame({"x": ["0999-12-31T23:59:59.999999", "1000-01-01T00:00:00"]})
    fmt = value_readers.TemporalFormat("%Y-%m-%dT%H:%M:%S%.f", "datetime")
    assert stamps.select(value_readers.parse_temporal(pl.col("x"), fmt)).to_series().to_list() == [
        None,
        dt.datetime(1000, 1, 1),
    ]


@pytest.mark.parametrize("tokens", [DEFAULT_NULL_TOKENS, ("NA", ""), ()])
def test_tokens_are_counted_alike_on_both_engines(tokens: tuple[str, ...]) -> None:
    """The streaming engine counts each token by a sum of matches (a filter in a select gathers the column)."""
    frame = pl.DataFrame(
        {
            "a": ["NA", " NA ", "x", None, "", "null", "NA"] * 3,
            "b": [1.0, float("nan"), 2.0, None, 3.0, float("nan"), 4.0] * 3,
            "c": ["n/a", "y", "z", "N/A", "NULL", "", " "] * 3,
            "d": list(range(21)),
        }
    )
    streamed = count_missing_tokens(frame.lazy(), tokens, engine="streaming")
    assert streamed == count_missing_tokens(frame, tokens)
    assert not tokens or streamed["a"]["NA"] == 9


@pytest.mark.parametrize("tokens", [DEFAULT_NULL_TOKENS, (" NA", "a.b", "(x)", "[1]", "NA")])
def test_tokens_among_any_whitespace_and_pattern_characters_are_counted_as_trimmed(tokens: tuple[str, ...]) -> None:
    """In memory a pattern picks the values to trim and compare: it must let every token through, whatever the
    whitespace around it (any that ``strip_chars`` trims), and a token's own characters mean nothing special."""
    values = ["\u3000NA\u2003", "\tnull\n", "\u00a0#N/A", "a.b", "aXb", "(x)", "x", "[1]", "1", " NA", "NA NA", None]
    frame = pl.DataFrame({"a": values * 2, "b": list(reversed(values)) * 2})
    expected = {
        name: found
        for name in frame.columns
        if (
            found := dict(
                sorted(
                    Counter(text.strip() for text in frame[name].drop_nulls() if text.strip() in {*tokens, ""}).items(),
                    key=lambda pair: (-pair[1], pair[0]),
                )
            )
        )
    }
    assert count_missing_tokens(frame, tokens) == expected
    assert count_missing_tokens(frame.lazy(), tokens, engine="streaming") == expected
