"""The ``cleanse-previewer`` agent: what each cleaning rule would do, without doing it.

Each rule of ``preview_rules`` is simulated on the agent's input (never on another rule's output, as in
Agensium) as one lazy query, and the before/after profiles are compared: rows, and per column nulls,
dtype and, for numeric columns, mean, median, std, min, max, skewness and kurtosis (bias-corrected,
as ``scipy.stats.skew/kurtosis(bias=False)``; std with ddof 1). The data passed on is the input, unchanged.

Impact of a rule = the largest of: % of rows removed; per column the change in null percentage (points),
the relative change of the mean and of the std (relative to |before|; a mean of 0 is scaled by the std);
100 when columns are dropped. ``high`` at or above ``impact_threshold_high``, ``medium`` at or above
``impact_threshold_medium``, else ``low``. A rule is risky when it would remove more than 20 % of the
rows, drop columns, or fail to convert more than 20 % of a column's values; ``safe_to_execute`` is
false when any rule is risky. A mean shift is "significant" when it exceeds the normal quantile of
``confidence_level`` times the standard error of the difference (a heuristic: the samples overlap).

Without rules, a default set derived from the data is previewed and ``data.rules_source`` says so: drop
exact duplicate rows, impute nulls with the median (numeric columns) and with the mode (other columns).
Unknown columns in a rule are an InvalidParametersError; a rule that cannot apply to a column's type
(e.g. a mean of text) is reported as a failed simulation, the other rules still run.

A primary too large for memory (``inputs.scan``) gets the same envelope and row-level issues: each rule simulated
as in memory on one column at a time (read on the streaming engine into one chunk, so that its statistics are the
in-memory run's to the last bit), row masks, counts, repeated rows and text modes as streaming queries over the
scan. The data passes on unchanged: ``AgentResult.scan`` is None, as for an agent that changed nothing.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import polars as pl

from agents.clean.common import (
    QUARTILES_ARTIFACT,
    Quartiles,
    clean_result,
    effectiveness,
    no_removed_rows,
    quantile_pairs,
    repeat_candidates,
)
from agents.clean.streamed_queries import numbered, scanned_rows, streamed_row
from agents.columns import (
    is_text,
    require_columns,
    with_row_index,
)
from agents.envelope import (
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
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
)
from agents.formatting import (
    pct,
    plain,
    shown,
)
from agents.params.cleanse_previewer import CleansePreviewerParams, PreviewRule
from agents.values import (
    distinct_counts,
    is_missing,
    parse_boolean,
    parse_integer,
    parse_number,
    plan_dates,
)

AGENT_ID = "cleanse-previewer"
AGENT_NAME = "Cleanse Previewer"
RISKY_ROW_LOSS_PERCENT = 20.0
RISKY_CONVERSION_FAILURE_PERCENT = 20.0
LARGE_MEAN_SHIFT_PERCENT = 50.0
MAX_CORRELATION_COLUMNS = 20
CORRELATION_CHANGE_REPORTED = 0.1
ROW_REMOVING = ("drop_nulls", "remove_outliers", "drop_duplicates")


class RuleError(Exception):
    """The rule cannot apply to this data (reported, not raised)."""


@dataclass
class Simulation:
    frame: pl.LazyFrame
    removed: pl.Expr | None = None  # over the input: rows the rule removes
    failures: dict[str, pl.Expr] = field(default_factory=dict)  # column -> values a conversion empties
    touched: list[str] = field(default_factory=list)  # columns whose values the rule rewrites
    dropped: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    quartiles: dict[str, Quartiles] = field(default_factory=dict)  # column -> its quartiles, for later agents


@dataclass
class Baseline:
    """The input every rule is simulated on, with what the simulations are compared with: its profile and
    the correlations of its first ``MAX_CORRELATION_COLUMNS`` numeric columns."""

    frame: pl.DataFrame
    columns: list[str]
    profile: dict[str, Any]
    numeric_columns: list[str]
    correlations: dict[tuple[str, str], float | None]
    quartiles: dict[str, Quartiles] = field(default_factory=dict)  # what the simulations found, for later agents


def run(inputs: AgentInputs, params: CleansePreviewerParams, progress: Progress) -> AgentResult:
    if inputs.scan is not None:
        return _run_streamed(inputs, inputs.scan, params, progress)
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    # One chunk per numeric column: Polars' mean, std and skew depend on where chunks end (how many threads parsed
    # the file), and a streamed run reads each column whole; the statistics then agree to the last digit.
    numeric = [name for name, dtype in frame.schema.items() if _is_numeric(dtype)]
    frame = frame.with_columns(frame[name].rechunk() for name in numeric) if numeric else frame
    rules, source = _rules(frame, params)
    progress(0.0, f"Previewing {len(rules)} rules on {frame.height:,} rows")
    baseline = _baseline(frame, params)

    results: list[dict[str, Any]] = []
    issue_parts: list[pl.LazyFrame] = []
    for index, rule in enumerate(rules):
        rule_id = rule.rule_id or f"rule_{index + 1}"
        progress(0.05 + 0.85 * index / max(len(rules), 1), f"Simulating {rule_id} ({rule.type})")
        result, parts = _preview(baseline, rule_id, rule, params)
        results.append(result)
        issue_parts += parts

    done = _result(started, params, progress, baseline, (rules, source), results, inputs.primary, issue_parts)
    if baseline.quartiles:  # the outlier-remover's IQR bounds of a column it gets unchanged (compute_bounds)
        done.artifacts[QUARTILES_ARTIFACT] = baseline.quartiles
    return done


def _result(
    started: float,
    params: CleansePreviewerParams,
    progress: Progress,
    baseline: Baseline,
    rules: tuple[list[PreviewRule], str],
    results: list[dict[str, Any]],
    frame: pl.DataFrame | None,
    issue_parts: list[pl.LazyFrame] | pl.DataFrame,
) -> AgentResult:
    """The agent's result from the rules' (and where they come from) simulated ``results``: ``frame`` the data
    passed on, ``issue_parts`` the row-level issues (as parts to collect, or collected)."""
    progress(0.92, "Assessing impact")
    overall = _overall(results)
    score = _score(results, overall, params)
    data = _data(baseline, rules[1], results, overall, score, params)
    alerts, issues, recommendations = _findings(results, overall, score)
    cards = [
        SummaryCard(
            "cleanse_preview",
            "Cleanse preview",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"{len(rules[0])} rules previewed ({overall['high_impact_rules']} high impact); "
            f"safety: {data['execution_safety']}",
        )
    ]
    progress(1.0, "Preview done")
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(baseline.profile["rows"], rules[0], results, overall),
        data=data,
        frame=frame,
        removed=no_removed_rows(),
        alerts=alerts,
        issues=issues,
        recommendations=recommendations,
        cards=cards,
        row_level_issues=issue_parts if isinstance(issue_parts, pl.DataFrame) else collect_row_issues(issue_parts),
    )


def _rules(
    frame: pl.DataFrame, params: CleansePreviewerParams, nulls: dict[str, int] | None = None
) -> tuple[list[PreviewRule], str]:
    """The rules to preview (the parameter's, or the default set) and where they come from; every column a
    rule names must be a data column. ``nulls``: the null counts of the data columns when ``frame`` holds
    only their schema (a streamed run)."""
    if params.preview_rules:
        rules, source = params.preview_rules, "parameters"
    else:
        rules, source = _default_rules(frame, nulls), "default"
    for index, rule in enumerate(rules):
        require_columns(frame, rule.target_columns, agent_id=AGENT_ID, field=f"preview_rules.{index}.target_columns")
    return rules, source


def _baseline(frame: pl.DataFrame, params: CleansePreviewerParams) -> Baseline:
    columns = data_columns(frame)
    numeric_columns = [name for name in columns if _is_numeric(frame[name].dtype)][:MAX_CORRELATION_COLUMNS]
    correlated = numeric_columns if params.analyze_correlations else []
    profile = _profile(frame.lazy(), columns, params, correlated=correlated)
    correlations = profile.pop("correlations")
    return Baseline(frame, columns, profile, numeric_columns, correlations)


def _preview(
    baseline: Baseline, rule_id: str, rule: PreviewRule, params: CleansePreviewerParams
) -> tuple[dict[str, Any], list[pl.LazyFrame]]:
    """One rule simulated on the input and compared with it: its result, and the row-level issues of the
    rows it would remove or fail to convert (a rule that cannot apply is a failed result)."""
    frame, before = baseline.frame, baseline.profile
    try:
        simulation = _simulate(frame, rule)
        baseline.quartiles.update(simulation.quartiles)
        if simulation.removed is not None and rule.type != "drop_duplicates":
            simulation = _with_mask(frame, simulation)
        kept = [name for name in baseline.columns if name not in simulation.dropped]
        # A rule that removes no row and drops no column leaves the data as it was: its profile is the input's.
        unchanged = (
            simulation.removed is not None and not simulation.dropped and not _removes_any(frame, rule, simulation)
        )
        if simulation.removed is not None and not unchanged and rule.type == "drop_duplicates":
            simulation = _with_mask(frame, simulation)  # only once a repeat is known: no mask at all otherwise
        if unchanged:
            after = before
        else:
            # A rule that keeps every row leaves the columns it does not rewrite as they were.
            same = [] if simulation.removed is not None else [name for name in kept if name not in simulation.touched]
            source = (frame.lazy(), simulation.removed) if simulation.removed is not None else None
            correlated: list[str] = []
            if params.analyze_correlations:
                schema = simulation.frame.collect_schema()
                numeric = [name for name in baseline.numeric_columns if name not in simulation.dropped]
                correlated = [name for name in numeric if _is_numeric(schema[name])]
            after = _profile(
                simulation.frame, kept, params, known=before, unchanged=same, source=source, correlated=correlated
            )
    except RuleError as error:
        return _failed(rule_id, rule, str(error)), []
    counts = _counts(frame, simulation)
    if simulation.removed is not None:  # the masks are never null: the filter drops exactly their rows
        counts["__removed__"] = before["rows"] - after["rows"]
    result = _compare(rule_id, rule, simulation, before, after, counts, params)
    if params.analyze_correlations:
        after_pairs = baseline.correlations if unchanged else after["correlations"]
        result["correlation_changes"] = _correlation_changes(baseline.correlations, after_pairs)
    return result, _issue_parts(frame, rule_id, rule, simulation, counts)


def _score(results: list[dict[str, Any]], overall: dict[str, Any], params: CleansePreviewerParams) -> dict[str, Any]:
    successful = sum(result["status"] == "success" for result in results)
    return effectiveness(
        {
            "accuracy": 100.0 * successful / len(results) if results else 100.0,
            "safety": max(
                0.0,
                100.0
                - 15.0 * overall["high_impact_rules"]
                - 5.0 * overall["medium_impact_rules"]
                - (0.0 if overall["safe_to_execute"] else 20.0),
            ),
            "completeness": 100.0 if successful else 0.0,
        },
        {
            "accuracy": params.accuracy_weight,
            "safety": params.safety_weight,
            "completeness": params.completeness_weight,
        },
        params,
    )


def _summary_metrics(
    rows: int, rules: list[PreviewRule], results: list[dict[str, Any]], overall: dict[str, Any]
) -> dict[str, Any]:
    successful = sum(result["status"] == "success" for result in results)
    return {
        "total_rows_analyzed": rows,
        "total_rules_previewed": len(rules),
        "high_impact_rules": overall["high_impact_rules"],
        "medium_impact_rules": overall["medium_impact_rules"],
        "low_impact_rules": overall["low_impact_rules"],
        "safe_to_execute": overall["safe_to_execute"],
        "total_warnings": len(overall["warnings"]),
        "failed_simulations": len(results) - successful,
    }


def _data(
    baseline: Baseline,
    source: str,
    results: list[dict[str, Any]],
    overall: dict[str, Any],
    score: dict[str, Any],
    params: CleansePreviewerParams,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "preview_score": score,
        "quality_status": score["status"],
        "rules_source": source,
        "original_profile": {
            "row_count": baseline.profile["rows"],
            "column_count": len(baseline.columns),
            "columns": baseline.profile["columns"],
        },
        "simulated_results": results,
        "overall_impact": overall,
        "statistical_confidence": round(params.confidence_level * 100, 2),
        "execution_safety": "SAFE" if overall["safe_to_execute"] else "CAUTION",
        "conventions": {
            "impact": "max of % rows removed, null percentage points and relative mean and std change; "
            "100 if columns drop",
            "risky": f"> {RISKY_ROW_LOSS_PERCENT:g} % rows removed, columns dropped, or > "
            f"{RISKY_CONVERSION_FAILURE_PERCENT:g} % of a column's values failing to convert",
            "std_ddof": 1,
            "skew_kurtosis": "bias-corrected sample estimates; kurtosis is excess (Fisher)",
            "simulation": "each rule on the unchanged input; the data passed on is not changed",
            "row_index": "1-based data row of the input file",
        },
    }
    if source == "default":
        data["note"] = (
            "No preview_rules were given: previewed a default set derived from the data (drop exact duplicate "
            "rows; impute nulls with the median in numeric columns and the mode in other columns)."
        )
    return data


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


def _default_rules(frame: pl.DataFrame, nulls: dict[str, int] | None = None) -> list[PreviewRule]:
    """What the chain's agents propose instead of doing by default (PRODUCT.md): drop exact duplicates (done),
    impute (null-handler's proposal) and remove outliers (outlier-remover's proposal). ``nulls``: the columns'
    null counts, when not counted on ``frame``."""
    columns = data_columns(frame)
    if nulls is None:
        nulls = frame.select(pl.col(columns).null_count()).row(0, named=True) if columns else {}
    with_nulls = [name for name in columns if nulls[name]]
    numeric = [name for name in with_nulls if _is_numeric(frame[name].dtype)]
    other = [name for name in with_nulls if name not in numeric]
    if not columns:
        return []
    rules = [
        PreviewRule(type="drop_duplicates", rule_id="default_drop_duplicates", description="Drop exact duplicate rows")
    ]
    if numeric:
        rules.append(
            PreviewRule(
                type="impute_nulls",
                target_columns=numeric,
                strategy="median",
                rule_id="default_impute_median",
                description="Impute numeric nulls with the median",
            )
        )
    if other:
        rules.append(
            PreviewRule(
                type="impute_nulls",
                target_columns=other,
                strategy="mode",
                rule_id="default_impute_mode",
                description="Impute other nulls with the most frequent value",
            )
        )
    measured = [name for name in columns if _is_numeric(frame[name].dtype)]
    if measured:  # what outlier-remover's proposal (removal_strategy "remove") would take away
        rules.append(
            PreviewRule(
                type="remove_outliers",
                target_columns=measured,
                method="iqr",
                rule_id="default_remove_outliers",
                description="Remove rows with an IQR outlier (outlier-remover with removal_strategy 'remove')",
            )
        )
    return rules


# ---------------------------------------------------------------------------------------------------------
# simulation


def _simulate(frame: pl.DataFrame, rule: PreviewRule) -> Simulation:
    columns = data_columns(frame)
    schema = frame.schema
    lazy = frame.lazy()
    if rule.type in ("drop_nulls", "drop_duplicates") and not (rule.target_columns or columns):
        raise RuleError(f"{rule.type}: the data has no columns")
    if rule.type == "drop_nulls":
        targets = rule.target_columns or columns
        removed = pl.any_horizontal([pl.col(name).is_null() for name in targets])
        return Simulation(lazy.filter(~removed), removed=removed, log=[f"drop rows with a null in {_names(targets)}"])
    if rule.type == "drop_duplicates":
        targets = rule.target_columns or columns
        removed = ~pl.struct(targets).is_first_distinct()
        return Simulation(
            lazy.filter(~removed), removed=removed, log=[f"drop later repeats of {_names(targets)} (keep first)"]
        )
    if rule.type == "drop_columns":
        return Simulation(
            lazy.drop(rule.target_columns),
            dropped=list(rule.target_columns),
            log=[f"drop {_names(rule.target_columns)}"],
        )
    if rule.type == "remove_outliers":
        return _simulate_outliers(frame, rule)
    if rule.type == "impute_nulls":
        return _simulate_imputation(frame, rule)
    replacements: dict[str, pl.Expr] = {}
    failures: dict[str, pl.Expr] = {}
    for name in rule.target_columns:
        converted = _conversion(frame, name, rule.target_type)
        replacements[name] = converted
        failures[name] = ~is_missing(pl.col(name), schema[name]) & converted.is_null()
    return Simulation(
        lazy.with_columns(**replacements),
        failures=failures,
        touched=list(rule.target_columns),
        log=[f"convert {_names(rule.target_columns)} to {rule.target_type}"],
    )


def _with_mask(frame: pl.DataFrame, simulation: Simulation) -> Simulation:
    """A row-removing ``simulation`` with its mask over ``frame`` computed once, as a literal of its values: the
    count, the profile's filter, the nulls counted on the input and the row-level issues then read it instead of
    evaluating the rule again each (an outlier test of every numeric column, a struct's first occurrences). The
    same rows either way: the simulated frame is still ``frame`` where the mask is false."""
    assert simulation.removed is not None
    removed = pl.lit(frame.select(simulation.removed.alias(REMOVED_MASK)).to_series())
    return dataclasses.replace(simulation, frame=frame.lazy().filter(~removed), removed=removed)


REMOVED_MASK = "__removed__"


def _removes_any(frame: pl.DataFrame, rule: PreviewRule, simulation: Simulation) -> bool:
    """Whether a row-removing rule removes a row: its mask counted; for exact duplicates only among the rows that
    may repeat (``agents.clean.common.repeat_candidates``: a later repeat and its first are both among them)."""
    assert simulation.removed is not None
    if rule.type == "drop_duplicates":
        candidates = repeat_candidates(frame, rule.target_columns or data_columns(frame))
        if candidates is None:
            return False
        frame = frame.filter(candidates)
    return bool(frame.select(simulation.removed.sum()).item())


def _names(columns: list[str]) -> str:
    shown_names = ", ".join(f"'{name}'" for name in columns[:8])
    return shown_names + (f" and {len(columns) - 8} more" if len(columns) > 8 else "")


def _simulate_outliers(frame: pl.DataFrame, rule: PreviewRule) -> Simulation:
    schema = frame.schema
    numeric = [name for name in data_columns(frame) if _is_numeric(schema[name])]
    targets = rule.target_columns or numeric
    wrong = [name for name in targets if name not in numeric]
    if wrong:
        raise RuleError(f"remove_outliers needs numeric columns; '{wrong[0]}' is {schema[wrong[0]]}")
    if not targets:
        raise RuleError("remove_outliers: the data has no numeric column")
    zscore = rule.method in ("zscore", "z_score")
    factor = rule.threshold if rule.threshold is not None else rule.z_threshold if zscore else rule.iqr_multiplier
    values = [pl.col(name).cast(pl.Float64) for name in targets]
    values = [x.filter(x.is_not_nan()) for x in values]
    # Quantiles are order statistics, the same whatever the chunks: the targets in one chunk each are
    # several times faster to rank than a frame read in many.
    work = frame.select(targets).rechunk()
    quartiles: dict[str, Quartiles] = {}
    if zscore:
        stats_exprs = [
            expr
            for index, x in enumerate(values)
            for expr in (x.mean().alias(f"{index}_a"), x.std(ddof=1).alias(f"{index}_b"))
        ]
        stats = work.select(stats_exprs).row(0, named=True)
    else:  # both quartiles of a column from one ordering of its values (the same numbers as two quantiles)
        pairs, _ = quantile_pairs(work, values, 0.25, 0.75)
        stats = {
            f"{index}_{key}": value for index, pair in enumerate(pairs) for key, value in zip("ab", pair, strict=True)
        }
        quartiles = {name: Quartiles(work[name], *pair) for name, pair in zip(targets, pairs, strict=True)}
    bounds: dict[str, dict[str, Any]] = {}
    outliers: list[pl.Expr] = []
    for index, name in enumerate(targets):
        a, b = stats[f"{index}_a"], stats[f"{index}_b"]
        if a is None or b is None:
            continue
        low, high = (a - factor * b, a + factor * b) if zscore else (a - factor * (b - a), b + factor * (b - a))
        bounds[name] = {"lower": plain(low), "upper": plain(high)}
        x = pl.col(name).cast(pl.Float64)
        outliers.append(((x < low) | (x > high)).fill_null(False) & x.is_not_nan())
    removed = pl.any_horizontal(outliers) if outliers else pl.lit(False)
    method = f"|z| > {factor:g} (ddof 1)" if zscore else f"outside [Q1 - {factor:g} IQR, Q3 + {factor:g} IQR]"
    return Simulation(
        frame.lazy().filter(~removed),
        removed=removed,
        log=[f"drop rows where {_names(targets)} is {method}"],
        details={"bounds": bounds},
        quartiles=quartiles,
    )


def _simulate_imputation(frame: pl.DataFrame, rule: PreviewRule) -> Simulation:
    schema = frame.schema
    if rule.target_columns:
        targets = rule.target_columns
    else:
        nulls = frame.select(pl.col(data_columns(frame)).null_count()).row(0, named=True)
        targets = [name for name, count in nulls.items() if count]
    replacements: dict[str, pl.Expr] = {}
    for name in targets:
        x, dtype = pl.col(name), schema[name]
        if rule.strategy in ("mean", "median"):
            if not _is_numeric(dtype):
                raise RuleError(f"impute_nulls with {rule.strategy} needs a numeric column; '{name}' is {dtype}")
            fill = x.mean() if rule.strategy == "mean" else x.median()
        elif rule.strategy == "mode":
            # the smallest of the most frequent values; for text by hash (_text_mode): mode() then a sort of
            # a million mostly distinct e-mail addresses took 80 ms and 240 MB
            by_hash = dtype == pl.String and frame.height >= TEXT_MODE_ROWS
            fill = _text_mode(frame, name) if by_hash else x.drop_nulls().mode().sort().first()
        else:
            try:
                pl.Series([rule.fill_value]).cast(dtype, strict=True)
            except (pl.exceptions.PolarsError, TypeError, ValueError) as error:
                raise RuleError(f"fill_value {rule.fill_value!r} does not fit '{name}' ({dtype})") from error
            fill = pl.lit(rule.fill_value).cast(dtype)
        replacements[name] = x.fill_null(fill)
    log = f"fill nulls of {_names(list(targets))} with the {rule.strategy}" if targets else "no column has nulls"
    return Simulation(frame.lazy().with_columns(**replacements), touched=list(targets), log=[log])


TEXT_MODE_ROWS = 100_000  # from this height a text mode is found by hash (a few queries: not worth it below)


def _text_mode(frame: pl.DataFrame, name: str) -> pl.Expr:
    """The smallest of the most frequent non-null values of a String column, as a literal (null when it
    has no value): ``drop_nulls().mode().sort().first()``, without grouping every text value.

    The values are counted by hash first: a hash's count is at least that of each value with it, so the
    most frequent values are among those of the most frequent hashes; when one of those values is as
    frequent as its hash, they are the modes (every hash distinct: every value is a mode)."""
    text = pl.col(name)
    hashes = frame.lazy().select(text.drop_nulls().hash(seed=0).alias("__hash__"))
    counted = hashes.group_by("__hash__").agg(pl.len().alias("__count__")).collect()
    if not counted.height:
        return pl.lit(None, dtype=pl.String)
    top = counted["__count__"].max()
    if top == 1:
        return pl.lit(frame.select(text.min()).item(), dtype=pl.String)
    likely = counted.filter(pl.col("__count__") == top)["__hash__"].implode()
    candidates = frame.lazy().select(name).filter(text.is_not_null() & text.hash(seed=0).is_in(likely))
    counts = candidates.group_by(name).agg(pl.len().alias("__count__")).collect()
    if counts["__count__"].max() != top:  # a hash shared by different values: count them all
        counts = frame.lazy().select(name).drop_nulls().group_by(name).agg(pl.len().alias("__count__")).collect()
    modes = counts.filter(pl.col("__count__") == pl.col("__count__").max())
    return pl.lit(modes.select(text.min()).item(), dtype=pl.String)


def _conversion(frame: pl.DataFrame, name: str, target: str) -> pl.Expr:
    dtype = frame[name].dtype
    x = pl.col(name)
    text = is_text(dtype)
    if target == "string":
        return x.cast(pl.String)
    if target in ("numeric", "float"):
        if text:
            return parse_number(x)
        if _is_numeric(dtype) or dtype == pl.Boolean:
            return x.cast(pl.Float64)
    elif target == "integer":
        if text:
            return parse_integer(x)
        if dtype.is_integer() or dtype == pl.Boolean:
            return x.cast(pl.Int64)
        if dtype.is_float():
            return pl.when(x.is_finite() & (x == x.round(0))).then(x).cast(pl.Int64, strict=False)
    elif target == "boolean":
        if text:
            return parse_boolean(x)
        if dtype == pl.Boolean:
            return x
        if dtype.is_integer():
            return pl.when(x == 1).then(True).when(x == 0).then(False)
    elif target in ("date", "datetime"):
        if text:
            plan = plan_dates(distinct_counts(frame, name), name)
            parsed = plan.expression(x)
            return parsed.cast(pl.Date) if target == "date" else parsed.cast(pl.Datetime("us"))
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            return x.cast(pl.Date) if target == "date" else x.cast(pl.Datetime("us"))
    raise RuleError(f"convert_types cannot convert '{name}' ({dtype}) to {target}")


# ---------------------------------------------------------------------------------------------------------
# profiles and comparison


def _profile(
    frame: pl.LazyFrame,
    columns: list[str],
    params: CleansePreviewerParams,
    known: dict[str, Any] | None = None,
    unchanged: list[str] | None = None,
    source: tuple[pl.LazyFrame, pl.Expr] | None = None,
    correlated: list[str] | None = None,
) -> dict[str, Any]:
    """Rows and per column nulls and statistics; the ``unchanged`` columns' entries are taken from the
    ``known`` profile of the same rows instead of being computed again. ``source``: when ``frame`` is a
    frame's rows where a mask (never null) is false, that frame and mask: the nulls of the columns without
    statistics are then counted on it, so that only the columns with statistics are filtered.
    ``correlated``: numeric columns whose pairwise correlations (``_correlation_exprs``) go in the same
    query, as ``correlations``."""
    schema = frame.collect_schema()
    masked: list[pl.Expr] = []
    reused = set(unchanged or []) if known is not None else set()
    statistics = ["count"]
    if params.compare_statistics:
        statistics += ["mean", "median", "std", "min", "max"]
    if params.calculate_distributions:
        statistics += ["skewness", "kurtosis"]
    exprs: list[pl.Expr] = [pl.len().alias("rows")]
    for index, name in enumerate(columns):
        if name in reused:
            continue
        if source is not None and not _is_numeric(schema[name]):
            masked.append((pl.col(name).is_null() & ~source[1]).sum().alias(f"{index}_nulls"))
        else:
            exprs.append(pl.col(name).null_count().alias(f"{index}_nulls"))
        if _is_numeric(schema[name]):
            values = pl.col(name).cast(pl.Float64)
            values = pl.when(values.is_finite()).then(values)  # not filter(): see agents.clean.nulls._finite
            computed = {
                "count": values.count(),
                "mean": values.mean(),
                "median": values.median(),
                "std": values.std(ddof=1),
                "min": values.min(),
                "max": values.max(),
                "skewness": values.skew(bias=False),
                "kurtosis": values.kurtosis(fisher=True, bias=False),
            }
            exprs += [computed[key].alias(f"{index}_{key}") for key in statistics]
    pairs, correlation_exprs = _correlation_exprs(correlated or [])
    exprs += correlation_exprs
    # The in-memory engine: Polars 2.1's default (streaming) plans a select in time quadratic in its
    # expressions, and a wide file has thousands.
    row = frame.select(exprs).collect(engine="in-memory").row(0, named=True)
    if source is not None and masked:
        row |= source[0].select(masked).collect(engine="in-memory").row(0, named=True)
    rows = int(row["rows"])
    profile: dict[str, Any] = {"rows": rows, "columns": {}, "dtypes": {name: schema[name] for name in columns}}
    for index, name in enumerate(columns):
        if name in reused:
            assert known is not None
            profile["columns"][name] = known["columns"][name]
            continue
        nulls = int(row[f"{index}_nulls"])
        entry: dict[str, Any] = {"dtype": str(schema[name]), "null_count": nulls, "null_percentage": pct(nulls, rows)}
        if _is_numeric(schema[name]):
            entry["statistics"] = {key: plain(row[f"{index}_{key}"]) for key in statistics}
        profile["columns"][name] = entry
    if correlated is not None:
        profile["correlations"] = {pair: plain(row[f"__corr_{i}__"]) for i, pair in enumerate(pairs)}
    return profile


def _counts(frame: pl.DataFrame, simulation: Simulation) -> dict[str, int]:
    exprs: list[pl.Expr] = []
    for name, failed in simulation.failures.items():
        exprs.append(failed.fill_null(False).sum().alias(f"failed__{name}"))  # keys: see _compare
    if simulation.touched and not simulation.failures:
        exprs.append(
            pl.any_horizontal([pl.col(name).is_null() for name in simulation.touched]).sum().alias("__filled__")
        )
    if not exprs:
        return {}
    return {key: int(value or 0) for key, value in frame.select(exprs).row(0, named=True).items()}


def _compare(
    rule_id: str,
    rule: PreviewRule,
    simulation: Simulation,
    before: dict[str, Any],
    after: dict[str, Any],
    counts: dict[str, int],
    params: CleansePreviewerParams,
) -> dict[str, Any]:
    rows_before, rows_after = before["rows"], after["rows"]
    row_change_pct = pct(rows_before - rows_after, rows_before)
    changes: dict[str, Any] = {}
    column_impacts = [0.0]
    risk_factors: list[str] = []
    z = NormalDist().inv_cdf(1 - (1 - params.confidence_level) / 2)
    for name, original in before["columns"].items():
        if name in simulation.dropped:
            changes[name] = {"status": "removed"}
            continue
        current = after["columns"][name]
        change = _column_change(original, current, z)
        if name in simulation.failures:
            failed = counts.get(f"failed__{name}", 0)
            non_null = rows_before - original["null_count"]
            change["conversion_failures"] = failed
            change["conversion_failure_percentage"] = pct(failed, non_null)
            if change["conversion_failure_percentage"] > RISKY_CONVERSION_FAILURE_PERCENT:
                risk_factors.append(f"{change['conversion_failure_percentage']:.1f}% of '{name}' would not convert")
        if not _changed(change) and name not in simulation.touched and rule.type not in ROW_REMOVING:
            continue
        changes[name] = change
        column_impacts.append(abs(change["null_percentage_change"]))
        for key in ("mean_change_pct", "std_change_pct"):
            if change.get(key) is not None:
                column_impacts.append(abs(change[key]))
        if change.get("mean_change_pct") is not None and abs(change["mean_change_pct"]) > LARGE_MEAN_SHIFT_PERCENT:
            risk_factors.append(f"mean of '{name}' shifts by {change['mean_change_pct']:.1f}%")
    impact_score = max(row_change_pct, max(column_impacts), 100.0 if simulation.dropped else 0.0)
    level = (
        "high"
        if impact_score >= params.impact_threshold_high
        else "medium"
        if impact_score >= params.impact_threshold_medium
        else "low"
    )
    risky = bool(simulation.dropped) or row_change_pct > RISKY_ROW_LOSS_PERCENT
    risky = risky or any("would not convert" in factor for factor in risk_factors)
    if row_change_pct > RISKY_ROW_LOSS_PERCENT:
        risk_factors.insert(0, f"{row_change_pct:.1f}% of rows would be removed")
    if simulation.dropped:
        risk_factors.insert(0, f"{len(simulation.dropped)} column(s) would be removed")
    if rule.type in ROW_REMOVING:
        rows_affected = counts.get("__removed__", 0)
    elif rule.type == "drop_columns":
        rows_affected = rows_before
    elif simulation.failures:
        rows_affected = sum(counts.get(f"failed__{name}", 0) for name in simulation.failures)
    else:
        rows_affected = counts.get("__filled__", 0)
    return {
        "rule_id": rule_id,
        "rule_type": rule.type,
        "rule_description": rule.description or rule.type.replace("_", " "),
        "target_columns": list(rule.target_columns),
        "status": "success",
        "simulation_log": simulation.log,
        "rows_affected": rows_affected,
        "original_metrics": {"total_rows": rows_before, "total_columns": len(before["columns"])},
        "preview_metrics": {"total_rows": rows_after, "total_columns": len(after["columns"])},
        "changes": {
            "row_change": rows_after - rows_before,
            "row_change_percentage": pct(rows_after - rows_before, rows_before),
            "column_change": len(after["columns"]) - len(before["columns"]),
            "column_level_changes": changes,
        },
        "details": simulation.details,
        "impact_score": round(impact_score, 4),
        "impact_level": level,
        "risk_assessment": {"is_risky": risky, "risk_level": "high" if risky else "low", "risk_factors": risk_factors},
    }


def _column_change(original: dict[str, Any], current: dict[str, Any], z: float) -> dict[str, Any]:
    change: dict[str, Any] = {
        "dtype_before": original["dtype"],
        "dtype_after": current["dtype"],
        "null_count_before": original["null_count"],
        "null_count_after": current["null_count"],
        "null_count_change": current["null_count"] - original["null_count"],
        "null_percentage_change": round(current["null_percentage"] - original["null_percentage"], 4),
    }
    first, second = original.get("statistics"), current.get("statistics")
    if not first or not second:
        return change
    for key in ("mean", "median", "std", "min", "max", "skewness", "kurtosis"):
        if key in first:
            change[f"{key}_before"], change[f"{key}_after"] = first[key], second.get(key)
    mean_b, mean_a, std_b, std_a = first.get("mean"), second.get("mean"), first.get("std"), second.get("std")
    if mean_b is not None and mean_a is not None:
        change["mean_change"] = plain(mean_a - mean_b)
        scale = abs(mean_b) or (std_b or 0.0)
        change["mean_change_pct"] = plain(100.0 * (mean_a - mean_b) / scale) if scale else 0.0
        n_b, n_a = first.get("count") or 0, second.get("count") or 0
        if std_b is not None and std_a is not None and n_b > 1 and n_a > 1:
            error = math.sqrt(std_b**2 / n_b + std_a**2 / n_a)
            change["mean_shift_significant"] = abs(mean_a - mean_b) > z * error if error else mean_a != mean_b
    if std_b is not None and std_a is not None:
        change["std_change_pct"] = plain(100.0 * (std_a - std_b) / std_b) if std_b else (0.0 if not std_a else 100.0)
    return change


def _changed(change: dict[str, Any]) -> bool:
    if change["null_count_change"] or change["dtype_before"] != change["dtype_after"]:
        return True
    return any(change.get(f"{key}_before") != change.get(f"{key}_after") for key in ("mean", "std", "median"))


def _correlation_exprs(columns: list[str]) -> tuple[list[tuple[str, str]], list[pl.Expr]]:
    """Every pair of ``columns`` and its Pearson correlation (named ``__corr_<position>__``)."""
    pairs = [(a, b) for index, a in enumerate(columns) for b in columns[index + 1 :]]
    exprs = [
        pl.corr(pl.col(a).cast(pl.Float64), pl.col(b).cast(pl.Float64)).alias(f"__corr_{i}__")
        for i, (a, b) in enumerate(pairs)
    ]
    return pairs, exprs


def _correlation_changes(
    before: dict[tuple[str, str], float | None], after: dict[tuple[str, str], float | None]
) -> dict[str, Any]:
    changed = []
    largest = 0.0
    for pair, first in before.items():
        second = after.get(pair)
        if first is None or second is None:
            continue
        delta = second - first
        largest = max(largest, abs(delta))
        if abs(delta) >= CORRELATION_CHANGE_REPORTED:
            changed.append({"columns": list(pair), "before": first, "after": second, "change": plain(delta)})
    return {"max_abs_change": plain(largest), "pairs_changed": changed}


def _failed(rule_id: str, rule: PreviewRule, message: str) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "rule_type": rule.type,
        "rule_description": rule.description or rule.type.replace("_", " "),
        "target_columns": list(rule.target_columns),
        "status": "error",
        "error": message,
    }


def _overall(results: list[dict[str, Any]]) -> dict[str, Any]:
    levels = [result.get("impact_level") for result in results]
    warnings: list[str] = []
    for result in results:
        if result["status"] == "error":
            warnings.append(f"Rule '{result['rule_id']}' could not be simulated: {result['error']}")
        elif result["risk_assessment"]["is_risky"]:
            factors = "; ".join(result["risk_assessment"]["risk_factors"])
            warnings.append(f"Rule '{result['rule_id']}' is risky: {factors}")
    return {
        "total_rules": len(results),
        "high_impact_rules": levels.count("high"),
        "medium_impact_rules": levels.count("medium"),
        "low_impact_rules": levels.count("low"),
        "safe_to_execute": not any(
            result["status"] == "success" and result["risk_assessment"]["is_risky"] for result in results
        ),
        "warnings": warnings,
    }


def _issue_parts(
    frame: pl.DataFrame | pl.LazyFrame, rule_id: str, rule: PreviewRule, simulation: Simulation, counts: dict[str, int]
) -> list[pl.LazyFrame]:
    parts: list[pl.LazyFrame] = []
    if simulation.removed is not None and counts.get("__removed__"):
        parts.append(
            issues_where(
                frame,
                simulation.removed,
                column=None,
                issue_type="preview_row_removed",
                severity="info",
                message=f"{rule_id} ({rule.type}) would remove this row",
            )
        )
    for name, failed in simulation.failures.items():
        if counts.get(f"failed__{name}"):
            parts.append(
                issues_where(
                    frame,
                    failed,
                    column=name,
                    issue_type="preview_conversion_failure",
                    severity="warning",
                    message=pl.concat_str(
                        pl.lit("'"),
                        shown(pl.col(name)),
                        pl.lit(f"' would not convert to {rule.target_type} ({rule_id})"),
                    ),
                    value=pl.col(name),
                )
            )
    return parts


def _findings(
    results: list[dict[str, Any]], overall: dict[str, Any], score: dict[str, Any]
) -> tuple[list[Alert], list[Issue], list[Recommendation]]:
    findings = Findings(AGENT_ID)
    if overall["high_impact_rules"]:
        findings.alert(
            "cleaning_impact",
            "high" if overall["safe_to_execute"] else "critical",
            f"{overall['high_impact_rules']} high-impact cleaning rule(s); "
            f"safety: {'SAFE' if overall['safe_to_execute'] else 'CAUTION'}",
            "Review the high-impact rules before running them",
            affected=overall["high_impact_rules"],
        )
    if not overall["safe_to_execute"]:
        findings.alert(
            "execution_safety",
            "critical",
            f"Execution safety: CAUTION - {len(overall['warnings'])} warning(s)",
            "Address the warnings before running the cleaning: risk of significant data loss",
            affected=len(overall["warnings"]),
        )
        findings.recommend(
            "Keep a copy of the original data before running the risky rules", "critical", field_name=None
        )
    failed = [result for result in results if result["status"] == "error"]
    if failed:
        findings.alert(
            "simulation_error",
            "high",
            f"{len(failed)} of {len(results)} rule(s) could not be simulated",
            "Fix the rules that do not fit the column types",
            affected=len(failed),
        )
    for result in results:
        if result["status"] == "error":
            findings.issue(
                "simulation_error",
                "high",
                f"Rule '{result['rule_id']}' could not be simulated: {result['error']}",
                field_name=None,
            )
            continue
        if result["impact_level"] == "high":
            findings.issue(
                "high_impact_operation",
                "high",
                f"Rule '{result['rule_id']}' ({result['rule_type']}) has high impact "
                f"({result['impact_score']:.1f}% change; {result['rows_affected']:,} rows affected)",
                field_name=None,
                details={"rows_affected": result["rows_affected"], "row_change": result["changes"]["row_change"]},
            )
        for factor in result["risk_assessment"]["risk_factors"]:
            findings.issue(
                "risk_detected",
                "high" if result["risk_assessment"]["is_risky"] else "medium",
                f"Rule '{result['rule_id']}': {factor}",
                field_name=None,
            )
    if score["status"] == "excellent" and overall["safe_to_execute"]:
        findings.recommend("The previewed rules have low risk: safe to run", "low", field_name=None)
    return findings.alerts, findings.issues, findings.recommendations


# ---------------------------------------------------------------------------------------------------------
# a primary too large for memory

HASHES_PER_PART = 4_000_000  # row hashes grouped per streaming query when looking for repeated rows


@dataclass
class Scanned:
    """A streamed run's input: the scan (with ``ROW_INDEX_COLUMN``), an empty frame of its schema, its row count
    and a directory for the agent's spills."""

    scan: pl.LazyFrame
    empty: pl.DataFrame
    rows: int
    work_dir: Path


def _run_streamed(
    inputs: AgentInputs, source: pl.LazyFrame, params: CleansePreviewerParams, progress: Progress
) -> AgentResult:
    """``run`` on a primary too large for memory (``inputs.scan``): the same envelope and row-level issues. A rule is
    simulated as in memory, one column at a time: the column read on the streaming engine into one chunk (so that
    its statistics are the in-memory run's to the last bit), row masks, counts and issues as streaming queries over
    the scan. The data is passed on unchanged: ``scan`` is None, as an agent that changed nothing."""
    started = time.perf_counter()
    scan = numbered(source)
    empty = pl.DataFrame(schema=scan.collect_schema())
    rows = scanned_rows(inputs.rows, scan)
    columns = data_columns(empty)
    nulls = None
    if not params.preview_rules and columns:
        row = streamed_row(scan, [pl.col(name).null_count().alias(str(i)) for i, name in enumerate(columns)])
        nulls = {name: int(row[str(i)]) for i, name in enumerate(columns)}
    rules, rules_source = _rules(empty, params, nulls)
    progress(0.0, f"Previewing {len(rules)} rules on {rows:,} rows")
    with tempfile.TemporaryDirectory(dir=inputs.work_dir) as work_dir:
        data = Scanned(scan, empty, rows, Path(work_dir))
        baseline = _streamed_baseline(data, params)
        results: list[dict[str, Any]] = []
        issue_parts: list[pl.DataFrame] = []
        for index, rule in enumerate(rules):
            rule_id = rule.rule_id or f"rule_{index + 1}"
            progress(0.05 + 0.85 * index / max(len(rules), 1), f"Simulating {rule_id} ({rule.type})")
            outcome, parts = _streamed_preview(data, baseline, rule_id, rule, params)
            results.append(outcome)
            issue_parts += parts

    result = _result(
        started, params, progress, baseline, (rules, rules_source), results, None, _concat_issues(issue_parts)
    )
    result.rows = rows
    return result


def _concat_issues(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """``collect_row_issues`` of collected parts (in the parts' order)."""
    if not parts:
        return collect_row_issues([])
    return pl.concat([part.cast(ROW_LEVEL_ISSUE_SCHEMA) for part in parts], how="vertical")  # type: ignore[arg-type]


def _column(query: pl.LazyFrame, *names: str) -> pl.DataFrame:
    """Columns of ``query`` read on the streaming engine into one chunk each."""
    return query.select(names).collect(engine="streaming").rechunk()


def _streamed_baseline(data: Scanned, params: CleansePreviewerParams) -> Baseline:
    columns = data_columns(data.empty)
    numeric_columns = [name for name in columns if _is_numeric(data.empty.schema[name])][:MAX_CORRELATION_COLUMNS]
    correlated = numeric_columns if params.analyze_correlations else []
    profile = _streamed_profile(data.scan, columns, params, data.rows)
    correlations = _streamed_correlations(data.scan, correlated)
    return Baseline(data.empty, columns, profile, numeric_columns, correlations)


def _streamed_profile(
    query: pl.LazyFrame, columns: list[str], params: CleansePreviewerParams, rows: int
) -> dict[str, Any]:
    """``_profile`` of ``query`` (``rows`` rows): the nulls of the columns without statistics in one streaming
    query, each numeric column's statistics by ``_profile`` of that column alone."""
    schema = query.collect_schema()
    other = [name for name in columns if not _is_numeric(schema[name])]
    exprs = [pl.col(name).null_count().alias(str(i)) for i, name in enumerate(other)]
    counted = streamed_row(query, exprs) if exprs else {}
    entries: dict[str, Any] = {}
    for index, name in enumerate(other):
        nulls = int(counted[str(index)])
        entries[name] = {"dtype": str(schema[name]), "null_count": nulls, "null_percentage": pct(nulls, rows)}
    for name in columns:
        if name not in entries:
            entries[name] = _profile(_column(query, name).lazy(), [name], params)["columns"][name]
    return {"rows": rows, "columns": {name: entries[name] for name in columns}, "dtypes": dict(schema)}


def _streamed_correlations(
    query: pl.LazyFrame,
    columns: list[str],
    prepare: Callable[[pl.DataFrame], pl.LazyFrame] | None = None,
) -> dict[tuple[str, str], float | None]:
    """The correlations of every pair of ``columns`` (``_correlation_exprs``), each pair read alone; ``prepare``:
    what is done to the two columns before (a rule's rewriting)."""
    pairs, _ = _correlation_exprs(columns)
    found: dict[tuple[str, str], float | None] = {}
    for pair in pairs:
        part = _column(query, *pair)
        _, exprs = _correlation_exprs(list(pair))
        lazy = prepare(part) if prepare is not None else part.lazy()
        found[pair] = plain(lazy.select(exprs).collect(engine="in-memory").item())
    return found


def _streamed_preview(
    data: Scanned, baseline: Baseline, rule_id: str, rule: PreviewRule, params: CleansePreviewerParams
) -> tuple[dict[str, Any], list[pl.DataFrame]]:
    """``_preview`` of a scan: its result and its collected row-level issues."""
    try:
        full = _resolved(baseline, rule)
        simulation = _simulate(data.empty, full)  # the rule's checks, log and columns, on the schema
        if simulation.removed is not None:
            return _streamed_removal(data, baseline, rule_id, rule, simulation, params)
        return _streamed_rewrite(data, baseline, rule_id, rule, full, simulation, params)
    except RuleError as error:
        return _failed(rule_id, rule, str(error)), []


def _resolved(baseline: Baseline, rule: PreviewRule) -> PreviewRule:
    """The rule with its targets as ``_simulate_imputation`` finds them when it names none: the columns with nulls."""
    if rule.type != "impute_nulls" or rule.target_columns:
        return rule
    columns = baseline.profile["columns"]
    targets = [name for name in baseline.columns if columns[name]["null_count"]]
    return rule.model_copy(update={"target_columns": targets})


def _streamed_removal(
    data: Scanned,
    baseline: Baseline,
    rule_id: str,
    rule: PreviewRule,
    simulation: Simulation,
    params: CleansePreviewerParams,
) -> tuple[dict[str, Any], list[pl.DataFrame]]:
    """A rule that removes rows: its mask over the scan (row-local, or a set of row indexes), then the profile of the
    rows it keeps."""
    before = baseline.profile
    if rule.type == "remove_outliers":
        simulation = _streamed_outliers(data, rule, simulation)
    elif rule.type == "drop_duplicates":
        simulation.removed = _streamed_repeats(data, rule.target_columns or baseline.columns)
    assert simulation.removed is not None
    removed_rows = int(streamed_row(data.scan, [simulation.removed.sum().alias("removed")])["removed"] or 0)
    unchanged = not removed_rows
    if unchanged:
        after = before
        after_pairs = baseline.correlations
    else:
        kept = data.scan.filter(~simulation.removed)
        after = _streamed_profile(kept, baseline.columns, params, data.rows - removed_rows)
        correlated = baseline.numeric_columns if params.analyze_correlations else []
        after_pairs = _streamed_correlations(kept, correlated)
    counts = {"__removed__": before["rows"] - after["rows"]}
    result = _compare(rule_id, rule, simulation, before, after, counts, params)
    if params.analyze_correlations:
        result["correlation_changes"] = _correlation_changes(baseline.correlations, after_pairs)
    parts = _issue_parts(data.scan, rule_id, rule, simulation, counts)
    return result, [part.collect(engine="streaming") for part in parts]


def _streamed_rewrite(
    data: Scanned,
    baseline: Baseline,
    rule_id: str,
    rule: PreviewRule,
    full: PreviewRule,
    simulation: Simulation,
    params: CleansePreviewerParams,
) -> tuple[dict[str, Any], list[pl.DataFrame]]:
    """A rule that keeps every row (drops columns, imputes, converts): each rewritten column simulated alone, the
    other columns' profiles the input's."""
    before = baseline.profile
    kept = [name for name in baseline.columns if name not in simulation.dropped]
    entries = {name: before["columns"][name] for name in kept if name not in simulation.touched}
    counts: dict[str, int] = {}
    issues: list[pl.DataFrame] = []
    for name in simulation.touched:
        if full.type == "impute_nulls" and full.strategy == "mode" and _text_mode_by_hash(data, name):
            fill = _streamed_text_mode(data, name)
            entries[name] = _streamed_profile(
                data.scan.select(pl.col(name).fill_null(fill)), [name], params, data.rows
            )["columns"][name]
            continue
        part = _column(data.scan, ROW_INDEX_COLUMN, name)
        one = _simulate(part, full.model_copy(update={"target_columns": [name]}))
        entries[name] = _profile(one.frame, [name], params)["columns"][name]
        if name in one.failures:
            counts |= _counts(part, one)
            issues += [issue.collect() for issue in _issue_parts(part, rule_id, rule, one, counts)]
    if simulation.touched and not simulation.failures:
        filled = pl.any_horizontal([pl.col(name).is_null() for name in simulation.touched]).sum()
        counts["__filled__"] = int(streamed_row(data.scan, [filled.alias("filled")])["filled"] or 0)
    schema = simulation.frame.collect_schema()
    after: dict[str, Any] = {"rows": data.rows, "columns": {name: entries[name] for name in kept}, "dtypes": schema}
    result = _compare(rule_id, rule, simulation, before, after, counts, params)
    if params.analyze_correlations:
        numeric = [name for name in baseline.numeric_columns if name not in simulation.dropped]
        correlated = [name for name in numeric if _is_numeric(schema[name])]

        def rewritten(pair: pl.DataFrame) -> pl.LazyFrame:
            targets = [name for name in pair.columns if name in simulation.touched]
            if not targets:
                return pair.lazy()
            return _simulate(pair, full.model_copy(update={"target_columns": targets})).frame

        pairs = _streamed_correlations(data.scan, correlated, rewritten)
        result["correlation_changes"] = _correlation_changes(baseline.correlations, pairs)
    return result, issues


def _text_mode_by_hash(data: Scanned, name: str) -> bool:
    """Whether ``_simulate_imputation`` takes the mode of the column by ``_text_mode``."""
    return data.empty.schema[name] == pl.String and data.rows >= TEXT_MODE_ROWS


def _streamed_text_mode(data: Scanned, name: str) -> pl.Expr:
    """``_text_mode`` of a scan's column, without holding the column: the smallest of its most frequent values."""
    modes = _most_frequent(data.scan, name, data.rows, HASHES_PER_PART)
    return pl.lit(modes[name].min() if modes.height else None, dtype=pl.String)


def _streamed_outliers(data: Scanned, rule: PreviewRule, simulation: Simulation) -> Simulation:
    """``_simulate_outliers`` of a scan: each target's bounds from that column alone, the mask over the scan."""
    schema = data.empty.schema
    targets = rule.target_columns or [name for name in data_columns(data.empty) if _is_numeric(schema[name])]
    bounds: dict[str, Any] = {}
    masks: list[pl.Expr] = []
    for name in targets:
        one = _simulate_outliers(_column(data.scan, name), rule.model_copy(update={"target_columns": [name]}))
        if one.details["bounds"] and one.removed is not None:
            bounds |= one.details["bounds"]
            masks.append(one.removed)
    removed = pl.any_horizontal(masks) if masks else pl.lit(False)
    return Simulation(data.scan.filter(~removed), removed=removed, log=simulation.log, details={"bounds": bounds})


def _streamed_repeats(data: Scanned, targets: list[str]) -> pl.Expr:
    """``~pl.struct(targets).is_first_distinct()`` over the scan, as a set of row indexes: the rows' hashes spilled,
    the repeated hashes found by streaming group_bys over parts of them (a group_by holds every distinct hash), and
    only the rows with a repeated hash compared by value, in parts by hash (equal rows fall in the same part)."""
    if data.rows < 2:  # noqa: PLR2004 - one row repeats nothing
        return pl.lit(False)
    schema = data.empty.schema
    keys = [pl.col(name) + 0.0 if schema[name].is_float() else pl.col(name) for name in targets]  # -0.0 as 0.0
    row_hash = pl.struct(keys).hash(seed=0).alias("__hash__")
    spill = data.work_dir / "row-hashes.parquet"
    data.scan.select(ROW_INDEX_COLUMN, row_hash).sink_parquet(spill, engine="streaming")
    hashes = pl.scan_parquet(spill)
    parts = max(1, math.ceil(data.rows / HASHES_PER_PART))
    repeated = pl.concat(
        [
            hashes.filter(pl.col("__hash__") % parts == part)
            .group_by("__hash__")
            .agg(pl.len().alias("__count__"))
            .filter(pl.col("__count__") > 1)
            .select("__hash__")
            .collect(engine="streaming")
            for part in range(parts)
        ]
    )["__hash__"]
    if repeated.is_empty():
        return pl.lit(False)
    candidates = hashes.filter(pl.col("__hash__").is_in(repeated.implode())).select(ROW_INDEX_COLUMN)
    indexes = candidates.collect(engine="streaming")[ROW_INDEX_COLUMN].implode()
    parts = max(1, math.ceil(indexes.list.len().item() / HASHES_PER_PART))
    later: list[pl.Series] = []
    for part in range(parts):
        chosen = pl.col(ROW_INDEX_COLUMN).is_in(indexes)
        if parts > 1:
            chosen = chosen & (row_hash % parts == part)
        # sunk and read back: rows collected from a scan keep alive every page of text they were read from
        spill = data.work_dir / "repeat-candidates.parquet"
        data.scan.filter(chosen).select(ROW_INDEX_COLUMN, *targets).sink_parquet(spill, engine="streaming")
        rows = pl.read_parquet(spill)
        later.append(rows.filter(~pl.struct(targets).is_first_distinct())[ROW_INDEX_COLUMN])
    return pl.col(ROW_INDEX_COLUMN).is_in(pl.concat(later).implode())


def _most_frequent(query: pl.LazyFrame, name: str, rows: int, rows_per_part: int) -> pl.DataFrame:
    """The non-null values of column ``name`` of ``query`` (``rows`` rows) that occur most often, with their count
    (``count``); empty when the column holds no value. Counted on the streaming engine in parts by hash of the
    value, each of about ``rows_per_part`` rows: a streaming group_by holds ~170 bytes per distinct value, too much
    for a column of many millions of distinct values at once."""
    parts = max(1, -(-rows // rows_per_part))
    value = pl.col(name)
    tops: list[pl.DataFrame] = []
    for part in range(parts):
        present = value.is_not_null() if parts == 1 else value.is_not_null() & (value.hash(seed=0) % parts == part)
        counted = (
            query.select(name).filter(present).group_by(name).agg(pl.len().alias("count")).collect(engine="streaming")
        )
        tops.append(counted.filter(pl.col("count") == pl.col("count").max()))
    found = pl.concat(tops, how="vertical")
    return found.filter(pl.col("count") == pl.col("count").max())
