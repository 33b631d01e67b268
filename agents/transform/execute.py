"""Run resolved transform operations (agents.transform.resolve) as one lazy Polars plan, with each step's figures.

Every operation becomes Polars expressions and plan nodes; nothing is evaluated from text (a ``derive`` expression is
a tree of whitelisted nodes, agents.transform.expressions). Each step's output is a cached node of the plan, and one
``pl.collect_all`` runs the final frame together with a small statistics query per step (rows, null counts, cells
changed): the caches make every step run once, whatever number of queries read it. Without them Polars runs each
query's whole prefix again (10 steps on 200,000 rows: 1.5 s instead of 0.09 s).

Data too large for memory comes as a lazy scan with a spill directory, and runs step by step with the streaming
engine: where the in-memory plan has a cached node, the step's output is written to a Parquet spill (LZ4: a third
smaller than uncompressed and no slower to write here) and the plan goes on from a scan of it; the step's statistics
and row-level issues are collected at once from that scan (a sort's spill carries each row's former position, so that
the rows moved are counted from one scan), and the earlier spill is deleted. A step that decides on the data
(``number``'s Int64 or Float64, a mean, median or most frequent value) collects only that aggregate. Column
operations write nothing. The result is a lazy plan over the last spill, with the same records, issues and layouts as
the in-memory run. Peak memory measured on 10 columns (``/usr/bin/time -v``, 2 cores): a filter, cell and cast recipe
on 3M/10M/20M rows took 0.54/0.88/0.92 GB streamed (1.1/3.4 GB in memory for 3M/10M). Polars' streaming ``sort``
holds the data (about 2.6 times the frame) and its ``unique`` every distinct key, so data larger than
``external.BUCKET_BYTES`` is sorted and deduplicated in buckets of that size (agents.external: range
partitioning for ``sort``, hash partitioning of the keys for ``deduplicate``, each bucket then done in memory):
bench_tools' "generated" recipe (a ``deduplicate`` and a ``sort``) on 10M rows x 15 columns peaked at 1.3 GB instead
of 2.7 GB (about 10 to 25 % slower); on 36.5M rows (a 5 GB CSV) at 1.35 GB, where it passed 4 GiB before.

What each step reports: ``rows_before``, ``rows_after``, ``rows_affected`` (rows removed by ``filter`` and
``deduplicate``; cells changed by the cell operations; the values written by ``derive`` into a new column; 0 for
``sort``, which reports ``rows_moved``, and for the column operations), columns added, removed, renamed and retyped,
the null counts that changed, and one sentence ("Dropped 150 rows where email was null").

Semantics (agents/params/transformer.py):
- conditions follow SQL: an empty cell satisfies only ``is_null``; any other comparison on it is undecided and does
  not hold (``remove`` keeps such rows, ``keep`` drops them); ``and``/``or``/``not`` are three-valued;
- literals arrive typed by resolution (ISO text for dates) and are converted by the column's dtype here; a
  date-only value compared with a Datetime column: ``<=`` and between's high end take that whole day in, ``>``
  starts after it (the next midnight on the column's wall clock, as search's ``time_ranges``), and the sentence
  says so; ``<``, ``>=``, ``==`` and between's low end mean its midnight;
- ``cast``: text is read by the product's rules (agents.values: "$1,234.50", "(12)", "yes"); an empty text or a
  missing-value token (``NA``, ``null``...) becomes empty and is not an invalid value; ``number`` gives Int64 when
  every value is a whole number, else Float64 (decided on the data, so the plan is collected up to that step
  first), and keeps a Decimal column as it is; ``integer`` converts a decimal's whole values only, as a float's;
  a value that does not convert fails the task (``on_invalid="fail"``) or is emptied and counted;
- Decimal columns (Parquet DECIMAL) are exact: a literal is read as a decimal, never through a float, and one with
  more decimals than the column's scale is compared exactly (agents.values.decimal_comparison: ``== 2.505`` matches
  no cell of scale 2, ``> 2.505`` is ``>= 2.51``) but cannot be written into it (resolution refuses it); ``derive``'s
  ``+ - neg abs`` of decimals (and whole numbers) are exact Decimal(38, s), its other operations read them as Float64;
- ``fill_nulls`` mean/median of the finite values, as they are: an integer column filled with a fraction becomes
  Float64 (as pandas' ``fillna`` of that statistic makes it), and the sentence says so; the step's
  ``rows_affected`` and ``values_filled`` are the cells filled, its ``cells_changed`` also the whole numbers now
  written ``1.0``. A whole-number statistic fills an integer column as a whole number, and a column without an empty
  cell is left as it is: both keep their dtype (decided on the data: the statistic and the empty cells are collected
  first); mode the most frequent value, ties to the smallest; previous/next in the current row order;
- ``deduplicate`` and ``sort`` are stable; rows keep their order otherwise; ``ROW_INDEX_COLUMN`` travels with them;
- ``derive``: whole-number ``+ - *``, negation and ``abs`` are exact (Polars would wrap around: the largest Int64
  times 2 gave -2); a result that Int64 cannot hold fails the task, naming the column. ``/`` gives Float64. A
  division or ``%`` by zero (``x / 0``, ``x % 0``, ``0 / 0``) gives an empty value, not an infinity or NaN: the
  step counts the rows whose value it left empty, where a divisor was zero and its dividend was not empty
  (``divisions_by_zero``, in its sentence and in an alert of the transformer; ``coalesce(a / b, 0)`` fills them).
  A decimal ``+ - * /`` whose result is beyond Float64 (``1e308 * 10``) gives an empty value likewise, not an
  infinity no filter could name, counted where it emptied a value (``overflows_to_infinity``, sentence and alert);
  an infinity already in the data goes through as it is;
- Categorical and Enum columns are text (agents.transform.resolve): each operation that reads them as text casts
  them to String first (comparisons, ``contains``, ordering, casts, ``trim``/``case``/``replace``/``fill_nulls``,
  functions), so the results are those of the same data read as text; a column written so becomes String. A sort
  keeps Polars' order of the dtype (a Categorical by its text, an Enum by its category list).

Cells changed are counted as in the clean chain: a kept cell whose value differs, compared as text when the
operation changed the column's dtype (``"12"`` read as 12 is not a change; ``"007"`` read as 7 is).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import polars as pl
from pydantic import TypeAdapter

from agents.columns import is_text
from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, Progress
from agents.errors import InvalidParametersError
from agents.external import POSITION, duplicates_external, sort_external
from agents.formatting import format_number, plain_value
from agents.layouts import Layout, text_of
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.params.transformer import (
    AllOf,
    AnyOf,
    CastColumns,
    ChangeCase,
    Comparison,
    Condition,
    Deduplicate,
    DeriveColumn,
    DropColumns,
    FillNulls,
    FilterRows,
    KeepColumns,
    NotOf,
    Operation,
    RenameColumns,
    ReorderColumns,
    ReplaceValues,
    SortRows,
    TrimText,
)
from agents.transform.expressions import Node, parse_expression
from agents.transform.resolve import exact_decimal_scale
from agents.values import (
    DATE_FORMATS,
    OFFSET_FORMATS,
    TEMPORAL_FORMATS,
    decimal_comparison,
    decimal_fits,
    exact_decimal,
    is_missing,
    is_missing_token,
    parse_boolean,
    parse_integer,
    parse_number,
    plan_dates,
)

AGENT_ID = "transformer"
OPERATION = TypeAdapter(Operation)
EXAMPLES = 5  # invalid values quoted when a cast fails
INT64_LIMIT = 2.0**63
ISO_DATE = "%Y-%m-%d"
ISO_DATETIMES = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")
CASE_WORDS = {"lower": "Lowercased", "upper": "Uppercased", "title": "Title-cased"}
FILL_WORDS = {"previous": "the previous value", "next": "the next value"}
SPILL_COMPRESSION: Final = (
    "lz4"  # a streamed step's spill: written once, read two or three times, deleted after the run
)


@dataclass
class Execution:
    """The new data (``ROW_INDEX_COLUMN`` kept, rows in their new order): ``frame`` in memory, or streamed ``scan``,
    a lazy plan over the spills; its ``rows`` and ``schema``; one record per step, the date layouts of the columns
    still holding the input's dates (renames followed), and the row-level issues (cast values emptied)."""

    frame: pl.DataFrame | None
    scan: pl.LazyFrame | None
    rows: int
    schema: dict[str, pl.DataType]
    steps: list[dict[str, Any]]
    layouts: dict[str, Layout]
    row_issues: pl.DataFrame


@dataclass
class _Counts:
    """What is known between steps once the plan has run: rows and each column's null count."""

    rows: int
    nulls: dict[str, int]


Finish = Callable[[dict[str, Any], _Counts], tuple[dict[str, Any], _Counts]]
"""Turns a step's statistics row and the counts before it into its record (without the common keys) and the counts
after it."""
Compiled = tuple[Finish, int | None]
"""A compiled step: how to describe it, and the position of its statistics query (None: it needs none)."""
Step = Callable[[pl.LazyFrame], pl.LazyFrame]
"""What an operation does to the frame, as plan nodes."""
Planned = tuple[pl.LazyFrame, dict[str, pl.DataType]]
"""A node of the plan and its schema."""
Describe = Callable[[dict[str, dict[str, Any]], int], tuple[str, dict[str, Any]]]
"""A cell operation's sentence and details from its figures per column and the number of rows."""


@dataclass
class _Step:
    index: int
    operation: dict[str, Any]
    origin: str
    finish: Finish
    stats: int | None = None  # position of its statistics query
    schema_before: dict[str, pl.DataType] = field(default_factory=dict)
    schema_after: dict[str, pl.DataType] = field(default_factory=dict)


