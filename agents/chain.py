"""Run a tool's chain of agents on local input files: the one entry point a worker runs in its process pool.

Order of work: validate parameters (nothing is read before they are known to be good), parse each input
once, run the agents in order, write the outputs. An input or parameter error propagates (the task
fails); any other failure of an agent becomes that agent's ``error`` envelope and the result is
``partial``, and the chain goes on. Past the soft deadline (``soft_deadline``) the progress callback an
agent calls raises ``SoftTimeLimitExceeded``: that agent is recorded as failed, the rest are skipped for the
same reason, and the reports of what ran are still written (the result is ``partial``). The caller is told
each agent that really starts (``on_agent_start``, before it runs: the worker debits its cost then), never
one skipped for the soft limit or the large-file path, nor one that needs a baseline the inputs lack (it
runs only to say it was skipped, free). Everything
returned is plain JSON-serialisable data, and every exception raised pickles, so both cross the process
boundary.

Data-changing tools (clean-my-data) pass typed frames from agent to agent: the primary frame gets
``ROW_INDEX_COLUMN`` (the input file's data row) once, each agent returns the new frame and the rows it
removed with reasons, and the chain records every step (rows and per-column nulls, dtypes and changed
cells before and after), gathers removed rows into ``quarantine.csv`` with their values as the input held them
(the input frame, or a streamed input's spill, is kept for that: in memory it shares the columns no agent changed),
and writes the last frame to ``cleaned_data.csv``. transform-my-data runs the same way with one agent whose
rows removed are the user's command, not a finding: no quarantine, and no cell-by-cell comparison (the transformer
reports its own steps); it writes ``transformed_data.csv``/``.parquet`` and ``recipe.json``. search-my-data reads its
primary as the data tools do (values as written: no missing-value token becomes empty, so that its rows are written
back as they came) and runs the searcher and the aggregator on that same frame, each with its own selection over the
whole input; it writes ``search_result.csv`` (every row the searcher selected, sorted and projected: a dataset
version, dates read from text in their layout) and ``search_result.json`` (``{"search": the searcher's data,
"aggregate": the aggregator's data}``, either null when that agent did not run or failed). Only the current frame
is kept between agents
(Polars shares unchanged columns between a frame and its successor, so a step costs only the columns it
changed). Polars 2.1's ``read_ipc`` copies instead of memory-mapping, so spilling frames to disk between
agents would not lower the peak and is not done.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import psutil

from agents import registry
from agents.as_read import AS_READ_SUFFIX, NOTHING, AsRead, as_written, cells_as_read
from agents.columns import with_row_index, with_row_index_lazy
from agents.envelope import (
    AS_READ_ARTIFACT,
    BOOKKEEPING_COLUMNS,
    RECIPE_ARTIFACT,
    REMOVAL_REASON,
    REMOVED_ROWS_ARTIFACT,
    ROW_INDEX_COLUMN,
    SOURCE_COLUMN,
    SOURCE_ROW_COLUMN,
    TEXT_LAYOUTS_ARTIFACT,
    AgentInputs,
    AgentResult,
    ChainContext,
    data_columns,
    error_envelope,
)
from agents.errors import AgentError, InvalidFileError, InvalidParametersError
from agents.layouts import (
    ISO_DATETIME,
    Layout,
    as_text,
    dates_only,
    from_report,
    layouts_of,
    needs_text,
    record_layouts,
    untype_unshared,
)
from agents.layouts import describe as describe_layouts
from agents.master.sources import PRIMARY_LABEL, align_columns, read_contract, stack_sources
from agents.options import DEFAULT_MAX_COLUMNS, FAILED_AGENTS_KEY, RunOptions
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.params.inputs import OPTION_ROLES
from agents.params.searcher import SearcherParams
from agents.readers import check_column_count, read_table_as_read, read_table_with_report
from agents.reports.excel import write_excel_report
from agents.reports.json_report import write_json_report
from agents.reports.row_issues import count_row_level_issues, write_row_level_issues
from agents.search import kept
from agents.search.kept import read_dataset as read_kept_dataset  # in _run_chain, ``kept`` is what it keeps
from agents.search.searcher import kept_meta, kept_page
from agents.spill import check_columns, parquet_data_bytes, spill_file, system_error
from agents.streamed import (
    STREAMED_AGENTS,
    StreamFlow,
    changed_cell_exprs,
    data_names,
    quarantine_names,
    removed_with_reasons,
    sink_csv,
    step_facts,
)
from agents.values import MissingTokens, normalize_missing, normalize_missing_lazy

log = logging.getLogger("agensium.agents")

ChainProgress = Callable[[int, str | None, str], None]
"""Overall progress: percent 0..100 (never decreasing), the running agent (None between agents), message."""
AgentStart = Callable[[str], None]
"""Told the id of an agent that is about to run (and be charged)."""

READ_END = 10  # percent reached when every input is parsed
AGENTS_END = 90  # percent reached when the last agent is done; reports fill the rest
# tools whose agents hand a new frame to the next
DATA_TOOLS = frozenset({"clean-my-data", "master-my-data", "transform-my-data"})
CLEAN_TOOL = "clean-my-data"
PROFILE_TOOL = "profile-my-data"
MASTER_TOOL = "master-my-data"  # sources stacked, named output tables (agents.master.sources)
TRANSFORM_TOOL = "transform-my-data"  # the user's own operations: no quarantine, the agent's own step records
CLEANED_NAME, QUARANTINE_NAME = "cleaned_data.csv", "quarantine.csv"
TRANSFORMED_NAME, TRANSFORMED_PARQUET, RECIPE_NAME = "transformed_data.csv", "transformed_data.parquet", "recipe.json"
SEARCH_TOOL = "search-my-data"  # reads like a data tool, writes its own result files
WRITERS_OF_ROWS = frozenset({CLEAN_TOOL, TRANSFORM_TOOL, SEARCH_TOOL})
"""The tools whose data files hold the primary's rows: they give its cells back as written (agents.as_read)."""
SEARCH_JSON, SEARCH_CSV = "search_result.json", "search_result.csv"
IN_MEMORY_FACTOR = 6  # peak memory of the in-memory chain per byte of CSV, with a margin (bench/README.md)
STREAMABLE_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".parquet", ".ndjson", ".jsonl"})  # agents.spill.spill_file
PRIMARY_SPILL = "primary.parquet"  # a streamed primary's spill in the run's work directory (agents.spill)
STREAMED_TOOLS = frozenset(
    {"profile-my-data", "search-my-data", "clean-my-data", "transform-my-data"}
)  # the tools that stream a primary too large
SOFT_LIMIT_MESSAGE = "soft time limit of the tool reached; stopped before finishing"


class SoftTimeLimitExceeded(Exception):
    """Raised by an agent's progress callback once the tool's soft deadline has passed, so that the agent
    stops at its next report; the chain catches it (it never leaves ``run_tool``)."""


class OutputNotWrittenError(AgentError):
    """A file of the run's results could not be written (``_writing``): its data could not go to that file (a Polars
    error), or the writer failed. The task fails ``AGENT_FAILED``; the message names the file and says why."""


@contextmanager
def _writing(name: str) -> Iterator[None]:
    """Writing the output ``name``: a failure says which output could not be written and why, never as a raw
    traceback. An OSError (a full disk: the service's fault, not the input's) stays an OSError, now naming the
    output, which the worker retries as a transient fault; a Polars error (the data could not be written so) and
    any other failure (a fault in the writer, logged with its traceback) become :class:`OutputNotWrittenError`."""
    try:
        yield
    except AgentError:
        raise
    except OSError as error:
        message = f"{name} could not be written: {error.strerror or error}"
        raise (OSError(message) if error.errno is None else OSError(error.errno, message)) from error
    except pl.exceptions.PolarsError as error:
        system = system_error(error)  # Polars' own report of a full disk: the machine's fault, as an OSError
        if system is not None:
            message = f"{name} could not be written: {system.strerror or system}"
            raise OSError(system.errno, message) from error
        reason = str(error).strip().partition("\n")[0]  # its first line: the rest is Polars' hints and plan
        message = f"{name} could not be written: {type(error).__name__}: {reason}"
        raise OutputNotWrittenError(message, {"output": name}) from error
    except (Exception, pl.exceptions.PanicException) as error:  # noqa: BLE001 - reported, as the task's failure
        log.exception("%s could not be written", name)
        message = f"{name} could not be written: an internal fault ({type(error).__name__}: {error})"
        raise OutputNotWrittenError(message, {"output": name}) from error


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


class _MonotonicProgress:
    def __init__(self, sink: ChainProgress) -> None:
        self.sink = sink
        self.percent = 0

    def __call__(self, percent: float, agent_id: str | None, message: str) -> None:
        self.percent = max(self.percent, min(100, int(percent)))
        self.sink(self.percent, agent_id, message)


