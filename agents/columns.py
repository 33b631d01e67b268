"""Columns as every agent sees them: dtype families, the row-number column, and the checks that a parameter
names columns (and a regular expression) the data can take, with one shape of error for all agents."""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from agents.envelope import ROW_INDEX_COLUMN, data_columns
from agents.errors import InvalidParametersError

SHOWN_COLUMNS = 20  # column names listed in an error message


def is_text(dtype: pl.DataType) -> bool:
    """String, Categorical or Enum: the dtypes whose values are text."""
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def is_numeric(dtype: pl.DataType) -> bool:
    """Integers, floats and decimals (booleans are not numbers here)."""
    return bool(dtype.is_numeric())


def is_date_like(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Date | pl.Datetime)


def with_row_index(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``ROW_INDEX_COLUMN``, the input file's 1-based data row: the chain always provides it;
    an agent run on its own (a test, a notebook) numbers the rows 1..n itself."""
    if ROW_INDEX_COLUMN in frame.columns:
        return frame
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))


def with_row_index_lazy(scan: pl.LazyFrame) -> pl.LazyFrame:
    """:func:`with_row_index` of a scan (a primary too large for memory), as a plan: the column numbered
    while streaming, last as in :func:`with_row_index`."""
    names = scan.collect_schema().names()
    if ROW_INDEX_COLUMN in names:
        return scan
    numbered = scan.with_row_index(ROW_INDEX_COLUMN, offset=1)
    return numbered.select(*names, pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))


def narrow(frame: pl.DataFrame, names: Iterable[str]) -> pl.LazyFrame:
    """The columns ``names`` of ``frame`` as a lazy frame of their own (no copy). Planning a query takes time
    in the width of the frame it starts from, however few columns it reads: a query per column over a frame
    of 10,000 columns costs milliseconds each, over its own columns microseconds."""
    return pl.DataFrame([frame.get_column(name) for name in dict.fromkeys(names)]).lazy()


PARALLEL_ROWS = 100_000  # from this height, per-column queries run together (pl.collect_all)


def collect_each(queries: list[pl.LazyFrame], rows: int) -> list[pl.DataFrame]:
    """Per-column queries over a frame of ``rows`` rows: together when each has real work (``collect_all``
    runs them on every core), one after another when they are small: ``collect_all`` hands each query to a
    thread, which costs ~10 ms per query; 2,000 small queries took 21 s together and 0.9 s in turn."""
    if rows >= PARALLEL_ROWS:
        return pl.collect_all(queries)
    return [query.collect() for query in queries]


def counted_values(frame: pl.DataFrame, name: str, count: str) -> pl.LazyFrame:
    """Column ``name``'s distinct values (null among them when there is one) with their row counts (Int64, column
    ``count``), as a query: what a pass per value reads instead of every row."""
    return narrow(frame, [name]).group_by(name).agg(pl.len().cast(pl.Int64).alias(count))


def require_columns(frame: pl.DataFrame, names: Iterable[str], *, agent_id: str, field: str) -> None:
    """``InvalidParametersError`` naming the parameter (``agent_id.field``) when a name it gives is not a data
    column of the frame. Details: ``{"unknown_columns": [...], "available_columns": [...]}``."""
    available = data_columns(frame)
    known = set(available)
    unknown = list(dict.fromkeys(name for name in names if name not in known))
    if not unknown:
        return
    raise InvalidParametersError(
        f"{agent_id}.{field}: unknown column(s) {_some(unknown)}; the data has {_some(available) or 'no columns'}",
        {"unknown_columns": unknown, "available_columns": available},
        agent_id=agent_id,
        field=field,
    )


def _some(names: list[str]) -> str:
    """The first SHOWN_COLUMNS names, quoted, and how many more: a message stays short whatever a user names."""
    shown = ", ".join(repr(name) for name in names[:SHOWN_COLUMNS])
    return shown + (f" and {len(names) - SHOWN_COLUMNS:,} more" if len(names) > SHOWN_COLUMNS else "")


def check_regex(pattern: str, *, agent_id: str, field: str) -> None:
    """``InvalidParametersError`` when Polars (Rust ``regex`` syntax: no look-around, no back-references)
    cannot compile ``pattern``."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:6] if line.strip())
        raise InvalidParametersError(
            f"{agent_id}.{field}: invalid regular expression {pattern!r} ({detail})",
            agent_id=agent_id,
            field=field,
        ) from None


def normalised_name(column: str) -> str:
    """Lower-case snake form of a column name (``createdAt`` -> ``created_at``, ``E-Mail`` -> ``e_mail``)."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column)
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")
