"""The ``type-fixer`` agent: numbers, dates and booleans stored as text, vectorised.

First, missing-value tokens (``null_tokens``, ``agents.values``: "NA", "N/A", "NULL", ...) become real
nulls in every text column and float NaNs become nulls, counted per column and token (``data.missing_tokens``);
they are not values, so they never make a column "mixed".

Agensium's fixer sampled 100 values, tried 12 ``strptime`` formats per value in Python and turned every
failure into a silent null. Here every text column is measured on **all** its non-blank values (on the
distinct values, weighted by their counts), and every cell a conversion empties is counted and reported.

Per text (String) column, the share of non-blank values that read as (agents.values):
- a boolean (true/false/yes/no/y/n/1/0, at least one of them a word; else it is a number);
- a number; the column becomes Int64 when every number is whole (written without exponent), Float64
  otherwise;
- a date or datetime, with the formats ranked by how many values they read (day/month ambiguity reported).
The kind with the highest share wins (ties: boolean, number, date). The column is converted when that
share is 1.0 (``preserve_mixed_types``, the default: no cell is emptied), or at least ``conversion_threshold``
without it; values that do not read become null and are reported one by one (``unparseable_value``). A
column that reads at ``conversion_threshold`` but not entirely is proposed (``data.proposals``) with the
cells the conversion would empty. Timestamps marked UTC (``2013-01-01T05:00:00Z``) stay text: a naive
Datetime would drop the marker. A date column whose day/month order only a tie decides, or with dates written
with a 2-digit year (``13/04/55``: 1955 or 2055?), is not converted unless ``convert_ambiguous_dates`` (which date a
value means is a guess; its years then read 00-69 as 2000-2069, 70-99 as 1970-1999); it is proposed too. Blank
values become null too (counted as ``blank_values_emptied``, not as failures). A column that reads at
least 20 % but less than the threshold is reported as mixed, not converted.

Judgement calls (PRODUCT.md "Defaults that never destroy data": a default run fixes only what is unambiguous)
are not made by default: a column whose values read but are written with a currency symbol (the unit would be
lost), a percent sign (5 or 0.05?), in parentheses (an accounting negative "(12)" = -12, or an area code, a
footnote mark "(212)"), as a code (a leading zero "007"/"007.5", a "+", "-0": the file reader keeps
these as text on purpose), as yes/no/y/n, or with a comma that may be a decimal mark ("1,500": 1500, or 1.5 in a
file that writes "12,99") stays text and is proposed with the parameter that converts it (``JUDGEMENT_CALLS``).
A comma is read as a thousands separator without its parameter when the column also holds "1,234,567",
"1,500.25" or a decimal point, or another column of the file "1,234,567" or "1,500.25", and no column writes a
decimal comma (``_weigh_commas``).

Numbers written with a decimal comma (``agents.decimal_comma``: "39,81", "-0,5", "1.234,56", with "7" or
"1,500" among them) are read that way when their column holds a comma that can only be a decimal mark and that
reading reads more of its values; the column is converted by default unless another column of the file groups
thousands with commas ("1,234,567": the file contradicts itself), then proposed with ``convert_decimal_commas``.
In a file that writes decimal commas, a column whose commas may group thousands ("1,500" alone) is proposed
read with decimal commas (``convert_decimal_commas``: 1.5), its likely reading; ``convert_ambiguous_thousands``
reads it as 1500.

Float columns whose values are all whole (and finite, |x| < 2^53) become Int64. With
``auto_convert_category``, a text column left as text becomes Categorical when it has at most
``category_max_distinct`` distinct values and at most ``category_max_distinct_ratio`` of its non-null
values are distinct (a Categorical is still text: field-standardization handles it).

Type issues are counted per column: a column is an issue when a better type was detected (a conversion
candidate, a mixed column, or, with ``auto_convert_category``, a Categorical candidate);
``type_issues_fixed`` are the columns converted. Running the fixer on its own output converts nothing.

A primary too large for memory (``inputs.scan``) gets the same decisions from the same value counts, each a
query on the streaming engine: a String column's distinct values grouped one column at a time (in parts by
hash when it has many), the float columns' counts in one query. When a conversion parses text, the data with
its converted columns is sunk once to the run's ``work_dir``; the fix log, the row-level issues and the result's
``scan`` read that spill, so nothing is parsed twice.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from agents.as_read import AS_READ_SUFFIX, Frame, cells_as_read
from agents.clean.common import (
    DISTINCT_TEXTS_ARTIFACT,
    DistinctTexts,
    clean_result,
    effectiveness,
    no_removed_rows,
)
from agents.columns import collect_each, counted_values, narrow, with_row_index, with_row_index_lazy
from agents.decimal_comma import (
    DECIMAL_COMMA_NUMBER_PATTERN,
    DECIMAL_COMMA_PATTERN,
    EITHER_WAY_PATTERN,
    decimal_comma_text,
    parse_decimal_comma,
)
from agents.envelope import (
    AS_READ_ARTIFACT,
    BOOKKEEPING_COLUMNS,
    ROW_INDEX_COLUMN,
    TEXT_LAYOUTS_ARTIFACT,
    AgentInputs,
    AgentResult,
    Alert,
    Issue,
    Progress,
    Recommendation,
    SummaryCard,
    data_columns,
)
from agents.findings import (
    Findings,
    card_status,
    collect_row_issues,
    issues_where,
    proposal,
)
from agents.formatting import (
    MAX_EXACT_FLOAT_INTEGER,
    pct,
    shown,
)
from agents.layouts import Layout, beyond_double, boolean_layouts, number_layouts
from agents.params.type_fixer import TypeFixerParams
from agents.values import (
    ACCOUNTING_NEGATIVE_PATTERN,
    BOOLEAN_FALSE,
    BOOLEAN_TRUE,
    BOOLEAN_WORDS,
    CURRENCY_SIGN,
    EMPTY_TEXT,
    PLAIN_NUMBER_PATTERN,
    DatePlan,
    MissingTokens,
    count_missing_tokens,
    distinct_counts,
    guessed_orders,
    integer_of_number_text,
    null_missing_tokens,
    number_text,
    parse_boolean,
    parse_integer,
    parse_number,
    plan_dates,
)

AGENT_ID = "type-fixer"
AGENT_NAME = "Type Fixer"
MIXED_SHARE = 0.2
EXAMPLES = 5
SAMPLE_SCAN_ROWS = 1000  # sample conversions are taken from the first converted rows
TARGET_DTYPES = {
    "integer": "Int64",
    "float": "Float64",
    "boolean": "Boolean",
    "date": "Date",
    "datetime": "Datetime(us)",
    "category": "Categorical",
}


@dataclass
class ColumnDecision:
    column: str
    from_type: str
    non_blank: int = 0
    shares: dict[str, float] = field(default_factory=dict)
    detected: str | None = None  # kind of the best reading (integer, float, boolean, date, datetime, category)
    share: float = 0.0
    convert: bool = False
    issue: bool = False
    reason: str = ""
    plan: DatePlan | None = None
    expression: pl.Expr | None = None
    text_source: bool = True  # the conversion reads text (failures possible)
    would_convert: bool = False  # reads at conversion_threshold (converted when not preserving mixed types)
    ambiguous_order: bool = False  # a date column left as text: its day/month order or 2-digit years' century a guess
    best: str = ""  # the best reading: numeric, boolean or temporal
    # the parameters a conversion needs that the run does not set (judgement calls: ``_needs``), in
    # ``JUDGEMENT_CALLS`` order, each with the smallest value it would change (an example)
    needs: dict[str, str] = field(default_factory=dict)
    thousands_commas: int = 0  # numbers whose commas can only group thousands ("1,234,567", "1,500.25")
    decimal_commas: int = 0  # values written with a decimal comma ("12,99", "1.234,5")
    comma_evidence: str = ""  # why an ambiguous comma was read as a thousands separator
    comma_decimal: bool = False  # the numbers are read with a decimal comma ("39,81" -> 39.81)
    comma_readable: bool = False  # every number also reads with a decimal comma ("1,500", "7")
    comma_example: str = ""  # the smallest value a decimal comma changes, one that reads both ways first
    comma_kind: str = "float"  # what the numbers are read with a decimal comma: integer when all are whole
    beyond_double: str = ""  # the smallest number with more digits than a float holds: the column stays text

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "field_name": self.column,
            "current_type": self.from_type,
            "non_blank_values": self.non_blank,
            "shares": {kind: round(share, 6) for kind, share in self.shares.items()},
            "suggested_type": self.detected,
            "best_share": round(self.share, 6),
            "type_issue": self.issue,
            "converted": self.convert,
            "reason": self.reason,
        }
        if self.needs:
            described["proposed_with"] = {name: True for name in self.needs}
        if self.plan is not None and self.plan.formats:
            described["dates"] = self.plan.describe()
        return described


def run(inputs: AgentInputs, params: TypeFixerParams, progress: Progress) -> AgentResult:
    if inputs.scan is not None:
        return _run_streamed(inputs, inputs.scan, params, progress)
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    columns = data_columns(frame)
    progress(0.0, f"Turning missing-value tokens into nulls in {len(columns)} columns")
    written = _written_values(frame, columns) if frame.height >= DISTINCT_FIRST_ROWS else {}
    # field-standardization counts the same values of a column it gets as they are here
    shared = {
        name: DistinctTexts(frame.get_column(name), table.select("raw", "count")) for name, table in written.items()
    }
    frame, missing = _null_tokens(frame, columns, params, written)
    progress(0.05, f"Measuring the types of {len(columns)} columns over {frame.height:,} rows")
    decisions: list[ColumnDecision] = []
    for position, column in enumerate(columns):
        decisions.append(_decide(frame, column, params, _present(written.get(column), params)))
        progress(0.7 * (position + 1) / max(len(columns), 1), f"Measured '{column}'")
    _weigh_commas(decisions, params)
    converting = [decision for decision in decisions if decision.convert and decision.expression is not None]

    progress(0.75, f"Converting {len(converting)} columns")
    fixed, fix_log, issue_parts = _convert(frame, converting)
    row_issues = collect_row_issues(issue_parts)
    progress(0.9, "Scoring")
    outcome = Outcome(frame.height, decisions, converting, fix_log, missing)
    # frame: its tokens are nulls already
    result = _result(started, outcome, params, len(columns), row_issues, fixed if converting else frame, progress)
    layouts = _keep_text_layouts(result, inputs, frame, converting)
    if layouts:  # cells no layout writes back ("1e3" beside "1012.3"): given back as they were written
        result.artifacts[AS_READ_ARTIFACT] = cells_as_read(_plain_texts(frame, converting, layouts), fixed, layouts)
    if shared:
        result.artifacts[DISTINCT_TEXTS_ARTIFACT] = shared
    return result


def _run_streamed(
    inputs: AgentInputs, source: pl.LazyFrame, params: TypeFixerParams, progress: Progress
) -> AgentResult:
    """``run`` on a primary too large for memory (``inputs.scan``): the same decisions, made from each text
    column's distinct values and the float columns' counts, every statistic a query on the streaming engine;
    the result's ``scan`` is the plan of the fixed data over ``source`` (tokens nulled, columns converted)."""
    started = time.perf_counter()
    scan = with_row_index_lazy(source)
    schema = scan.collect_schema()
    columns = [name for name in schema.names() if name not in BOOKKEEPING_COLUMNS]
    rows = inputs.row_count
    progress(0.0, f"Reading the distinct values of {len(columns)} columns over {rows:,} rows")
    texts = [name for name in columns if schema[name] == pl.String]
    found, decided = _scanned_text_columns(scan, texts, params, progress)
    found.update(
        _missing_tokens(scan, [name for name in columns if name not in decided], params, {}, engine="streaming").counts
    )
    missing = MissingTokens(
        tokens=tuple(params.null_tokens), counts={name: found[name] for name in columns if name in found}
    )
    nulled = null_missing_tokens(scan, missing.counts, params.null_tokens) if missing.counts else scan
    progress(0.5, f"Measuring the float columns of {len(columns)} columns")
    floats = _scanned_float_counts(nulled, schema, columns, params)
    decisions = [
        decided.get(name) or _decide_scanned(name, schema[name], params, None, floats.get(name)) for name in columns
    ]
    _weigh_commas(decisions, params)
    converting = [decision for decision in decisions if decision.convert and decision.expression is not None]
    progress(0.6, f"Counting the conversions of {len(converting)} columns")
    work = _scanned_work(nulled, converting, inputs.work_dir)
    fix_log, issue_parts = _scanned_fix_log(work, converting)
    row_issues = collect_row_issues(issue_parts)
    progress(0.9, "Scoring")
    outcome = Outcome(rows, decisions, converting, fix_log, missing)
    result = _result(started, outcome, params, len(columns), row_issues, None, progress)
    layouts = _keep_text_layouts(result, inputs, nulled, converting, engine="streaming")
    temp_of = {decision.column: _temp(index) for index, decision in enumerate(converting)}
    result.scan = work.select(
        [pl.col(temp_of[name]).alias(name) if name in temp_of else pl.col(name) for name in schema.names()]
    )
    result.rows = rows
    if layouts and inputs.work_dir is not None:
        sink = inputs.work_dir / f"{AGENT_ID}.{AS_READ_SUFFIX}"
        plain = _plain_texts(nulled, converting, layouts)
        result.artifacts[AS_READ_ARTIFACT] = cells_as_read(plain, result.scan, layouts, sink=sink)
    return result


