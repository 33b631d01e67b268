"""Cells written back as the input wrote them, where their column's layout would write them otherwise.

A column typed from text (a reader's numbers and booleans, :mod:`agents.layouts`) is written back in one layout:
``12.50`` in a column of two decimals, ``TRUE``/``FALSE``. When some of its values were written another way
(``1.10`` beside ``1.2``, ``true`` beside ``TRUE``, ``2E3``, ``.5``), no single layout gives them all back: the read
report counts them (``values_written_otherwise``), and :class:`AsRead` keeps their texts by the input's row
(``ROW_INDEX_COLUMN``), so that every data file a run writes (cleaned, quarantined, transformed rows) puts such a cell
back as the input had it, as long as the cell still holds the value that text reads as. A cell an agent changed is
written in the column's layout: a text is never written for a value it does not read as.

Only the cells the layout writes otherwise are kept (with the value each read as), so a column whose values all come
back costs nothing, and one with a few odd values costs a few rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from agents.envelope import ROW_INDEX_COLUMN
from agents.layouts import BooleanLayout, Layout, NumberLayout, text_of

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
AS_READ_SUFFIX = "as-read.parquet"  # the name's end of a file of cells as read (a streamed run's, in its work dir)
AS_READ_KEY = "agensium.as_read"
"""In a Parquet file's metadata (a search's kept dataset): ``{column: its hidden column}``, the hidden column holding
the column's cells as read where its layout writes them otherwise (null elsewhere), after the data's columns."""


@dataclass(frozen=True)
class AsRead:
    """The cells of the input that their column's layout writes otherwise: ``cells`` holds ``ROW_INDEX_COLUMN`` (the
    input's 1-based data row, unique) and, for the column of key ``k`` (``columns``: name -> k), ``t{k}`` (the text
    as read) and ``v{k}`` (the value it read as); both null in a row where that column's cell comes back as it was.
    ``cells`` is a frame, or the scan of a file of them (an input too large for memory: :mod:`agents.spill`)."""

    cells: pl.DataFrame | pl.LazyFrame
    columns: Mapping[str, int]

    def __bool__(self) -> bool:
        return bool(self.columns)

    def renamed(self, names: Mapping[str, str]) -> AsRead:
        """The same cells with columns renamed (``names``: old -> new; a name left out is dropped)."""
        return AsRead(self.cells, {names[name]: key for name, key in self.columns.items() if name in names})

    def after_renames(self, recipe: Mapping[str, Any]) -> AsRead:
        """The same cells, their columns called as a transform recipe's operations (in order) call them: renamed,
        and gone when dropped, left out by a projection or replaced by a column renamed to their name."""
        called = {name: name for name in self.columns}
        for operation in recipe.get("operations", []):
            kind = operation.get("op")
            if kind == "rename":
                mapping = operation.get("mapping", {})
                targets = set(mapping.values())
                called = {
                    name: mapping.get(now, now) for name, now in called.items() if now in mapping or now not in targets
                }
            elif kind == "drop_columns":
                called = {name: now for name, now in called.items() if now not in operation.get("columns", [])}
            elif kind == "keep_columns":
                called = {name: now for name, now in called.items() if now in operation.get("columns", [])}
        return self.renamed(called)

    def kept_in(self, path: Path) -> AsRead:
        """The same cells, those of a scan written to the Parquet file ``path`` (on the streaming engine) and scanned
        from it: what an agent's work directory held outlives it."""
        if isinstance(self.cells, pl.DataFrame):
            return self
        self.cells.sink_parquet(path, engine="streaming")
        return AsRead(pl.scan_parquet(path), self.columns)

    def merged(self, other: AsRead) -> AsRead:
        """These cells and ``other``'s (of other columns): one set, joined on the row index."""
        if not other:
            return self
        if not self:
            return other
        offset = max(self.columns.values()) + 1
        moved = other.cells.lazy().select(
            ROW_INDEX_COLUMN,
            *(pl.col(f"{kind}{key}").alias(f"{kind}{key + offset}") for key in other.columns.values() for kind in "tv"),
        )
        cells = self.cells.lazy().join(moved, on=ROW_INDEX_COLUMN, how="full", coalesce=True)
        columns = {**self.columns, **{name: key + offset for name, key in other.columns.items()}}
        return AsRead(cells.collect() if isinstance(self.cells, pl.DataFrame) else cells, columns)

    def written(self, frame: Frame, layouts: Mapping[str, Layout], only: Collection[str] | None = None) -> Frame:
        """``frame`` (holding ``ROW_INDEX_COLUMN``) with each column these cells cover (by name, still of the dtype it
        read as; among ``only`` when given) as the text a CSV output holds: the input's own text in a row whose cell
        still holds the value that text reads as, else the column's layout (:func:`agents.layouts.text_of`). Other
        columns as they are. A plan stays a plan (a left join with the cells: it streams)."""
        schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
        if not self or ROW_INDEX_COLUMN not in schema:
            return frame
        if isinstance(self.cells, pl.DataFrame) and self.cells.height == 0:
            return frame
        cell_schema = self.cells.collect_schema()
        keys = {
            name: key
            for name, key in self.columns.items()
            if name in schema and schema[name] == cell_schema[f"v{key}"] and (only is None or name in only)
        }
        if not keys:
            return frame
        # The cells under names no column of the frame has (a user's column may be called "t0").
        renamed = {
            f"{kind}{key}": _unused(f"__as_read_{kind}{key}__", schema) for key in keys.values() for kind in "tv"
        }
        cells = self.cells.lazy().select(ROW_INDEX_COLUMN, *(pl.col(old).alias(new) for old, new in renamed.items()))
        joined = frame.lazy().join(cells, on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
        # Columns are addressed by position: a name such as "*" or "^a$" means something else to pl.col.
        exprs = []
        for position, (name, dtype) in enumerate(schema.items()):
            column = pl.nth(position)
            if name not in keys:
                exprs.append(column)
                continue
            key = keys[name]
            written = text_of(column, dtype, layouts.get(name))
            value = pl.col(renamed[f"v{key}"])
            same = column == value
            if dtype.is_float():  # -0.0 equals 0.0, but "-0" does not read as 0.0
                same = same & ((column != 0) | ((1.0 / column) == (1.0 / value)))
            exprs.append(pl.when(same).then(pl.col(renamed[f"t{key}"])).otherwise(written).alias(name))
        restored = joined.select(exprs)
        return restored.collect() if isinstance(frame, pl.DataFrame) else restored


def hidden_name(key: int, taken: Collection[str]) -> str:
    """The name of the hidden column of the ``key``-th column's cells as read (:data:`AS_READ_KEY`): no column's."""
    return _unused(f"__as_read_{key}__", taken)


def from_hidden(whole: Frame, hidden: Mapping[str, str]) -> AsRead:
    """The :class:`AsRead` of a frame or scan (rows in the input's order) holding ``hidden`` columns
    (:data:`AS_READ_KEY`: column -> its hidden column); a scan's stays a plan."""
    names = whole.collect_schema().names() if isinstance(whole, pl.LazyFrame) else whole.columns
    # by position (a name may be "*" or "^a$" to pl.col), after the row index numbering the rows
    position = {name: index + 1 for index, name in enumerate(names)}
    columns = {name: key for key, name in enumerate(hidden)}
    texts = [pl.nth(position[hidden[name]]).alias(f"t{key}") for name, key in columns.items()]
    values = [
        pl.when(pl.nth(position[hidden[name]]).is_not_null()).then(pl.nth(position[name])).alias(f"v{key}")
        for name, key in columns.items()
    ]
    cells = (
        whole.lazy()
        .with_row_index(ROW_INDEX_COLUMN, offset=1)
        .select(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), *texts, *values)
        .filter(pl.any_horizontal(pl.col(f"t{key}").is_not_null() for key in columns.values()))
    )
    return AsRead(cells.collect() if isinstance(whole, pl.DataFrame) else cells, columns)


