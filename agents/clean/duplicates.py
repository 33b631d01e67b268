"""The ``duplicate-resolver`` agent: finds duplicate rows of five kinds and resolves them.

Parameters and summary metrics follow Agensium (reference/agents.md §1.5). The detection types run in a
fixed order, each on the rows the previous ones kept; every removed row names the row it duplicates:

1. ``exact``: equal on every data column (an empty cell equals an empty cell). The first row in file order
   (smallest ``ROW_INDEX_COLUMN``) is kept. The values compared are the data as read: where an earlier step's
   record shows cells of a column made null or rewritten (``2,NA,y`` and ``2,,y``; ``3,4.0,z`` and ``3,4,z``), rows
   equal on its affected cells may differ in the file, and their reason says "equal after reading values", not
   "exact" (``_Reread``).
2. ``email_case``: equal once the e-mail columns are lowercased with all whitespace removed (the other
   columns as they are). E-mail columns are ``email_columns``, or the text columns where more than half of
   the first 1,000 non-empty values match an address pattern. First row kept.
3. ``case_variations``: equal once the text key columns are trimmed, inner whitespace runs collapsed to one
   space and lowercased (the other columns as they are). First row kept.
4. ``conflicting`` (needs ``key_columns``): rows with the same key (text normalised as in 3, e-mail columns
   as in 2). A group *conflicts* when another column holds different values (``ignore_nulls``: two
   different non-empty values; ``match_nulls``: an empty cell against a value counts too, and empty keys
   match each other; with ``ignore_nulls`` rows with an empty key column are not grouped). Conflicts are
   reported as issues per column; every such group keeps one row by ``conflict_resolution``: keep_first,
   keep_last, or merge_smart (the first row, each column taking the group's first non-empty value in file
   order). Groups without a conflict (their rows only complement each other) are resolved the same way.
5. ``missing_values``: row *r* is a duplicate of row *s* when every filled cell of *r* equals the same cell
   of *s* and *s* has fewer empty cells (r only lacks values s has). This is the subsumption form of "equal
   except where one side is empty", computed by one join per pattern of empty cells (two rows that each
   fill the other's gaps are not paired; ``conflicting`` with key columns catches those). Each such row is
   matched to its most complete subsumer (ties: the first); ``merge_strategy`` remove_duplicates keeps that
   most complete row, merge_smart keeps the group's first row and gives it the most complete row's values.
   Only the ``max_null_patterns`` most frequent patterns are examined; entirely empty rows are left alone.

By default only ``exact`` duplicates are removed (PRODUCT.md "Defaults that never destroy data"): the other
kinds are detected on the rows left, in the same order, and proposed (``data.proposals``) with the rows
each would remove and the ``detection_types`` that applies it; ``conflicting`` is proposed only when
``key_columns`` are given.

The order makes the agent idempotent (run on its own output it removes nothing, as long as every pattern of
empty cells was examined and the e-mail columns stay the same; pass ``email_columns`` to pin them, since
detection samples the rows it is given): merges in step 4 only create rows whose key no other row has, and
step 5 keeps only rows no other row subsumes, with values some earlier row already had.

A primary too large for memory (``AgentInputs.scan``, see ``_Streamed``) gives the same result: each detection
type runs the same code on the rows that can take part in a duplicate (those whose 64-bit hash of the type's key
another row shares, found by streaming ``group_by`` queries over a spill of the hashes), read into memory in parts
of whole groups; the output is a plan over the scan and the agent's spills (``AgentResult.scan``).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import polars as pl

from agents.clean.common import (
    IDENTIFIER_CANDIDATES,
    clean_result,
    effectiveness,
    has_identifier,
    no_removed_rows,
    repeat_candidates,
    retention,
)
from agents.columns import (
    is_text,
    require_columns,
    with_row_index,
)
from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    REMOVED_ROWS_SCHEMA,
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    AgentInputs,
    AgentResult,
    Progress,
    SummaryCard,
    data_columns,
    format_text,
)
from agents.findings import (
    Findings,
    card_status,
    names_where,
    proposal,
)
from agents.formatting import (
    pct,
    plain_value,
)
from agents.params.duplicate_resolver import DuplicateResolverParams

AGENT_ID = "duplicate-resolver"
AGENT_NAME = "Duplicate Resolver"
STAGE_ORDER = ("exact", "email_case", "case_variations", "conflicting", "missing_values")
EMAIL_PATTERN = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"
EMAIL_SAMPLE_SIZE = 1000
EMAIL_SHARE = 0.5
CONFLICT_EXAMPLES = 20
ISSUE_TYPES = {
    "exact": "exact_duplicate",
    "email_case": "email_case_duplicate",
    "case_variations": "case_variation_duplicate",
    "missing_values": "missing_value_duplicate",
    "conflicting": "conflicting_duplicate",
}
DESCRIPTIONS = {
    "exact": "identical values in every data column",
    "email_case": "same record, e-mail addresses differ only in case or whitespace",
    "case_variations": "same record, text key columns differ only in case or whitespace",
    "conflicting": "same key, other columns differ (resolved by conflict_resolution)",
    "missing_values": "a row whose filled cells all equal a more complete row's",
}

KEPT = "__kept_row__"
REASON = "__reason__"  # a data column may be called "reason"
SEVERITY = "__severity__"
STAGE = "__stage__"
MATCH = "__match_row__"
REREAD = "__reread__"
NULLS = "__null_count__"
PATTERN = "__null_pattern__"
IN_GROUP = "__in_group__"
HASH = "__hash__"
OLD_VALUE = "__old__"
SUBSUMPTION_SEED = 1
# A streamed run reads the rows that may repeat into memory in parts of at most this many cells (rows x columns).
MAX_CANDIDATE_CELLS = 20_000_000
MAX_GROUPED_ROWS = 4_000_000  # rows whose hashes one streaming group_by (or distinct count) holds at a time
SPILL_FOLDER = "duplicate-resolver"  # under AgentInputs.work_dir: a streamed run's spills, read by AgentResult.scan
PAIRS_SCHEMA: dict[str, pl.DataType] = {ROW_INDEX_COLUMN: pl.Int64(), MATCH: pl.Int64(), "empty": pl.String()}
REMOVED_SCHEMA: dict[str, pl.DataType] = {
    ROW_INDEX_COLUMN: pl.Int64(),
    REASON: pl.String(),
    KEPT: pl.Int64(),
    STAGE: pl.String(),
    SEVERITY: pl.String(),
}


@dataclass
class StageOutcome:
    detection_type: str
    removed: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REMOVED_SCHEMA))
    groups: int = 0
    merged_rows: int = 0
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def report(self, enabled: bool) -> dict[str, Any]:
        return {
            "enabled": enabled,
            "description": DESCRIPTIONS[self.detection_type],
            "duplicate_count": self.removed.height,
            "groups": self.groups,
            "rows_merged": self.merged_rows,
            "note": self.note,
            **self.details,
        }


def run(inputs: AgentInputs, params: DuplicateResolverParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    source: _Work
    if inputs.scan is not None:
        source = _Streamed.start(inputs)
        schema_frame = inputs.primary
    else:
        frame = with_row_index(inputs.primary)
        if not frame[ROW_INDEX_COLUMN].is_sorted():
            frame = frame.sort(ROW_INDEX_COLUMN)  # "first" means first in file order; the chain keeps that order
        source, schema_frame = _InMemory(frame), frame
    columns = data_columns(schema_frame)
    require_columns(schema_frame, params.key_columns, agent_id=AGENT_ID, field="key_columns")
    require_columns(schema_frame, params.email_columns, agent_id=AGENT_ID, field="email_columns")
    progress(0.0, f"Looking for duplicates among {source.height:,} rows")

    key_columns = list(params.key_columns) or columns
    if params.email_columns:
        email_columns, email_source = list(params.email_columns), "parameter"
    else:
        email_columns, email_source = source.email_columns(columns), "detected"
    enabled: set[str] = set(params.detection_types)

    context = _Context(enabled, key_columns, email_columns, email_source, _Reread.of(inputs, columns))
    outcomes, work = _detect(source, [stage for stage in STAGE_ORDER if stage in enabled], context, params, progress)
    progress(0.8, "Counting what the other kinds of duplicates would remove")
    not_requested = [
        stage for stage in STAGE_ORDER if stage not in enabled and (stage != "conflicting" or params.key_columns)
    ]
    proposed, _ = _detect(work, not_requested, context, params, None)
    for stage, outcome in proposed.items():
        outcomes[stage].details["proposed_duplicates"] = outcome.removed.height

    progress(0.9, "Building the report")
    removed_all = pl.concat([outcome.removed for outcome in outcomes.values()], how="vertical").sort(ROW_INDEX_COLUMN)
    shape = _Shape(source.height, work.height, len(columns), len(data_columns(schema_frame)))
    output = work.output()
    if (
        isinstance(source, _InMemory)
        and not removed_all.height
        and schema_frame is inputs.primary
        and _one_chunk(inputs.primary)
    ):
        output = inputs.primary  # no row removed or merged: the input as it came, in one chunk per column already
    result = _result(RunOutcome(shape, removed_all, outcomes, context), params, started, output)
    result.envelope.data["proposals"] = _proposals(proposed, enabled)
    progress(1.0, f"Removed {removed_all.height:,} duplicate rows")
    return result


def _one_chunk(frame: pl.DataFrame) -> bool:
    """Every column of ``frame`` in one chunk (as ``_equal_rows`` passes its rows on)."""
    return all(column.n_chunks() == 1 for column in frame.iter_columns())


W = TypeVar("W", bound="_Work")
EQUAL_ROW_STAGES = ("exact", "email_case", "case_variations")


@dataclass(frozen=True)
class _EqualKeys:
    """What an equal-rows detection type compares (see ``_equal_rows``)."""

    keys: list[pl.Expr]
    detail_columns: list[str]
    raw_columns: list[str]
    reread: pl.Expr | None = None  # true where rows equal on the keys may have been written differently


READ_EQUAL = "equal after reading values"  # the label of exact duplicates that may differ as written


@dataclass(frozen=True)
class _Reread:
    """The columns whose equal cells may have been written differently in the file: an earlier step of the chain
    turned some of their cells into nulls (missing-value tokens, blanks: ``nulls``), or changed the text of some of
    their values (a number read from ``4.0``, trimmed spaces: ``values``), or the reader read some of their numbers
    from a text it does not write back (``1e3``: a layout's ``written_otherwise``). The agent gets the data as read,
    not the file's text, and the steps' records count cells per column: two rows equal on such a column may
    differ in the file, so their duplicate is called ``READ_EQUAL`` rather than ``exact`` (they are duplicates in
    meaning all the same: reading tokens and types is what PRODUCT.md calls unambiguous)."""

    nulls: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()

    @classmethod
    def of(cls, inputs: AgentInputs, columns: list[str]) -> _Reread:
        nulls: set[str] = set()
        values = {name for name, layout in inputs.text_layouts.items() if getattr(layout, "written_otherwise", 0)}
        for step in inputs.context.steps:
            for name, change in (step.get("columns") or {}).items():
                added = max(0, int(change.get("nulls_after") or 0) - int(change.get("nulls_before") or 0))
                if added:
                    nulls.add(name)
                if int(change.get("cells_changed") or 0) > added:
                    values.add(name)
        known = set(columns)
        return cls(frozenset(nulls & known), frozenset(values & known))

    def expr(self, columns: list[str]) -> pl.Expr | None:
        """True for a row whose cells in these columns may have been written otherwise (None: no such column)."""
        exprs = [pl.col(name).is_null() for name in columns if name in self.nulls]
        exprs += [pl.col(name).is_not_null() for name in columns if name in self.values]
        return pl.any_horizontal(exprs) if exprs else None


def _detect(
    work: W,
    stages: Sequence[str],
    context: _Context,
    params: DuplicateResolverParams,
    progress: Progress | None,
) -> tuple[dict[str, StageOutcome], W]:
    """Run the detection types of ``stages`` (in ``STAGE_ORDER``) on ``work``, each on the rows the previous
    one kept: the outcome of every type (those not in ``stages`` "not requested") and the rows left."""
    schema = work.schema
    columns = [name for name in schema.names() if name not in BOOKKEEPING_COLUMNS]
    equal = {stage: _equal_keys(stage, columns, schema, context) for stage in EQUAL_ROW_STAGES if stage in stages}
    if work.height >= 2 and columns:  # noqa: PLR2004 - one row repeats nothing
        work = work.expecting({stage: spec.keys for stage, spec in equal.items() if isinstance(spec, _EqualKeys)})
    outcomes: dict[str, StageOutcome] = {}
    for position, stage in enumerate(STAGE_ORDER):
        if progress is not None:
            progress(0.05 + 0.75 * position / len(STAGE_ORDER), f"Detecting {stage.replace('_', ' ')} duplicates")
        if stage not in stages:
            outcomes[stage] = StageOutcome(stage, note="not requested")
            continue
        if work.height < 2 or not columns:
            outcomes[stage] = StageOutcome(stage, note="no data columns" if not columns else "fewer than two rows")
            continue
        spec = equal.get(stage)
        if isinstance(spec, str):
            outcome = StageOutcome(stage, note=spec)
        elif spec is not None:
            outcome, work = work.equal_rows(stage, spec.keys, spec.detail_columns, spec.raw_columns, spec.reread)
        elif stage == "conflicting":
            if not params.key_columns:
                outcome = StageOutcome(
                    stage, note="needs key_columns (with all columns as the key there is nothing left to conflict)"
                )
            else:
                outcome, work = work.conflicting(columns, list(params.key_columns), context.email_columns, params)
        else:
            outcome, work = work.missing_values(columns, params)
        outcomes[stage] = outcome
    return outcomes, work


def _equal_keys(stage: str, columns: list[str], schema: pl.Schema, context: _Context) -> _EqualKeys | str:
    """What an equal-rows detection type compares, or why it does not run."""
    email_columns, key_columns = context.email_columns, context.key_columns
    if stage == "exact":
        return _EqualKeys([pl.col(name) for name in columns], [], columns, context.reread.expr(columns))
    if stage == "email_case":
        if not email_columns:
            return "no e-mail columns given or detected"
        keys = [_norm_email(name) if name in email_columns else pl.col(name) for name in columns]
        return _EqualKeys(keys, email_columns, [name for name in columns if name not in email_columns])
    text_keys = [name for name in key_columns if is_text(schema[name])]
    if not text_keys:
        return "no text key columns"
    keys = [_norm_case(name) if name in text_keys else pl.col(name) for name in columns]
    return _EqualKeys(keys, text_keys, [name for name in columns if name not in text_keys])


def _proposals(proposed: dict[str, StageOutcome], enabled: set[str]) -> list[dict[str, Any]]:
    """One proposal per kind of duplicate not requested that would remove rows (each counted on the rows the
    requested kinds and the earlier proposed kinds left)."""
    items = []
    for stage, outcome in proposed.items():
        if not outcome.removed.height:
            continue
        types = [name for name in STAGE_ORDER if name in enabled or name == stage]
        items.append(
            proposal(
                AGENT_ID,
                f"remove_{stage}_duplicates",
                f"Remove {outcome.removed.height:,} {stage.replace('_', ' ')} duplicates "
                f"({DESCRIPTIONS[stage]}); they are not identical rows",
                {"detection_types": types},
                rows_affected=outcome.removed.height,
            )
        )
    return items


class _Work(Protocol):
    """The rows the detection types run on: a frame (``_InMemory``) or a plan over a spill (``_Streamed``)."""

    @property
    def height(self) -> int: ...

    @property
    def schema(self) -> pl.Schema: ...

    def email_columns(self, columns: list[str]) -> list[str]: ...

    def expecting(self, keys: dict[str, list[pl.Expr]]) -> Self: ...

    def equal_rows(
        self,
        stage: str,
        keys: list[pl.Expr],
        detail_columns: list[str],
        raw_columns: list[str],
        reread: pl.Expr | None = None,
    ) -> tuple[StageOutcome, Self]: ...

    def conflicting(
        self, columns: list[str], key_columns: list[str], email_columns: list[str], params: DuplicateResolverParams
    ) -> tuple[StageOutcome, Self]: ...

    def missing_values(self, columns: list[str], params: DuplicateResolverParams) -> tuple[StageOutcome, Self]: ...

    def output(self) -> pl.DataFrame | pl.LazyFrame: ...


@dataclass(frozen=True)
class _InMemory:
    """The rows as a frame: each detection type runs on it whole."""

    frame: pl.DataFrame

    @property
    def height(self) -> int:
        return self.frame.height

    @property
    def schema(self) -> pl.Schema:
        return self.frame.schema

    def email_columns(self, columns: list[str]) -> list[str]:
        return detect_email_columns(self.frame, columns)

    def expecting(self, keys: dict[str, list[pl.Expr]]) -> _InMemory:
        return self

    def equal_rows(
        self,
        stage: str,
        keys: list[pl.Expr],
        detail_columns: list[str],
        raw_columns: list[str],
        reread: pl.Expr | None = None,
    ) -> tuple[StageOutcome, _InMemory]:
        outcome, rest = _equal_rows(self.frame, stage, keys, detail_columns, raw_columns, reread)
        return outcome, _InMemory(rest)

    def conflicting(
        self, columns: list[str], key_columns: list[str], email_columns: list[str], params: DuplicateResolverParams
    ) -> tuple[StageOutcome, _InMemory]:
        outcome, rest = _conflicting(self.frame, columns, key_columns, email_columns, params)
        return outcome, _InMemory(rest)

    def missing_values(self, columns: list[str], params: DuplicateResolverParams) -> tuple[StageOutcome, _InMemory]:
        outcome, rest = _missing_values(self.frame, columns, params)
        return outcome, _InMemory(rest)

    def output(self) -> pl.DataFrame:
        return self.frame


@dataclass(frozen=True)
class _Streamed:
    """A primary too large for memory (``AgentInputs.scan``): the chain's scan, less the rows removed so far,
    with the values merges gave some kept rows. Both are spilled under ``spill_dir`` and read by ``plan``, so
    the plan holds no data.

    Each detection type runs the in-memory code on the few rows that can be duplicates: those sharing a
    64-bit hash of the type's key with another row, found by a streaming ``group_by`` on the hash (for
    missing_values, the rows whose filled cells hash like a row with gaps of an examined pattern). Equal
    keys hash equally, so every group is among them whole; the in-memory code then compares the real
    values, so a hash shared by different rows changes nothing."""

    source: pl.LazyFrame
    schema: pl.Schema
    spill_dir: Path
    height: int
    removed: pl.Series = field(default_factory=lambda: pl.Series(ROW_INDEX_COLUMN, [], dtype=pl.Int64))
    updates: pl.DataFrame | None = None  # the merged rows' new values, every column
    # The equal-rows types to come (``expecting``): the rows that may repeat on each one's key, found in one pass.
    expected: _Candidates | None = None

    @classmethod
    def start(cls, inputs: AgentInputs) -> _Streamed:
        if inputs.scan is None or inputs.work_dir is None:
            raise ValueError("a streamed run needs AgentInputs.scan and AgentInputs.work_dir")
        scan = inputs.scan
        if ROW_INDEX_COLUMN not in scan.collect_schema():
            scan = scan.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
        spill_dir = inputs.work_dir / SPILL_FOLDER
        spill_dir.mkdir(parents=True, exist_ok=True)
        rows = inputs.rows if inputs.rows is not None else _collect([scan.select(pl.len())])[0].item()
        return cls(scan, scan.collect_schema(), spill_dir, rows)

    @functools.cached_property
    def plan(self) -> pl.LazyFrame:
        """The rows left in file order: the scan without the removed and the merged rows (a filter on their row
        indices), merged in order (``merge_sorted``: the streaming engine keeps the order; a join would not)
        with the merged rows' new values, read from a spill."""
        updates = self.updates
        if updates is not None:
            updates = updates.filter(~pl.col(ROW_INDEX_COLUMN).is_in(self.removed.implode()))
        dropped = self.removed if updates is None else pl.concat([self.removed, updates[ROW_INDEX_COLUMN]])
        plan = self.source
        if dropped.len():
            plan = plan.filter(~pl.col(ROW_INDEX_COLUMN).is_in(dropped.implode()))
        if updates is not None and updates.height:
            merged = updates.select(self.schema.names()).cast(self.schema).sort(ROW_INDEX_COLUMN)
            plan = plan.merge_sorted(self._spill(merged, "merged"), key=ROW_INDEX_COLUMN)
        return plan

    def _spill(self, frame: pl.DataFrame, kind: str) -> pl.LazyFrame:
        path = self.spill_dir / f"{kind}-{uuid.uuid4().hex}.parquet"
        frame.write_parquet(path)
        return pl.scan_parquet(path)

    def output(self) -> pl.LazyFrame:
        return self.plan

    def without(self, removed: pl.Series, changed: pl.DataFrame | None = None) -> _Streamed:
        """The rows left once ``removed`` (row indices) are gone and the rows of ``changed`` took its values."""
        updates = self.updates
        if changed is not None and changed.height:
            earlier = (
                updates.filter(~pl.col(ROW_INDEX_COLUMN).is_in(changed[ROW_INDEX_COLUMN].implode()))
                if updates is not None
                else None
            )
            updates = changed if earlier is None else pl.concat([earlier, changed], how="vertical")
        if not removed.len() and updates is self.updates:
            return self
        return _Streamed(
            self.source,
            self.schema,
            self.spill_dir,
            self.height - removed.len(),
            pl.concat([self.removed, removed.cast(pl.Int64).rename(ROW_INDEX_COLUMN)]),
            updates,
            self.expected,
        )

    def expecting(self, keys: dict[str, list[pl.Expr]]) -> _Streamed:
        return dataclasses.replace(self, expected=self.candidates(keys) if keys else None)

    def email_columns(self, columns: list[str]) -> list[str]:
        text = [name for name in columns if is_text(self.schema[name])]
        if not text or self.height == 0:
            return []
        queries = [
            self.source.select(pl.col(name).cast(pl.String))
            .drop_nulls()
            .head(EMAIL_SAMPLE_SIZE)
            .select(pl.col(name).str.strip_chars().str.contains(EMAIL_PATTERN).mean())
            for name in text
        ]
        shares = {name: frame.item() for name, frame in zip(text, _collect(queries), strict=True)}
        return [name for name in text if (shares[name] or 0.0) > EMAIL_SHARE]

    def candidates(self, keys: dict[str, list[pl.Expr]]) -> _Candidates:
        """The rows whose hash of the keys (one set of key expressions per name) another row shares. The key
        expressions are evaluated once, their hashes spilled with the row index; the rows are then read in one
        pass when they fit in ``MAX_CANDIDATE_CELLS``."""
        names = {name: f"__hash_{index}__" for index, name in enumerate(keys)}
        path = self.spill_dir / f"hashes-{uuid.uuid4().hex}.parquet"
        self.plan.select(
            ROW_INDEX_COLUMN, *[pl.struct(keys[name]).hash(seed=0).alias(column) for name, column in names.items()]
        ).sink_parquet(path)
        hashed = pl.scan_parquet(path)
        # A streaming group_by holds one entry per distinct hash: past MAX_GROUPED_ROWS rows, in parts by hash.
        parts = self._parts()
        found = []
        for column in names.values():
            shares = [
                hashed.select(ROW_INDEX_COLUMN, pl.col(column).alias(HASH))
                .filter(pl.col(HASH) % parts == part)
                .join(
                    hashed.filter(pl.col(column) % parts == part)
                    .group_by(column)
                    .agg(pl.len().alias("n"))
                    .filter(pl.col("n") > 1)
                    .select(column),
                    left_on=HASH,
                    right_on=column,
                    how="semi",
                )
                for part in range(parts)
            ]
            found.append(pl.concat([_collect([share])[0] for share in shares], how="vertical"))
        path.unlink()
        rows = dict(zip(names, found, strict=True))
        wanted = pl.concat([frame[ROW_INDEX_COLUMN] for frame in found]).unique()
        if not wanted.len():
            return _Candidates(rows, pl.DataFrame(schema=self.schema))
        if wanted.len() * len(self.schema) > MAX_CANDIDATE_CELLS:
            return _Candidates(rows, None)
        return _Candidates(rows, self._rows(wanted))

    def _rows(self, wanted: pl.Series) -> pl.DataFrame:
        """The rows of the plan with these row indices, in file order. Sunk to a spill and read back: a frame
        collected from the scan would keep alive every page of text its rows were read from (string views),
        which for rows spread through the file is all of its text."""
        path = self.spill_dir / f"rows-{uuid.uuid4().hex}.parquet"
        self.plan.filter(pl.col(ROW_INDEX_COLUMN).is_in(wanted.implode())).sink_parquet(path)
        frame = pl.read_parquet(path)
        path.unlink()
        return frame

    def scopes(self, name: str, keys: list[pl.Expr]) -> Iterator[pl.DataFrame]:
        """The rows still here that may repeat on ``keys`` (the detection type ``name``), in file order: in one
        frame, or when they do not fit in ``MAX_CANDIDATE_CELLS`` in parts by hash (each group whole in one)."""
        found = self.expected if self.expected is not None and name in self.expected.rows else None
        if found is None:
            found = self.candidates({name: keys})
        rows = found.rows[name].filter(~pl.col(ROW_INDEX_COLUMN).is_in(self.removed.implode()))
        if found.frame is not None or not rows.height:
            frame = pl.DataFrame(schema=self.schema) if found.frame is None else found.frame
            yield frame.filter(pl.col(ROW_INDEX_COLUMN).is_in(rows[ROW_INDEX_COLUMN].implode()))
            return
        parts = -(-rows.height * len(self.schema) // MAX_CANDIDATE_CELLS)
        for part in range(parts):
            yield self._rows(rows.filter(pl.col(HASH) % parts == part)[ROW_INDEX_COLUMN])

    def equal_rows(
        self,
        stage: str,
        keys: list[pl.Expr],
        detail_columns: list[str],
        raw_columns: list[str],
        reread: pl.Expr | None = None,
    ) -> tuple[StageOutcome, _Streamed]:
        parts = [
            _equal_rows(scope, stage, keys, detail_columns, raw_columns, reread)[0]
            for scope in self.scopes(stage, keys)
        ]
        outcome = parts[0] if len(parts) == 1 else _joined_equal_rows(stage, parts)
        return outcome, self.without(outcome.removed[ROW_INDEX_COLUMN])

    def conflicting(
        self, columns: list[str], key_columns: list[str], email_columns: list[str], params: DuplicateResolverParams
    ) -> tuple[StageOutcome, _Streamed]:
        _, key_exprs = _key_exprs(self.schema, key_columns, email_columns)
        parts, changed = [], []
        for scope in self.scopes("conflicting", key_exprs):
            outcome, rest = _conflicting(scope, columns, key_columns, email_columns, params)
            parts.append(outcome)
            changed.append(_changed_rows(scope, rest, columns))
        outcome = parts[0] if len(parts) == 1 else _joined_conflicts(parts, columns, key_columns)
        return outcome, self.without(outcome.removed[ROW_INDEX_COLUMN], pl.concat(changed, how="vertical"))

    def missing_values(self, columns: list[str], params: DuplicateResolverParams) -> tuple[StageOutcome, _Streamed]:
        marked = self.plan.with_columns(_gap_exprs(columns))
        counts = _pattern_counts(marked.filter(_has_gaps(columns)).select(ROW_INDEX_COLUMN, NULLS, PATTERN))
        (patterns,) = _collect([counts])
        examined = patterns.head(params.max_null_patterns)
        scope, flags = pl.DataFrame(schema=self.schema), {}
        if examined.height and not self._has_identifier(columns):
            (examples,) = _collect([self.plan.filter(pl.col(ROW_INDEX_COLUMN).is_in(examined["example"].implode()))])
            flags = _null_flags(examples, columns)
            scope = self._subsumption_scope(marked, examined, flags, columns)
        info = scope.select(ROW_INDEX_COLUMN, *_gap_exprs(columns))
        scope_marked = scope.with_columns(info[NULLS], info[PATTERN])
        gaps = _gap_patterns_of(scope_marked, scope_marked.filter(_has_gaps(columns)), patterns, params)
        pairs = _pairs_by_pattern(gaps, columns, flags) if flags else pl.DataFrame(schema=PAIRS_SCHEMA)
        outcome, rest = _resolve_subsumed(scope, gaps, pairs, columns, params)
        return outcome, self.without(outcome.removed[ROW_INDEX_COLUMN], _changed_rows(scope, rest, columns))

    def _parts(self) -> int:
        """In how many parts (by hash) a query holding an entry per row reads the plan."""
        return max(1, -(-self.height // MAX_GROUPED_ROWS))

    def _has_identifier(self, columns: list[str]) -> bool:
        """``has_identifier`` with nulls not allowed, over the plan: whether one of the first
        ``IDENTIFIER_CANDIDATES`` integer columns holds a different value in every row, none empty. The distinct
        values are counted in parts by hash, one part's held at a time."""
        integers = [name for name in columns if self.schema[name].is_integer()][:IDENTIFIER_CANDIDATES]
        if not integers or self.height < 2:  # noqa: PLR2004 - one row repeats nothing
            return False
        (nulls,) = _collect([self.plan.select(pl.col(integers).null_count())])
        filled = [name for name in integers if not nulls[name].item()]
        distinct = dict.fromkeys(filled, 0)
        parts = self._parts()
        for part in range(parts if filled else 0):
            in_part = [pl.col(name).filter(pl.col(name).hash(seed=0) % parts == part).n_unique() for name in filled]
            (counts,) = _collect([self.plan.select(in_part)])
            for name in filled:
                distinct[name] += counts[name].item()
        return any(count == self.height for count in distinct.values())

    def _subsumption_scope(
        self,
        marked: pl.LazyFrame,
        examined: pl.DataFrame,
        flags: dict[int, tuple[bool, ...]],
        columns: list[str],
    ) -> pl.DataFrame:
        """The rows that may take part in a missing_values pair: each row with gaps of an examined pattern whose
        filled values some row with fewer gaps (filled there too) also holds, and those rows. Found by hashes:
        each cell is hashed once (equal values hash equally, -0.0 as 0.0, every NaN alike), a row with gaps
        keyed by the XOR of its filled cells' hashes, a possible subsumer by the XOR of its cells' hashes in
        the pattern's filled columns. The keys of the rows with gaps are held in parts by hash (at most
        ``MAX_GROUPED_ROWS`` at a time), each part with a pass for its possible subsumers."""
        cell_hashes = {name: f"__cell_hash_{index}__" for index, name in enumerate(columns)}
        marked = marked.with_columns(
            pl.col(name).hash(seed=SUBSUMPTION_SEED + index).alias(cell)
            for index, (name, cell) in enumerate(cell_hashes.items())
        )
        zero = pl.lit(0, dtype=pl.UInt64)
        whole = _xor(
            [
                pl.when(pl.col(name).is_not_null()).then(pl.col(cell)).otherwise(zero)
                for name, cell in cell_hashes.items()
            ]
        ).alias(HASH)
        pattern_keys = examined.select(PATTERN, NULLS).lazy()
        with_gaps = (
            marked.filter(_has_gaps(columns))
            .join(pattern_keys, on=[PATTERN, NULLS], how="semi")
            .select(ROW_INDEX_COLUMN, PATTERN, NULLS, whole)
        )
        patterns = [
            (pattern, null_count, [name for name, empty in zip(columns, flags[example], strict=True) if not empty])
            for pattern, example, null_count in examined.select(PATTERN, "example", NULLS).iter_rows()
        ]
        parts = max(1, -(-int(examined["rows"].sum()) // MAX_GROUPED_ROWS))
        found = [
            self._subsumption_rows(marked, with_gaps, patterns, cell_hashes, (part, parts)) for part in range(parts)
        ]
        rows = pl.concat(found, how="vertical").unique()
        if not rows.height:
            return pl.DataFrame(schema=self.schema)
        return self._rows(rows[ROW_INDEX_COLUMN])

    def _subsumption_rows(
        self,
        marked: pl.LazyFrame,
        with_gaps: pl.LazyFrame,
        patterns: list[tuple[int, int, list[str]]],
        cell_hashes: dict[str, str],
        share: tuple[int, int],
    ) -> pl.DataFrame:
        """``_subsumption_scope``'s rows (``ROW_INDEX_COLUMN``) for the keys with ``HASH % parts == part``
        (``share``); ``patterns``: each examined pattern, its number of empty cells and its filled columns,
        ``cell_hashes`` the columns of their cells' hashes."""
        part, parts = share
        in_part = pl.col(HASH) % parts == part
        (left,) = _collect([with_gaps.filter(in_part).select(PATTERN, NULLS, HASH).unique()])
        matches, specs = [], []
        for index, (pattern, null_count, filled) in enumerate(patterns):
            keys = left.filter((pl.col(PATTERN) == pattern) & (pl.col(NULLS) == null_count))[HASH]
            masked = _xor([pl.col(cell_hashes[name]) for name in filled])
            subsumes = (
                (pl.col(NULLS) < null_count)
                & pl.all_horizontal([pl.col(name).is_not_null() for name in filled])
                & masked.is_in(keys.implode())
            )
            name = f"__match_{index}__"
            matches.append(pl.when(subsumes).then(masked).alias(name))
            specs.append((name, pattern, null_count))
        fewest = max(null_count for _, null_count, _ in patterns)
        (right,) = _collect(
            [
                marked.filter(pl.col(NULLS) < fewest)
                .select(ROW_INDEX_COLUMN, *matches)
                .filter(pl.any_horizontal([pl.col(name).is_not_null() for name, _, _ in specs]))
            ]
        )
        matched = pl.concat(
            [
                right.select(pl.col(name).drop_nulls().unique().alias(HASH)).with_columns(
                    pl.lit(pattern, dtype=pl.UInt64).alias(PATTERN), pl.lit(null_count, dtype=pl.Int64).alias(NULLS)
                )
                for name, pattern, null_count in specs
            ],
            how="vertical",
        ).select(PATTERN, NULLS, HASH)
        (subsumed,) = _collect(
            [
                with_gaps.filter(in_part)
                .join(matched.lazy(), on=[PATTERN, NULLS, HASH], how="semi")
                .select(ROW_INDEX_COLUMN)
            ]
        )
        return pl.concat([right.select(ROW_INDEX_COLUMN), subsumed], how="vertical")


@dataclass(frozen=True)
class _Candidates:
    """Per detection type, the rows that may repeat (``ROW_INDEX_COLUMN`` and their ``HASH``); ``frame``: all
    those rows in file order, or None when they do not fit in ``MAX_CANDIDATE_CELLS``."""

    rows: dict[str, pl.DataFrame]
    frame: pl.DataFrame | None


def _joined_equal_rows(stage: str, parts: list[StageOutcome]) -> StageOutcome:
    """One equal-rows outcome from those of parts holding disjoint groups."""
    removed = pl.concat([part.removed for part in parts], how="vertical").sort(ROW_INDEX_COLUMN)
    return StageOutcome(stage, removed=removed, groups=sum(part.groups for part in parts))


def _joined_conflicts(parts: list[StageOutcome], columns: list[str], key_columns: list[str]) -> StageOutcome:
    """One conflicting outcome from those of parts holding disjoint key groups: counts summed, the examples
    the first ``CONFLICT_EXAMPLES`` groups in file order (as ``_conflict_report`` lists them)."""
    details = dict(parts[0].details)
    by_column = {
        name: sum(part.details["conflicts_by_column"].get(name, 0) for part in parts)
        for name in columns
        if name not in key_columns
    }
    examples = sorted(
        (example for part in parts for example in part.details["conflict_examples"]),
        key=lambda example: example["rows"][0],
    )
    details.update(
        conflicting_groups=sum(part.details["conflicting_groups"] for part in parts),
        conflicts_by_column={name: count for name, count in by_column.items() if count},
        conflict_examples=examples[:CONFLICT_EXAMPLES],
    )
    return StageOutcome(
        "conflicting",
        removed=pl.concat([part.removed for part in parts], how="vertical").sort(ROW_INDEX_COLUMN),
        groups=sum(part.groups for part in parts),
        merged_rows=sum(part.merged_rows for part in parts),
        details=details,
    )


def _xor(hashes: list[pl.Expr]) -> pl.Expr:
    return functools.reduce(operator.xor, hashes)


def _collect(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    """Queries over a streamed run's plan, on the streaming engine."""
    return pl.collect_all(queries, engine="streaming")


def _changed_rows(before: pl.DataFrame, after: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The rows of ``after`` whose values differ from the same row's in ``before`` (a merge changed them)."""
    olds = [f"{name}{OLD_VALUE}" for name in columns]
    joined = after.join(
        before.select(ROW_INDEX_COLUMN, *[pl.col(name).alias(old) for name, old in zip(columns, olds, strict=True)]),
        on=ROW_INDEX_COLUMN,
        how="inner",
        maintain_order="left",
    )
    differs = pl.any_horizontal([pl.col(name).ne_missing(pl.col(old)) for name, old in zip(columns, olds, strict=True)])
    return joined.filter(differs).select(after.columns)


def detect_email_columns(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """Text columns where more than half of the first ``EMAIL_SAMPLE_SIZE`` non-empty values look like
    e-mail addresses."""
    text = [name for name in columns if is_text(frame[name].dtype)]
    if not text or frame.height == 0:
        return []
    shares = (
        frame.lazy()
        .select(
            pl.col(name)
            .cast(pl.String)
            .drop_nulls()
            .head(EMAIL_SAMPLE_SIZE)
            .str.strip_chars()
            .str.contains(EMAIL_PATTERN)
            .mean()
            .alias(name)
            for name in text
        )
        .collect()
        .row(0, named=True)
    )
    return [name for name in text if (shares[name] or 0.0) > EMAIL_SHARE]


def _norm_case(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars().str.replace_all(r"\s+", " ").str.to_lowercase().alias(name)


def _norm_email(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.replace_all(r"\s+", "").str.to_lowercase().alias(name)


def _equal_rows(
    work: pl.DataFrame,
    stage: str,
    keys: list[pl.Expr],
    detail_columns: list[str],
    raw_columns: list[str],
    reread: pl.Expr | None = None,
) -> tuple[StageOutcome, pl.DataFrame]:
    """Rows equal on ``keys``: the first in file order is kept, the others removed. ``detail_columns`` are
    named in the reason where the removed row's raw value differs from the kept row's. ``raw_columns`` are
    the columns among the keys used as they are: rows equal on the keys are equal on those, so the groups
    are looked for only among the rows sharing a hash of them with another row (usually few or none).
    ``reread`` (of a removed row, whose keys equal its kept row's): its reason says ``READ_EQUAL``, not ``stage``."""
    # The frame goes on in one chunk per column (a no-op when it is), as a rewrite of every row left it:
    # aggregations downstream (a mean summed chunk by chunk) then round exactly as they always did.
    candidates = _possible_repeats(work, raw_columns or keys)
    if candidates is not None and not candidates.height:
        return StageOutcome(stage), work.rechunk()
    scope = work if candidates is None else candidates
    flagged = scope.with_columns(pl.col(ROW_INDEX_COLUMN).min().over(keys).alias(KEPT))
    duplicate = pl.col(KEPT) != pl.col(ROW_INDEX_COLUMN)
    found = flagged.filter(duplicate).select(
        ROW_INDEX_COLUMN, KEPT, *detail_columns, *([] if reread is None else [reread.alias(REREAD)])
    )
    # Which detail columns differ from the kept row: a join on the (few) duplicates, not a window per column.
    kept_names = [f"__kept_{index}__" for index in range(len(detail_columns))]
    if detail_columns and found.height:
        kept_values = scope.lazy().select(
            pl.col(ROW_INDEX_COLUMN).alias(KEPT),
            *[pl.col(name).alias(alias) for name, alias in zip(detail_columns, kept_names, strict=True)],
        )
        found = found.lazy().join(kept_values, on=KEPT, how="left", maintain_order="left").collect()
    differs = names_where(
        [
            (name, pl.col(name).ne_missing(pl.col(alias)))
            for name, alias in zip(detail_columns, kept_names, strict=True)
            if alias in found.columns
        ]
    )
    kind = (
        pl.lit(stage) if reread is None else pl.when(pl.col(REREAD)).then(pl.lit(READ_EQUAL)).otherwise(pl.lit(stage))
    )
    label = pl.when(differs == "").then(kind).otherwise(format_text("{} on {}", kind, differs))
    removed = found.select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
        format_text("duplicate of row {} ({})", pl.col(KEPT), label).alias(REASON),
        pl.col(KEPT).cast(pl.Int64),
        pl.lit(stage).alias(STAGE),
        pl.lit("warning" if stage == "exact" else "info").alias(SEVERITY),
    )
    survivors = (
        work.filter(~pl.col(ROW_INDEX_COLUMN).is_in(found[ROW_INDEX_COLUMN].implode())) if found.height else work
    )
    return StageOutcome(stage, removed=removed, groups=removed[KEPT].n_unique()), survivors.rechunk()


def _possible_repeats(work: pl.DataFrame, keys: list[str] | list[pl.Expr]) -> pl.DataFrame | None:
    """The rows of ``work`` whose hash of ``keys`` another row shares (equal keys hash equally: nulls alike,
    -0.0 as 0.0, every NaN alike), in order; None when most rows do (then the rows are all searched). No row
    when a key column is an identifier (``agents.clean.common.has_identifier``): no two rows are equal then."""
    repeated = repeat_candidates(work, keys)
    if repeated is None:
        return work.clear()
    if repeated.sum() > work.height // 2:
        return None
    return work.filter(repeated)


def _conflicting(
    work: pl.DataFrame,
    columns: list[str],
    key_columns: list[str],
    email_columns: list[str],
    params: DuplicateResolverParams,
) -> tuple[StageOutcome, pl.DataFrame]:
    stage = "conflicting"
    keyed = _key_groups(work, columns, key_columns, email_columns, params)
    flagged = keyed.frame
    duplicate = pl.col(IN_GROUP) & (pl.col(KEPT) != pl.col(ROW_INDEX_COLUMN))
    removed = flagged.filter(duplicate).select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
        _conflict_reason(keyed, params).alias(REASON),
        pl.col(KEPT).cast(pl.Int64),
        pl.lit(stage).alias(STAGE),
        pl.when(keyed.has_conflict).then(pl.lit("critical")).otherwise(pl.lit("warning")).alias(SEVERITY),
    )
    groups, details = _conflict_report(keyed)
    merged_rows = 0
    if params.conflict_resolution == "merge_smart" and groups:
        flagged, merged_rows = _merge_groups(flagged, columns, keyed.key_names)
    survivors = flagged.filter(~duplicate).select(work.columns)
    outcome = StageOutcome(
        stage,
        removed=removed,
        groups=groups,
        merged_rows=merged_rows,
        details={
            "key_columns": key_columns,
            **details,
            "conflict_resolution": params.conflict_resolution,
            "null_handling": params.null_handling,
        },
    )
    return outcome, survivors


@dataclass
class _KeyGroups:
    """The rows grouped by their normalised key: ``frame`` is the work frame with the key columns (named
    ``key_names``), ``IN_GROUP``, the group's kept row (``KEPT``) and, per other column, whether the group
    holds different values in it (named ``flag_names``)."""

    frame: pl.DataFrame
    key_columns: list[str]
    key_names: list[str]
    others: list[str]
    flag_names: list[str]

    @property
    def has_conflict(self) -> pl.Expr:
        return pl.any_horizontal([pl.col(flag) for flag in self.flag_names]) if self.flag_names else pl.lit(False)

    @property
    def conflict_names(self) -> pl.Expr:
        return names_where([(name, pl.col(flag)) for name, flag in zip(self.others, self.flag_names, strict=True)])


def _key_groups(
    work: pl.DataFrame,
    columns: list[str],
    key_columns: list[str],
    email_columns: list[str],
    params: DuplicateResolverParams,
) -> _KeyGroups:
    """Key text normalised as for case variations (e-mail columns as for e-mail case); with ``ignore_nulls``
    a row with an empty key is in no group, and an empty cell is no conflict."""
    key_names, key_exprs = _key_exprs(work.schema, key_columns, email_columns)
    others = [name for name in columns if name not in key_columns]
    flag_names = [f"__conflict_{index}__" for index in range(len(others))]
    ignore_nulls = params.null_handling == "ignore_nulls"

    eligible = pl.all_horizontal([pl.col(name).is_not_null() for name in key_names]) if ignore_nulls else pl.lit(True)
    in_group = eligible & (pl.len().over(key_names) > 1)
    if params.conflict_resolution == "keep_last":
        kept = pl.col(ROW_INDEX_COLUMN).max().over(key_names)
    else:
        kept = pl.col(ROW_INDEX_COLUMN).min().over(key_names)
    flags = [
        ((pl.col(name).drop_nulls() if ignore_nulls else pl.col(name)).n_unique().over(key_names) > 1).alias(flag)
        for name, flag in zip(others, flag_names, strict=True)
    ]
    flagged = (
        work.lazy()
        .with_columns(key_exprs)
        .with_columns(in_group.alias(IN_GROUP))
        .with_columns(pl.when(pl.col(IN_GROUP)).then(kept).alias(KEPT), *flags)
        .collect()
    )
    return _KeyGroups(flagged, key_columns, key_names, others, flag_names)


def _key_exprs(schema: pl.Schema, key_columns: list[str], email_columns: list[str]) -> tuple[list[str], list[pl.Expr]]:
    """The normalised key columns' names and expressions: e-mail columns as for e-mail case, other text as for
    case variations, the rest as they are."""
    key_names = [f"__key_{index}__" for index in range(len(key_columns))]
    key_exprs = []
    for name, alias in zip(key_columns, key_names, strict=True):
        if name in email_columns:
            key_exprs.append(_norm_email(name).alias(alias))
        elif is_text(schema[name]):
            key_exprs.append(_norm_case(name).alias(alias))
        else:
            key_exprs.append(pl.col(name).alias(alias))
    return key_names, key_exprs


def _conflict_reason(keyed: _KeyGroups, params: DuplicateResolverParams) -> pl.Expr:
    key_text = ", ".join(keyed.key_columns)
    return (
        pl.when(keyed.has_conflict)
        .then(
            format_text(
                "duplicate of row {} (conflicting on key {}: values differ in {}; kept by {})",
                pl.col(KEPT),
                pl.lit(key_text),
                keyed.conflict_names,
                pl.lit(params.conflict_resolution),
            )
        )
        .otherwise(
            format_text(
                "duplicate of row {} (conflicting: same key {}, no conflicting values; kept by {})",
                pl.col(KEPT),
                pl.lit(key_text),
                pl.lit(params.conflict_resolution),
            )
        )
    )


def _conflict_report(keyed: _KeyGroups) -> tuple[int, dict[str, Any]]:
    """The number of key groups, and the details of those that conflict: how many, per column, examples."""
    key_columns, key_names, others, flag_names = keyed.key_columns, keyed.key_names, keyed.others, keyed.flag_names
    members = keyed.frame.filter(pl.col(IN_GROUP))
    groups = members.group_by(key_names, maintain_order=True).agg(
        pl.col(ROW_INDEX_COLUMN).sort().alias("rows"),
        pl.col(KEPT).first().alias("kept_row"),
        *[pl.col(flag).first() for flag in flag_names],
    )
    conflicting_groups = groups.filter(keyed.has_conflict) if flag_names else groups.clear()
    by_column: dict[str, int] = {}
    if flag_names:
        counts = conflicting_groups.select(pl.col(flag_names).sum()).row(0)
        by_column = {name: int(count) for name, count in zip(others, counts, strict=True) if count}
    examples = [
        {
            "key": {column: plain_value(row[name]) for column, name in zip(key_columns, key_names, strict=True)},
            "rows": row["rows"],
            "kept_row": row["kept_row"],
            "conflicting_columns": [name for name, flag in zip(others, flag_names, strict=True) if row[flag]],
        }
        for row in conflicting_groups.head(CONFLICT_EXAMPLES).iter_rows(named=True)
    ]
    details = {
        "conflicting_groups": conflicting_groups.height,
        "conflicts_by_column": by_column,
        "conflict_examples": examples,
    }
    return groups.height, details


def _merge_groups(flagged: pl.DataFrame, columns: list[str], key_names: list[str]) -> tuple[pl.DataFrame, int]:
    """merge_smart: each group's kept row takes the group's first non-empty value of every column; the frame
    and the number of kept rows that changed."""
    is_kept = pl.col(IN_GROUP) & (pl.col(KEPT) == pl.col(ROW_INDEX_COLUMN))
    merged = {
        name: pl.when(is_kept)
        .then(pl.col(name).drop_nulls().first().over(key_names))  # the frame is in file order
        .otherwise(pl.col(name))
        for name in columns
    }
    changed = flagged.select(
        (is_kept & pl.any_horizontal([expr.ne_missing(pl.col(name)) for name, expr in merged.items()])).sum()
    ).item()
    return flagged.with_columns(**merged), int(changed)


def _missing_values(
    work: pl.DataFrame, columns: list[str], params: DuplicateResolverParams
) -> tuple[StageOutcome, pl.DataFrame]:
    gaps = _gap_patterns(work, columns, params)
    return _resolve_subsumed(work, gaps, _subsumed_pairs(gaps, columns), columns, params)


def _resolve_subsumed(
    work: pl.DataFrame, gaps: _GapPatterns, pairs: pl.DataFrame, columns: list[str], params: DuplicateResolverParams
) -> tuple[StageOutcome, pl.DataFrame]:
    """The missing_values outcome of ``pairs`` (``_subsumed_pairs``) and the rows left: the subsumed rows
    removed, or with merge_smart each group merged into its first row."""
    stage = "missing_values"
    details = {
        "null_patterns": gaps.patterns,
        "null_patterns_examined": gaps.examined.height,
        "rows_not_examined": gaps.rows_not_examined,
    }
    note = None
    if gaps.rows_not_examined:
        note = (
            f"{gaps.rows_not_examined:,} rows with rarer patterns of empty cells were not examined (max_null_patterns)"
        )

    merged_rows = 0
    if params.merge_strategy == "merge_smart":
        removed, work, merged_rows = _merge_subsumed(work, pairs, columns)
    else:
        removed = pairs.select(
            ROW_INDEX_COLUMN,
            format_text(
                "duplicate of row {} (missing_values: equal where both are filled; empty here in {})",
                pl.col(MATCH),
                pl.col("empty"),
            ).alias(REASON),
            pl.col(MATCH).alias(KEPT),
        )
    removed = removed.with_columns(pl.lit(stage).alias(STAGE), pl.lit("info").alias(SEVERITY)).cast(
        REMOVED_SCHEMA  # type: ignore[arg-type]
    )
    survivors = work.filter(~pl.col(ROW_INDEX_COLUMN).is_in(removed[ROW_INDEX_COLUMN].implode()))
    outcome = StageOutcome(
        stage,
        removed=removed,
        groups=removed[KEPT].n_unique(),
        merged_rows=merged_rows,
        note=note,
        details=details,
    )
    return outcome, survivors


@dataclass
class _GapPatterns:
    """The rows with some (not all) cells empty, by pattern of empty cells: ``marked`` is the work frame with
    each row's ``NULLS`` and ``PATTERN``, ``with_gaps`` its rows with gaps, ``examined`` the
    ``max_null_patterns`` most frequent patterns (``PATTERN``, ``rows``, ``example`` row, ``NULLS``)."""

    marked: pl.DataFrame
    with_gaps: pl.DataFrame
    examined: pl.DataFrame
    patterns: int
    rows_not_examined: int


def _gap_patterns(work: pl.DataFrame, columns: list[str], params: DuplicateResolverParams) -> _GapPatterns:
    # Only the columns with an empty cell tell the rows' patterns apart (every row is filled in the others): the
    # same counts and the same groups of rows, from a hash of fewer flags.
    nulls = work.select(pl.col(columns).null_count()).row(0) if columns else ()
    gapped = [name for name, count in zip(columns, nulls, strict=True) if count]
    info = work.select(pl.col(ROW_INDEX_COLUMN), *_gap_exprs(gapped))
    candidates = info.filter(_has_gaps(columns))
    patterns = _pattern_counts(candidates.lazy()).collect()
    marked = work.with_columns(info[NULLS], info[PATTERN])
    with_gaps = marked.filter(pl.col(ROW_INDEX_COLUMN).is_in(candidates[ROW_INDEX_COLUMN].implode()))
    return _gap_patterns_of(marked, with_gaps, patterns, params)


def _gap_exprs(columns: list[str]) -> list[pl.Expr]:
    """Each row's number of empty cells (``NULLS``) and a hash of which cells are empty (``PATTERN``)."""
    if not columns:
        return [pl.lit(0, pl.Int64).alias(NULLS), pl.lit(0, pl.UInt64).alias(PATTERN)]
    null_flags = [pl.col(name).is_null() for name in columns]
    return [
        pl.sum_horizontal(null_flags).cast(pl.Int64).alias(NULLS),
        pl.struct(null_flags).hash(seed=0).alias(PATTERN),
    ]


def _has_gaps(columns: list[str]) -> pl.Expr:
    """Some cells empty, not all."""
    return (pl.col(NULLS) > 0) & (pl.col(NULLS) < len(columns))


def _pattern_counts(with_gaps: pl.LazyFrame) -> pl.LazyFrame:
    """The patterns of empty cells among ``with_gaps`` (``ROW_INDEX_COLUMN``, ``NULLS``, ``PATTERN``): rows,
    first row (``example``) and ``NULLS``, most frequent first."""
    return (
        with_gaps.group_by(PATTERN)
        .agg(pl.len().alias("rows"), pl.col(ROW_INDEX_COLUMN).min().alias("example"), pl.col(NULLS).first())
        .sort(["rows", "example"], descending=[True, False])
    )


def _gap_patterns_of(
    marked: pl.DataFrame, with_gaps: pl.DataFrame, patterns: pl.DataFrame, params: DuplicateResolverParams
) -> _GapPatterns:
    examined = patterns.head(params.max_null_patterns)
    not_examined = int(patterns.tail(max(0, patterns.height - params.max_null_patterns))["rows"].sum())
    return _GapPatterns(marked, with_gaps, examined, patterns.height, not_examined)


def _subsumed_pairs(gaps: _GapPatterns, columns: list[str]) -> pl.DataFrame:
    """Each examined row with gaps and its most complete subsumer (``MATCH``; ties: the first), with the
    names of its empty columns (``empty``)."""
    with_gaps, examined = gaps.with_gaps, gaps.examined
    if examined.height and has_identifier(gaps.marked, columns, nulls_allowed=False):
        # A column filled in every row with a different value in each: every row's filled cells include it,
        # and no other row has its value there, so no row is subsumed.
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    examples = with_gaps.filter(pl.col(ROW_INDEX_COLUMN).is_in(examined["example"].implode()))
    return _pairs_by_pattern(gaps, columns, _null_flags(examples, columns))


def _null_flags(examples: pl.DataFrame, columns: list[str]) -> dict[int, tuple[bool, ...]]:
    """Which cells of each row of ``examples`` are empty, by its ``ROW_INDEX_COLUMN``."""
    flags = examples.select(ROW_INDEX_COLUMN, *[pl.col(name).is_null() for name in columns])
    return {row[0]: row[1:] for row in flags.iter_rows()}


def _pairs_by_pattern(
    gaps: _GapPatterns, columns: list[str], example_flags: dict[int, tuple[bool, ...]]
) -> pl.DataFrame:
    """``_subsumed_pairs`` once the examined patterns' empty cells (``example_flags``) are known."""
    with_gaps, examined = gaps.with_gaps, gaps.examined
    # Each pattern's possible subsumers are first narrowed to the rows sharing the values of its two most
    # distinct filled columns (among the rows with gaps) with one of its rows, then by a hash of all its
    # filled values; the real columns then decide. (One column left a third of the rows of a file with a
    # timestamp per hour to hash; a subsumer equals its row on every filled column, so on both.)
    distinct = with_gaps.select(pl.col(columns).n_unique()).row(0, named=True) if examined.height else {}
    patterns: list[_Pattern] = []
    for pattern, example, null_count in examined.select(PATTERN, "example", NULLS).iter_rows():
        flags = example_flags[example]
        filled = [name for name, is_null in zip(columns, flags, strict=True) if not is_null]
        empty = ", ".join(name for name, is_null in zip(columns, flags, strict=True) if is_null)
        narrowest = sorted(filled, key=lambda name: distinct[name], reverse=True)[:NARROWING_COLUMNS]
        filled_present = pl.all_horizontal([pl.col(name).is_not_null() for name in filled])
        left = with_gaps.filter((pl.col(PATTERN) == pattern) & (pl.col(NULLS) == null_count) & filled_present)
        patterns.append(_Pattern(null_count, filled, empty, narrowest, left.select(ROW_INDEX_COLUMN, *filled)))
    scopes = _narrowed_scopes(gaps.marked, patterns)
    parts = [_pattern_pairs(scopes[tuple(item.narrowest)], item) for item in patterns]
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=PAIRS_SCHEMA)


NARROWING_COLUMNS = 2  # filled columns whose values narrow a pattern's possible subsumers (_pairs_by_pattern)


@dataclass(frozen=True)
class _Pattern:
    """One examined pattern of empty cells: its rows' ``NULLS``, filled and empty columns (the empty ones named for
    the reason), the columns whose values narrow its possible subsumers, and its rows with every filled cell filled
    (``ROW_INDEX_COLUMN`` and the filled columns)."""

    null_count: int
    filled: list[str]
    empty: str
    narrowest: list[str]
    left: pl.DataFrame


def _narrowed_scopes(marked: pl.DataFrame, patterns: list[_Pattern]) -> dict[tuple[str, ...], pl.DataFrame]:
    """Per set of narrowing columns (usually one for all patterns), the rows of ``marked`` that may subsume a row of
    one of its patterns: fewer empty cells than the most such a pattern has, and its narrowing values equal to one
    of their rows'. One pass over every row, instead of one per pattern; each pattern's own possible subsumers
    are among them."""
    scopes: dict[tuple[str, ...], pl.DataFrame] = {}
    for key in dict.fromkeys(tuple(item.narrowest) for item in patterns):
        group = [item for item in patterns if tuple(item.narrowest) == key]
        values = pl.concat([item.left.select(key) for item in group], how="vertical").unique()
        most = max(item.null_count for item in group)
        positions = (  # found on the few columns needed, then the rows gathered whole
            marked.lazy()
            .select(*key, NULLS)
            .with_row_index(POSITION)
            .filter(pl.col(NULLS) < most)
            .join(values.lazy(), on=list(key), how="semi", maintain_order="left")
            .select(POSITION)
            .collect()
            .get_column(POSITION)
        )
        scopes[key] = marked[positions]
    return scopes


POSITION = "__position__"


def _pattern_pairs(scope: pl.DataFrame, item: _Pattern) -> pl.DataFrame:
    """The rows of one pattern of empty cells, each with its most complete subsumer: among the more complete rows
    of ``scope`` (``_narrowed_scopes``) sharing the values of its ``narrowest`` columns with one of them."""
    filled, narrowest, left = item.filled, item.narrowest, item.left
    filled_present = pl.all_horizontal([pl.col(name).is_not_null() for name in filled])
    fingerprint = pl.struct(filled).hash(seed=1).alias("__fingerprint__")
    near = scope.filter(pl.col(NULLS) < item.null_count).join(
        left.select(narrowest).unique(), on=narrowest, how="semi", maintain_order="left"
    )
    # Sorted by completeness then file order, so that keep="first" is the most complete, first row.
    right = (
        near.filter(filled_present)
        .select(pl.col(ROW_INDEX_COLUMN).alias(MATCH), NULLS, *filled)
        .with_columns(fingerprint)
        .join(left.select(fingerprint), on="__fingerprint__", how="semi", maintain_order="left")
        .sort([NULLS, MATCH])
        .unique(subset=filled, keep="first", maintain_order=True)
        .drop("__fingerprint__", NULLS)
    )
    return left.join(right, on=filled, how="inner").select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), pl.col(MATCH).cast(pl.Int64), pl.lit(item.empty).alias("empty")
    )


def _merge_subsumed(
    work: pl.DataFrame, pairs: pl.DataFrame, columns: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """merge_smart: each group (a subsumer and the rows it subsumes) keeps its first row, which takes the
    subsumer's values. The removed rows (``ROW_INDEX_COLUMN``, ``REASON``, ``KEPT``), the work frame with
    the values moved, and the number of rows that took values."""
    grouped = pairs.with_columns(
        pl.min_horizontal(pl.col(ROW_INDEX_COLUMN).min().over(MATCH), pl.col(MATCH)).alias(KEPT)
    )
    removed_subsumed = grouped.filter(pl.col(ROW_INDEX_COLUMN) != pl.col(KEPT)).select(
        ROW_INDEX_COLUMN,
        format_text(
            "duplicate of row {} (missing_values: equal where both are filled; empty here in {})",
            pl.col(KEPT),
            pl.col("empty"),
        ).alias(REASON),
        KEPT,
    )
    moved = grouped.filter(pl.col(MATCH) != pl.col(KEPT)).select(MATCH, KEPT).unique(maintain_order=True)
    removed_complete = moved.select(
        pl.col(MATCH).alias(ROW_INDEX_COLUMN),
        format_text(
            "duplicate of row {} (missing_values: its values were merged into row {}, which comes first)",
            pl.col(KEPT),
            pl.col(KEPT),
        ).alias(REASON),
        KEPT,
    )
    removed = pl.concat([removed_subsumed, removed_complete], how="vertical")
    if not moved.height:
        return removed, work, 0
    values = moved.join(work.select(pl.col(ROW_INDEX_COLUMN).alias(MATCH), *columns), on=MATCH, how="inner").select(
        pl.col(KEPT).alias(ROW_INDEX_COLUMN), *columns
    )
    return removed, work.update(values, on=ROW_INDEX_COLUMN, include_nulls=True), moved.height


@dataclass
class _Context:
    enabled: set[str]
    key_columns: list[str]
    email_columns: list[str]
    email_source: str
    reread: _Reread = field(default_factory=lambda: _Reread())


@dataclass(frozen=True)
class _Shape:
    """The data's rows and data columns before and after the run."""

    rows_before: int
    rows_after: int
    columns_before: int
    columns_after: int


@dataclass
class RunOutcome:
    """What one run found and did: the data's shape before and after, every removed row (``REMOVED_SCHEMA``)
    and each detection type's outcome."""

    shape: _Shape
    removed_all: pl.DataFrame
    outcomes: dict[str, StageOutcome]
    context: _Context

    @property
    def detected(self) -> int:
        return self.removed_all.height

    @property
    def resolved(self) -> int:
        return self.shape.rows_before - self.shape.rows_after

    @property
    def share(self) -> float:
        """Duplicates detected as a percentage of the input rows."""
        return pct(self.detected, self.shape.rows_before)

    @property
    def conflicts_by_column(self) -> dict[str, int]:
        return self.outcomes["conflicting"].details.get("conflicts_by_column", {})

    @property
    def conflict_groups(self) -> int:
        return int(self.outcomes["conflicting"].details.get("conflicting_groups", 0))


def _result(
    outcome: RunOutcome, params: DuplicateResolverParams, started: float, output: pl.DataFrame | pl.LazyFrame
) -> AgentResult:
    score = _score(outcome, params)
    findings = _findings(outcome, params)
    result = clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(outcome),
        data=_data(outcome, score),
        frame=output if isinstance(output, pl.DataFrame) else None,
        removed=_removed_rows(outcome),
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(outcome, score),
        row_level_issues=_row_issues(outcome),
    )
    if isinstance(output, pl.LazyFrame):
        result.scan, result.rows = output, outcome.shape.rows_after
    return result


def _score(outcome: RunOutcome, params: DuplicateResolverParams) -> dict[str, Any]:
    shape, detected = outcome.shape, outcome.detected
    rows, columns = retention(shape.rows_before, shape.rows_after, shape.columns_before, shape.columns_after)
    return effectiveness(
        {
            "dedup_reduction": 100.0 * outcome.resolved / detected if detected else 100.0,
            "data_retention": rows,
            "column_retention": columns,
        },
        {
            "dedup_reduction": params.dedup_reduction_weight,
            "data_retention": params.data_retention_weight,
            "column_retention": params.column_retention_weight,
        },
        params,
    )


def _findings(outcome: RunOutcome, params: DuplicateResolverParams) -> Findings:
    findings = Findings(AGENT_ID)
    _alert_volume(findings, outcome)
    _report_conflicts(findings, outcome, params)
    _alert_skipped_checks(findings, outcome, params)
    for stage, stage_outcome in outcome.outcomes.items():
        if stage_outcome.removed.height and stage != "conflicting":
            findings.issue(
                ISSUE_TYPES[stage],
                "high" if stage == "exact" else "medium",
                f"{stage_outcome.removed.height:,} {stage} duplicates in {stage_outcome.groups:,} groups removed",
                field_name=None,
                details={"rows": stage_outcome.removed.height, "groups": stage_outcome.groups},
            )
    if outcome.detected:
        found = ", ".join(stage for stage, stage_outcome in outcome.outcomes.items() if stage_outcome.removed.height)
        findings.recommend(
            f"Prevent duplicates at the source: {outcome.detected:,} rows duplicated others ({found})",
            "high" if outcome.share > 10 else "medium",
            field_name=None,
            kind="uniqueness",
        )
    if outcome.conflict_groups:
        findings.recommend(
            "Decide with the data owner which value is right for the conflicting records",
            "high",
            field_name=", ".join(outcome.conflicts_by_column),
            kind="conflicts",
        )
    return findings


def _alert_volume(findings: Findings, outcome: RunOutcome) -> None:
    """Alerts on how many rows were duplicates and how many were removed."""
    detected, share, rows_before = outcome.detected, outcome.share, outcome.shape.rows_before
    affected = outcome.shape.columns_before
    if share > 30:
        findings.alert(
            "data_uniqueness",
            "critical",
            f"High duplicate volume: {detected:,} duplicate rows ({share:.1f}% of the rows)",
            "Review how the data is collected; add a uniqueness constraint at the source",
            kind="high_volume",
            affected=affected,
        )
    elif share > 10:
        findings.alert(
            "data_uniqueness",
            "high",
            f"Moderate duplicate volume: {detected:,} duplicate rows ({share:.1f}% of the rows)",
            "Add a uniqueness constraint on the record's key at the source",
            kind="medium_volume",
            affected=affected,
        )
    if rows_before and outcome.resolved > 0.2 * rows_before:
        row_retention, _ = retention(rows_before, outcome.shape.rows_after, 1, 1)
        findings.alert(
            "data_retention",
            "high",
            f"{outcome.resolved:,} rows removed ({100 - row_retention:.1f}% of the rows)",
            "Check the detection types and key columns before accepting the result",
            kind="data_loss",
            affected=affected,
        )


def _report_conflicts(findings: Findings, outcome: RunOutcome, params: DuplicateResolverParams) -> None:
    """An alert on the key groups with conflicting values, and an issue per column they conflict in."""
    if not outcome.conflict_groups:
        return
    by_column = outcome.conflicts_by_column
    findings.alert(
        "data_integrity",
        "high",
        f"{outcome.conflict_groups:,} key groups hold conflicting values (columns: {', '.join(by_column)})",
        "Review the conflicting records; pick conflict_resolution deliberately",
        kind="conflicts",
        affected=len(by_column),
    )
    key_text = ", ".join(outcome.context.key_columns)
    for name, count in by_column.items():
        findings.issue(
            "conflicting_values",
            "high",
            f"{count:,} groups with the same key ({key_text}) have different values in '{name}'",
            field_name=name,
            details={"groups": count, "conflict_resolution": params.conflict_resolution},
        )


def _alert_skipped_checks(findings: Findings, outcome: RunOutcome, params: DuplicateResolverParams) -> None:
    """Alerts on the duplicates not looked for: conflicting ones without key columns, rare gap patterns."""
    if "conflicting" in outcome.context.enabled and not params.key_columns:
        findings.alert(
            "configuration",
            "low",
            "conflicting duplicates need key_columns; none were given, so none were looked for",
            "Set key_columns (e.g. an id or e-mail column) to find records that conflict",
            kind="no_key_columns",
            affected=0,
        )
    skipped_rows = int(outcome.outcomes["missing_values"].details.get("rows_not_examined", 0))
    if skipped_rows:
        findings.alert(
            "detection_coverage",
            "medium",
            f"{skipped_rows:,} rows with rare patterns of empty cells were not checked for missing_values duplicates",
            "Raise max_null_patterns to examine them",
            kind="patterns_not_examined",
            affected=0,
        )


def _row_issues(outcome: RunOutcome) -> pl.DataFrame:
    """One row-level issue per removed row; its value is the row it duplicates."""
    return outcome.removed_all.select(
        pl.col(ROW_INDEX_COLUMN).alias("row_index"),
        pl.lit("all").alias("column"),
        pl.col(STAGE).replace_strict(ISSUE_TYPES, return_dtype=pl.String).alias("issue_type"),
        pl.col(SEVERITY).alias("severity"),
        pl.col(REASON).alias("message"),
        pl.col(KEPT).cast(pl.String).alias("value"),
    ).cast(ROW_LEVEL_ISSUE_SCHEMA)  # type: ignore[arg-type]


def _removed_rows(outcome: RunOutcome) -> pl.DataFrame:
    if not outcome.detected:
        return no_removed_rows()
    removed = outcome.removed_all.select(ROW_INDEX_COLUMN, pl.col(REASON).alias("reason"))
    return removed.cast(REMOVED_ROWS_SCHEMA)  # type: ignore[arg-type]


def _summary_metrics(outcome: RunOutcome) -> dict[str, Any]:
    outcomes = outcome.outcomes.values()
    return {
        "duplicates_detected": outcome.detected,
        "duplicates_resolved": outcome.resolved,
        "remaining_rows": outcome.shape.rows_after,
        "rows_removed": outcome.resolved,
        "total_rows_processed": outcome.shape.rows_before,
        "duplicate_groups": sum(stage_outcome.groups for stage_outcome in outcomes),
        "conflicts_detected": outcome.conflict_groups,
        "rows_merged": sum(stage_outcome.merged_rows for stage_outcome in outcomes),
    }


def _data(outcome: RunOutcome, score: dict[str, Any]) -> dict[str, Any]:
    context = outcome.context
    return {
        "rows_before": outcome.shape.rows_before,
        "rows_after": outcome.shape.rows_after,
        "detection_order": list(STAGE_ORDER),
        "duplicate_summary": {
            stage: stage_outcome.report(stage in context.enabled) for stage, stage_outcome in outcome.outcomes.items()
        },
        "key_columns": context.key_columns,
        "email_columns": context.email_columns,
        "email_columns_source": context.email_source,
        "resolution_log": _resolution_log(outcome.outcomes),
        "effectiveness": score,
        "quality_status": score["status"],
    }


def _resolution_log(outcomes: dict[str, StageOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "detection_type": stage,
            "action": "merged" if outcome.merged_rows else "removed",
            "rows_removed": outcome.removed.height,
            "rows_merged": outcome.merged_rows,
            "message": f"{stage}: removed {outcome.removed.height:,} rows in {outcome.groups:,} groups"
            + (f", merged values into {outcome.merged_rows:,} kept rows" if outcome.merged_rows else ""),
        }
        for stage, outcome in outcomes.items()
        if outcome.removed.height
    ]


def _cards(outcome: RunOutcome, score: dict[str, Any]) -> list[SummaryCard]:
    detected, share = outcome.detected, outcome.share
    return [
        SummaryCard(
            "exec_duplicate_resolution",
            "Duplicate Resolution",
            f"{outcome.resolved:,} rows removed",
            "info" if not detected else "warning" if share > 10 else "good",
            f"{detected:,} duplicates found ({share:.2f}% of {outcome.shape.rows_before:,} rows); "
            f"{outcome.shape.rows_after:,} rows remain; {outcome.conflict_groups:,} conflicting key groups",
        ),
        SummaryCard(
            "exec_duplicate_effectiveness",
            "Deduplication Effectiveness",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