def _plain_texts(text: Frame, converting: list[ColumnDecision], layouts: Mapping[str, Layout]) -> Frame:
    """The row index and the texts of the converted ``layouts``' columns that are the very values they were
    converted to, spelled another way (``1e3``, ``1.10``, ``true`` beside ``TRUE``), null elsewhere: what the writers
    may give back. A text converted into another (``$1,200.50``, ``39,80``, ``yes``, the code ``+5``) is the
    type-fixer's change: the column's layout writes its value."""
    names = text.collect_schema().names() if isinstance(text, pl.LazyFrame) else text.columns
    exprs = []
    for decision in converting:
        if decision.column not in layouts or decision.comma_decimal:
            continue
        raw = pl.nth(names.index(decision.column))
        if decision.detected == "boolean":
            plain = raw.str.to_lowercase().is_in(["true", "false"])
        else:  # a plain number the reader would have typed (not a code: +5, 007.5, converted by the user's leave)
            plain = (number_text(raw) == raw) & ~raw.str.contains(CODE_PATTERN)
        exprs.append(pl.when(plain).then(raw).alias(decision.column))
    return text.select(pl.col(ROW_INDEX_COLUMN), *exprs)


def _result(
    started: float,
    outcome: Outcome,
    params: TypeFixerParams,
    columns: int,
    row_issues: pl.DataFrame,
    frame: pl.DataFrame | None,
    progress: Progress,
) -> AgentResult:
    score = _score(outcome, params)
    alerts, issues, recommendations = _findings(outcome.decisions, outcome.fix_log)
    progress(1.0, "Types fixed")
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(outcome, columns),
        data=_data(outcome, score, params),
        frame=frame,
        removed=no_removed_rows(),
        alerts=alerts,
        issues=issues,
        recommendations=recommendations,
        cards=_cards(outcome, score),
        row_level_issues=row_issues,
    )


def _keep_text_layouts(
    result: AgentResult,
    inputs: AgentInputs,
    text: pl.DataFrame | pl.LazyFrame,
    converting: list[ColumnDecision],
    *,
    engine: Literal["auto", "streaming"] = "auto",
) -> dict[str, Layout]:
    """The layouts of the text columns converted to decimals or booleans that Polars would write otherwise (``41``,
    ``12.50``, ``True``/``FALSE``: agents.layouts.number_layouts, boolean_layouts), added to the input's for the
    writers of the data: a conversion changes the type, not the text a CSV holds. Returns them."""
    floats = [d for d in converting if d.detected == "float" and d.text_source]
    truths = [d.column for d in converting if d.detected == "boolean" and d.text_source]
    if not floats and not truths:
        return {}
    names = text.collect_schema().names()
    layouts: dict[str, Layout] = {}
    if floats:
        # the number each text holds, as a plain literal ("$1,200.50" -> "1200.50", "39,80" -> "39.80"): its
        # decimals are its layout's
        literals = text.lazy().select(
            (decimal_comma_text if d.comma_decimal else number_text)(pl.nth(names.index(d.column))).alias(d.column)
            for d in floats
        )
        # counted: a column no layout helps gets one that counts the values Polars writes otherwise ("1e3"), whose
        # cells are then given back as they were written (agents.as_read)
        layouts.update(number_layouts(literals, [d.column for d in floats], engine=engine, counted=True))
    # True/FALSE keep their case; yes/no, y/n, 1/0 become true/false: the conversion the user asked for shows
    layouts.update(
        (name, layout)
        for name, layout in boolean_layouts(text, truths, engine=engine).items()
        if (layout.true.lower(), layout.false.lower()) == ("true", "false")
    )
    if layouts:
        result.artifacts[TEXT_LAYOUTS_ARTIFACT] = {**inputs.text_layouts, **layouts}
    return layouts


