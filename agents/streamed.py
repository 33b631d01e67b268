"""The data tools' chain on a primary too large for memory: the data flows from agent to agent as Parquet spills.

The primary is read into a typed spill (agents.spill) and numbered (``ROW_INDEX_COLUMN``, lazily). Each agent that
streams (its run takes ``AgentInputs.scan``, see :data:`STREAMED_AGENTS`) gets a scan of the current data and
returns its output as a lazy plan (``AgentResult.scan``) with the rows it removed (``removed``); the chain sinks the
plan to the next spill, so that no plan grows from agent to agent and no data is held between them. Memory stays
bounded by what each query needs (a few batches of rows, per-column aggregates), never by the file.

Each step keeps the accounting of the in-memory chain (agents.chain ``_DataFlow``), computed by streaming queries:
rows before and after, per column dtype, nulls, cells changed and values invented (the kept rows of before and
after zipped by position: an agent removes rows, never moves them; by their row index otherwise), and the removed
rows with the values the input held (read from the input's spill, kept for that until the run ends), sunk to a
quarantine part. An agent that does not stream does not run (its envelope says why; it is not charged), and the data
passes through it unchanged.

Without ``audit`` (transform-my-data) removed rows are not quarantined and cells are not compared: the agent's own
records say what it did, as in memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import polars as pl

from agents.as_read import AS_READ_SUFFIX, NOTHING, AsRead, as_written
from agents.envelope import (
    AS_READ_ARTIFACT,
    RECIPE_ARTIFACT,
    REMOVAL_REASON,
    REMOVED_ROWS_SCHEMA,
    ROW_INDEX_COLUMN,
    TEXT_LAYOUTS_ARTIFACT,
    AgentInputs,
    AgentResult,
    ChainContext,
)
from agents.layouts import ISO_DATETIME, Layout, as_text, needs_text

STREAMED_AGENTS: Final = frozenset(
    {
        "searcher",
        "aggregator",
        "transformer",
        "type-fixer",
        "field-standardization",
        "duplicate-resolver",
        "null-handler",
        "outlier-remover",
        "cleanse-previewer",
        "quarantine-agent",
        "cleanse-writeback",
    }
)
"""The agents whose run takes a scan (``AgentInputs.scan``) of a primary too large for memory."""
SPILL_COMPRESSION: Final = "lz4"


def data_names(schema: Mapping[str, pl.DataType]) -> list[str]:
    return [name for name in schema if name != ROW_INDEX_COLUMN]


def step_facts(
    step: int,
    agent_id: str,
    agent_name: str,
    status: str,
    before: tuple[Mapping[str, pl.DataType], Mapping[str, int], int],
    after: tuple[Mapping[str, pl.DataType], Mapping[str, int], int],
    cells: tuple[list[str], list[int], list[int]],
    summary_metrics: dict[str, Any],
    duration_ms: int,
) -> dict[str, Any]:
    """A step record (agents.chain ``step_record``) from its facts: (schema, null counts, rows) before and after, and
    per common column the cells changed and the values invented."""
    (before_schema, nulls_before, rows_before), (after_schema, nulls_after, rows_after) = before, after
    common, changed, filled = cells
    position = {name: index for index, name in enumerate(common)}
    columns: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys([*data_names(before_schema), *data_names(after_schema)]):
        columns[name] = {
            "dtype_before": str(before_schema[name]) if name in before_schema else None,
            "dtype_after": str(after_schema[name]) if name in after_schema else None,
            "nulls_before": nulls_before.get(name),
            "nulls_after": nulls_after.get(name),
            "cells_changed": changed[position[name]] if name in position else None,
            "values_invented": filled[position[name]] if name in position else None,
        }
    return {
        "step": step,
        "agent_id": agent_id,
        "agent_name": agent_name,
        "status": status,
        "rows_before": rows_before,
        "rows_after": rows_after,
        "rows_removed": rows_before - rows_after,
        "columns_before": data_names(before_schema),
        "columns_after": data_names(after_schema),
        "columns": columns,
        "cells_changed_total": sum(changed),
        "values_invented_total": sum(filled),
        "duration_ms": duration_ms,
        "summary_metrics": summary_metrics,
    }


def changed_cell_exprs(
    common: Sequence[str], old_schema: Mapping[str, pl.DataType], new_schema: Mapping[str, pl.DataType]
) -> list[pl.Expr]:
    """Over a frame of ``o:<column>`` and ``n:<column>`` pairs: per column, the cells that differ (compared as the CSV
    writes them when the dtype changed) and those empty before and holding a value after, as ``c<i>``, ``f<i>``."""
    exprs = []
    for index, name in enumerate(common):
        a, b = pl.col(f"o:{name}"), pl.col(f"n:{name}")
        if old_schema[name] != new_schema[name]:  # compared as cleaned_data.csv writes them
            a, b = as_text(f"o:{name}", old_schema[name]), as_text(f"n:{name}", new_schema[name])
        exprs.append(a.ne_missing(b).sum().alias(f"c{index}"))
        exprs.append((a.is_null() & b.is_not_null()).sum().alias(f"f{index}"))
    return exprs


class StreamFlow:
    """The state between agents: the current data (a scan of the latest spill), its rows, schema and null counts, the
    step records, the quarantine parts and the artifacts."""

    def __init__(
        self,
        scan: pl.LazyFrame,
        rows: int,
        work_dir: Path,
        layouts: Mapping[str, Layout],
        *,
        audit: bool = True,
        spill: Path | None = None,
        as_read: AsRead = NOTHING,
    ) -> None:
        """``scan``: the data (``rows`` rows) with ``ROW_INDEX_COLUMN``; ``spill``: the file it reads, deleted once an
        agent's output replaces it, unless ``audit``: the removed rows are quarantined with its values, the input's
        (``scan`` read in ``layouts``), so it stays (on disk, scanned for those rows only) until the run ends.
        ``as_read``: the input's cells its layouts write otherwise, given back by every data file
        (agents.as_read)."""
        self.as_read = as_read
        self.work_dir = work_dir
        self.current = scan
        self._spill = spill  # the file ``current`` reads, deleted when the next spill replaces it
        self._kept_spill = spill if audit else None  # the input's spill, which quarantined rows are read from
        self.rows = rows
        self.schema: dict[str, pl.DataType] = dict(scan.collect_schema())
        self._input_schema = self.schema  # quarantine.csv's columns are the input's
        self.layouts: dict[str, Layout] = dict(layouts)
        self._original = (scan, self.schema, self.layouts) if audit else None  # the input, as it is read
        self.audit = audit
        self.steps: list[dict[str, Any]] = []
        self.artifacts: dict[str, Any] = {}
        self.outputs: dict[str, pl.DataFrame] = {}  # none: no streamed agent writes a named table
        self.quarantine_parts: list[Path] = []
        self.rows_quarantined = 0
        self.original_nulls = self.nulls = _null_counts(scan, self.schema) if audit else {}

    @property
    def rows_out(self) -> int:
        return self.rows

    @property
    def data_schema(self) -> dict[str, pl.DataType]:
        return {name: self.schema[name] for name in data_names(self.schema)}

    def inputs(self, name: str, context: ChainContext) -> AgentInputs:
        """What the next agent gets: a scan of the current data and a directory of its own for its spills."""
        directory = self.work_dir / f"agent-{len(self.steps) + 1}"
        directory.mkdir(exist_ok=True)
        return AgentInputs(
            pl.DataFrame(schema=self.schema),
            name,
            context=context,
            artifacts=dict(self.artifacts),
            text_layouts=self.layouts,
            scan=self.current,
            rows=self.rows,
            work_dir=directory,
        )

    def accept(self, agent_id: str, name: str, result: AgentResult | None, duration_ms: int) -> None:
        """Record the agent's step and make its output (sunk to a spill) the current data. Writing the output runs
        the agent's plan: an error there is raised before anything is recorded (the chain then records the agent as
        failed, with nothing changed)."""
        status = "success" if result is not None and result.envelope.status == "success" else "error"
        metrics = result.envelope.summary_metrics if result is not None else {}
        before_schema, before_nulls, before_rows = self.schema, self.nulls, self.rows
        spill = self.work_dir / f"step-{len(self.steps) + 1}.parquet"
        try:
            if result is not None and result.scan is not None:
                result.scan.sink_parquet(spill, compression=SPILL_COMPRESSION, engine="streaming")
            if result is not None and AS_READ_ARTIFACT in result.artifacts:  # a file of the agent's: kept
                kept = self.work_dir / f"step-{len(self.steps) + 1}.{AS_READ_SUFFIX}"
                result.artifacts[AS_READ_ARTIFACT] = result.artifacts[AS_READ_ARTIFACT].kept_in(kept)
        except BaseException:
            spill.unlink(missing_ok=True)
            raise
        finally:  # the agent's own spills are read by no one once its output is written
            shutil.rmtree(self.work_dir / f"agent-{len(self.steps) + 1}", ignore_errors=True)
        if not self.audit:
            self._take_artifacts(result)
            self._accept_unaudited(agent_id, name, status, result, spill, duration_ms)
            return
        if result is None or result.scan is None:  # failed, or did not run, or changed nothing
            self._take_artifacts(result)
            facts = (before_schema, before_nulls, before_rows)
            common = data_names(before_schema)
            zeros = [0] * len(common)
            self.steps.append(
                self._record(agent_id, name, status, facts, facts, (common, zeros, zeros), metrics, duration_ms)
            )
            return
        # Everything is checked and compared first, the flow changed only at the end: a failure on the way (the chain
        # then records the agent as failed) leaves no trace of the agent's output.
        after = pl.scan_parquet(spill)
        after_schema = dict(after.collect_schema())
        if ROW_INDEX_COLUMN not in after_schema:
            raise RuntimeError(f"{agent_id} dropped the row index column")
        after_rows = int(after.select(pl.len()).collect().item())
        removed = self._removed(agent_id, after, result.removed)
        common = [c for c in data_names(before_schema) if c in after_schema]
        aligned = before_rows - removed.height == after_rows  # only removals: the kept rows line up by position
        artifacts = result.artifacts
        written = (
            dict(artifacts.get(TEXT_LAYOUTS_ARTIFACT, self.layouts)),
            self.as_read.merged(artifacts.get(AS_READ_ARTIFACT, NOTHING)),
        )
        after_nulls, changed, filled = self._compare(after, after_schema, common, removed, aligned, written)
        if removed.height:
            self._quarantine(agent_id, removed)
        self._take_artifacts(result)
        self.steps.append(
            self._record(
                agent_id,
                name,
                status,
                (before_schema, before_nulls, before_rows),
                (after_schema, after_nulls, after_rows),
                (common, changed, filled),
                metrics,
                duration_ms,
            )
        )
        self._advance(spill, after, after_schema, after_rows)
        self.nulls = after_nulls

    def _take_artifacts(self, result: AgentResult | None) -> None:
        """The agent's artifacts, and the layouts of the columns it typed from text (type-fixer, transformer)."""
        if result is not None:
            self.artifacts.update(result.artifacts)
            if TEXT_LAYOUTS_ARTIFACT in result.artifacts:
                self.layouts = dict(result.artifacts[TEXT_LAYOUTS_ARTIFACT])
            if AS_READ_ARTIFACT in result.artifacts:  # their cells no layout writes back, as they were written
                self.as_read = self.as_read.merged(result.artifacts[AS_READ_ARTIFACT])
            if RECIPE_ARTIFACT in result.artifacts:  # the cells as read follow their column's renames
                self.as_read = self.as_read.after_renames(result.artifacts[RECIPE_ARTIFACT])

    def _record(self, agent_id: str, name: str, status: str, *facts: Any) -> dict[str, Any]:
        return step_facts(len(self.steps) + 1, agent_id, name, status, *facts)

    def _accept_unaudited(
        self, agent_id: str, name: str, status: str, result: AgentResult | None, spill: Path, duration_ms: int
    ) -> None:
        """agents.chain ``_DataFlow._accept_unaudited``: the agent's own figures."""
        metrics = result.envelope.summary_metrics if result is not None else {}
        after_schema, after_rows = self.schema, self.rows
        if result is not None and result.scan is not None:
            after_schema = dict(pl.scan_parquet(spill).collect_schema())
            after_rows = int(pl.scan_parquet(spill).select(pl.len()).collect().item())
        self.steps.append(
            {
                "step": len(self.steps) + 1,
                "agent_id": agent_id,
                "agent_name": name,
                "status": status,
                "rows_before": self.rows,
                "rows_after": after_rows,
                "rows_removed": self.rows - after_rows,
                "columns_before": data_names(self.schema),
                "columns_after": data_names(after_schema),
                "columns": {},
                "cells_changed_total": int(metrics.get("cells_changed") or 0),
                "values_invented_total": int(metrics.get("values_filled") or 0),
                "duration_ms": duration_ms,
                "summary_metrics": metrics,
            }
        )
        if result is not None and result.scan is not None:
            self._advance(spill, pl.scan_parquet(spill), after_schema, after_rows)

    def _advance(self, spill: Path, after: pl.LazyFrame, schema: dict[str, pl.DataType], rows: int) -> None:
        """The spill becomes the current data; the one before it, read by no one any more, is deleted."""
        if self._spill is not None and self._spill != self._kept_spill:
            self._spill.unlink(missing_ok=True)
        self._spill, self.current, self.schema, self.rows = spill, after, schema, rows

    def _removed(self, agent_id: str, after: pl.LazyFrame, listed: pl.DataFrame | None) -> pl.DataFrame:
        """The rows the agent removed (found by their row index: a streaming anti-join of the two indexes), each with
        the reason the agent gave, else "removed by <agent>"; a row it listed but kept is not among them. As in
        memory (agents.chain ``_DataFlow._removed``)."""
        gone = (
            self.current.select(ROW_INDEX_COLUMN)
            .join(after.select(ROW_INDEX_COLUMN), on=ROW_INDEX_COLUMN, how="anti")
            .collect(engine="streaming")
        )
        return removed_with_reasons(agent_id, gone, listed)

    def _quarantine(self, agent_id: str, removed: pl.DataFrame) -> None:
        """The removed rows with the values the input held (their values when removed if the input lacks one of them:
        a row an agent added), as the CSV writes them, sunk to a quarantine part. The input's spill is filtered to
        those rows (a streaming scan, the row indexes as a set), as agents.chain ``_DataFlow`` does in memory."""
        part = self.work_dir / f"quarantine-{len(self.steps) + 1}.parquet"
        sources = [(self.current, self.schema, self.layouts)]
        if self._original is not None:
            sources.insert(0, self._original)
        index = removed[ROW_INDEX_COLUMN].implode()
        for scan, schema, layouts in sources:
            rows = scan.filter(pl.col(ROW_INDEX_COLUMN).is_in(index)).join(
                removed.lazy(), on=ROW_INDEX_COLUMN, how="left", maintain_order="left"
            )
            rows = self.as_read.written(rows, layouts)
            written = rows.collect_schema()
            row_index, agent, reason = quarantine_names(data_names(self._input_schema))
            rows.select(
                pl.col(ROW_INDEX_COLUMN).alias(row_index),
                pl.lit(agent_id).alias(agent),
                pl.col(REMOVAL_REASON).alias(reason),
                *(as_text(c, written[c], layouts.get(c)) for c in data_names(schema)),
            ).sink_parquet(part, compression=SPILL_COMPRESSION, engine="streaming")
            if pl.scan_parquet(part).select(pl.len()).collect().item() == removed.height:
                break
        self.quarantine_parts.append(part)
        self.rows_quarantined += removed.height

    def _compare(
        self,
        after: pl.LazyFrame,
        after_schema: Mapping[str, pl.DataType],
        common: list[str],
        removed: pl.DataFrame,
        aligned: bool,
        written: tuple[Mapping[str, Layout], AsRead] = ({}, NOTHING),
    ) -> tuple[dict[str, int], list[int], list[int]]:
        """The after data's null counts, and per common column the cells changed and values invented in the kept rows.
        When the agent only removed rows (``aligned``), before's kept rows and after are zipped by position in one
        streaming pass (their row indexes checked in it); otherwise, or when the indexes do not line up (rows moved),
        they are matched by row index with a join (which holds the data: no clean agent moves rows). A column whose
        type changed is compared as the data files write it: in its layouts and cells as read before and after
        (``written``: after's), as in memory (agents.chain ``_DataFlow.accept``)."""
        old = self.current
        if removed.height:
            old = old.filter(~pl.col(ROW_INDEX_COLUMN).is_in(removed[ROW_INDEX_COLUMN].implode()))
        retyped = [c for c in common if self.schema[c] != after_schema[c]]
        old_schema, new_schema, new = self.schema, after_schema, after
        if retyped:
            old = as_written(old, retyped, self.layouts, self.as_read)
            new = as_written(after, retyped, *written)
            old_schema = {**self.schema, **dict.fromkeys(retyped, pl.String())}
            new_schema = {**after_schema, **dict.fromkeys(retyped, pl.String())}
        cells = changed_cell_exprs(common, old_schema, new_schema)
        row: dict[str, Any] = {"misaligned": 1}
        if aligned:
            names = [ROW_INDEX_COLUMN, *common]
            pair = pl.concat(
                [
                    old.select(pl.col(c).alias(f"o:{c}") for c in names),
                    new.select(pl.col(c).alias(f"n:{c}") for c in names),
                ],
                how="horizontal",
            )
            index = pl.col(f"o:{ROW_INDEX_COLUMN}").ne_missing(pl.col(f"n:{ROW_INDEX_COLUMN}"))
            nulls = [pl.col(f"n:{c}").null_count().alias(f"z:{c}") for c in common]
            row = (
                pair.select(index.sum().alias("misaligned"), *nulls, *cells)
                .collect(engine="streaming")
                .row(0, named=True)
            )
        if row["misaligned"]:
            matched = old.join(new, on=ROW_INDEX_COLUMN, how="inner", suffix="::after")
            pair = matched.select(
                *(pl.col(c).alias(f"o:{c}") for c in common),
                *(pl.col(f"{c}::after").alias(f"n:{c}") for c in common),
            )
            row = pair.select(cells).collect(engine="streaming").row(0, named=True)
            after_nulls = _null_counts(after, after_schema)
        else:
            extra = [c for c in data_names(after_schema) if c not in common]
            found = {c: int(row[f"z:{c}"]) for c in common}
            found |= _null_counts(after.select(extra), {c: after_schema[c] for c in extra}) if extra else {}
            after_nulls = {c: found[c] for c in data_names(after_schema)}
        changed = [int(row[f"c{i}"]) for i in range(len(common))]
        filled = [int(row[f"f{i}"]) for i in range(len(common))]
        return after_nulls, changed, filled

    def write_data(self, path: Path) -> None:
        """The current data without the row index, as the CSV writes it (dates read from text in their layout)."""
        sink_csv(self.as_read.written(self.current, self.layouts).select(data_names(self.schema)), self.layouts, path)

    def write_quarantine(self, path: Path, columns: Sequence[str]) -> None:
        """Every removed row (row index, agent, reason, the input's columns as text), in the order removed."""
        row_index, agent, reason = quarantine_names(columns)
        schema = {row_index: pl.Int64, agent: pl.String, reason: pl.String} | dict.fromkeys(columns, pl.String)
        if not self.quarantine_parts:
            pl.DataFrame(schema=schema).write_csv(path)
            return
        parts = pl.concat([pl.scan_parquet(part) for part in self.quarantine_parts], how="diagonal_relaxed")
        present = set(parts.collect_schema())
        parts.select(pl.col(c) if c in present else pl.lit(None, pl.String).alias(c) for c in schema).sink_csv(
            path, engine="streaming"
        )