@dataclass
class _DataFlow:
    """The clean chain's state between agents: the current frame, the step records, removed rows. Without
    ``audit`` (transform-my-data) removed rows are not quarantined and cells are not compared: the agent's own
    records say what it did."""

    frame: pl.DataFrame
    layouts: dict[str, Layout] = field(default_factory=dict)  # how the data's dates, numbers and booleans were written
    steps: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[pl.DataFrame] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)  # every agent's AgentResult.artifacts, merged
    outputs: dict[str, pl.DataFrame] = field(default_factory=dict)  # named output tables (the last one wins)
    audit: bool = True
    keep_input: bool = True  # quarantined rows show the values the input held (False: their values when removed)
    # The first frame (the input as read, with the row index) and its layouts, with ``audit`` and ``keep_input``: it
    # shares every column with the current frame until an agent changes that column.
    original: pl.DataFrame | None = field(default=None, init=False)
    original_layouts: dict[str, Layout] = field(default_factory=dict, init=False)
    input_columns: list[str] = field(default_factory=list, init=False)  # the input's data columns
    as_read: AsRead = NOTHING  # the input's cells its layouts write otherwise: every data file gives them back

    def __post_init__(self) -> None:
        self.input_columns = data_columns(self.frame)  # quarantine.csv's columns are the input's
        if self.audit and self.keep_input:
            self.original, self.original_layouts = self.frame, dict(self.layouts)

    @property
    def main_output(self) -> pl.DataFrame:
        """The data this run hands on, its dataset version: the main named output table (the master chain's
        master_data.csv, registry.MAIN_DATA_OUTPUTS) when an agent made one, else the frame."""
        main = next((name for name in self.outputs if name in registry.MAIN_DATA_OUTPUTS), None)
        return self.outputs[main] if main is not None else self.frame

    @property
    def rows_out(self) -> int:
        """The rows of the dataset version (main_output): the golden records of a master run, not its input rows."""
        return self.main_output.height

    @property
    def rows_quarantined(self) -> int:
        return sum(frame.height for frame in self.quarantined)

    @property
    def data_schema(self) -> dict[str, pl.DataType]:
        schema = self.frame.schema
        return {name: schema[name] for name in data_columns(self.frame)}

    def accept(self, agent_id: str, name: str, result: AgentResult | None, duration_ms: int) -> None:
        before = self.frame
        after = before if result is None or result.frame is None else result.frame
        if ROW_INDEX_COLUMN not in after.columns:
            raise RuntimeError(f"{agent_id} dropped the row index column")
        if not self.audit:
            self._accept_unaudited(agent_id, name, result, before, after, duration_ms)
            return
        # Everything is worked out first and the flow changed only at the end: a failure on the way (the chain then
        # records the agent as failed) leaves no trace of the agent's output.
        kept_all = _same_rows(before, after)
        removed = self._removed(agent_id, before, after, result.removed if result else None, kept_all)
        quarantined, gone = None, None
        if removed.height:
            rows = before.join(removed, on=ROW_INDEX_COLUMN, how="inner", maintain_order="left")
            values, source, layouts = self._values_of(rows, before, removed)
            if SOURCE_COLUMN in rows.columns:  # the master chain: later agents account for them (crosswalk)
                gone = rows.select(
                    ROW_INDEX_COLUMN,
                    SOURCE_COLUMN,
                    SOURCE_ROW_COLUMN,
                    pl.lit(agent_id).alias("agent_id"),
                    pl.col(REMOVAL_REASON).alias("reason"),
                )
            values = self.as_read.written(values, layouts)
            schema = values.schema
            row_index, agent, reason = quarantine_names(self.input_columns)
            quarantined = values.select(
                pl.col(ROW_INDEX_COLUMN).alias(row_index),
                pl.lit(agent_id).alias(agent),
                pl.col(REMOVAL_REASON).alias(reason),
                *(as_text(c, schema[c], layouts.get(c)) for c in data_columns(source)),
            )
        status = "success" if result is not None and result.envelope.status == "success" else "error"
        metrics = result.envelope.summary_metrics if result is not None else {}
        artifacts = result.artifacts if result is not None else {}
        layouts = dict(artifacts.get(TEXT_LAYOUTS_ARTIFACT, self.layouts))  # columns the agent typed from text
        as_read = self.as_read.merged(artifacts.get(AS_READ_ARTIFACT, NOTHING))  # their cells no layout writes back
        before_schema, after_schema = before.schema, after.schema
        retyped = [c for c in data_columns(before) if c in after_schema and before_schema[c] != after_schema[c]]
        compared = None
        if retyped:  # compared as the data files write them
            compared = (
                as_written(before, retyped, self.layouts, self.as_read),
                as_written(after, retyped, layouts, as_read),
            )
        step = step_record(
            len(self.steps) + 1, agent_id, name, status, before, after, metrics, duration_ms, kept_all, compared
        )
        if gone is not None:
            earlier = self.artifacts.get(REMOVED_ROWS_ARTIFACT)
            self.artifacts[REMOVED_ROWS_ARTIFACT] = gone if earlier is None else pl.concat([earlier, gone])
        if quarantined is not None:
            self.quarantined.append(quarantined)
        if result is not None:
            self.artifacts.update(result.artifacts)
            self.outputs.update(result.outputs)
        self.layouts, self.as_read = layouts, as_read
        self.steps.append(step)
        self.frame = after

    def _accept_unaudited(
        self,
        agent_id: str,
        name: str,
        result: AgentResult | None,
        before: pl.DataFrame,
        after: pl.DataFrame,
        duration_ms: int,
    ) -> None:
        status = "success" if result is not None and result.envelope.status == "success" else "error"
        metrics = result.envelope.summary_metrics if result is not None else {}
        if result is not None:
            self.artifacts.update(result.artifacts)
            self.outputs.update(result.outputs)
            if TEXT_LAYOUTS_ARTIFACT in result.artifacts:
                self.layouts = dict(result.artifacts[TEXT_LAYOUTS_ARTIFACT])
            if RECIPE_ARTIFACT in result.artifacts:  # the cells as read follow their column's renames
                self.as_read = self.as_read.after_renames(result.artifacts[RECIPE_ARTIFACT])
        self.steps.append(
            {
                "step": len(self.steps) + 1,
                "agent_id": agent_id,
                "agent_name": name,
                "status": status,
                "rows_before": before.height,
                "rows_after": after.height,
                "rows_removed": before.height - after.height,
                "columns_before": data_columns(before),
                "columns_after": data_columns(after),
                "columns": {},
                "cells_changed_total": int(metrics.get("cells_changed") or 0),
                "values_invented_total": int(metrics.get("values_filled") or 0),
                "duration_ms": duration_ms,
                "summary_metrics": metrics,
            }
        )
        self.frame = after

    def _values_of(
        self, rows: pl.DataFrame, before: pl.DataFrame, removed: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Layout]]:
        """The removed ``rows`` (``before``'s, with their reasons) with the values the input held instead, the frame
        they come from and the layouts that write them as the input wrote them; ``rows`` as they are when the input
        lacks any of them (a row an agent added), or when there is no input to read (``original``: None)."""
        if self.original is None:
            return rows, before, self.layouts
        found = self.original.join(removed, on=ROW_INDEX_COLUMN, how="inner", maintain_order="left")
        if found.height != rows.height:
            return rows, before, self.layouts
        return found, self.original, self.original_layouts

    @staticmethod
    def _removed(
        agent_id: str, before: pl.DataFrame, after: pl.DataFrame, listed: pl.DataFrame | None, kept_all: bool = False
    ) -> pl.DataFrame:
        """The removed rows with reasons: those the agent listed, plus any it dropped without saying.
        ``kept_all``: ``after`` has ``before``'s rows in order (:func:`_same_rows`): none was removed."""
        if kept_all:
            return pl.DataFrame(schema={ROW_INDEX_COLUMN: pl.Int64(), REMOVAL_REASON: pl.String()})
        gone = before.select(ROW_INDEX_COLUMN).join(after.select(ROW_INDEX_COLUMN), on=ROW_INDEX_COLUMN, how="anti")
        return removed_with_reasons(agent_id, gone, listed)

    def quarantine(self, columns: list[str]) -> pl.DataFrame:
        """Every removed row: its row index, agent and reason (named as :meth:`accept` named them), then ``columns``."""
        row_index, agent, reason = quarantine_names(self.input_columns)
        schema = {row_index: pl.Int64, agent: pl.String, reason: pl.String} | dict.fromkeys(columns, pl.String)
        if not self.quarantined:
            return pl.DataFrame(schema=schema)
        frame = pl.concat(self.quarantined, how="diagonal_relaxed")
        present = set(frame.columns)
        return frame.select([pl.col(c) if c in present else pl.lit(None, pl.String).alias(c) for c in schema])


def _same_rows(before: pl.DataFrame, after: pl.DataFrame) -> bool:
    """``after`` holds ``before``'s rows (by row index), in the same order: no row removed, added or moved."""
    if after is before:
        return True
    return before.height == after.height and before[ROW_INDEX_COLUMN].equals(after[ROW_INDEX_COLUMN])