def _convert(
    frame: pl.DataFrame, converting: list[ColumnDecision]
) -> tuple[pl.DataFrame, list[dict[str, Any]], list[pl.LazyFrame]]:
    """The frame with the converted columns, the fix log and the row-level issues of the emptied cells."""
    work = frame.with_columns(
        [
            decision.expression.alias(_temp(index))
            for index, decision in enumerate(converting)
            if decision.expression is not None
        ]
    )
    fix_log, issue_parts = _fix_log(work, converting)
    temp_of = {decision.column: _temp(index) for index, decision in enumerate(converting)}
    fixed = work.select(
        [pl.col(temp_of[name]).alias(name) if name in temp_of else pl.col(name) for name in frame.columns]
    )
    return fixed, fix_log, issue_parts


@dataclass
class Outcome:
    """What one run decided and did: the rows read, every column's decision, the columns converted, their
    fix log and the missing-value tokens nulled."""

    rows: int
    decisions: list[ColumnDecision]
    converting: list[ColumnDecision]
    fix_log: list[dict[str, Any]]
    missing: MissingTokens

    @property
    def original_issues(self) -> int:
        return sum(decision.issue for decision in self.decisions)

    @property
    def issues_fixed(self) -> int:
        return sum(decision.issue and decision.convert for decision in self.decisions)

    @property
    def failed(self) -> int:
        """Values a conversion emptied."""
        return sum(entry["failed"] for entry in self.fix_log)


def _score(outcome: Outcome, params: TypeFixerParams) -> dict[str, Any]:
    original_issues, issues_fixed = outcome.original_issues, outcome.issues_fixed
    read = sum(entry["converted"] + entry["failed"] for entry in outcome.fix_log if entry["text_source"])
    return effectiveness(
        {
            "type_reduction": 100.0 * issues_fixed / original_issues if original_issues else 100.0,
            "data_retention": 100.0 - pct(outcome.failed, read),
            "column_retention": 100.0,
        },
        {
            "type_reduction": params.type_reduction_weight,
            "data_retention": params.data_retention_weight,
            "column_retention": params.column_retention_weight,
        },
        params,
    )


def _summary_metrics(outcome: Outcome, columns: int) -> dict[str, Any]:
    return {
        "type_issues_fixed": outcome.issues_fixed,
        "original_type_issues": outcome.original_issues,
        "remaining_type_issues": outcome.original_issues - outcome.issues_fixed,
        "columns_analyzed": columns,
        "columns_converted": len(outcome.converting),
        "values_unparseable": outcome.failed,
        "missing_tokens_nulled": outcome.missing.total,
        "total_rows_processed": outcome.rows,
    }


def _data(outcome: Outcome, score: dict[str, Any], params: TypeFixerParams) -> dict[str, Any]:
    return {
        "fixing_score": score,
        "quality_status": score["status"],
        "fix_log": outcome.fix_log,
        "type_analysis": {"columns": [decision.describe() for decision in outcome.decisions]},
        "unparseable_values": outcome.failed,
        "missing_tokens": outcome.missing.describe(),
        "proposals": _proposals(outcome.decisions, params),
        "conventions": {
            "shares": "of a column's non-blank values, measured on all of them",
            "conversion_threshold": params.conversion_threshold if not params.preserve_mixed_types else 1.0,
            "missing_values": "the null_tokens (after trimming) and float NaN become nulls before anything else",
            "mixed_share": MIXED_SHARE,
            "numbers": "thousands separators accepted; decimal commas ('39,81', '1.234,5') where the column and the "
            "file show them; currency symbols, '%' (kept as written: '5%' -> 5), accounting negatives ('(12)' -> "
            "-12), codes and commas that may be decimal marks only with their convert_* parameters",
            "blank_values": "empty or whitespace-only text becomes null in converted columns",
            "row_index": "1-based data row of the input file",
        },
    }


def _cards(outcome: Outcome, score: dict[str, Any]) -> list[SummaryCard]:
    fix_log, missing = outcome.fix_log, outcome.missing
    return [
        SummaryCard(
            "type_fixer_score",
            "Type fixing score",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"{outcome.issues_fixed} of {outcome.original_issues} type issues fixed; "
            f"{outcome.failed:,} values could not be read",
        ),
        SummaryCard(
            "type_fixer_columns",
            "Columns converted",
            str(len(outcome.converting)),
            "info",
            ", ".join(f"{entry['column']} → {entry['to_type']}" for entry in fix_log[:6]) or "No conversion needed",
        ),
        SummaryCard(
            "type_fixer_missing_tokens",
            "Missing-value tokens nulled",
            f"{missing.total:,}",
            "info",
            ", ".join(f"{name}: {sum(found.values()):,}" for name, found in list(missing.counts.items())[:6])
            or "No missing-value tokens",
        ),
    ]


def _temp(index: int) -> str:
    return f"__type_fixer_{index}__"


EDGE_WHITESPACE = r"^\s|\s$"  # what str.strip_chars() removes: Unicode White_Space, as regex \s
DISTINCT_FIRST_ROWS = 100_000  # from this height, text columns are read through their distinct values


def _written_values(frame: pl.DataFrame, columns: list[str]) -> dict[str, pl.DataFrame]:
    """Per String data column, its distinct values as written (``raw``, null among them), trimmed
    (``value``), with their row counts (``count``): the token counts, the values read and the category
    check all come from these, not from every row."""
    schema = frame.schema
    names = [name for name in columns if schema[name] == pl.String]
    queries = [_raw_and_trimmed(counted_values(frame, name, "count"), name) for name in names]
    return dict(zip(names, collect_each(queries, frame.height), strict=True))