def removed_with_reasons(agent_id: str, gone: pl.DataFrame, listed: pl.DataFrame | None) -> pl.DataFrame:
    """The rows ``gone`` (their row index) with the reason the agent ``listed`` for each, else "removed by <agent>";
    a listed row that is not gone is left out. Sorted by row index; the reason is named ``REMOVAL_REASON`` (a data
    column may be called ``reason``)."""
    listed = pl.DataFrame(schema=REMOVED_ROWS_SCHEMA) if listed is None else listed.select(list(REMOVED_ROWS_SCHEMA))
    listed = listed.join(gone, on=ROW_INDEX_COLUMN, how="semi").unique(ROW_INDEX_COLUMN, keep="first")
    unlisted = gone.join(listed, on=ROW_INDEX_COLUMN, how="anti").with_columns(
        pl.lit(f"removed by {agent_id}").alias("reason")
    )
    removed = pl.concat([listed, unlisted.select(list(REMOVED_ROWS_SCHEMA))]).sort(ROW_INDEX_COLUMN)
    return removed.rename({"reason": REMOVAL_REASON})


QUARANTINE_COLUMNS = ("row_index", "agent_id", "reason")


def quarantine_names(columns: Sequence[str]) -> tuple[str, str, str]:
    """quarantine.csv's first three columns (row index, agent, reason): ``row_index``, ``agent_id`` and ``reason``,
    each with underscores put before it while the input has a column of that name."""
    names = []
    for name in QUARANTINE_COLUMNS:
        while name in columns:
            name = f"_{name}"
        names.append(name)
    return names[0], names[1], names[2]


def sink_csv(scan: pl.LazyFrame, layouts: Mapping[str, Layout], path: Path) -> None:
    """agents.chain ``_write_frame_csv`` of a plan too large for memory, on Polars' streaming engine."""
    texts = [as_text(c, t, layouts.get(c)) for c, t in scan.collect_schema().items() if needs_text(t, layouts.get(c))]
    scan.with_columns(texts).sink_csv(path, datetime_format=ISO_DATETIME, engine="streaming")


def _null_counts(scan: pl.LazyFrame, schema: Mapping[str, pl.DataType]) -> dict[str, int]:
    names = data_names(schema)
    if not names:
        return {}
    row = scan.select(pl.col(c).null_count() for c in names).collect(engine="streaming").row(0)
    return dict(zip(names, (int(value) for value in row), strict=True))