def otherwise_text(text: pl.Expr, value: pl.Expr, dtype: pl.DataType, layout: Layout) -> pl.Expr:
    """Per cell: its ``text`` where the ``layout`` writes its typed ``value`` (of ``dtype``) otherwise, else null (a
    missing value stays missing): the cells :class:`AsRead` keeps."""
    written = text_of(value, dtype, layout)
    return pl.when((written != text).fill_null(True) & value.is_not_null()).then(text)


def _unused(name: str, taken: Collection[str]) -> str:
    """``name``, or ``name`` with underscores before it, that is none of ``taken``."""
    while name in taken:
        name = f"_{name}"
    return name


NOTHING = AsRead(pl.DataFrame(schema={ROW_INDEX_COLUMN: pl.Int64}), {})


def cells_as_read(
    texts: pl.DataFrame | pl.LazyFrame,
    typed: pl.DataFrame | pl.LazyFrame,
    layouts: Mapping[str, Layout],
    *,
    sink: Path | None = None,
    lazy: bool = False,
) -> AsRead:
    """The :class:`AsRead` of the columns of ``layouts`` that write some value otherwise (numbers and booleans with
    ``written_otherwise``): ``texts`` holds each as read (null where no text is to be given back) and ``typed`` as
    typed, under the same names, row for row; the rows are the input's data rows of ``texts``' ``ROW_INDEX_COLUMN``,
    or without one, row ``i`` is row ``i + 1``. One query over those columns; with ``sink`` (plans of an input too
    large for memory) its cells go to that Parquet file, on the streaming engine; ``lazy``: they stay a plan (read
    once, by the one writer of a search's matches)."""
    text_names = texts.collect_schema().names() if isinstance(texts, pl.LazyFrame) else texts.columns
    typed_names = typed.collect_schema().names() if isinstance(typed, pl.LazyFrame) else typed.columns
    columns = covered(layouts, [name for name in text_names if name in typed_names])
    if not columns:
        return NOTHING
    numbered = [pl.nth(text_names.index(ROW_INDEX_COLUMN))] if ROW_INDEX_COLUMN in text_names else []
    # Columns are addressed by position: a name such as "*" or "^a$" means something else to pl.col.
    pairs = pl.concat(
        [
            texts.lazy().select(
                *numbered, *(pl.nth(text_names.index(name)).alias(f"t{key}") for name, key in columns.items())
            ),
            typed.lazy().select(pl.nth(typed_names.index(name)).alias(f"v{key}") for name, key in columns.items()),
        ],
        how="horizontal",
    )
    query = cells_query(pairs, columns, layouts)
    if lazy:
        return AsRead(query, columns)
    if sink is not None:
        return sunk(query, columns, sink)
    cells = query.collect()
    return AsRead(cells, columns) if cells.height else NOTHING