def _raw_and_trimmed(counted: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """A column's distinct values with their counts (``counted_values``) as ``raw``, ``value``, ``count``. Only
    values with whitespace at an end are trimmed: the others share ``raw``'s text (trimming every value copies
    it, as much memory again as the column's distinct values)."""
    raw = pl.col(name)
    trimmed = pl.when(raw.str.contains(EDGE_WHITESPACE)).then(raw.str.strip_chars()).otherwise(raw)
    return counted.select(raw.alias("raw"), trimmed.alias("value"), "count")


def _scanned_text_columns(
    scan: pl.LazyFrame, names: list[str], params: TypeFixerParams, progress: Progress
) -> tuple[dict[str, dict[str, int]], dict[str, ColumnDecision]]:
    """The String columns ``names`` of a scan: their missing-value tokens and decisions, from each column's
    ``_written_values`` (``_scanned_written_values``), one column at a time: memory holds one column's table of
    distinct values, never the column, and never two such tables."""
    tokens: dict[str, dict[str, int]] = {}
    decisions: dict[str, ColumnDecision] = {}
    parts = _group_parts(scan, names)
    for position, name in enumerate(names):
        written = {name: _scanned_written_values(scan, name, parts[name])}
        tokens.update(_missing_tokens(scan, [name], params, written).counts)
        decisions[name] = _decide_scanned(name, pl.String(), params, _present(written[name], params), None)
        progress(0.5 * (position + 1) / len(names), f"Measured '{name}'")
    return tokens, decisions


GROUP_VALUES = 2_000_000  # distinct values a streaming group_by holds at a time (~340 MB of e-mail addresses)


def _group_parts(scan: pl.LazyFrame, names: list[str]) -> dict[str, int]:
    """In how many parts each String column's values are grouped (``_scanned_written_values``): its distinct
    values, estimated (HyperLogLog: kilobytes a column, one streaming query), over ``GROUP_VALUES``."""
    if not names:
        return {}
    estimates = scan.select(pl.col(name).approx_n_unique() for name in names).collect(engine="streaming").row(0)
    return {name: max(1, math.ceil(estimate / GROUP_VALUES)) for name, estimate in zip(names, estimates, strict=True)}


def _scanned_written_values(scan: pl.LazyFrame, name: str, parts: int) -> pl.DataFrame:
    """``_written_values`` of the String column ``name`` of a scan, grouped on the streaming engine in ``parts``
    parts by the values' hash (each value in one part), one part at a time. A streaming group_by holds about 170
    bytes per distinct e-mail address (1.4 GB for 8M, 0.6 GB in 8 parts, the table of 8M values included)."""
    column = scan.select(name)
    grouped = [
        _raw_and_trimmed(
            (column if parts == 1 else column.filter(pl.col(name).hash() % parts == part))
            .group_by(name)
            .agg(pl.len().cast(pl.Int64).alias("count")),
            name,
        ).collect(engine="streaming")
        for part in range(parts)
    ]
    return pl.concat(grouped)


def _present(written: pl.DataFrame | None, params: TypeFixerParams) -> pl.DataFrame | None:
    """The distinct values of ``_written_values`` left once the missing-value tokens are nulls
    (``_null_tokens``: a value whose trimmed text is a token or blank)."""
    if written is None:
        return None
    kept = pl.col("raw").is_not_null()
    if params.null_tokens:
        kept = kept & ~pl.col("value").is_in([*params.null_tokens, EMPTY_TEXT]).fill_null(False)
    return written.filter(kept)


def _decide(
    frame: pl.DataFrame, column: str, params: TypeFixerParams, present: pl.DataFrame | None = None
) -> ColumnDecision:
    """``present``: a String column's distinct values once its tokens are nulls (``_present``)."""
    dtype = frame[column].dtype
    decision = ColumnDecision(column=column, from_type=str(dtype))
    if dtype.is_float():
        if params.auto_convert_numeric:
            _decide_float(frame, decision)
        return decision
    if dtype != pl.String:
        return decision
    values = distinct_counts(frame, column) if present is None else _distinct_present(present)
    _decide_text(decision, values, params, lambda: _category_counts(frame, column, present))
    return decision


def _decide_scanned(
    column: str,
    dtype: pl.DataType,
    params: TypeFixerParams,
    present: pl.DataFrame | None,
    float_counts: tuple[int, int] | None,
) -> ColumnDecision:
    """``_decide`` in a streamed run: from a String column's distinct values (``_present``) or a float
    column's ``_float_counts`` (``float_counts``), without the data."""
    decision = ColumnDecision(column=column, from_type=str(dtype))
    if dtype.is_float() and float_counts is not None:
        _settle_float(decision, *float_counts)
    elif dtype == pl.String and present is not None:
        _decide_text(decision, _distinct_present(present), params, lambda: _present_counts(present))
    return decision


def _distinct_present(present: pl.DataFrame) -> pl.DataFrame:
    """``agents.values.distinct_counts`` of a column, from its distinct values (``_present``)."""
    values = present.filter(pl.col("value") != "")
    if values.select((pl.col("value") != pl.col("raw")).any()).item():  # trimming merged some values
        return values.group_by("value").agg(pl.col("count").sum())
    return values.select("value", "count")


def _decide_text(
    decision: ColumnDecision,
    values: pl.DataFrame,
    params: TypeFixerParams,
    category_counts: Callable[[], tuple[int, int]],
) -> None:
    """A String column's decision from its distinct non-blank values (``values``: trimmed, with their counts);
    ``category_counts``: its distinct non-null values and non-null rows, asked only for the category check."""
    decision.non_blank = int(values["count"].sum()) if values.height else 0
    if not decision.non_blank:
        decision.reason = "no values"
        return
    required = 1.0 if params.preserve_mixed_types else params.conversion_threshold
    counts = _read_text(values, decision, params.convert_decimal_commas)
    if decision.beyond_double:  # as the file reader keeps it: a float would change a value, nothing to convert
        decision.reason = (
            f"'{decision.beyond_double}' has more digits than a float holds: left as text, every value as written"
        )
        decision.detected = None
        return
    decision.would_convert = decision.share >= params.conversion_threshold
    if decision.share >= MIXED_SHARE:
        decision.needs = _needs(decision, counts, params)
    if decision.share >= required:
        _decide_conversion(decision, params)
        return
    if decision.share >= MIXED_SHARE:
        decision.issue = True
        decision.reason = (
            f"mixed: {decision.share:.1%} of values read as {decision.detected}, below the "
            f"{required:.0%} needed to convert"
        )
        return
    decision.detected = None
    # Stripping can only merge values: more distinct stripped values than the limit rule a category out.
    # Numbers written with a decimal comma are not categories (and stay text: evidence for _weigh_commas on
    # the fixer's own output too, so a second run decides as the first).
    if params.auto_convert_category and values.height <= params.category_max_distinct and not decision.decimal_commas:
        _decide_category(decision, params, *category_counts())


BOOLEAN_CHARS = max(len(word) for word in (*BOOLEAN_TRUE, *BOOLEAN_FALSE, *BOOLEAN_WORDS))
YES_NO_WORDS = ("yes", "no", "y", "n")
CODE_PATTERN = r"^(?:\+|-?0\d|-0$)"  # a number literal the file reader keeps as text: 007, 007.5, +5, -0
# Judgement calls (PRODUCT.md "Defaults that never destroy data"): a column whose values read but need one of
# these is left as text and proposed unless the parameter is set, in this order.
JUDGEMENT_CALLS = (
    "convert_ambiguous_thousands",
    "convert_decimal_commas",
    "convert_currency",
    "convert_percentages",
    "convert_accounting_negatives",
    "convert_codes",
    "convert_yes_no",
)


def _read_text(values: pl.DataFrame, decision: ColumnDecision, decimal_commas: bool = False) -> dict[str, Any]:
    """The shares of a text column's non-blank values (``values``: distinct values and counts) that read as
    numbers, booleans and dates, set on ``decision`` with the best reading and its comma evidence; the counts
    (and the smallest example) of the values written in ways a conversion would need a judgement call for.

    Numbers are read with a decimal comma (``comma_decimal``) when that reads more values than the usual reading
    and the column holds a comma that can only be a decimal mark ("39,81", "1.234,5"); with ``decimal_commas``
    (``convert_decimal_commas``) also when its commas could group thousands ("1,500") and it reads as many."""
    value, weight = pl.col("value"), pl.col("count")
    text = pl.col("__number__")  # number_text, read once, of the values it does not leave null
    numbers = values.lazy().filter(  # number_text is null unless one of its patterns matches
        value.str.contains(PLAIN_NUMBER_PATTERN) | value.str.contains(ACCOUNTING_NEGATIVE_PATTERN)
    )
    commas, point = pl.col("__commas__"), pl.col("__point__")  # read once per value, below
    marked = {  # the numbers written in a way that makes converting them a judgement call
        "ambiguous_comma": (commas == 1) & ~point,
        "currency": pl.col("__currency__"),
        "percent": pl.col("__percent__"),
        "accounting": pl.col("__accounting__"),
        "code": text.str.contains(CODE_PATTERN),
    }
    yes_no = value.str.to_lowercase().is_in(YES_NO_WORDS)
    parts = [
        numbers.select(
            value,
            weight,
            number_text(value).alias("__number__"),
            value.str.count_matches(",", literal=True).alias("__commas__"),
            value.str.contains(".", literal=True).alias("__point__"),
            value.str.contains(CURRENCY_SIGN).alias("__currency__"),
            value.str.contains("%", literal=True).alias("__percent__"),
            value.str.contains(ACCOUNTING_NEGATIVE_PATTERN).alias("__accounting__"),
        ).select(
            weight.filter(text.is_not_null()).sum().alias("numeric"),
            weight.filter(integer_of_number_text(text).is_not_null()).sum().alias("integer"),
            weight.filter((commas >= 2) | ((commas == 1) & point)).sum().alias("thousands_commas"),
            weight.filter(point).sum().alias("points"),
            *(weight.filter(mask).sum().alias(name) for name, mask in marked.items()),
            *(value.filter(mask).min().alias(f"{name}_example") for name, mask in marked.items()),
            value.filter(beyond_double(text)).min().alias("beyond_example"),
        ),
        # The values are trimmed and lowercasing never shortens a text: only values as short as the
        # longest boolean word can read as one.
        values.lazy()
        .filter(value.str.len_chars() <= BOOLEAN_CHARS)
        .select(
            weight.filter(parse_boolean(value).is_not_null()).sum().alias("boolean"),
            weight.filter(value.str.to_lowercase().is_in(BOOLEAN_WORDS)).sum().alias("boolean_words"),
            weight.filter(yes_no).sum().alias("yes_no"),
            value.filter(yes_no).min().alias("yes_no_example"),
        ),
        values.lazy().select(
            weight.filter(value.str.contains(r"\d")).sum().alias("digits"),
            weight.filter(value.str.contains(DECIMAL_COMMA_PATTERN)).sum().alias("decimal_commas"),
        ),
        _decimal_comma_counts(values),
    ]
    counts = pl.concat(parts, how="horizontal").collect().row(0, named=True)  # one query
    total = decision.non_blank
    numeric, integer = int(counts["numeric"] or 0), int(counts["integer"] or 0)
    decision.decimal_commas = int(counts["decimal_commas"] or 0)
    comma_numbers = int(counts["comma_numbers"] or 0)
    decision.comma_readable = comma_numbers >= numeric
    decision.comma_kind = "integer" if int(counts["comma_integers"] or 0) == comma_numbers else "float"
    decision.comma_example = counts["either_way_example"] or counts["decimal_comma_example"] or ""
    if decision.decimal_commas:
        decision.comma_decimal = comma_numbers > numeric
    elif decimal_commas and counts["ambiguous_comma"]:
        decision.comma_decimal = comma_numbers >= numeric
    if decision.comma_decimal:
        numeric, integer = comma_numbers, int(counts["comma_integers"] or 0)
    shares = {"numeric": numeric / total}
    if counts["boolean_words"]:
        shares["boolean"] = int(counts["boolean"] or 0) / total
    if int(counts["digits"] or 0) / total >= MIXED_SHARE:
        decision.plan = plan_dates(values, decision.column)
        shares["temporal"] = decision.plan.share
    decision.shares = shares
    best = max(shares, key=lambda kind: (shares[kind], {"boolean": 2, "numeric": 1, "temporal": 0}[kind]))
    decision.share, decision.best = shares[best], best
    if best == "numeric":
        decision.detected = "integer" if integer == numeric else "float"
        if decision.detected == "float" and not decision.comma_decimal:
            decision.beyond_double = counts["beyond_example"] or ""
    elif best == "boolean":
        decision.detected = "boolean"
    else:
        decision.detected = decision.plan.kind if decision.plan else "date"
    decision.thousands_commas = int(counts["thousands_commas"] or 0)
    return counts


def _decimal_comma_counts(values: pl.DataFrame) -> pl.LazyFrame:
    """Of a text column's distinct values (with their ``count``), those that read as numbers written with a
    decimal comma (``agents.decimal_comma``): how many (``comma_numbers``), how many whole (``comma_integers``),
    written as codes (``comma_code``, a leading zero or '+') with the smallest such value, and the smallest value
    that reads both ways (``either_way_example``: "1,500", "1.234")."""
    value, weight = pl.col("value"), pl.col("count")
    code = value.str.contains(CODE_PATTERN)
    return (
        values.lazy()
        .filter(value.str.contains(DECIMAL_COMMA_NUMBER_PATTERN))
        .select(
            weight.sum().alias("comma_numbers"),
            weight.filter(integer_of_number_text(decimal_comma_text(value)).is_not_null())
            .sum()
            .alias("comma_integers"),
            weight.filter(code).sum().alias("comma_code"),
            value.filter(code).min().alias("comma_code_example"),
            value.filter(value.str.contains(EITHER_WAY_PATTERN)).min().alias("either_way_example"),
            value.filter(value.str.contains(DECIMAL_COMMA_PATTERN)).min().alias("decimal_comma_example"),
        )
    )


def _needs(decision: ColumnDecision, counts: dict[str, Any], params: TypeFixerParams) -> dict[str, str]:
    """The judgement-call parameters (``JUDGEMENT_CALLS``) converting the column's best reading needs and the
    run does not set, each with its smallest example value. A comma is ambiguous ("1,500": 1500, or 1.5 with a
    decimal comma) unless the column's numbers show it groups thousands ("1,234,567", "1,500.25", or a
    decimal point) and none of its values is written with a decimal comma; ``_weigh_commas`` then looks at
    the other columns of the file."""
    needs: dict[str, str] = {}
    if decision.best == "numeric" and params.auto_convert_numeric and decision.comma_decimal:
        if counts["comma_code"] and not params.convert_codes:
            needs["convert_codes"] = counts["comma_code_example"]
    elif decision.best == "numeric" and params.auto_convert_numeric:
        grouped = (decision.thousands_commas or counts["points"]) and not decision.decimal_commas
        if counts["ambiguous_comma"] and not grouped and not params.convert_ambiguous_thousands:
            needs["convert_ambiguous_thousands"] = counts["ambiguous_comma_example"]
        if counts["currency"] and not params.convert_currency:
            needs["convert_currency"] = counts["currency_example"]
        if counts["percent"] and not params.convert_percentages:
            needs["convert_percentages"] = counts["percent_example"]
        if counts["accounting"] and not params.convert_accounting_negatives:
            needs["convert_accounting_negatives"] = counts["accounting_example"]
        if counts["code"] and not params.convert_codes:
            needs["convert_codes"] = counts["code_example"]
    elif decision.best == "boolean" and params.auto_convert_boolean:
        if counts["yes_no"] and not params.convert_yes_no:
            needs["convert_yes_no"] = counts["yes_no_example"]
    return needs


def _weigh_commas(decisions: list[ColumnDecision], params: TypeFixerParams) -> None:
    """The file's evidence on commas. Both runs call this once every column is decided.

    - A file that writes decimal commas ("39,81") and groups thousands with commas elsewhere ("1,234,567",
      "$1,200.50") contradicts itself: its columns read with a decimal comma are proposed
      (``convert_decimal_commas``), not converted.
    - A file that writes decimal commas and never groups thousands with commas: a column whose commas may group
      thousands ("1,500") is proposed read with decimal commas, the likely reading (``convert_decimal_commas``;
      ``convert_ambiguous_thousands`` reads them as thousands separators).
    - A file that groups thousands with commas and writes no decimal comma: the comma of the others ("1,500")
      is a thousands separator too and their conversion is no longer a judgement call."""
    grouping = [decision.column for decision in decisions if decision.thousands_commas]
    if any(decision.decimal_commas for decision in decisions):
        for decision in decisions:
            if grouping and decision.comma_decimal and not params.convert_decimal_commas:
                _propose_decimal_commas(decision, params)
            elif not grouping and decision.comma_readable and "convert_ambiguous_thousands" in decision.needs:
                del decision.needs["convert_ambiguous_thousands"]
                decision.detected = decision.comma_kind  # as the proposal would read it
                _propose_decimal_commas(decision, params)
        return
    if not grouping:
        return
    required = 1.0 if params.preserve_mixed_types else params.conversion_threshold
    for decision in decisions:
        if "convert_ambiguous_thousands" not in decision.needs:
            continue
        del decision.needs["convert_ambiguous_thousands"]
        decision.comma_evidence = f"'{grouping[0]}' groups thousands with commas"
        if decision.share >= required:
            _decide_conversion(decision, params)


def _propose_decimal_commas(decision: ColumnDecision, params: TypeFixerParams) -> None:
    """A column left as written whose conversion needs ``convert_decimal_commas`` (``_weigh_commas``)."""
    decision.needs = {
        name: decision.comma_example if name == "convert_decimal_commas" else decision.needs[name]
        for name in JUDGEMENT_CALLS
        if name == "convert_decimal_commas" or name in decision.needs
    }
    decision.convert, decision.expression = False, None
    if decision.share >= (1.0 if params.preserve_mixed_types else params.conversion_threshold):
        _decide_conversion(decision, params)


def _decide_conversion(decision: ColumnDecision, params: TypeFixerParams) -> None:
    """A column that reads well enough to convert: converted, unless its conversion is switched off, it
    needs a judgement call (``_needs``: proposed), it holds UTC-marked timestamps, or dates whose day/month
    order is a guess."""
    best = decision.best
    decision.issue = True
    enabled = {
        "numeric": params.auto_convert_numeric,
        "boolean": params.auto_convert_boolean,
        "temporal": params.auto_convert_datetime,
    }[best]
    if not enabled:
        decision.reason = f"reads as {decision.detected} but that conversion is switched off"
    elif decision.needs:
        decision.reason = "a judgement call, proposed: " + "; ".join(
            _judgement(name, example) for name, example in decision.needs.items()
        )
    elif best == "temporal" and _zoned(decision):
        decision.reason = "timestamps marked UTC (Z): a plain datetime would drop the marker, left as text"
    elif best == "temporal" and _order_guessed(decision) and not params.convert_ambiguous_dates:
        decision.ambiguous_order = True
        decision.reason = (
            "the day/month order is a guess (every date reads both ways): left as text"
            if not _order_contradicted(decision)
            else "the day/month order is a guess (some dates read only month/day, others only day/month, and some "
            "read both ways): left as text"
        )
        if decision.plan is not None and decision.plan.two_digit_years:
            decision.reason += f"; {decision.plan.century_note()}"
    elif best == "temporal" and decision.plan and decision.plan.two_digit_years and not params.convert_ambiguous_dates:
        decision.ambiguous_order = True  # a guess all the same: proposed with convert_ambiguous_dates
        decision.reason = f"{decision.plan.century_note()}: left as text"
    else:
        decision.convert = True
        decision.reason = f"{decision.share:.1%} of values read as {decision.detected}"
        if decision.comma_evidence:
            decision.reason += f" (commas read as thousands separators: {decision.comma_evidence})"
        if decision.comma_decimal:
            decision.reason += " (written with a decimal comma)"
        decision.expression = _conversion(pl.col(decision.column), decision)


def _judgement(name: str, example: str) -> str:
    """Why converting a value like ``example`` is a judgement call (``JUDGEMENT_CALLS``), with what it would
    become."""
    number = pl.select(parse_number(pl.lit(example))).item() if name != "convert_yes_no" else None
    if name == "convert_decimal_commas":
        decimal = pl.select(parse_decimal_comma(pl.lit(example))).item()
        if number is None:
            return f"'{example}' would become {_number(decimal)}, read with a decimal comma"
        return f"'{example}' is {_number(decimal)} with a decimal comma, {_number(number)} read the English way"
    if name == "convert_ambiguous_thousands":
        decimal = pl.select(parse_number(pl.lit(example.replace(",", ".")))).item()
        return f"'{example}' is {_number(number)} with a thousands comma, {_number(decimal)} with a decimal comma"
    if name == "convert_currency":
        return f"'{example}' would become {_number(number)}: the currency is lost"
    if name == "convert_percentages":
        fraction = None if number is None else round(number / 100, 12)
        return f"'{example}' would become {_number(number)} (not {_number(fraction)})"
    if name == "convert_accounting_negatives":
        return f"'{example}' would become {_number(number)}: parentheses read as a minus sign (an accounting negative)"
    if name == "convert_codes":
        return f"'{example}' is written as a code (leading zero, '+' or '-0'); it would become {_number(number)}"
    return f"'{example}' may be a code, not a boolean; it would become {_boolean_word(example)}"


def _number(value: float | None) -> str:
    """A parsed number as a person writes it: 1500, 1200.5, 0.05."""
    if value is None:
        return "null"
    return str(int(value)) if value.is_integer() and abs(value) < MAX_EXACT_FLOAT_INTEGER else repr(value)


def _boolean_word(word: str) -> str:
    return "true" if word.lower() in BOOLEAN_TRUE else "false"


def _zoned(decision: ColumnDecision) -> bool:
    """Whether the plan reads values with a time-zone marker (``Z``), which a naive Datetime cannot keep."""
    return any(fmt.pattern.endswith("Z") for fmt, _ in (decision.plan.formats if decision.plan else []))


def _order_guessed(decision: ColumnDecision) -> bool:
    """Whether the plan's day/month order is a guess for the values that read both ways (``guessed_orders``)."""
    return bool(guessed_orders(decision.plan.ambiguity if decision.plan else []))


def _order_contradicted(decision: ColumnDecision) -> bool:
    ambiguity = decision.plan.ambiguity if decision.plan else []
    return any(item["values_only_valid_as_chosen"] and item["values_only_valid_as_alternative"] for item in ambiguity)


def _null_tokens(
    frame: pl.DataFrame, columns: list[str], params: TypeFixerParams, written: dict[str, pl.DataFrame]
) -> tuple[pl.DataFrame, MissingTokens]:
    """The frame with every missing-value token of its data columns a real null, and what was nulled
    (``_missing_tokens``)."""
    missing = _missing_tokens(frame, columns, params, written)
    if not missing.counts:
        return frame, missing
    return null_missing_tokens(frame.lazy(), missing.counts, params.null_tokens).collect(), missing


def _missing_tokens(
    source: pl.DataFrame | pl.LazyFrame,
    columns: list[str],
    params: TypeFixerParams,
    written: dict[str, pl.DataFrame],
    *,
    engine: Literal["auto", "streaming"] = "auto",
) -> MissingTokens:
    """The missing-value tokens of ``source``'s data columns (``agents.values.count_missing_tokens``; the String
    columns' tokens counted from their distinct values as ``written``)."""
    counts: dict[str, dict[str, int]] = {}
    if params.null_tokens:
        others = [name for name in columns if name not in written]
        found = count_missing_tokens(source.select(others), params.null_tokens, engine=engine) if others else {}
        missing_values = [*params.null_tokens, EMPTY_TEXT]
        for name in columns:
            if name not in written:
                if name in found:
                    counts[name] = found[name]
                continue
            tokens = (
                written[name].filter(pl.col("value").is_in(missing_values)).group_by("value").agg(pl.col("count").sum())
            )
            if tokens.height:
                pairs = sorted(((str(token), int(count)) for token, count in tokens.iter_rows()), key=_by_count)
                counts[name] = dict(pairs)
    return MissingTokens(tokens=tuple(params.null_tokens), counts=counts)


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return -pair[1], pair[0]


def _proposals(decisions: list[ColumnDecision], params: TypeFixerParams) -> list[dict[str, Any]]:
    """Conversions not made by default: mixed columns (cells they would empty), judgement calls
    (``JUDGEMENT_CALLS``: what each would change) and guessed date orders. A column is proposed once, under the
    first parameter it needs; each proposal's ``apply`` holds every parameter its columns need."""
    items: list[dict[str, Any]] = []
    required = 1.0 if params.preserve_mixed_types else params.conversion_threshold
    mixed = [
        d for d in decisions if params.preserve_mixed_types and d.would_convert and not d.convert and d.share < 1.0
    ]
    if mixed:
        emptied = sum(round(d.non_blank * (1.0 - d.share)) for d in mixed)
        items.append(
            proposal(
                AGENT_ID,
                "convert_mixed_columns",
                f"Convert {len(mixed)} mixed column(s) ({', '.join(d.column for d in mixed[:6])}): "
                f"{emptied:,} values that do not read would become empty",
                {"preserve_mixed_types": False, **_applied(mixed)},
                columns=[d.column for d in mixed],
                cells_affected=emptied,
            )
        )
    held = [d for d in decisions if d.needs and not d.convert and d.share >= required]
    for name in JUDGEMENT_CALLS:
        columns = [d for d in held if next(iter(d.needs)) == name]
        if columns:
            items.append(
                proposal(
                    AGENT_ID,
                    name,
                    f"{JUDGEMENT_TITLES[name]}, {len(columns)} column(s): "
                    + "; ".join(f"{d.column}: {_judgement(name, d.needs[name])}" for d in columns[:6])
                    + _decimal_comma_note(name, decisions),
                    _applied(columns),
                    columns=[d.column for d in columns],
                    cells_affected=sum(d.non_blank for d in columns),
                )
            )
    guessed = [d for d in decisions if d.ambiguous_order]
    if guessed:
        centuries = [d for d in guessed if d.plan is not None and d.plan.two_digit_years]
        items.append(
            proposal(
                AGENT_ID,
                "convert_ambiguous_dates",
                f"Convert {len(guessed)} date column(s) whose day/month order or century is a guess, in the order more "
                "of their dates can only be read in (month/day on a tie): "
                + ", ".join(d.column for d in guessed[:6])
                + "".join(f"; {d.column}: {d.plan.century_note()}" for d in centuries[:6] if d.plan is not None),
                {"convert_ambiguous_dates": True},
                columns=[d.column for d in guessed],
                cells_affected=sum(d.non_blank for d in guessed),
            )
        )
    return items


JUDGEMENT_TITLES = {
    "convert_ambiguous_thousands": "Convert numbers reading commas that may be decimal marks as thousands separators",
    "convert_decimal_commas": "Convert numbers reading their commas as decimal marks",
    "convert_currency": "Convert amounts written with a currency symbol (the symbol is dropped)",
    "convert_percentages": "Convert percentages to the number as written",
    "convert_accounting_negatives": "Convert numbers in parentheses to negative numbers (accounting negatives)",
    "convert_codes": "Convert numbers written as codes",
    "convert_yes_no": "Convert yes/no values to booleans",
}


def _applied(decisions: list[ColumnDecision]) -> dict[str, Any]:
    """The judgement-call parameters that convert ``decisions`` (each set to true), in ``JUDGEMENT_CALLS``
    order."""
    return {name: True for name in JUDGEMENT_CALLS if any(name in d.needs for d in decisions)}


def _decimal_comma_note(name: str, decisions: list[ColumnDecision]) -> str:
    """For ambiguous commas: the columns of the file that write decimal commas (a hint the comma is a decimal
    mark here too). For decimal commas: the columns that group thousands with commas, or the alternative."""
    if name == "convert_decimal_commas":
        grouping = [d.column for d in decisions if d.thousands_commas]
        if grouping:
            return f". But the file groups thousands with commas too ({', '.join(grouping[:6])})"
        return ". The file writes decimal commas; convert_ambiguous_thousands reads '1,500' as 1500 instead"
    if name != "convert_ambiguous_thousands":
        return ""
    written = [d.column for d in decisions if d.decimal_commas]
    if not written:
        return ""
    return (
        f". The file writes decimal commas ({', '.join(written[:6])}): these commas are probably decimal marks, "
        "and reading them as thousands separators would make the values 1000 times too large"
    )


def _conversion(source: pl.Expr, decision: ColumnDecision) -> pl.Expr:
    if decision.comma_decimal and decision.detected == "integer":
        return integer_of_number_text(decimal_comma_text(source))
    if decision.comma_decimal and decision.detected == "float":
        return parse_decimal_comma(source)
    if decision.detected == "integer":
        return parse_integer(source)
    if decision.detected == "float":
        return parse_number(source)
    if decision.detected == "boolean":
        return parse_boolean(source)
    assert decision.plan is not None
    return decision.plan.expression(source)


def _decide_float(frame: pl.DataFrame, decision: ColumnDecision) -> None:
    counts = narrow(frame, [decision.column]).select(_float_counts(decision.column)).collect()
    _settle_float(decision, *counts.row(0))


def _float_counts(column: str, suffix: str = "") -> list[pl.Expr]:
    """A float column's non-null values and whole values (finite, below 2^53), named ``non_null``, ``whole``
    (``suffix`` appended)."""
    x = pl.col(column)
    return [
        x.is_not_null().sum().alias(f"non_null{suffix}"),
        (x.is_finite() & (x == x.round(0)) & (x.abs() < MAX_EXACT_FLOAT_INTEGER)).sum().alias(f"whole{suffix}"),
    ]


def _settle_float(decision: ColumnDecision, non_null: int, whole: int) -> None:
    """A float column becomes Int64 when every one of its ``non_null`` values is ``whole``."""
    decision.non_blank = int(non_null)
    if decision.non_blank and whole == non_null:
        decision.detected, decision.share, decision.issue, decision.convert = "integer", 1.0, True, True
        decision.text_source = False
        decision.reason = "every value is a whole number"
        decision.expression = pl.col(decision.column).cast(pl.Int64)


def _scanned_float_counts(
    nulled: pl.LazyFrame, schema: pl.Schema, columns: list[str], params: TypeFixerParams
) -> dict[str, tuple[int, int]]:
    """``_float_counts`` of every float column of a scan (its tokens nulled), in one streaming query."""
    names = [name for name in columns if schema[name].is_float()] if params.auto_convert_numeric else []
    if not names:
        return {}
    exprs = [expr for index, name in enumerate(names) for expr in _float_counts(name, f"_{index}")]
    row = nulled.select(exprs).collect(engine="streaming").row(0, named=True)
    return {name: (row[f"non_null_{index}"], row[f"whole_{index}"]) for index, name in enumerate(names)}


def _category_counts(frame: pl.DataFrame, column: str, present: pl.DataFrame | None) -> tuple[int, int]:
    """A text column's distinct non-null values and non-null rows; from ``present`` (the column's distinct
    non-null values as written, with their counts: ``_present``) when given."""
    if present is not None:
        return _present_counts(present)
    x = pl.col(column)
    query = narrow(frame, [column]).select(x.drop_nulls().n_unique().alias("distinct"), x.count().alias("non_null"))
    distinct, non_null = query.collect().row(0)
    return int(distinct), int(non_null)


def _present_counts(present: pl.DataFrame) -> tuple[int, int]:
    distinct, non_null = present.lazy().select(pl.len(), pl.col("count").sum()).collect().row(0)
    return int(distinct), int(non_null or 0)


def _decide_category(decision: ColumnDecision, params: TypeFixerParams, distinct: int, non_null: int) -> None:
    x = pl.col(decision.column)
    if (
        non_null
        and distinct <= params.category_max_distinct
        and distinct / non_null <= params.category_max_distinct_ratio
    ):
        decision.detected, decision.share, decision.issue, decision.convert = "category", 1.0, True, True
        decision.text_source = False
        decision.reason = f"{distinct} distinct values in {non_null:,} rows"
        decision.expression = x.cast(pl.Categorical)


def _fix_log(work: pl.DataFrame, converting: list[ColumnDecision]) -> tuple[list[dict[str, Any]], list[pl.LazyFrame]]:
    """Per converted column: counts, failures with examples (row_index, value) and sample conversions; and
    the row-level issues of every value a conversion emptied."""
    if not converting:
        return [], []
    counts, failed_masks = _conversion_counts(work, converting)
    log: list[dict[str, Any]] = []
    parts: list[pl.LazyFrame] = []
    for index, decision in enumerate(converting):
        failed = failed_masks[decision.column]
        entry = _log_entry(work, index, decision, counts, failed)
        log.append(entry)
        if entry["failed"]:
            parts.append(_unparseable_issues(work, decision, failed))
    return log, parts


def _conversion_counts(
    work: pl.DataFrame, converting: list[ColumnDecision]
) -> tuple[dict[str, Any], dict[str, pl.Expr]]:
    """Per converted column (by position): values converted, failed and blank values emptied, counted in one
    pass; and per column the mask of the values that failed (always false when the source is not text)."""
    counts_exprs, failed_masks = _conversion_measures(converting)
    return work.select(counts_exprs).row(0, named=True), failed_masks


def _conversion_measures(converting: list[ColumnDecision]) -> tuple[list[pl.Expr], dict[str, pl.Expr]]:
    """``_conversion_counts``' expressions (over the data with the converted columns as ``_temp``) and masks."""
    counts_exprs: list[pl.Expr] = []
    failed_masks: dict[str, pl.Expr] = {}
    for index, decision in enumerate(converting):
        original, converted = pl.col(decision.column), pl.col(_temp(index))
        present = original.is_not_null()
        if decision.text_source:
            non_blank = present & (original.cast(pl.String).str.strip_chars() != "")
            failed = non_blank & converted.is_null()
        else:
            non_blank, failed = present, pl.lit(False)
        failed_masks[decision.column] = failed
        counts_exprs += [
            (non_blank & converted.is_not_null()).sum().alias(f"converted_{index}"),
            failed.sum().alias(f"failed_{index}"),
            (present & ~non_blank).sum().alias(f"blank_{index}"),
        ]
    return counts_exprs, failed_masks


def _log_entry(
    work: pl.DataFrame, index: int, decision: ColumnDecision, counts: dict[str, Any], failed: pl.Expr
) -> dict[str, Any]:
    failed_count = int(counts[f"failed_{index}"] or 0)
    columns = narrow(work, [ROW_INDEX_COLUMN, decision.column, _temp(index)])
    examples = (
        columns.filter(failed)
        .select(pl.col(ROW_INDEX_COLUMN).alias("row_index"), pl.col(decision.column).cast(pl.String).alias("value"))
        .head(EXAMPLES)
        .collect()
        .to_dicts()
        if failed_count
        else []
    )
    samples = _sample_conversions(columns, index, decision).collect().to_dicts()
    return _entry(index, decision, counts, examples, samples)


def _sample_conversions(work: pl.LazyFrame, index: int, decision: ColumnDecision) -> pl.LazyFrame:
    """Up to three conversions (``from``, ``to``) of distinct values, from the first converted rows."""
    original, converted = pl.col(decision.column), pl.col(_temp(index))
    return (
        work.filter(original.is_not_null() & converted.is_not_null())
        .head(SAMPLE_SCAN_ROWS)
        .select(original.cast(pl.String).alias("from"), converted.cast(pl.String).alias("to"))
        .unique(subset="from", maintain_order=True)
        .head(3)
    )


def _entry(
    index: int,
    decision: ColumnDecision,
    counts: dict[str, Any],
    examples: list[dict[str, Any]],
    samples: list[dict[str, Any]],
) -> dict[str, Any]:
    """A converted column's fix-log entry from its counts (``_conversion_counts``), failures and samples."""
    entry: dict[str, Any] = {
        "column": decision.column,
        "from_type": decision.from_type,
        "to_type": TARGET_DTYPES.get(decision.detected or "", decision.detected or ""),
        "kind": decision.detected,
        "text_source": decision.text_source,
        "share": round(decision.share, 6),
        "converted": int(counts[f"converted_{index}"] or 0),
        "failed": int(counts[f"failed_{index}"] or 0),
        "blank_values_emptied": int(counts[f"blank_{index}"] or 0),
        "examples": examples,
        "sample_conversions": samples,
        "reason": decision.reason,
    }
    if decision.plan is not None and decision.detected in ("date", "datetime"):
        entry["date_formats"] = [{"format": fmt.pattern, "values": n} for fmt, n in decision.plan.formats]
        entry["ambiguous_day_month"] = decision.plan.ambiguity
    return entry


def _scanned_work(nulled: pl.LazyFrame, converting: list[ColumnDecision], work_dir: Path | None) -> pl.LazyFrame:
    """A scan's ``work`` of ``_convert``: its data (tokens nulled) with each converted column beside it as
    ``_temp``. When a conversion parses text and the run has a ``work_dir``, that is sunk there in one streaming
    pass and scanned: the fix log and the fixed data then read the parsed values instead of parsing twice."""
    work = nulled.with_columns(
        [
            decision.expression.alias(_temp(index))
            for index, decision in enumerate(converting)
            if decision.expression is not None
        ]
    )
    if work_dir is None or not any(decision.text_source for decision in converting):
        return work
    work_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{AGENT_ID}-", suffix=".parquet", dir=work_dir)
    os.close(handle)
    work.sink_parquet(name)
    return pl.scan_parquet(name)


def _scanned_fix_log(
    work: pl.LazyFrame, converting: list[ColumnDecision]
) -> tuple[list[dict[str, Any]], list[pl.LazyFrame]]:
    """``_fix_log`` of a scan's ``_scanned_work``, on the streaming engine: the counts and sample conversions in
    one pass; then the row-level issues of the columns with failures, whose first rows are the examples."""
    if not converting:
        return [], []
    counts_exprs, failed_masks = _conversion_measures(converting)
    samples = [_sample_conversions(work, index, decision) for index, decision in enumerate(converting)]
    found, *sampled = pl.collect_all([work.select(counts_exprs), *samples], engine="streaming")
    counts = found.row(0, named=True)
    failing = [decision for index, decision in enumerate(converting) if counts[f"failed_{index}"]]
    queries = [_unparseable_issues(work, decision, failed_masks[decision.column]) for decision in failing]
    issues = dict(
        zip(
            (decision.column for decision in failing),
            pl.collect_all(queries, engine="streaming") if queries else [],
            strict=True,
        )
    )
    log: list[dict[str, Any]] = []
    for index, decision in enumerate(converting):
        failures = issues.get(decision.column)
        examples = [] if failures is None else failures.head(EXAMPLES).select("row_index", "value").to_dicts()
        log.append(_entry(index, decision, counts, examples, sampled[index].to_dicts()))
    return log, [issues[decision.column].lazy() for decision in failing]


def _unparseable_issues(work: pl.DataFrame | pl.LazyFrame, decision: ColumnDecision, failed: pl.Expr) -> pl.LazyFrame:
    original = pl.col(decision.column)
    return issues_where(
        work,
        failed,
        column=decision.column,
        issue_type="unparseable_value",
        severity="warning",
        message=pl.concat_str(
            pl.lit("'"),
            shown(original),
            pl.lit(f"' in '{decision.column}' could not be read as {decision.detected}; the cell is now empty"),
        ),
        value=original,
    )


def _findings(
    decisions: list[ColumnDecision], fix_log: list[dict[str, Any]]
) -> tuple[list[Alert], list[Issue], list[Recommendation]]:
    findings = Findings(AGENT_ID)
    failing = [entry for entry in fix_log if entry["failed"]]
    if failing:
        total = sum(entry["failed"] for entry in failing)
        findings.alert(
            "type_conversion",
            "high" if any(entry["failed"] > 0.05 * max(entry["converted"], 1) for entry in failing) else "medium",
            f"{total:,} values in {len(failing)} converted column(s) could not be read and are now empty",
            "Review the unparseable_value row-level issues; fix them at the source or set preserve_mixed_types",
            affected=len(failing),
        )
    for entry in failing:
        findings.issue(
            "unparseable_values",
            "medium",
            f"{entry['failed']:,} values of '{entry['column']}' could not be read as {entry['kind']}",
            field_name=entry["column"],
            details={"examples": entry["examples"]},
        )
        findings.recommend(
            f"Correct the {entry['failed']:,} values of '{entry['column']}' that are not {entry['kind']} values",
            "medium",
            field_name=entry["column"],
        )
    for decision in decisions:
        ambiguous = [item for item in (decision.plan.ambiguity if decision.plan else []) if item["ambiguous_values"]]
        if ambiguous and decision.detected in ("date", "datetime"):
            item = ambiguous[0]
            findings.issue(
                "ambiguous_date_format",
                "medium",
                f"{item['ambiguous_values']:,} dates of '{decision.column}' read both as {item['chosen_format']} "
                f"and {item['alternative_format']}; {item['chosen_format']} used ({item['decided_by']})",
                field_name=decision.column,
                details={"ambiguity": ambiguous},
            )
        if decision.issue and not decision.convert:
            findings.issue(
                "mixed_types" if decision.reason.startswith("mixed") else "type_not_converted",
                "low",
                f"'{decision.column}' was left as {decision.from_type}: {decision.reason}",
                field_name=decision.column,
                details={"shares": decision.shares},
            )
    ambiguous_columns = [issue.field_name for issue in findings.issues if issue.issue_type == "ambiguous_date_format"]
    if ambiguous_columns:
        findings.alert(
            "date_format",
            "medium",
            f"Day/month order is ambiguous in {len(ambiguous_columns)} date column(s): "
            + ", ".join(str(name) for name in ambiguous_columns[:5]),
            "Check the date order of these columns at the source",
            affected=len(ambiguous_columns),
        )
    unfixed = [decision.column for decision in decisions if decision.issue and not decision.convert]
    if unfixed:
        findings.alert(
            "type_consistency",
            "low",
            f"{len(unfixed)} column(s) keep a type issue: " + ", ".join(unfixed[:5]),
            "See type_analysis for why each was not converted",
            affected=len(unfixed),
        )
    return findings.alerts, findings.issues, findings.recommendations