class _Plan:
    """The plan being built: the current lazy frame and schema, the queries to collect with it, the steps.

    In memory (no ``spill_dir``) a step's output is a cached node and the queries wait for ``materialize``. Streamed,
    a step's output is written to a Parquet spill in ``spill_dir`` as soon as it is planned, the plan goes on from a
    scan of it, and the step's queries are collected at once from that scan, with the streaming engine."""

    def __init__(
        self,
        lazy: pl.LazyFrame,
        schema: dict[str, pl.DataType],
        counts: _Counts,
        layouts: dict[str, Layout],
        spill_dir: Path | None = None,
    ) -> None:
        self.lazy = lazy
        self.schema = schema
        self.layouts = layouts
        self.spill_dir = spill_dir
        self.spills: list[Path] = []
        self.queries: list[pl.LazyFrame] = []
        self.results: list[pl.DataFrame] = []  # the collected queries (earlier segments), same positions
        self.issue_queries: list[pl.LazyFrame] = []
        self.issues: list[pl.DataFrame] = []
        self.steps: list[_Step] = []
        self.counts = counts

    @classmethod
    def of_frame(cls, frame: pl.DataFrame, layouts: dict[str, Layout]) -> _Plan:
        return cls(
            frame.lazy(), dict(frame.schema), _Counts(frame.height, frame.null_count().row(0, named=True)), layouts
        )

    @classmethod
    def of_scan(cls, scan: pl.LazyFrame, layouts: dict[str, Layout], spill_dir: Path) -> _Plan:
        """A streamed plan over ``scan``: its rows and null counts in one streaming pass."""
        schema = dict(scan.collect_schema())
        counted = scan.select(
            pl.len(), *(pl.col(name).null_count().alias(f"nulls{i}") for i, name in enumerate(schema))
        )
        rows, *nulls = counted.collect(engine="streaming").row(0)
        spill_dir.mkdir(parents=True, exist_ok=True)
        counts = _Counts(int(rows), {name: int(count) for name, count in zip(schema, nulls, strict=True)})
        return cls(scan, schema, counts, layouts, spill_dir)

    @property
    def streamed(self) -> bool:
        return self.spill_dir is not None

    @property
    def data_columns(self) -> list[str]:
        return [name for name in self.schema if name != ROW_INDEX_COLUMN]

    def query(self, lazy: pl.LazyFrame) -> int:
        if self.streamed:
            self.results.append(lazy.collect(engine="streaming"))
            return len(self.results) - 1
        self.queries.append(lazy)
        return len(self.results) + len(self.queries) - 1

    def issue_query(self, lazy: pl.LazyFrame) -> None:
        if self.streamed:
            self.issues.append(lazy.collect(engine="streaming"))
        else:
            self.issue_queries.append(lazy)

    def apply(self, step: Step, origin: str, start: Planned | None = None, *, spill: bool = True) -> Planned:
        """``step`` applied to ``start`` (default: the current frame and its schema) as a cached node (several
        queries read it), with its schema. The schema comes from the step applied to an empty frame of the start's
        schema: asking the plan would resolve every earlier step again (200 steps took seconds). A step that does not
        fit the columns' types is refused here, before anything runs. Streamed, the output is a scan of its spill,
        or (``spill`` false: a step that only selects or renames columns) the step's plan itself."""
        lazy, schema = start if start is not None else (self.lazy, self.schema)
        after = self.schema_after(step, origin, schema)
        if not self.streamed:
            return step(lazy).cache(), after
        return (self.sink(step(lazy)) if spill else step(lazy)), after

    def schema_after(self, step: Step, origin: str, schema: dict[str, pl.DataType] | None = None) -> dict[str, Any]:
        """The schema ``step`` gives (default: on the current schema), from an empty frame; a step that does not fit
        the columns' types is refused."""
        try:
            return dict(step(pl.LazyFrame(schema=schema if schema is not None else self.schema)).collect_schema())
        except pl.exceptions.PolarsError as error:
            raise _invalid(origin, f"{origin}: cannot be applied ({_first_line(error)})", "type_mismatch") from None

    def advance(self, step: Step, origin: str, start: Planned | None = None, *, spill: bool = True) -> None:
        """The step's output becomes the current frame."""
        self.lazy, self.schema = self.apply(step, origin, start, spill=spill)

    def sink(self, lazy: pl.LazyFrame) -> pl.LazyFrame:
        """Streamed: ``lazy`` written to a new spill with the streaming engine, and a scan of it. The earlier spills
        are deleted: every query on them has been collected, and the plan now reads only the new one (the disk holds
        two copies of the data at most, whatever the number of steps)."""
        path = self.next_spill()
        lazy.sink_parquet(path, compression=SPILL_COMPRESSION, engine="streaming")
        return self.adopt(path, pl.scan_parquet(path))

    def next_spill(self, suffix: str = ".parquet") -> Path:
        """Where the next spill goes (``suffix`` empty: a folder of files)."""
        assert self.spill_dir is not None
        return self.spill_dir / f"spill{len(self.spills) + 1}{suffix}"

    def adopt(self, path: Path, scan: pl.LazyFrame) -> pl.LazyFrame:
        """``scan``, of the new spill ``path`` (a file or a folder), once the earlier spills are deleted."""
        for earlier in self.spills:
            if earlier.is_dir():
                shutil.rmtree(earlier, ignore_errors=True)
            else:
                earlier.unlink(missing_ok=True)
        self.spills.append(path)
        return scan

    def decide(self, query: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
        """A small aggregate of the current frame that the next step depends on. In memory, the plan so far runs
        first (``materialize``) and the aggregate is computed on its result."""
        if self.streamed:
            return query(self.lazy).collect(engine="streaming")
        return query(self.materialize().lazy()).collect()

    def materialize(self) -> pl.DataFrame:
        """Run what is planned so far (the statistics, the row-level issues and the current frame) in one
        ``collect_all``, and go on from the resulting frame."""
        *collected, frame = pl.collect_all([*self.queries, *self.issue_queries, self.lazy])
        self.results += collected[: len(self.queries)]
        self.issues += collected[len(self.queries) :]
        self.queries, self.issue_queries = [], []
        self.lazy = frame.lazy()
        return frame


def execute(
    frame: pl.DataFrame | pl.LazyFrame,
    operations: Sequence[dict[str, Any]],
    *,
    origins: Sequence[str] | None = None,
    layouts: dict[str, Layout] | None = None,
    progress: Progress | None = None,
    spill_dir: Path | None = None,
) -> Execution:
    """Apply resolved ``operations`` (JSON dicts of the operations model: exact column names, literals typed by their
    columns) to ``frame`` (with ``ROW_INDEX_COLUMN``); ``origins``: per operation, where it came from (an
    ``operations[i]``/``commands[i]`` field, for errors); ``layouts``: the frame's dates read from text.

    ``frame`` may be a lazy scan (of data too large for memory): the steps then run one by one with the streaming
    engine, each writing its output to a Parquet spill in ``spill_dir`` (which the caller deletes once it has read
    ``Execution.scan``), and the same records, issues and layouts come back."""
    report = progress or _silent
    names = frame.collect_schema().names()
    chosen = {name: layout for name, layout in (layouts or {}).items() if name in names}
    if isinstance(frame, pl.DataFrame):
        plan = _Plan.of_frame(frame, chosen)
    elif spill_dir is None:
        raise ValueError("a lazy frame is executed with a spill directory")
    else:
        plan = _Plan.of_scan(frame, chosen, spill_dir)
    for index, raw in enumerate(operations):
        origin = origins[index] if origins is not None else f"operations[{index}]"
        operation = OPERATION.validate_python(raw)
        verb = "Running" if plan.streamed else "Planning"
        report(0.6 * index / max(1, len(operations)), f"{verb} step {index + 1}: {raw['op']}")
        schema_before = dict(plan.schema)
        finish, stats = _COMPILERS[type(operation)](operation, plan, index, origin)
        plan.steps.append(_Step(index, dict(raw), origin, finish, stats, schema_before, dict(plan.schema)))
    report(0.6, "Running the plan")
    result = None if plan.streamed else plan.materialize()
    report(0.9, "Describing the steps")
    records = _records(plan)
    _check_invalid(records)
    row_issues = pl.concat(plan.issues) if plan.issues else pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    rows = records[-1]["rows_after"] if records else plan.counts.rows
    scan = plan.lazy if plan.streamed else None
    return Execution(result, scan, rows, dict(plan.schema), records, plan.layouts, row_issues)


def _silent(fraction: float, message: str) -> None:
    """No one to tell (a test calling ``execute`` directly)."""


def _records(plan: _Plan) -> list[dict[str, Any]]:
    counts = plan.counts
    records = []
    for step in plan.steps:
        stats = plan.results[step.stats].row(0, named=True) if step.stats is not None else {}
        rows_before = counts.rows
        nulls_before = counts.nulls
        details, counts = step.finish(stats, counts)
        renamed: dict[str, str] = details.pop("renamed", {})
        source = {new: old for old, new in renamed.items()}
        before, after = step.schema_before, step.schema_after
        retyped = {
            name: {"before": str(before[name]), "after": str(after[name])}
            for name in after
            if name in before and before[name] != after[name]
        }
        record = {
            "step": step.index + 1,
            "op": step.operation["op"],
            "origin": step.origin,
            "operation": step.operation,
            "rows_before": rows_before,
            "rows_after": counts.rows,
            "rows_affected": details.pop("rows_affected"),
            "rows_removed": rows_before - counts.rows,
            "cells_changed": details.pop("cells_changed", 0),
            "columns_added": [name for name in after if name not in before and name not in source],
            "columns_removed": [name for name in before if name not in after and name not in renamed],
            "columns_renamed": renamed,
            "columns_retyped": retyped,
            "nulls_changed": {
                name: {"before": nulls_before.get(source.get(name, name)), "after": count}
                for name, count in counts.nulls.items()
                if name != ROW_INDEX_COLUMN and nulls_before.get(source.get(name, name)) != count
            },
            "sentence": details.pop("sentence"),
            "details": details,
        }
        records.append(record)
    return records


def _check_invalid(records: list[dict[str, Any]]) -> None:
    """The first cast with ``on_invalid="fail"`` that met a value it could not convert, or derive whose whole
    numbers did not fit Int64, fails the task."""
    for record in records:
        if "overflow" in record["details"]:
            _overflow(record, record["details"]["overflow"])
        failures = record["details"].get("failures")
        if not failures:
            continue
        column, found = next(iter(failures.items()))
        examples = ", ".join(json.dumps(value, ensure_ascii=False) for value in found["examples"])
        operation = record["operation"]
        target = operation["to"]
        count = f"{found['count']:,} value{'s' if found['count'] != 1 else ''} of '{column}'"
        message = (
            f'{count} cannot be converted to {target} (for example {examples}); convert with on_invalid "null" to '
            "empty them, or fix them first"
        )
        suggestions: list[str] = []
        if target in {"date", "datetime"}:
            message, suggestions = _date_failure(operation, column, count, found["examples"], record["origin"])
        raise InvalidParametersError(
            message,
            {
                "agent_id": AGENT_ID,
                "field": record["origin"],
                "command": None,
                "position": None,
                "reason": "invalid_values",
                "suggestions": suggestions,
                "column": column,
                "invalid_count": found["count"],
                "examples": found["examples"],
            },
        )


_ISO_LAYOUTS = {
    "date": "the layout YYYY-MM-DD",
    "datetime": "ISO 8601 (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS], with or without a UTC offset)",
}


def _date_failure(
    operation: dict[str, Any], column: str, count: str, examples: list[str], origin: str
) -> tuple[str, list[str]]:
    """The message of a cast to date or datetime that met values it could not read, and the formats to suggest: the
    layout the cast read (ISO 8601, or the format given), and the layouts (agents.values.TEMPORAL_FORMATS) that read
    the most of the examples, as the format to give, written as the step was (a command or a JSON operation)."""
    target, given = operation["to"], operation.get("format")
    read_as = f'the layout "{given}"' if given else _ISO_LAYOUTS[target]
    kind = "dates" if target == "date" else "date-times"
    shown = ", ".join(json.dumps(value, ensure_ascii=False) for value in examples)
    message = f"{count} do not read as {kind} in {read_as} (for example {shown})"
    candidates = DATE_FORMATS if target == "date" else TEMPORAL_FORMATS
    values = pl.DataFrame(
        {"value": examples, "count": [1] * len(examples)}, schema={"value": pl.String, "count": pl.Int64}
    )
    plan = plan_dates(values.with_columns(pl.col("value").str.strip_chars()), column, candidates)
    most = max((read for _, read in plan.formats), default=0)
    formats = [fmt.pattern for fmt, read in plan.formats if read == most and fmt.pattern != given][:2]
    example = formats[0] if formats else "%d/%m/%Y"
    if origin.startswith("operations["):
        how = f'"format": "{example}"'
    else:
        name = column if re.fullmatch(r"\w+", column) else "`" + column.replace("`", "``") + "`"
        how = f'cast {name} to {target} format "{example}"'
    if formats:
        layouts = " or ".join(f'"{pattern}"' for pattern in formats)
        message += f"; they read in the layout {layouts}: give it as the format ({how})"
    else:
        message += f"; give their layout as a strftime format ({how})"
    message += ', or convert with on_invalid "null" to empty the values that do not read'
    return message, formats


def _overflow(record: dict[str, Any], overflow: dict[str, Any]) -> None:
    """A derived column whose exact whole numbers Int64 cannot hold: refused rather than wrapped around."""
    count, column = overflow["count"], overflow["column"]
    raise InvalidParametersError(
        f"{count:,} value{'s' if count != 1 else ''} of '{column}' ({overflow['expression']}) "
        f"{'do' if count != 1 else 'does'} not fit a whole number (beyond \u00b1{INT64_MAX:,}); "
        "narrow the values first, or write a decimal literal (2.0 instead of 2) to compute it as a double, which keeps "
        "about 15 significant digits (distinct ids of 19 or 20 digits would come out equal)",
        {
            "agent_id": AGENT_ID,
            "field": record["origin"],
            "command": None,
            "position": None,
            "reason": "integer_overflow",
            "suggestions": [],
            "column": column,
            "invalid_count": count,
        },
    )


# ---------------------------------------------------------------------------------------------------------
# errors and literals


def _invalid(origin: str, message: str, reason: str) -> InvalidParametersError:
    return InvalidParametersError(
        message,
        {"agent_id": AGENT_ID, "field": origin, "command": None, "position": None, "reason": reason, "suggestions": []},
    )


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _require(plan: _Plan, names: Sequence[str], origin: str) -> None:
    for name in names:
        if name == ROW_INDEX_COLUMN or name not in plan.schema:
            raise _invalid(origin, f"{origin}: no column '{name}'", "unknown_column")


def is_category(dtype: pl.DataType) -> bool:
    """A Categorical or Enum dtype: text values with a category list."""
    return isinstance(dtype, pl.Categorical | pl.Enum)


def as_text_column(name: str, dtype: pl.DataType) -> tuple[pl.Expr, pl.DataType]:
    """The column and its dtype as a text operation reads it: a categorical one as String, any other as it is."""
    if is_category(dtype):
        return pl.col(name).cast(pl.String), pl.String()
    return pl.col(name), dtype


def literal(value: Any, dtype: pl.DataType, origin: str) -> pl.Expr:
    """``value`` (as resolution typed it: numbers, booleans, ISO text for dates) as a literal of ``dtype``."""
    return pl.lit(_python_value(value, dtype, origin), dtype=dtype)


def _python_value(value: Any, dtype: pl.DataType, origin: str) -> Any:
    def mismatch() -> InvalidParametersError:
        return _invalid(origin, f"{origin}: {value!r} does not fit a column of type {dtype}", "type_mismatch")

    if value is None:
        return None
    if dtype == pl.String:
        return value if isinstance(value, str) else json.dumps(value)
    if dtype.is_integer():
        if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
            raise mismatch()
        return int(value)
    if dtype.is_float():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise mismatch()
        return float(value)
    if isinstance(dtype, pl.Decimal):  # exact: resolution gives a whole number, an exact float or the text
        number = exact_decimal(value)
        if number is None or not decimal_fits(number, dtype.precision or 38, dtype.scale or 0):
            raise mismatch()
        return number
    if dtype == pl.Boolean:
        if not isinstance(value, bool):
            raise mismatch()
        return value
    if isinstance(dtype, pl.Date | pl.Datetime) and isinstance(value, str):
        try:
            return _temporal(value, dtype)
        except ValueError:
            raise mismatch() from None
    raise mismatch()


def _temporal(text: str, dtype: pl.Date | pl.Datetime) -> dt.date | dt.datetime:
    """ISO text as a date, or as a datetime in the column's zone (a naive text is the zone's wall time)."""
    if isinstance(dtype, pl.Date):
        if len(text.strip()) != len("2024-01-31"):
            raise ValueError(text)
        return dt.date.fromisoformat(text.strip())
    moment = dt.datetime.fromisoformat(text.strip())
    if dtype.time_zone is None:
        if moment.tzinfo is not None:
            raise ValueError(text)
        return moment
    zone = ZoneInfo(dtype.time_zone)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


# ---------------------------------------------------------------------------------------------------------
# conditions (filter)


def _condition(condition: Condition, plan: _Plan, origin: str) -> pl.Expr:
    """True where the condition holds, false where it does not, null where it cannot be decided."""
    if isinstance(condition, AllOf):
        return reduce(lambda a, b: a & b, (_condition(item, plan, origin) for item in condition.all))
    if isinstance(condition, AnyOf):
        return reduce(lambda a, b: a | b, (_condition(item, plan, origin) for item in condition.any))
    if isinstance(condition, NotOf):
        return ~_condition(condition.not_, plan, origin)
    return _comparison(condition, plan, origin)


def _comparison(item: Comparison, plan: _Plan, origin: str) -> pl.Expr:
    _require(plan, [item.column, *([item.value_column] if item.value_column else [])], origin)
    column, dtype = as_text_column(item.column, plan.schema[item.column])
    if item.cmp == "is_null":
        return column.is_null()
    if item.cmp == "is_not_null":
        return column.is_not_null()
    known = column.is_not_null()
    if item.cmp in {"contains", "starts_with", "ends_with"}:
        if not isinstance(item.value, str):
            raise _invalid(origin, f"{origin}: {item.cmp} needs a text value", "type_mismatch")
        subject = column if dtype == pl.String else text_of(column, dtype, plan.layouts.get(item.column))
        needle = pl.lit(item.value, dtype=pl.String)
        if not item.case_sensitive:
            subject, needle = subject.str.to_lowercase(), needle.str.to_lowercase()
        if item.cmp == "contains":
            return pl.when(known).then(subject.str.contains(needle, literal=True))
        method = subject.str.starts_with if item.cmp == "starts_with" else subject.str.ends_with
        return pl.when(known).then(method(needle))
    fold = not item.case_sensitive and dtype == pl.String

    def folded(expr: pl.Expr) -> pl.Expr:
        return expr.str.to_lowercase() if fold else expr

    subject = folded(column)
    if item.value_column is not None:
        if item.cmp not in ORDERED:
            raise _invalid(origin, f"{origin}: {item.cmp} compares with values, not another column", "syntax")
        other, other_dtype = as_text_column(item.value_column, plan.schema[item.value_column])
        if not item.case_sensitive and other_dtype == pl.String:
            other = other.str.to_lowercase()
        return pl.when(known & other.is_not_null()).then(_compare(item.cmp, subject, other))
    if isinstance(dtype, pl.Decimal) and item.cmp in {*ORDERED, "in", "not_in", "between"}:
        return pl.when(known).then(_decimal_condition(item, subject, dtype, origin))
    if item.cmp in {"in", "not_in", "between"}:
        values = item.value if isinstance(item.value, list) else [item.value]
        if item.cmp == "between" and len(values) != 2:  # noqa: PLR2004 - a low and a high bound
            raise _invalid(origin, f"{origin}: between needs two values, a low and a high", "syntax")
        compared = _compared_dtype(values, dtype)
        typed = [_python_value(value, compared, origin) for value in values]
        if item.cmp == "between":
            low, high = (folded(pl.lit(value, dtype=compared)) for value in typed)
            day_end = _day_end(values[1], dtype)
            upper = subject <= high if day_end is None else subject < pl.lit(day_end, dtype=dtype)
            return pl.when(known).then((subject >= low) & upper)
        listed = pl.Series(item.column, [value for value in typed if value is not None], dtype=compared)
        if fold:
            listed = listed.str.to_lowercase()
        member = (subject if compared == dtype else subject.cast(compared)).is_in(listed.implode())
        return pl.when(known).then(member if item.cmp == "in" else ~member)
    if isinstance(item.value, list):
        raise _invalid(origin, f"{origin}: {item.cmp} compares with one value, not a list", "type_mismatch")
    if item.value is None:
        raise _invalid(origin, f"{origin}: {item.cmp} needs a value (use is_null for an empty cell)", "syntax")
    value = folded(literal(item.value, _compared_dtype([item.value], dtype), origin))
    day_end = _day_end(item.value, dtype) if item.cmp in WHOLE_DAY_CMPS else None
    if day_end is not None:  # <= the day: before the next midnight; > the day: from the next midnight on
        return pl.when(known).then(_compare("<" if item.cmp == "<=" else ">=", subject, pl.lit(day_end, dtype=dtype)))
    return pl.when(known).then(_compare(item.cmp, subject, value))


def _decimal_condition(item: Comparison, subject: pl.Expr, dtype: pl.Decimal, origin: str) -> pl.Expr:
    """A comparison on a Decimal column, decided exactly (agents.values.decimal_comparison): the values are read as
    decimals, never through a float; one with more decimals than the column's scale equals no cell, and bounds
    between two of the column's steps are rounded the way that keeps the answer."""
    values = item.value if isinstance(item.value, list) else [item.value]
    if item.cmp == "between" and len(values) != 2:  # noqa: PLR2004 - a low and a high bound
        raise _invalid(origin, f"{origin}: between needs two values, a low and a high", "syntax")
    if item.cmp not in {"in", "not_in"} and (isinstance(item.value, list) != (item.cmp == "between")):
        raise _invalid(origin, f"{origin}: {item.cmp} compares with one value, not a list", "type_mismatch")
    exact = []
    for value in values:
        number = exact_decimal(value)
        if number is None and (value is not None or item.cmp not in {"in", "not_in"}):
            raise _invalid(origin, f"{origin}: {value!r} does not fit a column of type {dtype}", "type_mismatch")
        exact.append(number)
    if item.cmp == "between":
        low, high = exact
        assert low is not None and high is not None
        return decimal_comparison(">=", subject, low, dtype) & decimal_comparison("<=", subject, high, dtype)
    if item.cmp in {"in", "not_in"}:
        held = [
            number
            for number in exact
            if number is not None and decimal_fits(number, dtype.precision or 38, dtype.scale or 0)
        ]
        member = (
            subject.is_in(pl.Series(held, dtype=dtype).implode()) if held else subject.is_not_null() & pl.lit(False)
        )
        return member if item.cmp == "in" else ~member
    assert exact[0] is not None
    return decimal_comparison(item.cmp, subject, exact[0], dtype)


WHOLE_DAY_CMPS: Final = frozenset({"<=", ">"})
"""The comparisons whose date-only value on a date-time column means the whole day (as between's high end)."""


def _day_end(value: Any, dtype: pl.DataType) -> dt.datetime | None:
    """For a date-only ``value`` (``2024-03-01``) compared with a Datetime column: the midnight after that day, on
    the column's wall clock (search's ``time_ranges`` read a date-only end so); else None."""
    if not isinstance(dtype, pl.Datetime) or not _is_day(value):
        return None
    start = _temporal(value, dtype)
    assert isinstance(start, dt.datetime)
    following = start.replace(tzinfo=None) + dt.timedelta(days=1)
    return following if dtype.time_zone is None else following.replace(tzinfo=ZoneInfo(dtype.time_zone))


def _is_day(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) == len("2024-01-31")


def _compared_dtype(values: Sequence[Any], dtype: pl.DataType) -> pl.DataType:
    """An integer column compared with a fraction (``age > 17.5``) is compared as Float64, and with a whole number
    its type cannot hold (``age < 2**63``, which resolution lets through: it compares) as Int128, which holds every
    whole number resolution accepts (a literal of the column's type would fail the run)."""
    if not dtype.is_integer():
        return dtype
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if any(isinstance(v, float) and not v.is_integer() for v in numbers):
        return pl.Float64()
    low, high = _INTEGER_RANGES.get(dtype, (-(2**127), 2**127 - 1))  # UInt128: as it was
    return pl.Int128() if any(not low <= int(v) <= high for v in numbers) else dtype


_INTEGER_RANGES: Final[dict[pl.DataType, tuple[int, int]]] = {
    dtype(): (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    for dtype, bits, signed in (
        (pl.Int8, 8, True), (pl.Int16, 16, True), (pl.Int32, 32, True), (pl.Int64, 64, True), (pl.Int128, 128, True),
        (pl.UInt8, 8, False), (pl.UInt16, 16, False), (pl.UInt32, 32, False), (pl.UInt64, 64, False),
    )
}  # fmt: skip


ORDERED: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(cmp: str, left: pl.Expr, right: pl.Expr) -> pl.Expr:
    return ORDERED[cmp](left, right)


def describe_condition(condition: Condition, top: bool = True, datetimes: frozenset[str] = frozenset()) -> str:
    """The condition as a person reads it: ``email was null``, ``age >= 18 and country in (US, CA)``;
    ``datetimes``: the Datetime columns (a date-only end there says which part of the day it takes)."""
    if isinstance(condition, AllOf | AnyOf):
        parts, joiner = (condition.all, " and ") if isinstance(condition, AllOf) else (condition.any, " or ")
        text = joiner.join(describe_condition(part, False, datetimes) for part in parts)
        return text if top or len(parts) == 1 else f"({text})"
    if isinstance(condition, NotOf):
        return f"not {describe_condition(condition.not_, False, datetimes)}"
    return _describe_comparison(condition) + (_whole_day_words(condition) if condition.column in datetimes else "")


def _whole_day_words(item: Comparison) -> str:
    """How a date-only end reads on a date-time column: the whole day in (``<=``, between's high end), or after it
    (``>``)."""
    if item.cmp == "between" and isinstance(item.value, list) and len(item.value) == 2 and _is_day(item.value[1]):  # noqa: PLR2004
        return f" (to the end of {item.value[1]})"
    if item.cmp == "<=" and _is_day(item.value):
        return " (to the end of that day)"
    if item.cmp == ">" and _is_day(item.value):
        return " (after that whole day)"
    return ""


def _describe_comparison(item: Comparison) -> str:
    if item.cmp == "is_null":
        return f"{item.column} was null"
    if item.cmp == "is_not_null":
        return f"{item.column} was not null"
    words = {"==": "=", "not_in": "not in", "starts_with": "starts with", "ends_with": "ends with"}
    cmp = words.get(item.cmp, item.cmp)
    if item.value_column is not None:
        value = item.value_column
    elif item.cmp == "between" and isinstance(item.value, list) and len(item.value) == 2:  # noqa: PLR2004
        value = f"{show_value(item.value[0])} and {show_value(item.value[1])}"
    elif isinstance(item.value, list):
        value = "(" + ", ".join(show_value(value) for value in item.value) + ")"
    else:
        value = show_value(item.value)
    suffix = " (ignoring case)" if not item.case_sensitive else ""
    return f"{item.column} {cmp} {value}{suffix}"


def show_value(value: Any) -> str:
    """A literal for a sentence: numbers and simple words as they are, other text quoted."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    text = str(value)
    if text and all(char.isalnum() or char in "-_.@:/+" for char in text):
        return text
    return json.dumps(text, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------------
# row operations


def _filter(op: FilterRows, plan: _Plan, index: int, origin: str) -> Compiled:
    holds = _condition(op.where, plan, origin).fill_null(False)
    plan.advance(lambda lazy: lazy.filter(holds if op.action == "keep" else ~holds), origin)
    datetimes = frozenset(name for name, dtype in plan.schema.items() if isinstance(dtype, pl.Datetime))
    condition = describe_condition(op.where, datetimes=datetimes)

    def finish(stats: dict[str, Any], counts: _Counts) -> tuple[dict[str, Any], _Counts]:
        after = _row_counts(stats, counts)
        removed = counts.rows - after.rows
        if op.action == "remove":
            sentence = f"Dropped {_rows(removed)} where {condition}"
        else:
            sentence = f"Kept {_rows(after.rows)} where {condition} (dropped {removed:,})"
        return {"rows_affected": removed, "sentence": sentence, "condition": condition}, after

    return _with_row_stats(finish, plan)


KEY_GAP = "__key_gap__"
"""A deduplicate's extra key: a row's own position when one of its key columns is empty, else null (equal)."""


def _deduplicate(op: Deduplicate, plan: _Plan, index: int, origin: str) -> Compiled:
    """Rows equal on every column, or on ``columns``. On named columns an empty key equals nothing (as in SQL, and as
    the duplicate-resolver of clean-my-data treats missing values): two sign-ups without an e-mail are two people, so
    a row with an empty key is never a duplicate. Whole rows that are equal, empty cells included, are duplicates."""
    subset = op.columns or plan.data_columns
    _require(plan, subset, origin)
    gap = KEY_GAP
    while gap in plan.schema:  # a user's column of that name
        gap += "_"
    keys = subset if not op.columns else [*subset, gap]

    def with_gap(lazy: pl.LazyFrame) -> pl.LazyFrame:
        if not op.columns:
            return lazy
        # empty: null, or blank text (a quoted "" kept as written), as the product's missing values are
        empty = pl.any_horizontal(is_missing(pl.col(name), plan.schema[name], ()) for name in subset)
        return lazy.with_row_index(gap).with_columns(pl.when(empty).then(pl.col(gap)).alias(gap))

    def unique(lazy: pl.LazyFrame) -> pl.LazyFrame:
        deduplicated = with_gap(lazy).unique(keys, keep=op.keep, maintain_order=True)
        return deduplicated.drop(gap) if op.columns else deduplicated

    if plan.streamed:
        _streamed_deduplicate(plan, unique, with_gap, keys, op.keep, index, origin)
    else:
        plan.advance(unique, origin)
    on = f"same {_names(subset)}" if op.columns else "identical in every column"
    kept = f"; rows with an empty {_names(subset)} are not duplicates" if op.columns else ""

    def finish(stats: dict[str, Any], counts: _Counts) -> tuple[dict[str, Any], _Counts]:
        after = _row_counts(stats, counts)
        removed = counts.rows - after.rows
        sentence = f"Removed {removed:,} duplicate {_plural(removed, 'row')} ({on}), keeping the {op.keep}{kept}"
        return {"rows_affected": removed, "sentence": sentence}, after

    return _with_row_stats(finish, plan)


def _streamed_deduplicate(
    plan: _Plan,
    unique: Step,
    keyed: Step,
    keys: list[str],
    keep: Literal["first", "last"],
    index: int,
    origin: str,
) -> None:
    """Data whose keys exceed a bucket: the rows to drop are found bucket by bucket (agents.external) on the rows
    with their ``keys`` (``keyed``) and filtered out in a streaming pass, in order; else Polars' streaming ``unique``
    (it holds the distinct keys)."""
    plan.schema_after(unique, origin)
    assert plan.spill_dir is not None
    dropped = duplicates_external(keyed(plan.lazy), keys, keep, plan.spill_dir / f"step{index + 1}.parts")
    if dropped is None:
        plan.advance(unique, origin)
        return
    duplicate = pl.col(POSITION).is_in(dropped.implode())
    plan.advance(lambda lazy: lazy.with_row_index(POSITION).filter(~duplicate).drop(POSITION), origin)


def _with_row_stats(finish: Finish, plan: _Plan) -> Compiled:
    """Rows and every column's null count after a step that removes rows."""
    columns = plan.data_columns
    query = plan.lazy.select(pl.len().alias("rows"), *(pl.col(name).null_count().alias(name) for name in columns))
    return finish, plan.query(query)


def _row_counts(stats: dict[str, Any], counts: _Counts) -> _Counts:
    nulls = {name: int(value) for name, value in stats.items() if name != "rows"}
    return _Counts(int(stats["rows"]), nulls)


def _sort(op: SortRows, plan: _Plan, index: int, origin: str) -> Compiled:
    names = [key.column for key in op.by]
    _require(plan, names, origin)
    before = plan.lazy
    descending = [key.descending for key in op.by]

    def sort(lazy: pl.LazyFrame) -> pl.LazyFrame:
        return lazy.sort(names, descending=descending, nulls_last=op.nulls_last, maintain_order=True)

    if plan.streamed:
        moved = _streamed_sort(plan, op, sort, index, origin)
    else:
        plan.advance(sort, origin)
        moved = pl.concat(
            [before.select(ROW_INDEX_COLUMN), plan.lazy.select(pl.col(ROW_INDEX_COLUMN).alias("__after__"))],
            how="horizontal",
        ).select((pl.col(ROW_INDEX_COLUMN) != pl.col("__after__")).sum().alias("moved"))
    keys = ", then ".join(f"{key.column}{' descending' if key.descending else ''}" for key in op.by)

    def finish(stats: dict[str, Any], counts: _Counts) -> tuple[dict[str, Any], _Counts]:
        rows_moved = int(stats["moved"])
        moved = f"{rows_moved:,} {_plural(rows_moved, 'row')} moved" if rows_moved else "no row moved"
        return {"rows_affected": 0, "rows_moved": rows_moved, "sentence": f"Sorted rows by {keys} ({moved})"}, counts

    return finish, plan.query(moved)


def _streamed_sort(plan: _Plan, op: SortRows, sort: Step, index: int, origin: str) -> pl.LazyFrame:
    """Data larger than a bucket is sorted bucket by bucket (agents.external: a folder of sorted buckets
    becomes the spill, the rows moved counted as they are written). Else sorts with Polars into a spill that also
    holds each row's position before the sort, so that the rows moved are counted from one scan of it (row indexes
    are unique: a row moved when its position changed)."""
    plan.schema_after(sort, origin)
    names, descending = [key.column for key in op.by], [key.descending for key in op.by]
    target = plan.next_spill(suffix="")
    external = sort_external(plan.lazy, names, descending, op.nulls_last, target)
    if external is not None:
        scan, rows_moved = external
        plan.lazy = plan.adopt(target, scan)
        return pl.LazyFrame({"moved": [rows_moved]})
    position, after = f"__step{index}_position__", f"__step{index}_after__"
    plan.advance(lambda lazy: sort(lazy.with_row_index(position)), origin)
    moved = plan.lazy.with_row_index(after).select((pl.col(position) != pl.col(after)).sum().alias("moved"))
    plan.advance(lambda lazy: lazy.drop(position), origin, spill=False)
    return moved


# ---------------------------------------------------------------------------------------------------------
# column operations


def _drop(op: DropColumns, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, op.columns, origin)
    gone = list(dict.fromkeys(op.columns))
    plan.advance(lambda lazy: lazy.drop(gone), origin, spill=False)
    _forget_layouts(plan, gone)
    sentence = f"Dropped {_plural(len(gone), 'column')} {_names(gone)}"
    return _schema_only(sentence, gone)


def _keep(op: KeepColumns, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, op.columns, origin)
    wanted = set(op.columns)
    gone = [name for name in plan.data_columns if name not in wanted]
    kept = [name for name in plan.schema if name in wanted or name == ROW_INDEX_COLUMN]
    plan.advance(lambda lazy: lazy.select(kept), origin, spill=False)
    _forget_layouts(plan, gone)
    sentence = f"Kept {_plural(len(wanted), 'column')} {_names([n for n in kept if n in wanted])}"
    return _schema_only(f"{sentence} (dropped {len(gone):,})", gone)


def _rename(op: RenameColumns, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, list(op.mapping), origin)
    if ROW_INDEX_COLUMN in op.mapping.values():
        raise _invalid(origin, f"{origin}: '{ROW_INDEX_COLUMN}' is reserved", "reserved_column")
    mapping = {old: new for old, new in op.mapping.items() if old != new}
    plan.advance(lambda lazy: lazy.rename(mapping), origin, spill=False)
    plan.layouts = {mapping.get(name, name): layout for name, layout in plan.layouts.items()}
    sentence = "Renamed " + " and ".join(f"{old} to {new}" for old, new in op.mapping.items())

    def finish(stats: dict[str, Any], counts: _Counts) -> tuple[dict[str, Any], _Counts]:
        nulls = {mapping.get(name, name): count for name, count in counts.nulls.items()}
        return {"rows_affected": 0, "sentence": sentence, "renamed": mapping}, _Counts(counts.rows, nulls)

    return finish, None


def _reorder(op: ReorderColumns, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, op.columns, origin)
    first = list(dict.fromkeys(op.columns))
    rest = [name for name in plan.data_columns if name not in set(first)]
    head = [ROW_INDEX_COLUMN] if ROW_INDEX_COLUMN in plan.schema else []
    plan.advance(lambda lazy: lazy.select([*head, *first, *rest]), origin, spill=False)
    return _schema_only(f"Moved {_names(first)} to the front", [])


def _schema_only(sentence: str, gone: list[str]) -> Compiled:
    def finish(stats: dict[str, Any], counts: _Counts) -> tuple[dict[str, Any], _Counts]:
        nulls = {name: count for name, count in counts.nulls.items() if name not in set(gone)}
        return {"rows_affected": 0, "sentence": sentence}, _Counts(counts.rows, nulls)

    return finish, None


def _forget_layouts(plan: _Plan, names: Sequence[str]) -> None:
    for name in names:
        plan.layouts.pop(name, None)


# ---------------------------------------------------------------------------------------------------------
# cell operations: each computes new columns next to the old ones, counts, then replaces them


@dataclass
class _CellChange:
    """One column a cell operation writes: its new values, and extra statistics about it (aliases are unique).

    A conversion also gives ``present``: where the old cell holds a value to convert (not empty, not a missing-value
    marker). Its new value is ``expr`` there and empty elsewhere; where ``expr`` is empty although the cell was
    present, the value did not convert (counted, quoted, and listed as row-level issues with ``list_invalid``)."""

    column: str
    expr: pl.Expr
    extras: dict[str, pl.Expr] = field(default_factory=dict)
    present: pl.Expr | None = None
    list_invalid: bool = False


def _cell_step(
    plan: _Plan,
    index: int,
    origin: str,
    changes: list[_CellChange],
    describe: Describe,
    keep_layout: bool,
) -> Compiled:
    """Adds the new values as temporary columns of a cached node, counts per column (cells changed, nulls after,
    the extras), then puts them in place: an existing column keeps its position, a new one comes last."""
    temporary = {change.column: f"__step{index}_{position}__" for position, change in enumerate(changes)}
    flags = {
        change.column: f"__step{index}_{position}_present__"
        for position, change in enumerate(changes)
        if change.present is not None
    }

    def add(lazy: pl.LazyFrame) -> pl.LazyFrame:
        flagged = lazy.with_columns(
            change.present.alias(flags[change.column]) for change in changes if change.present is not None
        )
        return flagged.with_columns(
            (pl.when(pl.col(flags[change.column])).then(change.expr) if change.column in flags else change.expr).alias(
                temporary[change.column]
            )
            for change in changes
        )

    def put_in_place(lazy: pl.LazyFrame) -> pl.LazyFrame:
        replaced = lazy.with_columns(pl.col(temporary[change.column]).alias(change.column) for change in changes)
        return replaced.drop([*temporary.values(), *flags.values()])

    work, new_schema = plan.apply(add, origin)
    aggregates: list[pl.Expr] = []
    for position, change in enumerate(changes):
        new = pl.col(temporary[change.column])
        aggregates.append(new.null_count().alias(f"nulls:{position}"))
        if change.column in plan.schema:
            old_dtype, new_dtype = plan.schema[change.column], new_schema[temporary[change.column]]
            old: pl.Expr = pl.col(change.column)
            if old_dtype != new_dtype:
                old = text_of(old, old_dtype, plan.layouts.get(change.column))
                new = text_of(new, new_dtype)
            aggregates.append(old.ne_missing(new).sum().alias(f"changed:{position}"))
        aggregates += [expr.alias(f"{name}:{position}") for name, expr in change.extras.items()]
        if change.column in flags:
            present = pl.col(flags[change.column])
            invalid = present & pl.col(temporary[change.column]).is_null()
            examples = pl.col(change.column).filter(invalid).cast(pl.String).unique(maintain_order=True).head(EXAMPLES)
            aggregates += [
                invalid.sum().alias(f"invalid:{position}"),
                examples.implode().alias(f"examples:{position}"),
                (pl.col(change.column).is_not_null() & ~present).sum().alias(f"tokens:{position}"),
            ]
            if change.list_invalid:
                plan.issue_query(_invalid_issues(work, change.column, invalid))
    stats = plan.query(work.select(aggregates))
    plan.advance(put_in_place, origin, (work, new_schema), spill=False)
    if not keep_layout:
        _forget_layouts(plan, [change.column for change in changes])

    def finish(row: dict[str, Any], counts: _Counts) -> tuple[dict[str, Any], _Counts]:
        per_column: dict[str, dict[str, Any]] = {}
        nulls = dict(counts.nulls)
        for position, change in enumerate(changes):
            values = {key.rsplit(":", 1)[0]: value for key, value in row.items() if key.endswith(f":{position}")}
            values["nulls_before"] = counts.nulls.get(change.column)
            per_column[change.column] = values
            nulls[change.column] = int(values["nulls"])
        sentence, details = describe(per_column, counts.rows)
        return {"sentence": sentence, **details}, _Counts(counts.rows, nulls)

    return finish, stats


def _invalid_issues(work: pl.LazyFrame, column: str, invalid: pl.Expr) -> pl.LazyFrame:
    """A row-level issue per value a conversion emptied, with the value as it was."""
    return work.filter(invalid).select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
        pl.lit(column).alias("column"),
        pl.lit("value_not_converted").alias("issue_type"),
        pl.lit("medium").alias("severity"),
        pl.lit(f"value of '{column}' could not be converted and was emptied").alias("message"),
        pl.col(column).cast(pl.String).alias("value"),
    )


def _total(per_column: dict[str, dict[str, Any]], key: str) -> int:
    return sum(int(values.get(key) or 0) for values in per_column.values())


def _cast(op: CastColumns, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, op.columns, origin)
    columns = list(dict.fromkeys(op.columns))
    targets: dict[str, str] = {name: op.to for name in columns}
    if op.to == "number" and any(_number_needs_data(plan.schema[name]) for name in columns):
        targets.update(_number_targets(plan, [name for name in columns if _number_needs_data(plan.schema[name])]))
    changes = [_cast_change(name, plan, targets[name], op, origin) for name in columns]

    def describe(per_column: dict[str, dict[str, Any]], rows: int) -> tuple[str, dict[str, Any]]:
        invalid = _total(per_column, "invalid")
        tokens = _total(per_column, "tokens")
        sentence = f"Converted {_names(columns)} to {op.to}"
        notes = []
        if invalid and op.on_invalid == "null":
            notes.append(f"{invalid:,} {_plural(invalid, 'value')} could not be converted and {_were(invalid)} emptied")
        if tokens:
            notes.append(f"{tokens:,} missing-value {_plural(tokens, 'marker')} {_were(tokens)} emptied")
        if notes:
            sentence += f" ({'; '.join(notes)})"
        details: dict[str, Any] = {
            "rows_affected": _total(per_column, "changed"),
            "cells_changed": _total(per_column, "changed"),
            "values_not_converted": invalid,
            "missing_markers_emptied": tokens,
            "by_column": {
                name: {
                    "target": targets[name],
                    "cells_changed": int(values.get("changed") or 0),
                    "values_not_converted": int(values.get("invalid") or 0),
                    "missing_markers_emptied": int(values.get("tokens") or 0),
                    "examples": values.get("examples") or [],
                }
                for name, values in per_column.items()
            },
        }
        if op.on_invalid == "fail":
            details["failures"] = {
                name: {"count": int(values["invalid"]), "examples": values.get("examples") or []}
                for name, values in per_column.items()
                if values.get("invalid")
            }
        return sentence, details

    return _cell_step(plan, index, origin, changes, describe, keep_layout=False)


def _number_needs_data(dtype: pl.DataType) -> bool:
    """Whether ``number`` must look at the values to choose Int64 or Float64."""
    return dtype == pl.String or is_category(dtype) or dtype.is_float()


def _number_targets(plan: _Plan, names: list[str]) -> dict[str, str]:
    """``integer`` for the columns whose every value that is a number is a whole one, else ``float``."""
    checks = []
    for name in names:
        column, dtype = as_text_column(name, plan.schema[name])
        if dtype == pl.String:
            whole = parse_integer(column).is_not_null().sum() == parse_number(column).is_not_null().sum()
        else:
            finite = column.filter(column.is_not_null())
            whole = (finite.is_finite() & (finite == finite.floor()) & (finite.abs() < INT64_LIMIT)).all()
        checks.append(whole.alias(name))
    row = plan.decide(lambda lazy: lazy.select(checks)).row(0, named=True)
    return {name: "integer" if row[name] else "float" for name in names}


def _cast_change(name: str, plan: _Plan, target: str, op: CastColumns, origin: str) -> _CellChange:
    column, dtype = as_text_column(name, plan.schema[name])
    present = column.is_not_null()
    if dtype == pl.String:
        present = present & ~is_missing_token(column, DEFAULT_NULL_TOKENS)
    zoned = target == "datetime" and dtype == pl.String and op.format is None and _mostly_offsets(plan, column)
    converted = _converted(column, dtype, target, op, plan.layouts.get(name), origin, name, zoned=zoned)
    return _CellChange(name, converted, present=present, list_invalid=op.on_invalid == "null")


def _offset_readings(column: pl.Expr) -> pl.Expr:
    """ISO 8601 text with a UTC offset or Z, each value with its own (agents.values.OFFSET_FORMATS), as UTC."""
    stripped = column.str.strip_chars()
    return pl.coalesce([stripped.str.to_datetime(fmt.pattern, time_unit="us", strict=False) for fmt in OFFSET_FORMATS])


def _naive_readings(column: pl.Expr) -> pl.Expr:
    stripped = column.str.strip_chars()
    readings = [stripped.str.to_datetime(fmt, time_unit="us", strict=False) for fmt in ISO_DATETIMES]
    readings.append(stripped.str.to_date(ISO_DATE, strict=False).cast(pl.Datetime("us")))
    return pl.coalesce(readings)


def _mostly_offsets(plan: _Plan, column: pl.Expr) -> bool:
    """Whether more values of a text column read as ISO 8601 with a UTC offset than without one: the column is
    then read as UTC instants (a value without an offset is not converted: its zone would be a guess)."""
    counts = plan.decide(
        lambda lazy: lazy.select(
            _offset_readings(column).is_not_null().sum().alias("zoned"),
            _naive_readings(column).is_not_null().sum().alias("naive"),
        )
    ).row(0, named=True)
    return bool(counts["zoned"] > counts["naive"])


def _converted(
    column: pl.Expr,
    dtype: pl.DataType,
    target: str,
    op: CastColumns,
    layout: Layout | None,
    origin: str,
    name: str,
    *,
    zoned: bool = False,
) -> pl.Expr:
    """``zoned``: a text column cast to datetime is read as UTC instants (``_mostly_offsets``)."""
    text = dtype == pl.String
    temporal = isinstance(dtype, pl.Date | pl.Datetime)
    if op.format is not None and not (text and target in {"date", "datetime"}) and not (temporal and target == "text"):
        raise _invalid(origin, f"{origin}: a format applies to dates read from text or written as text", "syntax")
    if target == "text":
        if temporal and op.format is not None:
            return column.dt.to_string(op.format)
        return text_of(column, dtype, layout)
    if target == "number" and isinstance(dtype, pl.Decimal):
        return column  # a decimal stays a decimal, exactly (resolution keeps its dtype)
    if target in {"number", "integer", "float"} and (dtype.is_numeric() or dtype == pl.Boolean or text):
        return _numeric(column, dtype, "float" if target == "float" else "integer")
    if target == "boolean" and (dtype == pl.Boolean or dtype.is_numeric() or text):
        if text:
            return parse_boolean(column)
        if dtype == pl.Boolean:
            return column
        return pl.when(column == 1).then(True).when(column == 0).then(False)
    if target == "date" and (text or temporal):
        if text:
            return column.str.strip_chars().str.to_date(op.format or ISO_DATE, strict=False)
        return column if isinstance(dtype, pl.Date) else column.dt.date()
    if target == "datetime" and (text or temporal):
        if text and op.format is not None:
            return column.str.strip_chars().str.to_datetime(op.format, time_unit="us", strict=False)
        if text:
            return _offset_readings(column) if zoned else _naive_readings(column)
        return column if isinstance(dtype, pl.Datetime) else column.cast(pl.Datetime("us"))
    raise _invalid(origin, f"{origin}: column '{name}' ({dtype}) cannot be converted to {target}", "type_mismatch")


def _numeric(column: pl.Expr, dtype: pl.DataType, kind: str) -> pl.Expr:
    """Int64 (``integer``: whole values only) or Float64 of a text, number or boolean column."""
    if kind == "float":
        return parse_number(column) if dtype == pl.String else column.cast(pl.Float64)
    if dtype == pl.String:
        return parse_integer(column)
    if dtype.is_float():
        whole = column.is_finite() & (column == column.floor()) & (column.abs() < INT64_LIMIT)
        return pl.when(whole).then(column).cast(pl.Int64, strict=False)
    if isinstance(dtype, pl.Decimal):  # Polars' cast truncates (2.50 -> 2): only whole values convert, as a float's
        truncated = column.cast(pl.Int128, strict=False)  # null beyond Int128 (a Decimal(38, 0) may be)
        whole = (column == column.floor()) & truncated.is_between(INT64_MIN, INT64_MAX)
        return pl.when(whole).then(truncated).cast(pl.Int64, strict=False)
    if dtype in (pl.Int128, pl.UInt64):  # a value past Int64 (a 20-digit id) does not convert: an invalid value
        return pl.when(column.is_between(INT64_MIN, INT64_MAX)).then(column).cast(pl.Int64, strict=False)
    return column.cast(pl.Int64)


def _fill(op: FillNulls, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, op.columns, origin)
    columns = list(dict.fromkeys(op.columns))
    decided = _integer_statistics(plan, op, columns, origin)
    changes = [_fill_change(name, plan, op, origin, decided.get(name)) for name in columns]

    decimal = [name for name in columns if name in decided and _made_decimal(decided[name])]

    def describe(per_column: dict[str, dict[str, Any]], rows: int) -> tuple[str, dict[str, Any]]:
        parts = []
        for name, values in per_column.items():
            filled = _filled(values)
            parts.append(f"{filled:,} missing {name} {_plural(filled, 'value')} with {_fill_words(op, values)}")
        filled_total = sum(_filled(values) for values in per_column.values())
        details = {
            "rows_affected": filled_total,
            "cells_changed": _total(per_column, "changed"),
            "values_filled": filled_total,
            "fill_values": {name: plain_value(values.get("value")) for name, values in per_column.items()},
        }
        sentence = "Filled " + "; ".join(parts)
        if decimal:
            now = "is now a decimal column" if len(decimal) == 1 else "are now decimal columns"
            sentence += f"; {_names(decimal)} {now} (whole numbers written 1.0)"
            details["columns_made_decimal"] = decimal
        return sentence, details

    return _cell_step(plan, index, origin, changes, describe, keep_layout=True)


@dataclass(frozen=True)
class _IntegerStatistic:
    """An integer column's mean or median (None: no finite value) and how many of its cells are empty."""

    value: float | None
    nulls: int
    dtype: pl.DataType

    @property
    def whole(self) -> int | None:
        """The statistic as a value of the column's dtype, when it is a whole number that dtype holds."""
        if self.value is None or not float(self.value).is_integer():
            return None
        low, high = _integer_bounds(self.dtype)
        return int(self.value) if low <= self.value <= high else None


def _integer_statistics(plan: _Plan, op: FillNulls, columns: list[str], origin: str) -> dict[str, _IntegerStatistic]:
    """Per integer column filled with its mean or median: the statistic and the empty cells, decided on the data in
    one query (whether the column stays integer depends on them, ``_made_decimal``)."""
    if op.strategy not in {"mean", "median"}:
        return {}
    names = [name for name in columns if name in plan.schema and plan.schema[name].is_integer()]
    if not names:
        return {}
    checks = []
    for position, name in enumerate(names):
        values = pl.col(name).cast(pl.Float64)
        statistic = values.mean() if op.strategy == "mean" else values.median()
        checks += [statistic.alias(f"value{position}"), pl.col(name).null_count().alias(f"nulls{position}")]
    row = plan.decide(lambda lazy: lazy.select(checks)).row(0)
    return {
        name: _IntegerStatistic(row[2 * position], int(row[2 * position + 1]), plan.schema[name])
        for position, name in enumerate(names)
    }


def _integer_bounds(dtype: pl.DataType) -> tuple[int, int]:
    """The values an integer dtype holds (``Int8``: -128..127, ``UInt16``: 0..65535)."""
    name = str(dtype)
    bits = int(name.removeprefix("U").removeprefix("Int"))
    return (0, 2**bits - 1) if name.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _made_decimal(statistic: _IntegerStatistic) -> bool:
    """Whether a mean or median fill makes an integer column Float64: when it fills a cell with a fraction (or a
    number the dtype cannot hold), as pandas' ``fillna`` of that statistic does. A fill that fills nothing, or fills
    a whole number, keeps the column as it is."""
    return statistic.nulls > 0 and statistic.value is not None and statistic.whole is None


def _filled(values: dict[str, Any]) -> int:
    """The cells a fill gave a value (its ``changed`` count also holds, for a column it made decimal, the whole
    numbers now written ``1.0``)."""
    return int(values.get("nulls_before") or 0) - int(values.get("nulls") or 0)


def _fill_words(op: FillNulls, values: dict[str, Any]) -> str:
    if op.strategy in FILL_WORDS:
        return FILL_WORDS[op.strategy]
    shown = show_value(plain_value(values.get("value")))
    if op.strategy == "constant":
        return shown
    noun = {"mean": "mean", "median": "median", "mode": "most frequent value"}[op.strategy]
    return f"the {noun} ({shown})"


def _fill_change(
    name: str, plan: _Plan, op: FillNulls, origin: str, decided: _IntegerStatistic | None = None
) -> _CellChange:
    """``decided``: an integer column's mean or median, computed first (``_integer_statistics``)."""
    column, dtype = as_text_column(name, plan.schema[name])  # an Enum would empty a value not in its list
    if op.strategy == "previous":
        return _CellChange(name, column.forward_fill())
    if op.strategy == "next":
        return _CellChange(name, column.backward_fill())
    if op.strategy == "constant":
        if op.value is None:
            raise _invalid(origin, f"{origin}: fill with a constant needs a value", "syntax")
        value = literal(op.value, dtype, origin)
        return _CellChange(name, column.fill_null(value), {"value": value})
    if op.strategy == "mode" and plan.streamed:
        statistic = literal_of(plan.decide(lambda lazy: _streamed_mode(lazy.select(column.alias(name)), name)), dtype)
    elif op.strategy == "mode":
        statistic = column.drop_nulls().mode().sort().first()
    else:
        if not (dtype.is_numeric()):
            raise _invalid(
                origin, f"{origin}: the {op.strategy} of '{name}' ({dtype}) is not a number", "type_mismatch"
            )
        if decided is not None:
            return _integer_fill(name, column, dtype, decided)
        finite = column.cast(pl.Float64)
        finite = pl.when(finite.is_finite()).then(finite)
        statistic = (finite.mean() if op.strategy == "mean" else finite.median()).cast(dtype)
        if plan.streamed:
            statistic = literal_of(plan.decide(lambda lazy: lazy.select(statistic)), dtype)
    return _CellChange(name, column.fill_null(statistic), {"value": statistic})


def _integer_fill(name: str, column: pl.Expr, dtype: pl.DataType, decided: _IntegerStatistic) -> _CellChange:
    """An integer column filled with its mean or median: with the statistic as it is (34.333..., not 34) when that
    makes it Float64 (``_made_decimal``), else with the whole number, the column keeping its dtype (nothing to
    fill: the column as it is)."""
    if _made_decimal(decided):
        value = pl.lit(decided.value, dtype=pl.Float64)
        return _CellChange(name, column.cast(pl.Float64).fill_null(value), {"value": value})
    whole = decided.whole
    statistic = pl.lit(decided.value if whole is None else whole, dtype=pl.Float64 if whole is None else dtype)
    filled = column.fill_null(statistic) if decided.nulls and whole is not None else column
    return _CellChange(name, filled, {"value": statistic})


def _streamed_mode(lazy: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """The most frequent value of a column, ties to the smallest, as a count per value (bounded by the number of
    distinct values, where ``mode`` holds the column)."""
    count = f"__count_of_{name}__"
    counts = lazy.select(name).drop_nulls().group_by(name).agg(pl.len().alias(count))
    return counts.sort([count, name], descending=[True, False]).select(name).head(1)


def literal_of(collected: pl.DataFrame, dtype: pl.DataType) -> pl.Expr:
    """The one value of a collected aggregate (none: empty) as a literal of ``dtype``."""
    return pl.lit(collected.item() if collected.height else None, dtype=dtype)


def _text_columns(plan: _Plan, names: list[str] | None, origin: str) -> list[str]:
    """The columns of trim and case (None: every text column, categorical ones included)."""
    chosen = names if names is not None else [n for n in plan.data_columns if is_text(plan.schema[n])]
    _require(plan, chosen, origin)
    for name in chosen:
        if not is_text(plan.schema[name]):
            raise _invalid(origin, f"{origin}: column '{name}' is not text ({plan.schema[name]})", "type_mismatch")
    return list(dict.fromkeys(chosen))


def _text(plan: _Plan, name: str) -> pl.Expr:
    return as_text_column(name, plan.schema[name])[0]


def _trim(op: TrimText, plan: _Plan, index: int, origin: str) -> Compiled:
    columns = _text_columns(plan, op.columns, origin)
    changes = [_CellChange(name, _text(plan, name).str.strip_chars()) for name in columns]
    return _cell_step(plan, index, origin, changes, _changed_sentence("Trimmed whitespace from", columns), True)


def _case(op: ChangeCase, plan: _Plan, index: int, origin: str) -> Compiled:
    columns = _text_columns(plan, op.columns, origin)
    method = {"lower": "to_lowercase", "upper": "to_uppercase", "title": "to_titlecase"}[op.to]
    changes = [_CellChange(name, getattr(_text(plan, name).str, method)()) for name in columns]
    return _cell_step(plan, index, origin, changes, _changed_sentence(CASE_WORDS[op.to], columns), True)


def _changed_sentence(verb: str, columns: list[str]) -> Describe:
    def describe(per_column: dict[str, dict[str, Any]], rows: int) -> tuple[str, dict[str, Any]]:
        changed = _total(per_column, "changed")
        details = {
            "rows_affected": changed,
            "cells_changed": changed,
            "by_column": {name: int(values.get("changed") or 0) for name, values in per_column.items()},
        }
        return f"{verb} {_values_in(changed, columns)}", details

    return describe


def _replace(op: ReplaceValues, plan: _Plan, index: int, origin: str) -> Compiled:
    _require(plan, op.columns, origin)
    columns = list(dict.fromkeys(op.columns))
    changes = []
    for name in columns:
        column, dtype = as_text_column(name, plan.schema[name])
        if op.whole_value:
            old, new = literal(op.old, dtype, origin), literal(op.new, dtype, origin)
            matches = column.is_null() if op.old is None else column == old
            changes.append(_CellChange(name, pl.when(matches).then(new).otherwise(column)))
        else:
            if dtype != pl.String or not isinstance(op.old, str) or not op.old or not isinstance(op.new, str):
                raise _invalid(origin, f"{origin}: replacing text inside values needs text columns and text", "syntax")
            changes.append(_CellChange(name, column.str.replace_all(op.old, op.new, literal=True)))
    what = f"{show_value(op.old)} with {show_value(op.new)}"
    verb = f"Replaced {what} in" if op.whole_value else f"Replaced the text {what} in"
    return _cell_step(plan, index, origin, changes, _changed_sentence(verb, columns), keep_layout=True)


def _derive(op: DeriveColumn, plan: _Plan, index: int, origin: str) -> Compiled:
    if op.column in plan.schema:
        raise _invalid(origin, f"{origin}: there is already a column '{op.column}'", "duplicate_column")
    overflows: list[pl.Expr] = []
    divisions: list[pl.Expr] = []
    infinities: list[pl.Expr] = []
    tree = parse_expression(op.expression)
    expr = _widest(_expression(tree, plan, origin, overflows, divisions, infinities), plan, origin, overflows)
    extras = {"overflows": pl.any_horizontal(overflows).sum()} if overflows else {}
    if divisions:  # the rows a division by zero left empty (not those a coalesce gave a value)
        extras["divisions_by_zero"] = _rows_emptied(divisions, expr)
    if infinities:  # likewise the rows a result beyond Float64 left empty
        extras["infinities"] = _rows_emptied(infinities, expr)

    def describe(per_column: dict[str, dict[str, Any]], rows: int) -> tuple[str, dict[str, Any]]:
        empty = int(per_column[op.column]["nulls"])
        by_zero = int(per_column[op.column].get("divisions_by_zero") or 0)
        beyond = int(per_column[op.column].get("infinities") or 0)
        sentence = f"Added column {op.column} = {op.expression}"
        if empty:
            notes = [f"{empty:,} empty {_plural(empty, 'value')}"]
            if by_zero:
                notes.append(f"{by_zero:,} of them {_plural(by_zero, 'division')} by zero")
            if beyond:
                notes.append(f"{beyond:,}{'' if by_zero else ' of them'} too large for a decimal number")
            sentence += f" ({', '.join(notes)})"
        details: dict[str, Any] = {"rows_affected": rows - empty, "cells_changed": rows - empty, "empty_values": empty}
        if divisions:
            details["divisions_by_zero"] = by_zero
        if beyond:
            details["overflows_to_infinity"] = beyond
        overflowed = int(per_column[op.column].get("overflows") or 0)
        if overflowed:
            details["overflow"] = {"column": op.column, "expression": op.expression, "count": overflowed}
        return sentence, details

    return _cell_step(plan, index, origin, [_CellChange(op.column, expr, extras)], describe, keep_layout=False)


def _rows_emptied(flags: list[pl.Expr], expr: pl.Expr) -> pl.Expr:
    """The rows where one of ``flags`` holds and ``expr`` is empty, counted over every row (an expression of
    literals only, ``1 / 0``, is one value for all the rows: it counted 1)."""
    every_row = pl.repeat(False, pl.len())
    return (pl.any_horizontal([*flags, every_row]) & expr.is_null()).sum()


def _widest(expr: pl.Expr, plan: _Plan, origin: str, overflows: list[pl.Expr]) -> pl.Expr:
    """A derived whole number is Int64 and a fraction Float64, whatever the operands' widths (as resolution
    predicts: ``year(d)`` is Int64, an Int32 column times 2 too). A whole number Int64 cannot hold (a UInt64 column's
    largest values) is flagged in ``overflows``, as an exact operation's is."""
    dtype = _dtype_of(expr, plan, origin)
    if dtype.is_integer() and dtype != pl.Int64:
        return _narrowed(expr, expr.is_between(INT64_MIN, INT64_MAX), overflows)
    if dtype.is_float() and dtype != pl.Float64:
        return expr.cast(pl.Float64)
    return expr


def _dtype_of(expr: pl.Expr, plan: _Plan, origin: str) -> pl.DataType:
    """The dtype ``expr`` gives on the current columns (from an empty frame: nothing runs)."""
    try:
        return pl.LazyFrame(schema=plan.schema).select(expr.alias("derived")).collect_schema()["derived"]
    except pl.exceptions.PolarsError as error:
        raise _invalid(origin, f"{origin}: cannot be applied ({_first_line(error)})", "type_mismatch") from None


def _expression(
    node: Node,
    plan: _Plan,
    origin: str,
    overflows: list[pl.Expr],
    divisions: list[pl.Expr],
    infinities: list[pl.Expr],
) -> pl.Expr:
    """A Polars expression for a tree of the restricted grammar, node by node (nothing is evaluated). Each integer
    operation that could overflow adds to ``overflows`` where its exact result does not fit Int64 (``_exact``); each
    ``/`` and ``%`` gives an empty value where its divisor is zero, and adds to ``divisions`` where that emptied a
    value (the dividend was not empty); each other ``+ - * /`` gives an empty value where its result is an infinity
    that its operands were not (beyond Float64: ``1e308 * 10``), and adds to ``infinities`` there."""
    if "col" in node:
        _require(plan, [node["col"]], origin)
        return _text(plan, node["col"])
    if "lit" in node:
        return _expression_literal(node["lit"])
    args = [_expression(arg, plan, origin, overflows, divisions, infinities) for arg in node["args"]]
    name = node.get("op") or node["fn"]
    arg_dtypes = [_dtype_of(arg, plan, origin) for arg in args]
    if any(isinstance(dtype, pl.Decimal) for dtype in arg_dtypes):
        scale = exact_decimal_scale(name, [str(dtype) for dtype in arg_dtypes])
        if scale is not None:
            return _exact_decimal(name, args, scale, infinities)
        if name != "concat":  # any other operation reads a decimal as Float64 (as resolution types it)
            args = [
                arg.cast(pl.Float64) if isinstance(d, pl.Decimal) else arg
                for arg, d in zip(args, arg_dtypes, strict=True)
            ]
    dtypes = _integer_dtypes(args, plan, origin) if name in EXACT_INTEGER_OPERATIONS else None
    if dtypes is not None:
        return _exact(name, args, dtypes, overflows)
    if name in DIVISIONS:
        dividend, divisor = args
        by_zero = (divisor == 0).fill_null(False)
        divisions.append(by_zero & dividend.is_not_null())
        quotient = pl.when(~by_zero).then(_arithmetic(name, args))
        return _finite(quotient, args, infinities) if name == "/" else quotient
    if "op" in node:
        result = _arithmetic(node["op"], args)
        return _finite(result, args, infinities) if name in FLOAT_OVERFLOWS else result
    return _function(node["fn"], args, node["args"], plan)


def _exact_decimal(name: str, args: list[pl.Expr], scale: int, infinities: list[pl.Expr]) -> pl.Expr:
    """``+ - neg abs`` of Decimal columns (and whole numbers) as Decimal(38, scale), exactly (Polars' decimal
    arithmetic; its ``*`` and ``/`` round to the operands' scale, so they are Float64 instead). Where an operand or
    the result is beyond what Decimal(38, scale) holds (Polars would fail the whole run), the value is empty and
    ``infinities`` gains the row, as a Float64 result beyond Float64 is: told by the Float64 estimate, with a margin
    of 1e-12 (relative) far above its error, so a value that close to the limit counts as beyond it."""
    target = pl.Decimal(38, scale)
    limit = 10.0 ** (38 - scale) * (1 - 1e-12)
    floats = [arg.cast(pl.Float64) for arg in args]
    estimate = _decimal_operation(name, floats)
    fits = pl.all_horizontal([(value.abs() < limit).fill_null(True) for value in [*floats, estimate]])
    infinities.append(~fits)
    return _decimal_operation(name, [pl.when(fits).then(arg).cast(target) for arg in args]).cast(target)


def _decimal_operation(name: str, args: list[pl.Expr]) -> pl.Expr:
    if name == "abs":
        return args[0].abs()
    return _arithmetic(name, args)


FLOAT_OVERFLOWS: Final = frozenset({"+", "-", "*", "/"})
"""The operations whose decimal result may be beyond Float64 (an infinity) although their operands are not."""


def _finite(result: pl.Expr, args: list[pl.Expr], infinities: list[pl.Expr]) -> pl.Expr:
    """``result``, empty where it is an infinity none of its operands was (an overflow, which ``infinities``
    gains); an infinity already in the data stays one (``is_infinite`` is false for whole numbers)."""
    given = pl.any_horizontal([arg.cast(pl.Float64).is_infinite().fill_null(False) for arg in args])
    beyond = (result.is_infinite() & ~given).fill_null(False)
    infinities.append(beyond)
    return pl.when(~beyond).then(result)


def _expression_literal(value: Any) -> pl.Expr:
    if isinstance(value, bool):
        return pl.lit(value, dtype=pl.Boolean)
    if isinstance(value, int):
        return pl.lit(value, dtype=pl.Int64)
    if isinstance(value, float):
        return pl.lit(value, dtype=pl.Float64)
    if isinstance(value, str):
        return pl.lit(value, dtype=pl.String)
    return pl.lit(None)


def _arithmetic(op: str, args: list[pl.Expr]) -> pl.Expr:
    if op == "neg":
        return -args[0]
    left, right = args
    operators: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "%": lambda a, b: a % b,
    }
    return operators[op](left, right)


DIVISIONS: Final = frozenset({"/", "%"})
"""The operations whose zero divisor gives an empty value (Polars gives an infinity or NaN for ``/``, NaN for a
float ``%``)."""
EXACT_INTEGER_OPERATIONS: Final = frozenset({"+", "-", "*", "neg", "abs"})
"""The integer operations that Polars computes in the operands' width, wrapping around on overflow
(``9223372036854775807 * 2`` is -2, ``abs`` of the minimum is the minimum): they are computed exactly instead."""
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
INT128_SAFE: Final = 2.0**100  # a product whose float estimate is below this cannot have wrapped around Int128


def _integer_dtypes(args: list[pl.Expr], plan: _Plan, origin: str) -> list[pl.DataType] | None:
    """The operands' dtypes when every one is an integer (or empty) and one at least is an integer; else None."""
    dtypes = [_dtype_of(arg, plan, origin) for arg in args]
    if all(d.is_integer() or d == pl.Null for d in dtypes) and any(d.is_integer() for d in dtypes):
        return dtypes
    return None


def _exact(name: str, args: list[pl.Expr], dtypes: list[pl.DataType], overflows: list[pl.Expr]) -> pl.Expr:
    """An integer ``+ - * neg abs`` as Int64, with a flag in ``overflows`` where its exact result does not fit:
    the run then fails (_check_invalid). Resolution promised Int64 for the column and later steps rely on it, so
    a wider result is refused rather than kept.

    The exact result is computed in Int128, where operands that fit Int64 cannot overflow, for the flag only: the
    value is Int64 arithmetic (four times faster), equal to the exact result wherever that fits. A UInt64 operand
    may not fit Int64: then the value is the exact result narrowed, and a product's float estimate tells whether
    it overflowed Int128 too."""
    beyond_int64 = any(dtype in (pl.UInt64, pl.Int128) for dtype in dtypes)  # an operand Int64 may not hold
    if not beyond_int64 and name in {"neg", "abs"}:
        operand = args[0].cast(pl.Int64)
        overflows.append((operand == INT64_MIN).fill_null(False))  # the only one: 10 times cheaper than Int128
        return _integer_operation(name, [operand], pl.Int64)
    wide = [arg.cast(pl.Int128) for arg in args]
    exact = _integer_operation(name, wide, pl.Int128)
    fits = exact.is_between(INT64_MIN, INT64_MAX)
    if not beyond_int64:
        overflows.append((exact.is_not_null() & ~fits).fill_null(False))
        return _integer_operation(name, [arg.cast(pl.Int64) for arg in args], pl.Int64)
    if name in {"*", "+", "-"} and len(args) == 2:  # Int128 itself may overflow: a float estimate says when  # noqa: PLR2004
        estimate = _arithmetic(name, [arg.cast(pl.Float64) for arg in args])
        fits = fits & (estimate.abs() < INT128_SAFE)
    return _narrowed(exact, fits, overflows)


def _integer_operation(name: str, args: list[pl.Expr], dtype: type[pl.DataType]) -> pl.Expr:
    if name == "neg":
        return pl.lit(0, dtype=dtype) - args[0]  # Polars has no Int128 negation
    if name == "abs":
        return args[0].abs()
    return _arithmetic(name, args)


def _narrowed(result: pl.Expr, fits: pl.Expr, overflows: list[pl.Expr]) -> pl.Expr:
    """``result`` as Int64 where it ``fits``, empty elsewhere; ``overflows`` gains where it did not fit."""
    overflows.append((result.is_not_null() & ~fits).fill_null(False))
    return pl.when(fits).then(result).cast(pl.Int64)


def _function(name: str, args: list[pl.Expr], nodes: list[Node], plan: _Plan) -> pl.Expr:
    first = args[0] if args else pl.lit(None)
    if name == "round":
        digits = int(nodes[1]["lit"]) if len(nodes) > 1 else 0
        return first.round(digits, mode="half_away_from_zero")
    if name in {"abs", "floor", "ceil"}:
        return getattr(first, name)()
    if name in {"lower", "upper", "title"}:
        return getattr(first.str, {"lower": "to_lowercase", "upper": "to_uppercase", "title": "to_titlecase"}[name])()
    if name == "trim":
        return first.str.strip_chars()
    if name == "length":
        return first.str.len_chars().cast(pl.Int64)
    if name == "concat":
        return _concat([_as_text(arg, node, plan) for arg, node in zip(args, nodes, strict=True)], nodes)
    if name == "coalesce":
        return pl.coalesce(args)
    return getattr(first.dt, name)()  # year, month, day


def _concat(texts: list[pl.Expr], nodes: list[Node]) -> pl.Expr:
    """``concat``: the arguments' text joined, skipping the empty ones (missing, or empty text), as Excel's TEXTJOIN
    with ignore_empty and SQL's concat_ws do; missing when every argument that is not written text is empty. A text
    written between two such arguments (``concat(first, ' ', middle, ' ', last)``) is a separator that follows the
    argument before it: it is written when that argument has a value and a later one has too, so an empty part
    leaves neither a doubled, nor a leading, nor a trailing separator. Text written before the first or after the
    last argument is written whenever the result is not missing (``concat('ID-', id)``)."""
    written = [i for i, node in enumerate(nodes) if not ("lit" in node and node["lit"] is not None)]
    if not written:  # only written text: a constant
        return pl.concat_str(texts)
    values = {i: pl.when(texts[i] != "").then(texts[i]) for i in written}  # empty text is skipped as missing is
    present = {i: values[i].is_not_null() for i in written}
    pieces: list[pl.Expr] = []
    for i, text in enumerate(texts):
        if i in values:
            pieces.append(values[i])
            continue
        before, after = [j for j in written if j < i], [j for j in written if j > i]
        if before and after:
            pieces.append(pl.when(present[before[-1]] & pl.any_horizontal([present[j] for j in after])).then(text))
        else:
            pieces.append(text)
    return pl.when(pl.any_horizontal(list(present.values()))).then(pl.concat_str(pieces, ignore_nulls=True))


def _as_text(expr: pl.Expr, node: Node, plan: _Plan) -> pl.Expr:
    """An argument of ``concat`` as text: a column as the output file writes it (dates in their layout)."""
    if "col" in node:
        return text_of(expr, plan.schema[node["col"]], plan.layouts.get(node["col"]))
    return expr.cast(pl.String)


# ---------------------------------------------------------------------------------------------------------
# words


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _rows(count: int) -> str:
    return f"{count:,} {_plural(count, 'row')}"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


def _values_in(count: int, columns: Sequence[str]) -> str:
    """``12 email values`` for one column, ``12 values in email and name`` for several."""
    if len(columns) == 1:
        return f"{count:,} {columns[0]} {_plural(count, 'value')}"
    return f"{count:,} {_plural(count, 'value')} in {_names(columns)}"


def _names(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 2:  # noqa: PLR2004
        return " and ".join(names)
    return ", ".join(names[:-1]) + f" and {names[-1]}"


_COMPILERS: dict[type, Callable[[Any, _Plan, int, str], Compiled]] = {
    FilterRows: _filter,
    DropColumns: _drop,
    KeepColumns: _keep,
    RenameColumns: _rename,
    ReorderColumns: _reorder,
    CastColumns: _cast,
    FillNulls: _fill,
    Deduplicate: _deduplicate,
    SortRows: _sort,
    DeriveColumn: _derive,
    TrimText: _trim,
    ChangeCase: _case,
    ReplaceValues: _replace,
}
