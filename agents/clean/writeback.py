"""The ``cleanse-writeback`` agent: final integrity checks on the cleaned frame and the cleansing manifest.

Parameters and summary metrics follow Agensium (reference/agents.md §1.5); the frame is returned unchanged.
The checks compare ``inputs.primary`` with what the chain knows (``inputs.context``: the original input's
shape, dtypes and null counts, and every earlier step's record):

- ``numeric_type_integrity``: every column numeric in the input, or made numeric by a step, is still
  numeric (unless dropped), and numeric columns hold no NaN or infinite value (each such cell is a
  row-level issue).
- ``datetime_type_integrity``: every Date/Datetime column of the input or of a step is still one, with no
  value before year 1000 or after 9999 (the mark of a misparsed date).
- ``no_new_nulls``: no step added missing values to a column: for each successful step and column,
  ``nulls_after - nulls_before`` (the step's own frames, so removed rows cannot hide an increase within a
  step; a step that both removes rows with nulls and adds nulls can) counts as introduced, except for
  type-fixer, whose unparseable cells become empty by design (reported as intended). Without step records
  the current null counts are compared with the input's.
- ``no_duplicates``: no two rows are equal on every data column (empty equals empty). It fails on any
  duplicate; the message says whether duplicate-resolver ran (then the duplicates were introduced after it,
  or it was configured not to look for exact duplicates).
- ``data_retention``: rows now / rows of the input >= ``min_retention_percentage`` (ours, default 50 %);
  columns dropped are listed with the step that dropped them but do not fail the check.

``original_row_count`` / ``original_column_count`` override the context's numbers when given;
``agent_manifests`` (manifests of agents run elsewhere) are merged after the chain's own steps.

A primary too large for memory (``inputs.scan``) gets the same checks, envelope and issues: the counts are
queries on Polars' streaming engine, and duplicates are looked for among the rows whose hash of all data columns
another row shares (found by streaming group_bys over a spill of the hashes, in parts), read into memory in parts
of whole hash groups and compared exactly as in memory. The output is the scan, unchanged (``AgentResult.scan``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from agents.clean.common import clean_result, effectiveness, no_removed_rows, repeat_candidates
from agents.clean.streamed_queries import (
    collect_streamed_issues,
    numbered,
    repeated_hash_rows,
    scanned_rows,
    spilled_rows,
    streamed_has_identifier,
    streamed_row,
)
from agents.columns import with_row_index
from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    ROW_INDEX_COLUMN,
    AgentInputs,
    AgentResult,
    ChainContext,
    Progress,
    Severity,
    SummaryCard,
    format_text,
)
from agents.findings import (
    Findings,
    card_status,
    collect_row_issues,
    issues_where,
)
from agents.formatting import pct
from agents.params.cleanse_writeback import CleanseWritebackParams

AGENT_ID = "cleanse-writeback"
AGENT_NAME = "Cleanse Writeback"
INTENDED_NULL_AGENTS = frozenset({"type-fixer"})
MIN_YEAR, MAX_YEAR = 1000, 9999
LOG_KEYS = (
    "transformations",
    "transformations_applied",
    "imputation_log",
    "resolution_log",
    "removal_log",
    "fix_log",
    "standardization_log",
    "quarantine_log",
)
NUMERIC_PREFIXES = ("Int", "UInt", "Float", "Decimal")
# A streamed run's duplicate check: rows whose hashes one streaming group_by holds at a time, and cells (rows x
# columns) of the rows sharing a hash read into memory at a time.
MAX_GROUPED_ROWS = 4_000_000
MAX_CANDIDATE_CELLS = 20_000_000
HASH = "__hash__"


@dataclass(frozen=True)
class _Data:
    """What the checks read: the frame (in memory) or the chain's scan (a primary too large for memory), with
    ``ROW_INDEX_COLUMN``; ``spill_dir`` where a streamed run writes its spills."""

    source: pl.DataFrame | pl.LazyFrame
    schema: pl.Schema
    height: int
    spill_dir: Path | None = None

    def aggregates(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        """One row of aggregates: over the frame, or on the streaming engine over the scan."""
        if isinstance(self.source, pl.DataFrame):
            return self.source.select(exprs).row(0, named=True)
        return streamed_row(self.source, exprs)


def run(inputs: AgentInputs, params: CleanseWritebackParams, progress: Progress) -> AgentResult:
    if inputs.scan is not None:
        if inputs.work_dir is not None:
            return _run_streamed(inputs, inputs.scan, inputs.work_dir, params, progress)
        with tempfile.TemporaryDirectory() as folder:
            return _run_streamed(inputs, inputs.scan, Path(folder), params, progress)
    started = time.perf_counter()
    frame = inputs.primary
    indexed = with_row_index(frame)
    data = _Data(indexed, indexed.schema, indexed.height)
    checks, row_issues, manifest = _verify(data, inputs.context, params, progress)
    result = _result(
        data.height,
        frame,
        checks,
        manifest,
        list(inputs.context.steps),
        collect_row_issues(row_issues, in_file_order=True),
        params,
        started,
    )
    ready = result.envelope.summary_metrics["data_ready_for_pipeline"]
    progress(1.0, "Integrity verified" if ready else "Integrity checks failed")
    return result


def _run_streamed(
    inputs: AgentInputs, source: pl.LazyFrame, work_dir: Path, params: CleanseWritebackParams, progress: Progress
) -> AgentResult:
    """``run`` on a primary too large for memory: the same checks over the scan (see the module's docstring); the
    output is ``source`` unchanged."""
    started = time.perf_counter()
    scan = numbered(source)
    data = _Data(scan, scan.collect_schema(), scanned_rows(inputs.rows, scan), work_dir / AGENT_ID)
    checks, row_issues, manifest = _verify(data, inputs.context, params, progress)
    progress(0.9, "Collecting the row-level issues")
    issues = collect_streamed_issues(row_issues)
    result = _result(data.height, None, checks, manifest, list(inputs.context.steps), issues, params, started)
    result.scan, result.rows = source, data.height
    ready = result.envelope.summary_metrics["data_ready_for_pipeline"]
    progress(1.0, "Integrity verified" if ready else "Integrity checks failed")
    return result


def _verify(
    data: _Data, context: ChainContext, params: CleanseWritebackParams, progress: Progress
) -> tuple[list[dict[str, Any]], list[pl.LazyFrame], dict[str, Any]]:
    """The integrity checks asked for, their row-level issues (lazy) and the cleansing manifest."""
    columns = [name for name in data.schema.names() if name not in BOOKKEEPING_COLUMNS]
    steps = list(context.steps)
    progress(0.0, f"Verifying {data.height:,} rows and {len(columns)} columns")

    checks: list[dict[str, Any]] = []
    row_issues: list[pl.LazyFrame] = []
    if params.verify_numeric_types:
        check, issues = _numeric_check(data, columns, context)
        checks.append(check)
        row_issues += issues
    progress(0.2, "Checking dates")
    if params.verify_datetime_types:
        check, issues = _datetime_check(data, columns, context)
        checks.append(check)
        row_issues += issues
    progress(0.4, "Checking missing values")
    if params.verify_no_new_nulls:
        checks.append(_null_check(data, columns, context))
    progress(0.55, "Checking duplicates")
    if params.verify_no_duplicates:
        check, issues = _duplicate_check(data, columns, steps)
        checks.append(check)
        row_issues += issues
    progress(0.7, "Checking retention")
    original_rows, original_columns = _original_shape(data.height, len(columns), context, params)
    if params.verify_data_retention:
        checks.append(_retention_check(data.height, columns, original_rows, original_columns, steps, params))

    progress(0.8, "Building the cleansing manifest")
    manifest = _manifest(data.height, columns, steps, original_rows, original_columns, params)
    return checks, row_issues, manifest


def _kind(dtype: str | None) -> str | None:
    if dtype is None:
        return None
    if dtype.startswith(NUMERIC_PREFIXES):
        return "numeric"
    if dtype == "Date" or dtype.startswith("Datetime"):
        return "temporal"
    return "other"


def _expected(kind: str, context: ChainContext) -> dict[str, str]:
    """Columns of ``kind`` in the input or after any step, with where that was seen first."""
    expected: dict[str, str] = {}
    for name, dtype in context.original_dtypes.items():
        if name != ROW_INDEX_COLUMN and _kind(dtype) == kind:
            expected.setdefault(name, "input")
    for step in context.steps:
        for name, change in step.get("columns", {}).items():
            if name != ROW_INDEX_COLUMN and _kind(change.get("dtype_after")) == kind:
                expected.setdefault(name, step.get("agent_id", "step"))
    return expected


def _check(name: str, passed: bool, severity: Severity, message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "check": name,
        "passed": passed,
        "severity": "info" if passed else severity,
        "message": message,
        "details": details,
    }


def _numeric_check(data: _Data, columns: list[str], context: ChainContext) -> tuple[dict[str, Any], list[pl.LazyFrame]]:
    schema = data.schema
    numeric = [name for name in columns if schema[name].is_numeric()]
    expected = _expected("numeric", context)
    lost = {
        name: {"expected_since": source, "dtype_now": str(schema[name])}
        for name, source in expected.items()
        if name in columns and name not in numeric
    }
    floats = [name for name in numeric if schema[name].is_float()]
    non_finite: dict[str, int] = {}
    issues: list[pl.LazyFrame] = []
    if floats:
        counts = data.aggregates(
            [(pl.col(name).is_nan() | pl.col(name).is_infinite()).sum().alias(name) for name in floats]
        )
        non_finite = {name: int(count) for name, count in counts.items() if count}
        for name in non_finite:
            bad = pl.col(name).is_nan() | pl.col(name).is_infinite()
            issues.append(
                issues_where(
                    data.source,
                    bad.fill_null(False),
                    column=name,
                    issue_type="non_finite_number",
                    severity="warning",
                    message=format_text(
                        "'{}' holds {}, not a finite number", pl.lit(name), pl.col(name).cast(pl.String)
                    ),
                    value=pl.col(name),
                )
            )
    passed = not lost and not non_finite
    parts = []
    if lost:
        parts.append(f"no longer numeric: {', '.join(lost)}")
    if non_finite:
        parts.append(f"NaN or infinite values in {', '.join(f'{k} ({v})' for k, v in non_finite.items())}")
    message = f"Verified {len(numeric)} numeric columns" if passed else "; ".join(parts)
    details = {
        "columns_checked": numeric,
        "expected_numeric": sorted(expected),
        "lost_numeric_type": lost,
        "non_finite_values": non_finite,
    }
    return _check("numeric_type_integrity", passed, "critical" if lost else "medium", message, details), issues


def _datetime_check(
    data: _Data, columns: list[str], context: ChainContext
) -> tuple[dict[str, Any], list[pl.LazyFrame]]:
    schema = data.schema
    temporal = [name for name in columns if isinstance(schema[name], (pl.Date, pl.Datetime))]
    expected = _expected("temporal", context)
    lost = {
        name: {"expected_since": source, "dtype_now": str(schema[name])}
        for name, source in expected.items()
        if name in columns and name not in temporal
    }
    implausible: dict[str, int] = {}
    issues: list[pl.LazyFrame] = []
    if temporal:
        outside = {name: _implausible(name) for name in temporal}
        counts = data.aggregates([expr.sum().alias(name) for name, expr in outside.items()])
        implausible = {name: int(count) for name, count in counts.items() if count}
        for name in implausible:
            issues.append(
                issues_where(
                    data.source,
                    outside[name],
                    column=name,
                    issue_type="implausible_date",
                    severity="warning",
                    message=format_text(
                        "'{}' is {}: outside years {}-{}, probably misparsed",
                        pl.lit(name),
                        pl.col(name).cast(pl.String),
                        pl.lit(MIN_YEAR),
                        pl.lit(MAX_YEAR),
                    ),
                    value=pl.col(name),
                )
            )
    passed = not lost and not implausible
    parts = []
    if lost:
        parts.append(f"no longer dates: {', '.join(lost)}")
    if implausible:
        parts.append(f"implausible dates in {', '.join(f'{k} ({v})' for k, v in implausible.items())}")
    message = f"Verified {len(temporal)} date/datetime columns" if passed else "; ".join(parts)
    details = {
        "columns_checked": temporal,
        "expected_temporal": sorted(expected),
        "lost_temporal_type": lost,
        "implausible_values": implausible,
        "plausible_years": [MIN_YEAR, MAX_YEAR],
    }
    return _check("datetime_type_integrity", passed, "high", message, details), issues


def _implausible(name: str) -> pl.Expr:
    year = pl.col(name).dt.year()
    return ((year < MIN_YEAR) | (year > MAX_YEAR)).fill_null(False)


def _null_check(data: _Data, columns: list[str], context: ChainContext) -> dict[str, Any]:
    introduced: dict[str, dict[str, int]] = {}
    intended: dict[str, dict[str, int]] = {}
    steps = [step for step in context.steps if step.get("status") == "success"]
    for step in steps:
        agent_id = str(step.get("agent_id"))
        for name, change in step.get("columns", {}).items():
            before, after = change.get("nulls_before"), change.get("nulls_after")
            if before is None or after is None or after <= before:
                continue
            target = intended if agent_id in INTENDED_NULL_AGENTS else introduced
            target.setdefault(name, {})[agent_id] = target.get(name, {}).get(agent_id, 0) + int(after - before)
    basis = "step records"
    if not context.steps and context.original_null_counts:
        basis = "input null counts"
        now = data.aggregates([pl.col(columns).null_count()]) if columns else {}
        for name, count in now.items():
            original = context.original_null_counts.get(name)
            if original is not None and count > original:
                introduced[name] = {"(unknown step)": int(count - original)}
    elif not context.steps:
        basis = "nothing to compare with"
    total = sum(sum(by_step.values()) for by_step in introduced.values())
    passed = total == 0
    if passed:
        message = "No step added missing values"
        if intended:
            message += f" (type-fixer emptied {sum(sum(v.values()) for v in intended.values()):,} unparseable cells)"
    else:
        where = "; ".join(
            f"{name}: +{sum(by_step.values())} by {', '.join(by_step)}" for name, by_step in introduced.items()
        )
        message = f"{total:,} missing values were added: {where}"
    details = {
        "basis": basis,
        "introduced": introduced,
        "intended": intended,
        "intended_agents": sorted(INTENDED_NULL_AGENTS),
        "introduced_total": total,
    }
    return _check("no_new_nulls", passed, "high", message, details)


def _duplicate_check(
    data: _Data, columns: list[str], steps: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[pl.LazyFrame]]:
    resolver_ran = any(
        step.get("agent_id") == "duplicate-resolver" and step.get("status") == "success" for step in steps
    )
    issues: list[pl.LazyFrame] = []
    duplicates = 0
    # Equal rows hash equally: when no two rows share a hash (the usual case) there is no duplicate and
    # the exact comparison is skipped; nor is there one when a column is an identifier (cheaper to count).
    if columns and isinstance(data.source, pl.DataFrame):
        if repeat_candidates(data.source, columns) is not None:
            duplicates, issues = _exact_duplicates(data.source, columns)
    elif columns and data.height >= 2:  # noqa: PLR2004 - one row repeats nothing
        duplicates, issues = _streamed_duplicates(data, columns)
    passed = duplicates == 0
    if passed:
        message = "No duplicate rows"
    elif resolver_ran:
        message = (
            f"{duplicates:,} duplicate rows remain after duplicate-resolver "
            "(introduced by a later step, or 'exact' was not requested)"
        )
    else:
        message = f"{duplicates:,} duplicate rows (duplicate-resolver did not run)"
    details = {
        "duplicate_count": duplicates,
        "duplicate_percentage": pct(duplicates, data.height),
        "duplicate_resolver_ran": resolver_ran,
    }
    return _check("no_duplicates", passed, "high" if resolver_ran else "medium", message, details), issues


def _exact_duplicates(indexed: pl.DataFrame, columns: list[str]) -> tuple[int, list[pl.LazyFrame]]:
    """The rows of ``indexed`` equal on every column of ``columns`` to an earlier row: how many, and their issues."""
    later = ~pl.struct(columns).is_first_distinct()
    duplicates = int(indexed.select(later.sum()).item())
    if not duplicates:
        return 0, []
    kept = pl.col(ROW_INDEX_COLUMN).min().over(columns)
    issue = issues_where(
        indexed.with_columns(kept.alias("__first_row__"), later.alias("__later__")),
        pl.col("__later__"),
        column="all",
        issue_type="duplicate_row",
        severity="warning",
        message=format_text("exact duplicate of row {}", pl.col("__first_row__")),
        value=pl.col("__first_row__"),
    )
    return duplicates, [issue]


def _streamed_duplicates(data: _Data, columns: list[str]) -> tuple[int, list[pl.LazyFrame]]:
    """``_exact_duplicates`` over a scan: none when a column is an identifier (as ``repeat_candidates``), else
    on the rows whose hash of ``columns`` another row shares (every group
    of equal rows is among them whole, in file order), read in parts of whole hash groups of at most
    ``MAX_CANDIDATE_CELLS`` cells. Each part's issues are collected at once, so that no part stays in memory."""
    assert isinstance(data.source, pl.LazyFrame) and data.spill_dir is not None
    if streamed_has_identifier(data.source, columns, data.height, max_grouped_rows=MAX_GROUPED_ROWS):
        return 0, []
    candidates = repeated_hash_rows(
        data.source, columns, data.height, data.spill_dir, max_grouped_rows=MAX_GROUPED_ROWS
    )
    if not candidates.height:
        return 0, []
    parts = -(-candidates.height * (len(columns) + 1) // MAX_CANDIDATE_CELLS)
    duplicates, issues = 0, []
    for part in range(parts):
        wanted = candidates.filter(pl.col(HASH) % parts == part)[ROW_INDEX_COLUMN]
        if not wanted.len():
            continue
        count, found = _exact_duplicates(spilled_rows(data.source, wanted, data.spill_dir), columns)
        duplicates += count
        issues += [frame.lazy() for frame in pl.collect_all(found)]
    return duplicates, issues


def _original_shape(
    height: int, column_count: int, context: ChainContext, params: CleanseWritebackParams
) -> tuple[int, int]:
    known = bool(context.original_columns) or bool(context.steps)
    rows = params.original_row_count
    if rows is None:
        rows = context.original_rows if known else height
    columns = params.original_column_count
    if columns is None:
        original = [name for name in context.original_columns if name != ROW_INDEX_COLUMN]
        columns = len(original) if known else column_count
    return rows, columns


def _retention_check(
    height: int,
    columns: list[str],
    original_rows: int,
    original_columns: int,
    steps: list[dict[str, Any]],
    params: CleanseWritebackParams,
) -> dict[str, Any]:
    row_retention = 100.0 * height / original_rows if original_rows else 100.0
    column_retention = 100.0 * len(columns) / original_columns if original_columns else 100.0
    dropped: dict[str, str] = {}
    for step in steps:
        after = set(step.get("columns_after", []))
        for name in step.get("columns_before", []):
            if name not in after and name != ROW_INDEX_COLUMN:
                dropped[name] = str(step.get("agent_id"))
    passed = row_retention >= params.min_retention_percentage
    message = f"{height:,} of {original_rows:,} rows kept ({row_retention:.2f}%)" + (
        "" if passed else f", below the minimum of {params.min_retention_percentage:g}%"
    )
    details = {
        "original_rows": original_rows,
        "final_rows": height,
        "row_retention_percentage": round(row_retention, 4),
        "min_retention_percentage": params.min_retention_percentage,
        "original_columns": original_columns,
        "final_columns": len(columns),
        "column_retention_percentage": round(column_retention, 4),
        "columns_dropped": dropped,
    }
    return _check("data_retention", passed, "critical", message, details)


def _step_actions(step: dict[str, Any]) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    if step.get("rows_removed"):
        actions.append({"action": "rows_removed", "count": int(step["rows_removed"])})
    before, after = step.get("columns_before", []), step.get("columns_after", [])
    kept, had = set(after), set(before)  # sets: a wide file's lists make list membership quadratic
    actions += [{"action": "column_removed", "column": name} for name in before if name not in kept]
    actions += [{"action": "column_added", "column": name} for name in after if name not in had]
    for name, change in step.get("columns", {}).items():
        old, new = change.get("dtype_before"), change.get("dtype_after")
        if old is not None and new is not None and old != new:
            actions.append({"action": "type_changed", "column": name, "from": old, "to": new})
        if change.get("cells_changed"):
            actions.append({"action": "values_changed", "column": name, "cells": int(change["cells_changed"])})
    return actions


def _external_actions(manifest: dict[str, Any]) -> int:
    """How many logged actions an external manifest carries (its longest log list; 1 if none)."""
    nested = manifest.get("data")
    sources: list[dict[str, Any]] = [manifest, nested if isinstance(nested, dict) else {}]
    lengths = [len(source[key]) for source in sources for key in LOG_KEYS if isinstance(source.get(key), list)]
    return max(lengths, default=1)


def _manifest(
    height: int,
    columns: list[str],
    steps: list[dict[str, Any]],
    original_rows: int,
    original_columns: int,
    params: CleanseWritebackParams,
) -> dict[str, Any]:
    by_agent = {step.get("agent_id"): step for step in steps}
    transformations = [_step_entry(step, params) for step in steps]
    transformations += [
        _external_entry(agent_id, external, params)
        for agent_id, external in params.agent_manifests.items()
        if agent_id not in by_agent
    ]
    rows_removed_total = max(0, original_rows - height)
    manifest: dict[str, Any] = {
        "pipeline": [entry["agent_id"] for entry in transformations],
        "transformations": transformations,
        "lineage": {
            "original_rows": original_rows,
            "original_columns": original_columns,
            "final_rows": height,
            "final_columns": len(columns),
            "rows_removed_total": rows_removed_total,
            "retention_percentage": round(100.0 * height / original_rows, 4) if original_rows else 100.0,
        },
        "generated_at": datetime.now(UTC).isoformat(),
        "total_transformations": sum(int(entry["actions_count"]) for entry in transformations),
    }
    if params.include_transformation_summary:
        manifest["transformation_summary"] = _transformation_summary(transformations, manifest["total_transformations"])
    return manifest


def _step_entry(step: dict[str, Any], params: CleanseWritebackParams) -> dict[str, Any]:
    """The manifest's entry for a step of the chain (with an external manifest given for its agent)."""
    actions = _step_actions(step)
    entry: dict[str, Any] = {
        "step": step.get("step"),
        "agent_id": step.get("agent_id"),
        "agent_name": step.get("agent_name"),
        "status": step.get("status"),
        "source": "chain",
        "rows_before": step.get("rows_before"),
        "rows_after": step.get("rows_after"),
        "rows_removed": step.get("rows_removed"),
        "actions_count": len(actions),
    }
    if params.generate_comprehensive_manifest:
        entry.update(
            actions=actions,
            cells_changed_total=step.get("cells_changed_total"),
            duration_ms=step.get("duration_ms"),
            summary_metrics=step.get("summary_metrics", {}),
        )
    if step.get("agent_id") in params.agent_manifests:
        entry["external_manifest"] = params.agent_manifests[str(step.get("agent_id"))]
    return entry


def _external_entry(agent_id: str, external: dict[str, Any], params: CleanseWritebackParams) -> dict[str, Any]:
    """The manifest's entry for an agent run elsewhere (``agent_manifests``)."""
    return {
        "step": None,
        "agent_id": agent_id,
        "agent_name": external.get("agent_name", agent_id),
        "status": external.get("status", "unknown"),
        "source": "agent_manifests",
        "actions_count": _external_actions(external),
        **({"manifest": external} if params.generate_comprehensive_manifest else {}),
    }


def _transformation_summary(transformations: list[dict[str, Any]], total_actions: int) -> dict[str, Any]:
    by_type: dict[str, int] = {}
    for entry in transformations:
        for action in entry.get("actions", []):
            by_type[action["action"]] = by_type.get(action["action"], 0) + 1
    return {
        "total_agents": len(transformations),
        "total_actions": total_actions,
        "actions_by_type": by_type,
        "timeline": [
            {
                "step": entry["step"],
                "agent_id": entry["agent_id"],
                "status": entry["status"],
                "actions_count": entry["actions_count"],
                "rows_removed": entry.get("rows_removed"),
            }
            for entry in transformations
        ],
    }


def _result(
    height: int,
    frame: pl.DataFrame | None,
    checks: list[dict[str, Any]],
    manifest: dict[str, Any],
    steps: list[dict[str, Any]],
    row_issues: pl.DataFrame,
    params: CleanseWritebackParams,
    started: float,
) -> AgentResult:
    """The envelope; ``frame`` the data in memory (None for a streamed run), ``height`` its rows."""
    passed = sum(check["passed"] for check in checks)
    ready = passed == len(checks)
    score = _score(checks, manifest, params)
    findings = _findings(checks, steps, ready)
    summary_metrics = {
        "total_rows_verified": height,
        "total_columns_verified": manifest["lineage"]["final_columns"],
        "integrity_checks_passed": passed,
        "integrity_checks_failed": len(checks) - passed,
        "agents_in_manifest": len(manifest["pipeline"]),
        "data_ready_for_pipeline": ready,
        "total_transformations_logged": manifest["total_transformations"],
    }
    data = {
        "integrity_checks": checks,
        "manifest": manifest,
        "data_ready_for_pipeline": ready,
        "effectiveness": score,
        "quality_status": score["status"],
    }
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=data,
        frame=frame,
        removed=no_removed_rows(),
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(checks, manifest, score),
        row_level_issues=row_issues,
    )


def _score(checks: list[dict[str, Any]], manifest: dict[str, Any], params: CleanseWritebackParams) -> dict[str, Any]:
    passed = sum(check["passed"] for check in checks)
    pipeline = manifest["transformations"]
    successful = sum(entry["status"] == "success" for entry in pipeline)
    auditability = (
        (40.0 if params.generate_comprehensive_manifest else 0.0)
        + (40.0 if pipeline else 0.0)
        + (20.0 if checks else 0.0)
    )
    return effectiveness(
        {
            "integrity": 100.0 * passed / len(checks) if checks else 100.0,
            "completeness": 100.0 * successful / len(pipeline) if pipeline else 100.0,
            "auditability": auditability,
        },
        {
            "integrity": params.integrity_weight,
            "completeness": params.completeness_weight,
            "auditability": params.auditability_weight,
        },
        params,
    )


def _findings(checks: list[dict[str, Any]], steps: list[dict[str, Any]], ready: bool) -> Findings:
    findings = Findings(AGENT_ID)
    for check in checks:
        if check["passed"]:
            continue
        severity: Severity = check["severity"]
        findings.alert(
            "data_integrity",
            severity,
            f"Integrity check '{check['check']}' failed: {check['message']}",
            "Fix the cause in the step named in the details and run the chain again",
            kind=check["check"],
        )
        findings.issue(check["check"], severity, check["message"], field_name=None, details=check["details"])
        findings.recommend(
            f"Address {check['check']}: {check['message']}", severity, field_name=None, kind=check["check"]
        )
    failed_steps = [str(step.get("agent_id")) for step in steps if step.get("status") != "success"]
    if failed_steps:
        findings.alert(
            "pipeline",
            "high",
            f"{len(failed_steps)} step(s) failed and changed nothing: {', '.join(failed_steps)}",
            "Fix the failing agents and run the chain again",
            kind="failed_steps",
            affected=0,
        )
        findings.recommend(
            f"Fix the failed steps ({', '.join(failed_steps)})", "high", field_name=None, kind="failed_steps"
        )
    if ready:
        findings.recommend(
            "The data passed every integrity check; it can go on to Master My Data",
            "low",
            field_name=None,
            kind="proceed",
        )
    return findings


def _cards(checks: list[dict[str, Any]], manifest: dict[str, Any], score: dict[str, Any]) -> list[SummaryCard]:
    passed = sum(check["passed"] for check in checks)
    ready = passed == len(checks)
    return [
        SummaryCard(
            "exec_cleanse_writeback",
            "Cleanse Writeback",
            f"{passed}/{len(checks)} checks passed",
            "excellent" if ready else "critical",
            f"Data ready: {'yes' if ready else 'no'}; {len(manifest['pipeline'])} agents and "
            f"{manifest['total_transformations']:,} transformations in the manifest",
        ),
        SummaryCard(
            "exec_writeback_effectiveness",
            "Writeback Score",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