def _increasing(index: pl.Series) -> bool:
    return index.len() < 2 or bool((index.diff().drop_nulls() > 0).all())


def _kept_rows(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame | None:
    """``before``'s rows that ``after`` kept, in ``after``'s order, by a filter when both row indexes increase
    (an agent that only removes rows keeps the order): a filter copies runs of rows, where the joins gather
    row by row. None when they do not increase, or when ``after`` holds a row ``before`` lacks."""
    old_index, new_index = before[ROW_INDEX_COLUMN], after[ROW_INDEX_COLUMN]
    if new_index.null_count() or old_index.null_count() or not (_increasing(old_index) and _increasing(new_index)):
        return None
    kept = before.filter(pl.col(ROW_INDEX_COLUMN).is_in(new_index.implode()))
    return kept if kept[ROW_INDEX_COLUMN].equals(new_index) else None


def _changed_cells(
    before: pl.DataFrame, after: pl.DataFrame, common: list[str], same_rows: bool | None = None
) -> tuple[list[int], list[int]]:
    """Per common column, the kept rows whose value differs, and those among them that were empty before and
    hold a value after (values invented); all columns in one query. ``same_rows``: :func:`_same_rows`, when
    the caller knows it."""
    if not common:
        return [], []
    if after is before:  # the agent handed its input back: nothing changed (Polars compares NaN equal to NaN)
        return [0] * len(common), [0] * len(common)
    if same_rows if same_rows is not None else _same_rows(before, after):
        old, new = before, after  # no row removed or moved: compare in place, nothing gathered
    elif (kept := _kept_rows(before, after)) is not None:
        old, new = kept, after  # rows removed, order kept: the kept rows by position
    else:
        old = before.join(after.select(ROW_INDEX_COLUMN), on=ROW_INDEX_COLUMN, how="semi", maintain_order="left")
        new = old.select(ROW_INDEX_COLUMN).join(after, on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
    pair = pl.concat(
        [old.select(pl.col(common).name.prefix("o:")), new.select(pl.col(common).name.prefix("n:"))], how="horizontal"
    )
    row = pair.select(changed_cell_exprs(common, old.schema, new.schema)).row(0)
    return [int(value) for value in row[0::2]], [int(value) for value in row[1::2]]


def step_record(
    step: int,
    agent_id: str,
    agent_name: str,
    status: str,
    before: pl.DataFrame,
    after: pl.DataFrame,
    summary_metrics: dict[str, Any],
    duration_ms: int,
    same_rows: bool | None = None,
    compared: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> dict[str, Any]:
    """Rows and, per column, dtype, nulls and changed cells before and after one agent. Cells are compared
    for the rows the agent kept, by their row index, as text when the dtype changed (``compared``: ``before`` and
    ``after`` with those columns as the data files write them, when the caller has them). ``same_rows``: whether
    ``after`` has ``before``'s rows in order (:func:`_same_rows`), when the caller knows it."""
    before_schema, after_schema = before.schema, after.schema  # read once: each .schema builds the whole schema
    common = [c for c in data_columns(before) if c in after_schema]
    changed, filled = _changed_cells(*(compared or (before, after)), common, same_rows)
    nulls_before = before.null_count().row(0, named=True)
    nulls_after = nulls_before if after is before else after.null_count().row(0, named=True)
    return step_facts(
        step,
        agent_id,
        agent_name,
        status,
        (before_schema, nulls_before, before.height),
        (after_schema, nulls_after, after.height),
        (common, changed, filled),
        summary_metrics,
        duration_ms,
    )


def run_tool(
    tool_id: str,
    agent_ids: list[str],
    inputs: dict[str, Path],
    parameters: dict[str, Any],
    out_dir: Path,
    progress: ChainProgress,
    soft_deadline: float | None = None,
    run_options: RunOptions | None = None,
    on_agent_start: AgentStart | None = None,
) -> dict[str, Any]:
    """``soft_deadline``: a wall-clock time (``time.time()``) after which the agents are stopped (see above);
    ``run_options``: the service's limits and switches (defaults: ``RunOptions()``); ``on_agent_start``: told
    each agent that starts (see above)."""
    agent_start = on_agent_start or _nobody
    started = time.perf_counter()
    run_options = run_options or RunOptions()
    report = _MonotonicProgress(progress)
    chain = registry.resolve_chain(tool_id, agent_ids or None, diagnostics=run_options.diagnostics)
    registry.validate_parameters(tool_id, chain, parameters, diagnostics=run_options.diagnostics)
    agent_params = {agent_id: registry.parse_parameters(agent_id, parameters.get(agent_id)) for agent_id in chain}
    options = registry.input_options(parameters)
    agent_params = _with_reading_tokens(agent_params, options.primary.null_tokens)
    timings: dict[str, int] = {}
    out_dir.mkdir(parents=True, exist_ok=True)

    with ExitStack() as cleanup:  # a streamed run's spills live until its outputs are written
        return _run_chain(
            tool_id, chain, inputs, agent_params, options, out_dir, report, timings, soft_deadline, run_options,
            agent_start, started, cleanup,
        )  # fmt: skip


def _run_chain(
    tool_id: str,
    chain: list[str],
    inputs: dict[str, Path],
    agent_params: dict[str, Any],
    options: Any,
    out_dir: Path,
    report: _MonotonicProgress,
    timings: dict[str, int],
    soft_deadline: float | None,
    run_options: RunOptions,
    agent_start: AgentStart,
    started: float,
    cleanup: ExitStack,
) -> dict[str, Any]:
    flow: _DataFlow | StreamFlow | None = None
    keep: _SearchKeep | None = None
    as_read = NOTHING
    failed: list[str] = []  # the agents that failed (their credits are given back: FAILED_AGENTS_KEY)
    shape: tuple[int, int] | None = None
    threshold = streaming_threshold_bytes(run_options.streaming_threshold_bytes)
    large = _large_primary(tool_id, inputs, threshold)
    if large is not None and tool_id == PROFILE_TOOL:
        _check_header(*large, run_options.max_columns)  # a file too wide fails at once, before any agent
        agent_inputs = AgentInputs(pl.DataFrame(), large[0])
        read_reports: dict[str, Any] = {"primary": {"streamed": True, "bytes": large[1].stat().st_size}}
        streamed = _LargeProfile(large, threshold, run_options.max_columns)
        results, shape = _run_large_profile(
            chain, streamed, agent_params, out_dir, report, timings, soft_deadline, agent_start
        )
    else:
        # Missing-value tokens become nulls (PRODUCT.md "Missing values") for the tools whose agents only read or
        # compute (the profile tools: their profiler's tokens; search and transform: the primary's reading option);
        # the clean chain leaves that to its type-fixer, which counts each cell it changes, and master to its agents.
        tokens: tuple[str, ...] | None = None
        if tool_id in (SEARCH_TOOL, TRANSFORM_TOOL):
            given = options.primary.null_tokens
            tokens = DEFAULT_NULL_TOKENS if given is None else tuple(given)
        elif tool_id not in DATA_TOOLS:
            tokens = _null_tokens(agent_params, options.primary.null_tokens)
        if tool_id == SEARCH_TOOL:
            keep = _SearchKeep(run_options.keep_dir, chain, agent_params)
            if keep.page is not None and not keep.page.read_with(tokens or ()):
                keep.page = None  # found among other values (another token list, or before tokens were read)
                keep.dataset = read_kept_dataset(keep.dir) if keep.dir is not None else None
            if keep.dataset is not None and not keep.dataset.reads_with(tokens or ()):
                keep.dataset = None  # other tokens are nulls already: read the file again (and keep it so)
        kept_dataset = keep.dataset if keep is not None else None
        if keep is not None and keep.page is not None:  # a later page: the kept matches answer it
            meta = keep.page.meta
            read_reports = {**meta["inputs"], "primary": {**meta["inputs"]["primary"], "kept": "matches"}}
            agent_inputs = AgentInputs(pl.DataFrame(), meta["source_name"])
            shape = (meta["rows_in"], meta["columns_in"])
        elif kept_dataset is not None:
            agent_inputs, read_reports, as_read = _kept_inputs(kept_dataset, report, timings, tokens or ())
            if agent_inputs.scan is not None:  # a large dataset: its sort works in files (agents.external)
                work_dir = Path(
                    cleanup.enter_context(tempfile.TemporaryDirectory(prefix=".spill-", dir=out_dir.parent))
                )
                agent_inputs = dataclasses.replace(agent_inputs, work_dir=work_dir)
        elif large is not None:
            work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix=".spill-", dir=out_dir.parent)))
            agent_inputs, read_reports, as_read = _spilled_inputs(
                large, keep, work_dir, report, timings, max_columns=run_options.max_columns, null_tokens=tokens
            )
        else:
            agent_inputs, read_reports, as_read = _read_inputs(
                tool_id, inputs, options, report, timings, tokens, max_columns=run_options.max_columns
            )
        if tool_id == SEARCH_TOOL and as_read:  # the matches carry their input rows: written back as they were read
            agent_inputs = _numbered(agent_inputs)
        if tool_id == MASTER_TOOL:  # stacked with its row index already; quarantined rows as its agents left them
            flow = _DataFlow(agent_inputs.primary, layouts=layouts_of(read_reports["primary"]), keep_input=False)
        elif tool_id in DATA_TOOLS and agent_inputs.scan is not None and agent_inputs.work_dir is not None:
            numbered = agent_inputs.scan.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(
                pl.col(ROW_INDEX_COLUMN).cast(pl.Int64)
            )
            layouts = layouts_of(read_reports["primary"])
            flow = StreamFlow(
                numbered,
                agent_inputs.row_count,
                agent_inputs.work_dir,
                layouts,
                audit=tool_id != TRANSFORM_TOOL,
                spill=agent_inputs.work_dir / PRIMARY_SPILL,
                as_read=as_read,
            )
        elif tool_id in DATA_TOOLS:
            if tool_id == CLEAN_TOOL:
                # One chunk per column from the start (the reader's threads leave one per parse batch): the clean
                # agents rechunked it each (previewer, outlier-remover, duplicate-resolver) and hashed rows over
                # the chunks (repeat_candidates: several times slower over many). The same values either way; the
                # frame as read is let go (not kept beside its copy).
                agent_inputs = dataclasses.replace(agent_inputs, primary=agent_inputs.primary.rechunk())
            primary = agent_inputs.primary.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(
                pl.col(ROW_INDEX_COLUMN).cast(pl.Int64)
            )
            layouts = layouts_of(read_reports["primary"])
            flow = _DataFlow(primary, layouts=layouts, audit=tool_id != TRANSFORM_TOOL, as_read=as_read)
        runs = keep.runs() if keep is not None else {}
        results = _run_agents(
            chain, agent_inputs, agent_params, flow, report, timings, soft_deadline, agent_start, runs, failed
        )

    report(AGENTS_END, None, "Writing reports")
    reports_started = time.perf_counter()
    envelopes = [results[agent_id].envelope.to_dict() for agent_id in chain]
    status = "success" if all(envelope["status"] == "success" for envelope in envelopes) else "partial"
    summary = _summary(agent_inputs, envelopes, flow, status, shape)
    summary["inputs"] = read_reports
    if tool_id == TRANSFORM_TOOL:
        transformer = envelopes[-1]
        summary["transformations"] = transformer.get("data", {}).get("transformations", [])
        summary["rows_affected"] = transformer.get("summary_metrics", {}).get("rows_affected")
    # The users' own file names where the service knows them (upload-urls' display_name): the reports show them.
    for role in OPTION_ROLES:
        display_name = getattr(options, role).display_name
        if display_name and summary.get(role):
            summary[f"{role}_input"], summary[role] = summary[role], display_name
    kept: dict[str, Any] | None = None
    write_data: Callable[[], list[str]] | None = None
    if tool_id == SEARCH_TOOL:
        outputs, kept = _write_search(results, agent_inputs, out_dir, summary, keep, read_reports, as_read)
    elif flow is None:
        outputs = []
    else:
        outputs, write_data = _data_outputs(tool_id, flow, agent_inputs, out_dir)
    if keep is not None and keep.page is not None:
        summary["dataset"] = keep.page.meta["dataset"]
    else:
        summary["dataset"] = _dataset(agent_inputs, flow, outputs, results, shape)
    report_steps = flow.steps if flow is not None and flow.audit else None  # the transformer reports its own
    # The data files are written (by Polars, without the GIL) while the reports are (mostly Python).
    named = list(outputs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        data_written = pool.submit(write_data) if write_data is not None else None
        outputs += _write_reports(tool_id, chain, results, envelopes, out_dir, report_steps, summary)
        if data_written is not None and data_written.result() != named:
            raise RuntimeError("the data files written are not those named")  # _data_outputs out of step
    timings["reports"] = round((time.perf_counter() - reports_started) * 1000)
    timings["total"] = round((time.perf_counter() - started) * 1000)
    report(100, None, "Done")
    result: dict[str, Any] = {
        "status": status,
        "tool_id": tool_id,
        "agents": {envelope["agent_id"]: envelope for envelope in envelopes},
        "summary": summary,
        "outputs": [{"name": name, "content_type": registry.output_content_type(name)} for name in outputs],
        "timings_ms": timings,
    }
    if flow is not None:
        result["steps"] = flow.steps
    if kept is not None:
        result["kept"] = kept
    if failed:
        result[FAILED_AGENTS_KEY] = failed
    return result


def _nobody(agent_id: str) -> None:
    """No one to tell that an agent starts (agent tests, the bench)."""


def streaming_threshold_bytes(configured: int | None = None) -> int:
    """Above this size a CSV/TSV primary of profile-my-data is profiled by streaming (bounded memory): the
    ``configured`` size (``RunOptions.streaming_threshold_bytes``), else the memory this process may use (its
    cgroup's limit, else the machine's RAM) divided by ``IN_MEMORY_FACTOR``: the in-memory chain peaks at
    ~5x the file."""
    if configured is not None:
        return configured
    return _memory_limit_bytes() // IN_MEMORY_FACTOR


def _memory_limit_bytes() -> int:
    limit = psutil.virtual_memory().total
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limit = min(limit, int(text))
    return limit


def _large_primary(tool_id: str, inputs: dict[str, Path], threshold: int) -> tuple[str, Path] | None:
    """The primary input to stream: one of STREAMABLE_SUFFIXES whose data is larger than ``threshold`` bytes; for a
    Parquet file, its data's size uncompressed (agents.spill.parquet_data_bytes: a compressed file is several times
    its size in memory), else (not Parquet: the spill says so) its size."""
    if tool_id not in STREAMED_TOOLS:
        return None
    for name, path in inputs.items():
        suffix = Path(name).suffix.lower()
        if registry.input_role(name, tool_id) == "primary" and suffix in STREAMABLE_SUFFIXES and path.exists():
            size = path.stat().st_size
            if suffix == ".parquet":
                size = max(size, parquet_data_bytes(path) or 0)
            if size > threshold:
                return name, path
    return None


def _check_header(name: str, path: Path, max_columns: int) -> None:
    check_columns(path, name, max_columns)


@dataclass(frozen=True)
class _LargeProfile:
    """A primary input too large for memory: (upload name, path), the size limit it is above, the column limit."""

    primary: tuple[str, Path]
    threshold: int
    max_columns: int


def _run_large_profile(
    chain: list[str],
    large: _LargeProfile,
    agent_params: dict[str, Any],
    out_dir: Path,
    report: _MonotonicProgress,
    timings: dict[str, int],
    soft_deadline: float | None,
    agent_start: AgentStart,
) -> tuple[dict[str, AgentResult], tuple[int, int]]:
    """A primary too large to hold in memory: the unified-profiler streams it (agents.profile.streaming);
    the agents that need the whole frame do not run, and say why (the result is ``partial``)."""
    from agents.profile.streaming import profile_large

    name, path = large.primary
    size_mb = path.stat().st_size / 1e6
    results: dict[str, AgentResult] = {}
    shape = (0, 0)
    span = (AGENTS_END - READ_END) / len(chain)
    for position, agent_id in enumerate(chain):
        spec = registry.agent(agent_id)
        base = READ_END + position * span
        report(base, agent_id, f"Running {spec.name}")
        agent_started = time.perf_counter()
        if agent_id == "unified-profiler":

            def agent_progress(fraction: float, message: str, base: float = base) -> None:
                if _past(soft_deadline):
                    raise SoftTimeLimitExceeded(SOFT_LIMIT_MESSAGE)
                report(base + span * min(max(fraction, 0.0), 1.0), "unified-profiler", message)

            agent_start(agent_id)
            try:
                result = profile_large(
                    path, agent_params[agent_id], agent_progress, name, out_dir.parent, max_columns=large.max_columns
                )
            except SoftTimeLimitExceeded:
                elapsed = round((time.perf_counter() - agent_started) * 1000)
                message = f"{spec.name} stopped: {SOFT_LIMIT_MESSAGE}"
                result = AgentResult(envelope=error_envelope(agent_id, spec.name, message, elapsed))
            else:
                metrics = result.envelope.summary_metrics
                shape = (int(metrics["total_rows"]), int(metrics["total_columns"]))
        else:
            message = (
                f"{spec.name} did not run: {name} ({size_mb:,.0f} MB) is above the in-memory limit "
                f"({large.threshold / 1e6:,.0f} MB); only the unified-profiler streams files this large"
            )
            result = AgentResult(envelope=error_envelope(agent_id, spec.name, message))
        results[agent_id] = result
        timings[agent_id] = round((time.perf_counter() - agent_started) * 1000)
        report(base + span, None, f"{spec.name} done")
    return results, shape


def _run_agents(
    chain: list[str],
    agent_inputs: AgentInputs,
    agent_params: dict[str, Any],
    flow: _DataFlow | StreamFlow | None,
    report: _MonotonicProgress,
    timings: dict[str, int],
    soft_deadline: float | None,
    agent_start: AgentStart,
    runs: dict[str, Callable[..., AgentResult]] | None = None,
    failed: list[str] | None = None,
) -> dict[str, AgentResult]:
    """``runs``: an agent's run function in place of its own (search-my-data's later page); ``failed`` receives the
    agents that started and failed (an error of theirs, not the soft time limit's stop)."""
    failed = [] if failed is None else failed
    results: dict[str, AgentResult] = {}
    span = (AGENTS_END - READ_END) / len(chain)
    context = _context(agent_inputs, flow)
    for position, agent_id in enumerate(chain):
        spec = registry.agent(agent_id)
        if _past(soft_deadline):  # skipped: no step record either, the time is up
            message = f"{spec.name} did not run: {SOFT_LIMIT_MESSAGE}"
            results[agent_id] = AgentResult(envelope=error_envelope(agent_id, spec.name, message))
            timings[agent_id] = 0
            continue
        base = READ_END + position * span
        report(base, agent_id, f"Running {spec.name}")

        def agent_progress(fraction: float, message: str, base: float = base, agent_id: str = agent_id) -> None:
            if _past(soft_deadline):
                raise SoftTimeLimitExceeded(SOFT_LIMIT_MESSAGE)
            report(base + span * min(max(fraction, 0.0), 1.0), agent_id, message)

        if isinstance(flow, StreamFlow) and agent_id not in STREAMED_AGENTS:  # free: it does not start
            message = (
                f"{spec.name} did not run: {agent_inputs.primary_name} is above the in-memory limit and is "
                f"streamed; the agents that stream files this large: {', '.join(sorted(STREAMED_AGENTS))}"
            )
            results[agent_id] = AgentResult(envelope=error_envelope(agent_id, spec.name, message))
            timings[agent_id] = 0
            flow.accept(agent_id, spec.name, None, 0)
            report(base + span, None, f"{spec.name} skipped")
            continue
        if isinstance(flow, StreamFlow):
            context = ChainContext(**{**context.__dict__, "steps": list(flow.steps)})
            current = flow.inputs(agent_inputs.primary_name, context)
        elif flow is not None:
            context = ChainContext(**{**context.__dict__, "steps": list(flow.steps)})
            current = AgentInputs(
                flow.frame,
                agent_inputs.primary_name,
                context=context,
                contract=agent_inputs.contract,
                artifacts=dict(flow.artifacts),
                text_layouts=flow.layouts,
            )
        else:
            current = agent_inputs
        if not (spec.needs_baseline and agent_inputs.baseline is None):  # else it only says "skipped": free
            agent_start(agent_id)
        agent_started = time.perf_counter()
        result: AgentResult | None = None
        try:
            run = (runs or {}).get(agent_id) or registry.load_run(spec)
            result = run(current, agent_params[agent_id], agent_progress)
            results[agent_id] = result
        except (InvalidFileError, InvalidParametersError):
            raise
        except (Exception, pl.exceptions.PanicException) as error:  # noqa: BLE001 - one failing agent must not stop the chain
            elapsed = round((time.perf_counter() - agent_started) * 1000)
            if isinstance(error, SoftTimeLimitExceeded):
                message = f"{spec.name} stopped: {SOFT_LIMIT_MESSAGE}"
            else:
                message = f"{spec.name} failed: {type(error).__name__}: {error}"
                failed.append(agent_id)
            results[agent_id] = AgentResult(envelope=error_envelope(agent_id, spec.name, message, elapsed))
        timings[agent_id] = round((time.perf_counter() - agent_started) * 1000)
        if flow is not None:
            # Taking the agent's output (writing a streamed agent's plan, checking and comparing its frame): a failure
            # there is the agent's, and the data stays as it was before it.
            try:
                flow.accept(agent_id, spec.name, result, timings[agent_id])
            except (Exception, pl.exceptions.PanicException) as error:  # noqa: BLE001 - as an agent's own failure
                message = f"{spec.name} failed: {type(error).__name__}: {error}"
                if agent_id not in failed:
                    failed.append(agent_id)
                results[agent_id] = AgentResult(
                    envelope=error_envelope(agent_id, spec.name, message, timings[agent_id])
                )
                flow.accept(agent_id, spec.name, None, timings[agent_id])
        report(base + span, None, f"{spec.name} done")
    return results


def _context(inputs: AgentInputs, flow: _DataFlow | StreamFlow | None) -> ChainContext:
    frame = inputs.primary
    if isinstance(flow, StreamFlow):
        nulls = dict(flow.original_nulls)
    else:
        nulls = {name: int(count) for name, count in frame.null_count().row(0, named=True).items()}
    return ChainContext(
        tool_id="",
        original_rows=inputs.row_count,
        original_columns=list(frame.columns),
        original_dtypes={name: str(dtype) for name, dtype in frame.schema.items()},
        original_null_counts=nulls,
        steps=list(flow.steps) if flow else [],
    )


def _with_reading_tokens(agent_params: dict[str, Any], given: list[str] | None) -> dict[str, Any]:
    """``agent_params`` with the primary's reading option ``null_tokens`` (``inputs.primary.null_tokens``), when
    given, as the ``null_tokens`` of every agent that takes them (the type-fixer, the unified-profiler) and was not
    given its own: the option means the same in every tool (PRODUCT.md "Missing values")."""
    if given is None:
        return agent_params
    return {
        agent_id: params.model_copy(update={"null_tokens": list(given)})
        if "null_tokens" in type(params).model_fields and "null_tokens" not in params.model_fields_set
        else params
        for agent_id, params in agent_params.items()
    }


def _null_tokens(agent_params: dict[str, Any], given: list[str] | None = None) -> tuple[str, ...]:
    """The missing-value tokens of a tool whose agents read the input as parsed (the profile tools): the
    unified-profiler's ``null_tokens`` when it runs, else the primary's reading option ``given``, else the default
    list."""
    profiler = agent_params.get("unified-profiler")
    if profiler is not None:
        return tuple(profiler.null_tokens)
    return DEFAULT_NULL_TOKENS if given is None else tuple(given)


def _read_inputs(
    tool_id: str,
    inputs: dict[str, Path],
    options: Any,
    report: _MonotonicProgress,
    timings: dict[str, int],
    null_tokens: tuple[str, ...] | None = None,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> tuple[AgentInputs, dict[str, Any], AsRead]:
    """Parse each input once. With ``null_tokens`` (tools whose agents only read), every missing-value token
    becomes a real null for all agents alike (``agents.values.normalize_missing``); the clean chain leaves
    that to its type-fixer, which reports it as a change. Also the primary's cells that its layouts write otherwise
    (agents.as_read), for the tools that write its rows."""
    by_role: dict[str, tuple[str, Path]] = {}
    sources: list[tuple[str, Path]] = []
    for name, path in inputs.items():
        role = registry.input_role(name, tool_id)
        if role is None:
            raise InvalidFileError(f"{name}: not an input of tool '{tool_id}'", {"file": name})
        if role == "source":
            sources.append((name, path))
        elif role != "parameters":
            by_role[role] = (name, path)
    problem = registry.input_set_problem(inputs)
    if problem is not None:
        raise InvalidFileError(problem, {"files": sorted(inputs)})
    if "primary" not in by_role:
        raise InvalidFileError("the primary input (primary.csv, .tsv, .xlsx, .parquet, .json or .ndjson) is missing")
    frames: dict[str, pl.DataFrame] = {}
    missing: dict[str, MissingTokens] = {}
    read_reports: dict[str, Any] = {}
    as_read = NOTHING
    for index, role in enumerate(("primary", "baseline")):
        if role not in by_role:
            continue
        name, path = by_role[role]
        report(1 + index * 5, None, f"Reading {name}")
        read_started = time.perf_counter()
        reading: dict[str, Any] = {
            "sheet": getattr(options, role).sheet,
            "header_row": getattr(options, role).header_row,
            "max_columns": max_columns,
        }
        if role == "primary" and tool_id in WRITERS_OF_ROWS:  # the cells its layouts write otherwise, to write them
            frames[role], read_reports[role], as_read = read_table_as_read(path, name, **reading)
        else:
            frames[role], read_reports[role] = read_table_with_report(path, name, **reading)
        if null_tokens is not None:
            as_read_text = frames[role]
            frames[role], missing[role] = normalize_missing(frames[role], null_tokens)
            read_reports[role][kept.MISSING_KEY] = missing[role].describe()
            if tool_id in (SEARCH_TOOL, TRANSFORM_TOOL):  # written back as they were
                record_layouts(read_reports[role], missing[role].layouts)
                if role == "primary" and tool_id in WRITERS_OF_ROWS:
                    as_read = as_read.merged(cells_as_read(as_read_text, frames[role], missing[role].layouts))
        timings[f"read_{role}"] = round((time.perf_counter() - read_started) * 1000)
    for name, path in sorted(sources, key=lambda item: registry.source_label(item[0]) or ""):
        role = f"source_{registry.source_label(name)}"
        frames[role], read_reports[role] = read_table_with_report(path, name, max_columns=max_columns)
    _untype_unshared(frames, read_reports)
    primary = frames["primary"]
    contract = None
    if tool_id == MASTER_TOOL:
        stacked = [(role.removeprefix("source_"), frame) for role, frame in frames.items() if role != "baseline"]
        aligned, renames = align_columns([(PRIMARY_LABEL, primary), *stacked[1:]])
        primary = stack_sources(aligned)
        if renames:
            read_reports["aligned_columns"] = renames
        check_column_count(len(data_columns(primary)), "the sources together", max_columns)
        schema = by_role.get("schema")
        contract = read_contract(schema[1], schema[0]) if schema is not None else None
    report(READ_END, None, "Inputs parsed")
    baseline = by_role.get("baseline")
    agent_inputs = AgentInputs(
        primary=primary,
        contract=contract,
        text_layouts=layouts_of(read_reports["primary"]),
        primary_name=by_role["primary"][0],
        baseline=frames.get("baseline"),
        baseline_name=baseline[0] if baseline else None,
        primary_missing=missing.get("primary"),
        baseline_missing=missing.get("baseline"),
    )
    return agent_inputs, read_reports, as_read


def _untype_unshared(frames: dict[str, pl.DataFrame], read_reports: dict[str, Any]) -> None:
    """A column typed from text in one input but text in another (a baseline, another source) goes back to
    its text in both (agents.layouts.untype_unshared), in place; the read reports follow."""
    if len(frames) < 2:
        return
    layouts = {role: dates_only(from_report(read_reports[role].get("temporal_columns"))) for role in frames}
    typed, kept = untype_unshared(frames, layouts)
    frames.update(typed)
    for role, found in kept.items():
        read_reports[role]["temporal_columns"] = describe_layouts(found)


def _data_outputs(
    tool_id: str, flow: _DataFlow | StreamFlow, inputs: AgentInputs, out_dir: Path
) -> tuple[list[str], Callable[[], list[str]]]:
    """The data files a data tool writes (their names, known before they are written) and the call that
    writes them (and returns the same names)."""
    if isinstance(flow, StreamFlow):
        return _streamed_outputs(tool_id, flow, inputs, out_dir)
    if tool_id == MASTER_TOOL:
        names = [*flow.outputs, *([QUARANTINE_NAME] if flow.quarantined else [])]
        return names, lambda: _write_tables(flow, out_dir)
    if tool_id == TRANSFORM_TOOL:
        recipe = flow.artifacts.get(RECIPE_ARTIFACT) is not None
        names = [TRANSFORMED_NAME, TRANSFORMED_PARQUET, RECIPE_NAME] if recipe else []
        return names, lambda: _write_transformed(flow, out_dir)
    return [CLEANED_NAME, QUARANTINE_NAME], lambda: _write_data(flow, inputs, out_dir)


def _streamed_outputs(
    tool_id: str, flow: StreamFlow, inputs: AgentInputs, out_dir: Path
) -> tuple[list[str], Callable[[], list[str]]]:
    """``_data_outputs`` of a streamed run: the same files, sunk from the last spill."""
    if tool_id == TRANSFORM_TOOL:
        recipe = flow.artifacts.get(RECIPE_ARTIFACT)
        if recipe is None:
            return [], list
        names = [TRANSFORMED_NAME, TRANSFORMED_PARQUET, RECIPE_NAME]

        def write_transformed() -> list[str]:
            with _writing(TRANSFORMED_PARQUET):
                portable_parquet(flow.current.select(list(flow.data_schema))).sink_parquet(
                    out_dir / TRANSFORMED_PARQUET, compression="snappy", engine="streaming"
                )
            with _writing(TRANSFORMED_NAME):
                flow.write_data(out_dir / TRANSFORMED_NAME)
            _write_recipe(recipe, out_dir)
            return names

        return list(names), write_transformed  # a copy: the caller adds the reports to its list
    names = [CLEANED_NAME, QUARANTINE_NAME]

    def write_cleaned() -> list[str]:
        with _writing(CLEANED_NAME):
            flow.write_data(out_dir / CLEANED_NAME)
        with _writing(QUARANTINE_NAME):
            flow.write_quarantine(out_dir / QUARANTINE_NAME, data_columns(inputs.primary))
        return names

    return list(names), write_cleaned


def _write_recipe(recipe: Any, out_dir: Path) -> None:
    with _writing(RECIPE_NAME):
        text = json.dumps(recipe, indent=2, ensure_ascii=False)
        (out_dir / RECIPE_NAME).write_text(text + "\n", encoding="utf-8")


def _write_tables(flow: _DataFlow, out_dir: Path) -> list[str]:
    """The master chain's named output tables (golden records, crosswalk, review queue) as CSV, dates read
    from text in their layout; and quarantine.csv when an agent removed rows (only on the user's request)."""
    written: list[str] = []
    for name, table in flow.outputs.items():
        with _writing(name):
            _write_frame_csv(table, flow.layouts, out_dir / name)
        written.append(name)
    if flow.quarantined:
        with _writing(QUARANTINE_NAME):
            # after its row index, agent and reason, the columns of the rows as the agents removed them
            flow.quarantine(flow.quarantined[0].columns[3:]).write_csv(out_dir / QUARANTINE_NAME)
        written.append(QUARANTINE_NAME)
    return written


def _write_data(flow: _DataFlow, inputs: AgentInputs, out_dir: Path) -> list[str]:
    """cleaned_data.csv (the last frame, without the row index) and quarantine.csv (every removed row)."""
    with _writing(CLEANED_NAME):
        _write_frame_csv(_as_read(flow), flow.layouts, out_dir / CLEANED_NAME)
    with _writing(QUARANTINE_NAME):
        flow.quarantine(data_columns(inputs.primary)).write_csv(out_dir / QUARANTINE_NAME)
    return [CLEANED_NAME, QUARANTINE_NAME]


def _as_read(flow: _DataFlow) -> pl.DataFrame:
    """The flow's data columns, each cell the input wrote otherwise than its column's layout (and that still holds the
    value it read as) as the input's text (agents.as_read)."""
    frame = flow.as_read.written(flow.frame, flow.layouts)
    return frame.select(data_columns(frame))


def _write_frame_csv(frame: pl.DataFrame, layouts: Mapping[str, Layout], path: Path) -> None:
    """Nested values cannot go to CSV (JSON text), dates, numbers and booleans read from text go back in their
    layout, and a zone is kept: what write_csv's one datetime format cannot do for every column."""
    frame.with_columns(
        as_text(name, dtype, layouts.get(name))
        for name, dtype in frame.schema.items()
        if needs_text(dtype, layouts.get(name))
    ).write_csv(path, datetime_format=ISO_DATETIME)


def _write_transformed(flow: _DataFlow, out_dir: Path) -> list[str]:
    """transformed_data.csv (dates read from text in their layout, a converted or derived column in ISO 8601),
    transformed_data.parquet (typed) and recipe.json (the resolved operations); nothing when the transformer did
    not finish, so that no output passes the input off as its result."""
    recipe = flow.artifacts.get(RECIPE_ARTIFACT)
    if recipe is None:
        return []
    data = flow.frame.select(data_columns(flow.frame))
    # Both writers release the GIL: the Parquet file is written while the CSV is (snappy: half zstd's time).
    with ThreadPoolExecutor(max_workers=1) as pool:
        parquet = pool.submit(portable_parquet(data).write_parquet, out_dir / TRANSFORMED_PARQUET, compression="snappy")
        with _writing(TRANSFORMED_NAME):
            _write_frame_csv(_as_read(flow), flow.layouts, out_dir / TRANSFORMED_NAME)
        with _writing(TRANSFORMED_PARQUET):
            parquet.result()
    _write_recipe(recipe, out_dir)
    return [TRANSFORMED_NAME, TRANSFORMED_PARQUET, RECIPE_NAME]


DECIMAL_DIGITS = 38  # the widest decimal Parquet readers take (pyarrow's decimal128, Spark, DuckDB)


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def portable_parquet(frame: Frame) -> Frame:
    """``frame`` with its 128-bit integer columns (Polars reads integers of 20 to 39 digits so) as decimals of 38
    digits, which every Parquet reader takes (pyarrow, hence pandas, refuses Parquet's 128-bit integers); a column
    holding a 39-digit value as its text. Other columns as they are."""
    schema = frame.collect_schema()
    wide = [name for name, dtype in schema.items() if dtype in (pl.Int128, pl.UInt128)]
    if not wide:
        return frame
    fits = []
    for name in wide:
        limit = pl.lit(10**DECIMAL_DIGITS, dtype=schema[name])
        below = pl.col(name) < limit
        fits.append((below if schema[name] == pl.UInt128 else below & (pl.col(name) > -limit)).all().alias(name))
    fitting = frame.lazy().select(fits).collect(engine="streaming").row(0, named=True)  # a spill: bounded memory
    return frame.with_columns(
        pl.col(name).cast(pl.Decimal(DECIMAL_DIGITS, 0) if fitting[name] else pl.String) for name in wide
    )


def _numbered(inputs: AgentInputs) -> AgentInputs:
    """``inputs`` with the primary (its frame, or its scan) numbered by ``ROW_INDEX_COLUMN`` as a data tool's is."""
    if inputs.scan is not None:
        return dataclasses.replace(inputs, scan=with_row_index_lazy(inputs.scan))
    return dataclasses.replace(inputs, primary=with_row_index(inputs.primary))


def _write_search(
    results: dict[str, AgentResult],
    inputs: AgentInputs,
    out_dir: Path,
    summary: dict[str, Any],
    keep: _SearchKeep | None,
    read_reports: dict[str, Any],
    as_read: AsRead = NOTHING,
) -> tuple[list[str], dict[str, Any] | None]:
    """search_result.csv (the searcher's rows; none when it did not finish, nor for a later page, whose rows the
    kept ``search_result.csv`` holds) and search_result.json (both agents' data); the summary gets ``rows_matched``
    and ``total_groups``. With a keep directory, what the run adds to it (``_SearchKeep.store``): the files the worker
    stores there, and where the kept ``search_result.csv`` is."""
    data = {
        key: result.envelope.data if result is not None and result.envelope.status == "success" else None
        for key, result in (("search", results.get("searcher")), ("aggregate", results.get("aggregator")))
    }
    summary["rows_matched"] = data["search"]["total_rows"] if data["search"] else None
    summary["total_groups"] = data["aggregate"]["total_groups"] if data["aggregate"] else None
    written = [SEARCH_CSV] if keep is not None and keep.page is not None else []  # the kept one, stored as this
    found = results["searcher"] if data["search"] else None
    # Polars writes without the GIL: the kept files are written while the CSV is.
    with ThreadPoolExecutor(max_workers=1) as pool:
        kept = pool.submit(keep.store, inputs, read_reports, results, as_read) if keep is not None else None
        if found is not None and found.frame is not None:
            matches = as_read.written(found.frame, inputs.text_layouts)
            with _writing(SEARCH_CSV):
                _write_frame_csv(matches.select(data_columns(matches)), dict(inputs.text_layouts), out_dir / SEARCH_CSV)
            written.append(SEARCH_CSV)
        elif found is not None and found.scan is not None:  # streamed: every match sunk, never held
            every = as_read.written(found.scan, inputs.text_layouts)
            with _writing(SEARCH_CSV):
                sink_csv(every.select(data_names(every.collect_schema())), inputs.text_layouts, out_dir / SEARCH_CSV)
            written.append(SEARCH_CSV)
        with _writing(SEARCH_JSON):
            text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
            (out_dir / SEARCH_JSON).write_text(text + "\n", encoding="utf-8")
        return [SEARCH_JSON, *written], kept.result() if kept is not None else None


class _SearchKeep:
    """search-my-data's use of what is kept with the dataset it searches (agents.search.kept): the dataset converted
    once, and a searcher selection's matches for its later pages (a chain of the searcher alone: the aggregator
    needs every row)."""

    def __init__(self, keep_dir: Path | None, chain: list[str], agent_params: dict[str, Any]) -> None:
        self.dir = keep_dir
        self.params: SearcherParams | None = agent_params["searcher"] if chain == ["searcher"] else None
        self.page = kept.read_matches(keep_dir, self.params) if keep_dir and self.params else None
        self.dataset = kept.read_dataset(keep_dir) if keep_dir and self.page is None else None
        self.spilled = False  # the run read a primary too large for memory into the kept dataset (_spilled_inputs)

    def runs(self) -> dict[str, Callable[..., AgentResult]]:
        page = self.page
        if page is None:
            return {}
        return {"searcher": lambda inputs, params, progress: kept_page(page, params, progress)}

    def store(
        self,
        inputs: AgentInputs,
        read_reports: dict[str, Any],
        results: dict[str, AgentResult],
        as_read: AsRead = NOTHING,
    ) -> dict[str, Any] | None:
        """What the run adds to the keep directory, for the worker: ``written`` (paths to store), ``matches`` (the
        selection's directory, whose ``search_result.csv`` is this run's and whose ``meta.json`` goes last, once that
        is stored) and ``reuse`` (a later page: its ``search_result.csv`` is the kept one). ``as_read``: the primary's
        cells its layouts write otherwise, kept with the dataset."""
        if self.dir is None:
            return None
        if self.page is not None:
            csv = {**self.page.meta["csv"], "path": f"{self.page.directory}/{kept.CSV_NAME}"}
            return {"written": [], "reuse": {SEARCH_CSV: csv}}
        written: list[str] = []
        try:  # an optimisation: a failure to write what is kept (a full disk) costs the next search, not this one
            if self.spilled:
                written.append(kept.DATASET_NAME)
            elif self.dataset is None:
                primary, report = inputs.primary, read_reports["primary"]
                written.append(kept.write_dataset(primary, report, inputs.primary_name, self.dir, as_read))
            found = results.get("searcher")
            if self.params is None or found is None or found.frame is None or found.envelope.status != "success":
                return {"written": written}
            meta = {
                **kept_meta(found, inputs.primary.height, inputs.text_layouts),
                "columns_in": len(data_columns(inputs.primary)),
                "source_name": inputs.primary_name,
                "inputs": read_reports,
                "dataset": _frame_dataset(SEARCH_CSV, found.frame),
            }
            matches = found.frame.select(data_columns(found.frame))
            written += kept.write_matches(matches, meta, self.params, self.dir)
        except (OSError, pl.exceptions.PolarsError) as error:
            log.warning("search keep not written: %r", error)
            return {"written": written}
        return {"written": written, "matches": kept.matches_dir(self.params)}


def _kept_inputs(
    dataset: kept.KeptDataset, report: _MonotonicProgress, timings: dict[str, int], null_tokens: tuple[str, ...]
) -> tuple[AgentInputs, dict[str, Any], AsRead]:
    """The inputs of a search of a dataset kept as Parquet: read as its first search read it (its read report);
    one kept from a file too large for memory is scanned, not read. ``null_tokens`` become nulls as it is read when
    it holds the values as written (kept.tokens_applied; else it holds them as nulls already: the same tokens,
    kept.KeptDataset.reads_with)."""
    report(1, None, "Reading the dataset (kept as Parquet by an earlier search)")
    read_report = dict(dataset.read_report)
    described = read_report.get(kept.MISSING_KEY)
    missing: MissingTokens | None = None
    if kept.tokens_applied(read_report) is not None and isinstance(described, dict):
        missing = MissingTokens(null_tokens, described["by_column"], described["retyped_columns"])
    scan = dataset.scan() if dataset.streamed else None
    frame, as_read = dataset.read_as_read() if scan is None else (None, dataset.scan_as_read())
    if missing is None:
        if scan is not None:
            texts = scan
            scan, missing = normalize_missing_lazy(scan, null_tokens, engine="streaming")
            as_read = as_read.merged(cells_as_read(texts, scan, missing.layouts, lazy=True))
        else:
            assert frame is not None
            as_read_text = frame
            frame, missing = normalize_missing(frame, null_tokens)
            as_read = as_read.merged(cells_as_read(as_read_text, frame, missing.layouts))
        read_report[kept.MISSING_KEY] = missing.describe()
        record_layouts(read_report, missing.layouts)  # dates and numbers once their tokens are nulls: as they were
    layouts = layouts_of(read_report)
    if scan is not None:
        inputs = AgentInputs(
            pl.DataFrame(schema=scan.collect_schema()),
            dataset.source_name,
            text_layouts=layouts,
            scan=scan,
            rows=int(read_report["rows"]),
            primary_missing=missing,
        )
    else:
        assert frame is not None
        inputs = AgentInputs(frame, dataset.source_name, text_layouts=layouts, primary_missing=missing)
    timings["read_primary"] = 0
    report(READ_END, None, "Inputs parsed")
    return inputs, {"primary": {**read_report, "kept": "dataset"}}, as_read


def _spilled_inputs(
    large: tuple[str, Path],
    keep: _SearchKeep | None,
    work_dir: Path,
    report: _MonotonicProgress,
    timings: dict[str, int],
    *,
    max_columns: int,
    null_tokens: tuple[str, ...] | None = None,
) -> tuple[AgentInputs, dict[str, Any], AsRead]:
    """A primary too large for memory, read into a typed Parquet spill (agents.spill) that the agents scan. For a
    search with a keep directory the spill is the kept dataset itself (written there once, then renamed). With
    ``null_tokens`` the scan reads them as nulls (``_read_inputs``; the spill holds the values as written). Also the
    cells its layouts write otherwise (agents.as_read), in files of ``work_dir``."""
    name, path = large
    report(1, None, f"Reading {name} into a columnar file (too large for memory: it is scanned, not loaded)")
    read_started = time.perf_counter()
    keep_dir = keep.dir if keep is not None else None
    target = kept.partial_path(keep_dir) if keep_dir is not None else work_dir / PRIMARY_SPILL

    def metadata(read_report: Mapping[str, Any]) -> dict[str, str]:
        return kept.dataset_metadata({**read_report, "streamed": True}, name)

    # The cells its layouts write otherwise: in a file of the run's, or for a search keeping its dataset, in the
    # dataset itself (hidden columns: every later search of it writes them back too).
    keeps = keep_dir is not None
    spilled = spill_file(
        path, name, target, max_columns=max_columns, metadata=metadata, as_read=not keeps, hidden_as_read=keeps
    )
    spill = spilled.path
    as_read = spilled.as_read
    scan = pl.scan_parquet(spill)
    if keep is not None and keep_dir is not None:
        spill = spill.rename(keep_dir / kept.DATASET_NAME)
        keep.spilled = True
        dataset = read_kept_dataset(keep_dir)
        assert dataset is not None  # just written, with its metadata
        scan, as_read = dataset.scan(), dataset.scan_as_read()
    read_report: dict[str, Any] = {**spilled.report, "streamed": True}
    missing: MissingTokens | None = None
    if null_tokens is not None:
        as_read_text = scan
        scan, missing = normalize_missing_lazy(scan, null_tokens, engine="streaming")
        read_report[kept.MISSING_KEY] = missing.describe()
        record_layouts(read_report, missing.layouts)  # dates and numbers once their tokens are nulls: as they were
        # the columns typed once their tokens are nulls: their cells too (a search's plan, read once by its writer)
        sink = work_dir / f"missing.{AS_READ_SUFFIX}"
        retyped = cells_as_read(as_read_text, scan, missing.layouts, sink=sink, lazy=keeps)
        as_read = as_read.merged(retyped)
    inputs = AgentInputs(
        pl.DataFrame(schema=scan.collect_schema()),
        name,
        text_layouts=layouts_of(read_report),
        scan=scan,
        rows=spilled.rows,
        work_dir=work_dir,
        primary_missing=missing,
    )
    timings["read_primary"] = round((time.perf_counter() - read_started) * 1000)
    report(READ_END, None, "Inputs parsed")
    return inputs, {"primary": read_report}, as_read


def _frame_dataset(name: str, frame: pl.DataFrame) -> dict[str, Any]:
    schema = frame.schema
    return {
        "name": name,
        "rows": frame.height,
        "columns": [{"name": c, "dtype": str(schema[c])} for c in data_columns(frame)],
    }


def _dataset(
    inputs: AgentInputs,
    flow: _DataFlow | StreamFlow | None,
    outputs: list[str],
    results: dict[str, AgentResult],
    shape: tuple[int, int] | None,
) -> dict[str, Any]:
    """The dataset version this task stands for (API.md): its main data output, or its primary input when it writes
    none, with its rows and its columns' dtypes (so that the API can resolve transform commands against it before
    queueing). A primary too large for memory: the columns its profiler saw, when it ran."""
    main = next((name for name in outputs if name in registry.MAIN_DATA_OUTPUTS), None)
    found = results.get("searcher")
    if main == SEARCH_CSV and found is not None and found.frame is not None:
        return _frame_dataset(main, found.frame)
    if main == SEARCH_CSV and found is not None and found.scan is not None and found.rows is not None:
        found_schema = found.scan.collect_schema()
        return {
            "name": main,
            "rows": found.rows,
            "columns": [{"name": c, "dtype": str(t)} for c, t in found_schema.items() if c not in BOOKKEEPING_COLUMNS],
        }
    if main is not None and isinstance(flow, StreamFlow):
        data = flow.data_schema
        return {"name": main, "rows": flow.rows, "columns": [{"name": c, "dtype": str(t)} for c, t in data.items()]}
    if main is not None and isinstance(flow, _DataFlow):
        frame = flow.outputs.get(main, flow.frame)
        columns = data_columns(frame)
        schema = frame.schema
        return {"name": main, "rows": frame.height, "columns": [{"name": c, "dtype": str(schema[c])} for c in columns]}
    if shape is not None:
        dataset: dict[str, Any] = {"name": inputs.primary_name, "rows": shape[0]}
        profiler = results.get("unified-profiler")
        fields = profiler.envelope.data.get("fields") if profiler is not None else None
        if fields:
            dataset["columns"] = [{"name": f["field_name"], "dtype": f["polars_dtype"]} for f in fields]
        return dataset
    # A column typed only once its missing-value tokens became nulls (a profile's) is recorded typed: a search or a
    # transform chained on this task reads the tokens as nulls too (by default; other tokens may leave it text,
    # which the run then says).
    primary = inputs.primary
    schema = primary.schema
    return {
        "name": inputs.primary_name,
        "rows": inputs.row_count,
        "columns": [{"name": c, "dtype": str(schema[c])} for c in data_columns(primary)],
    }


def _write_reports(
    tool_id: str,
    chain: list[str],
    results: dict[str, AgentResult],
    envelopes: list[dict[str, Any]],
    out_dir: Path,
    steps: list[dict[str, Any]] | None,
    summary: dict[str, Any],
) -> list[str]:
    """The JSON and Excel reports (each agent's first 1,000 row-level issues and the counts of all) and the
    row-level issue files holding every one (agents.reports.row_issues). Polars writes those files without
    the GIL, so they overlap the two reports. The Excel report only when the tool lists it among its outputs
    (search-my-data does not: a page of up to 1,000 rows in a workbook would cost more than the search)."""
    spec = registry.tool_spec(tool_id)
    frames = {agent_id: results[agent_id].row_level_issues for agent_id in chain}
    counts = count_row_level_issues(frames)
    json_name, excel_name = f"{spec.report_basename}.json", f"{spec.report_basename}.xlsx"
    reports = [json_name, *([excel_name] if excel_name in spec.outputs else [])]
    with ThreadPoolExecutor(max_workers=1) as pool:
        issue_files = pool.submit(write_row_level_issues, out_dir, frames)
        with _writing(json_name):
            write_json_report(out_dir / json_name, tool_id, envelopes, counts, steps=steps, summary=summary)
        if excel_name in reports:
            with _writing(excel_name):
                write_excel_report(out_dir / excel_name, tool_id, envelopes, counts, steps=steps, summary=summary)
        with _writing("the row-level issue files"):
            return [*reports, *issue_files.result()]


def _summary(
    inputs: AgentInputs,
    envelopes: list[dict[str, Any]],
    flow: _DataFlow | StreamFlow | None,
    status: str,
    shape: tuple[int, int] | None = None,
) -> dict[str, Any]:
    alerts_by_severity = {"critical": 0, "high": 0, "medium": 0, "low": 0}
    for envelope in envelopes:
        for alert in envelope.get("alerts", []):
            alerts_by_severity[alert["severity"]] = alerts_by_severity.get(alert["severity"], 0) + 1
    summary: dict[str, Any] = {
        "status": status,
        "rows": shape[0] if shape else inputs.row_count,
        "columns": shape[1] if shape else len(data_columns(inputs.primary)),
        "primary": inputs.primary_name,
        "baseline": inputs.baseline_name,
        "agents_succeeded": sum(envelope["status"] == "success" for envelope in envelopes),
        "agents_failed": sum(envelope["status"] != "success" for envelope in envelopes),
        "alerts": sum(alerts_by_severity.values()),
        "alerts_by_severity": alerts_by_severity,
        "row_level_issues_total": sum(
            envelope.get("data", {}).get("row_level_issues_total", len(envelope.get("row_level_issues", [])))
            for envelope in envelopes
        ),
        "quality_score": None,
        "quality_grade": None,
    }
    summary["proposals"] = [
        proposal for envelope in envelopes for proposal in envelope.get("data", {}).get("proposals", [])
    ]
    for envelope in envelopes:
        quality = envelope.get("data", {}).get("quality_summary")
        if quality:
            summary["quality_score"] = quality["overall_quality_score"]
            summary["quality_grade"] = quality["quality_grade"]
    if flow is not None:
        rows_out, rows_in = flow.rows_out, inputs.row_count
        summary.update(
            rows_out=rows_out,
            columns_out=len(data_columns(flow.main_output)) if isinstance(flow, _DataFlow) else len(flow.data_schema),
            rows_quarantined=flow.rows_quarantined,
            retention_percentage=round(100 * rows_out / rows_in, 2) if rows_in else 100.0,
            cells_changed=sum(step["cells_changed_total"] for step in flow.steps),
            cells_changed_by_agent={step["agent_id"]: step["cells_changed_total"] for step in flow.steps},
            values_invented=sum(step["values_invented_total"] for step in flow.steps),
        )
        writeback = next((e for e in envelopes if e["agent_id"] == "cleanse-writeback"), None)
        if writeback is not None and writeback["status"] == "success":
            summary["data_ready_for_pipeline"] = writeback["summary_metrics"].get("data_ready_for_pipeline")
    return summary
