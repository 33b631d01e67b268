"""Text work the clean chain does once (issue 15, session 32), each against the work done again:

- the type-fixer's distinct values of its String columns (``DISTINCT_TEXTS_ARTIFACT``) taken by
  field-standardization for a column it gets as the type-fixer saw it (``common.known_distinct_texts``), and
  refused for a column that changed;
- field-standardization's whitespace rules run only on values holding whitespace or an invisible character: the
  same text as the rules on every value;
- the reader looks value by value for numbers beyond a double only in the columns with a long value or an
  exponent: such a column still stays text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import readers
from agents.clean import standardization, type_fixer
from agents.clean.common import DISTINCT_TEXTS_ARTIFACT, DistinctTexts, known_distinct_texts
from agents.envelope import AgentInputs
from agents.params.field_standardization import FieldStandardizationParams
from agents.params.type_fixer import TypeFixerParams
from tests.agents.test_clean_speed_paths import FRAMES, assert_same, speed_frame, standardization_settings


def run(module: Any, frame: pl.DataFrame, params: Any, artifacts: dict[str, Any] | None = None) -> Any:
    return module.run(AgentInputs(frame, "primary.csv", artifacts=artifacts or {}), params, lambda _f, _m: None)


def counted_columns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The columns field-standardization groups itself (``counted_values``)."""
    seen: list[str] = []
    original = standardization.counted_values

    def counted(frame: pl.DataFrame, name: str, count: str) -> pl.LazyFrame:
        seen.append(name)
        return original(frame, name, count)

    monkeypatch.setattr(standardization, "counted_values", counted)
    return seen


@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_standardization_with_the_type_fixers_distinct_values_is_the_same(
    monkeypatch: pytest.MonkeyPatch, seed: int, id_kind: str
) -> None:
    monkeypatch.setattr(type_fixer, "DISTINCT_FIRST_ROWS", 0)  # the type-fixer counts distinct values at any height
    frame = speed_frame(seed, id_kind)
    fixed = run(type_fixer, frame, TypeFixerParams())
    shared = fixed.artifacts.get(DISTINCT_TEXTS_ARTIFACT)
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    assert shared and set(shared) == set(texts)
    after = fixed.frame
    unchanged = [name for name in texts if after.schema[name] == pl.String and after[name].equals(frame[name])]
    assert "email" in unchanged  # mostly distinct text the type-fixer leaves alone
    for params in standardization_settings():
        alone = run(standardization, after, params)
        seen = counted_columns(monkeypatch)
        given_ = run(standardization, after, params, {DISTINCT_TEXTS_ARTIFACT: shared})
        monkeypatch.undo()
        assert_same(given_, alone)
        targets = [report["field_name"] for report in given_.envelope.data["columns"]]
        assert not set(seen) & set(unchanged)  # never grouped again
        assert set(seen) == {name for name in targets if name not in unchanged}
        assert given_.artifacts.get(DISTINCT_TEXTS_ARTIFACT) == {}  # let go once used
        monkeypatch.setattr(type_fixer, "DISTINCT_FIRST_ROWS", 0)


def test_known_distinct_texts_refused_for_another_column() -> None:
    column = pl.Series("a", ["x", " y", None, "x"], dtype=pl.String)
    values = pl.DataFrame({"raw": ["x", " y", None], "count": [2, 1, 1]})
    shared = {"a": DistinctTexts(column, values)}
    assert known_distinct_texts(pl.DataFrame([column]), "a", shared) is values
    assert known_distinct_texts(pl.DataFrame([column]), "a", None) is None
    assert known_distinct_texts(pl.DataFrame([column.rename("b")]), "b", shared) is None
    for other in (
        pl.Series("a", ["x", "y", None, "x"]),  # a value changed
        pl.Series("a", ["x", " y", "", "x"]),  # a null filled
        pl.Series("a", ["x", " y", None]),  # a row gone
        column.cast(pl.Categorical),
    ):
        assert known_distinct_texts(pl.DataFrame([other]), "a", shared) is None


WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()] + ["\u200b", "\u2060", "\ufeff", "\u200d", "\u180e"]


def every_value(expr: pl.Expr, params: FieldStandardizationParams) -> pl.Expr:
    """The whitespace rules on every value, as before the guard."""
    if params.trim_whitespace:
        expr = expr.str.replace_all(standardization.INVISIBLE, "")
    if params.normalize_internal_spacing:
        expr = expr.str.replace_all(standardization.AROUND_BREAK, "${1}").str.replace_all(standardization.SPACES, " ")
    if params.trim_whitespace:
        expr = expr.str.strip_chars()
    return expr


@settings(max_examples=60, deadline=None)
@given(st.lists(st.none() | st.text(st.sampled_from([*WHITESPACE, "a", "b", "\r", "\n"]), max_size=8), max_size=30))
def test_whitespace_rules_only_where_there_is_whitespace(values: list[str | None]) -> None:
    texts = pl.DataFrame({"t": pl.Series(values, dtype=pl.String)})
    for trim in (True, False):
        for spacing in (True, False):
            params = FieldStandardizationParams(trim_whitespace=trim, normalize_internal_spacing=spacing)
            guarded = texts.select(standardization._normalized(pl.col("t"), params))
            assert guarded.equals(texts.select(every_value(pl.col("t"), params)))


def test_the_reader_looks_for_long_numbers_only_in_columns_that_have_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_at: list[list[str]] = []
    original = readers.beyond_double_columns

    def recorded(frame: Any, columns: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
        looked_at.append(list(columns))
        return original(frame, columns, **kwargs)

    monkeypatch.setattr(readers, "beyond_double_columns", recorded)
    source = tmp_path / "primary.csv"
    source.write_text(
        "short,long,exponent,precise\n1.5,1.123456789012345678,1e3,0.1234567890123\n2.25,2.5,2.5,1.5\n",
        encoding="utf-8",
    )
    frame, report = readers.read_table_with_report(source, source.name)
    assert frame.schema == pl.Schema(
        {"short": pl.Float64, "long": pl.String, "exponent": pl.Float64, "precise": pl.Float64}
    )
    assert frame["long"].to_list() == ["1.123456789012345678", "2.5"]
    assert "long" in str(report.get("numbers_kept_as_text")) and "short" not in str(report.get("numbers_kept_as_text"))
    named = [[frame.columns[int(key[1:])] for key in columns] for columns in looked_at]
    assert named == [["long", "exponent"]]  # "short" and "precise" (15 bytes) are never looked at value by value