def sunk(query: pl.LazyFrame, columns: Mapping[str, int], path: Path) -> AsRead:
    """The cells of ``query`` (:func:`cells_query`) written to the Parquet file ``path`` on the streaming engine, as
    an :class:`AsRead` that scans it; NOTHING (and no file) when there is no such cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    query.sink_parquet(path, engine="streaming")
    if pl.scan_parquet(path).select(pl.len()).collect().item() == 0:
        path.unlink(missing_ok=True)
        return NOTHING
    return AsRead(pl.scan_parquet(path), columns)


def covered(layouts: Mapping[str, Layout], names: Iterable[str]) -> dict[str, int]:
    """The columns among ``names`` whose layout writes some value otherwise, each with its key (``t{k}``/``v{k}``)."""
    found = [
        name
        for name in names
        if isinstance(layout := layouts.get(name), NumberLayout | BooleanLayout) and layout.written_otherwise
    ]
    return {name: key for key, name in enumerate(found)}


def cells_query(pairs: pl.LazyFrame, columns: Mapping[str, int], layouts: Mapping[str, Layout]) -> pl.LazyFrame:
    """:class:`AsRead`'s ``cells`` as a query over ``pairs``, whose rows are the input's data rows of its
    ``ROW_INDEX_COLUMN`` (without one, row ``i`` is row ``i + 1``) and which holds, for each of ``columns`` (name ->
    key), its text as read (``t{k}``) and its typed value (``v{k}``):
    the rows where some column's layout writes the value otherwise than its text, that column's text and value kept
    there (a missing value stays missing). Elementwise, then a filter: it streams."""
    schema = pairs.collect_schema()
    kept = []
    for name, key in columns.items():
        text, value = pl.col(f"t{key}"), pl.col(f"v{key}")
        kept_text = otherwise_text(text, value, schema[f"v{key}"], layouts[name])
        kept += [kept_text.alias(f"t{key}"), pl.when(kept_text.is_not_null()).then(value).alias(f"v{key}")]
    numbered = pairs if ROW_INDEX_COLUMN in schema else pairs.with_row_index(ROW_INDEX_COLUMN, offset=1)
    return numbered.select(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), *kept).filter(
        pl.any_horizontal(pl.col(f"t{key}").is_not_null() for key in columns.values())
    )


def as_written(frame: Frame, columns: Collection[str], layouts: Mapping[str, Layout], as_read: AsRead) -> Frame:
    """``frame`` with ``columns`` as the CSV writers write them (text): its cells as read where ``as_read`` has them,
    else in the columns' ``layouts`` (:func:`agents.layouts.text_of`). What a cell's change is told from when its
    column's type changed (the type-fixer's): ``1e3`` typed 1000.0 and written ``1e3`` is no change."""
    restored = as_read.written(frame, layouts, only=columns)
    schema = restored.collect_schema() if isinstance(restored, pl.LazyFrame) else restored.schema
    texts = [text_of(pl.col(c), schema[c], layouts.get(c)).alias(c) for c in columns if schema[c] != pl.String]
    return restored.with_columns(texts) if texts else restored
