"""The ``test-coverage-agent``: user-declared uniqueness, range and format tests, and rows mostly empty.

Tests (reference/agents.md §1.4; parameters in ``agents.params.test_coverage``):

- **uniqueness** (``unique_columns``): a non-null value that occurs more than once fails, every occurrence
  of it (``is_duplicated``); nulls are not duplicates (as in SQL ``UNIQUE``);
- **range** (``range_tests``): a non-null value below ``min`` or above ``max`` (inclusive bounds) fails; a
  text column is parsed as numbers and a value that is not a number (or NaN) fails too;
- **format** (``format_tests``): the whole value must match the pattern, which is anchored at both ends as
  ``^(?:pattern)$`` — Agensium anchors only at the start (``re.match``), so ``\\d{3}`` also passed
  ``"123abc"`` there. Patterns use Polars' (Rust) regex syntax; one that does not compile, or a column that
  is not in the data, ends the task with ``INVALID_PARAMETERS`` naming the field;
- rows with more than ``row_null_threshold`` % null cells are reported (info); they do not enter the score.

Each test's pass rate is 100 × passing / checked (non-null) values; a test with nothing to check passes.
A test type's score is the mean pass rate of its tests, and the coverage score the weighted mean of the
declared types' scores: a type with no test declared gives its weight to the others in proportion to
theirs. With no test declared at all, the score is 0 (nothing is covered), an alert says so, and tests are
suggested from the data as Deequ's constraint suggestion does (``data.suggested_tests``, in the shape of
this agent's parameters, ready to paste into parameters.json): complete columns whose values are all
distinct → ``unique_columns``; numeric columns → ``range_tests`` with the observed min and max; text
columns whose sampled values all match an e-mail, UUID or ISO date pattern → ``format_tests``. Status:
``excellent`` at or above ``excellent_threshold``, ``good`` at or above ``good_threshold``, else
``needs_improvement``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.bounds import below_and_above
from agents.columns import is_text, require_columns, with_row_index
from agents.envelope import AgentInputs, AgentResult, Progress, SummaryCard, data_columns, format_text
from agents.errors import InvalidParametersError
from agents.findings import Findings, collect_row_issues, issues_where, score_status
from agents.formatting import pct
from agents.layouts import Layout, as_text
from agents.params.common import effectiveness_status
from agents.params.test_coverage import FormatRule, RangeRule, TestCoverageParams
from agents.quality.report import (
    quality_result,
    weighted_score,
)

AGENT_ID = "test-coverage-agent"
AGENT_NAME = "Test Coverage"
TEST_TYPES = ("uniqueness", "range", "format")


@dataclass(frozen=True)
class _Test:
    test_type: str
    column: str
    failing: pl.Expr  # true on the rows whose value fails the test
    detail: dict[str, Any]
    issue_type: str
    severity: Any
    message: pl.Expr


@dataclass(frozen=True)
class _NullRows:
    """Per row, how many cells are null and whether that is more than the threshold allows."""

    cells: pl.Expr | None  # None when the frame has no data column
    mostly_null: pl.Expr


@dataclass(frozen=True)
class _Outcome:
    """The tests' results and the scores made of them."""

    results: list[dict[str, Any]]
    dimension_scores: dict[str, float | None]
    effective_weights: dict[str, float]
    overall: float
    status: str
    violations: dict[str, int]
    mostly_null_rows: int

    @property
    def passed(self) -> int:
        return sum(result["passed"] for result in self.results)

    @property
    def total_row_issues(self) -> int:
        return sum(self.violations.values()) + self.mostly_null_rows


def run(inputs: AgentInputs, params: TestCoverageParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = inputs.primary
    columns = data_columns(frame)
    tests = _declared_tests(frame, params, inputs.text_layouts)
    progress(0.0, f"Running {len(tests)} declared tests on {frame.height:,} rows")
    lazy = with_row_index(frame).lazy()
    null_rows = _null_rows(columns, params.row_null_threshold)
    counts = _count_violations(lazy, tests, null_rows)
    progress(0.5, "Scoring the tests")
    outcome = _score_tests(tests, counts, params)

    progress(0.7, "Listing violations row by row")
    row_issues = _row_issues(lazy, tests, null_rows, len(columns), params)
    issues_list = [_coverage_issue(result) for result in outcome.results if not result["passed"]]
    findings = _findings(
        outcome.results,
        issues_list,
        outcome.dimension_scores,
        outcome.overall,
        outcome.status,
        outcome.mostly_null_rows,
        frame.height,
        params,
    )
    data = _data(frame.height, columns, outcome, issues_list, params)
    suggested = suggest_tests(frame, columns) if not outcome.results else None
    if suggested is not None:
        _offer_suggested_tests(data, findings, suggested)
    progress(1.0, "Test coverage complete")
    return quality_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(frame.height, len(columns), outcome, len(issues_list)),
        data=data,
        findings=findings,
        cards=_cards(
            outcome.overall, outcome.status, outcome.passed, len(outcome.results), outcome.total_row_issues, suggested
        ),
        row_issues=row_issues,
        row_issues_total=outcome.total_row_issues,
    )


def _null_rows(columns: list[str], threshold: float) -> _NullRows:
    if not columns:
        return _NullRows(None, pl.lit(False))
    cells = pl.sum_horizontal([pl.col(name).is_null().cast(pl.Int64) for name in columns])
    return _NullRows(cells, cells * 100 > threshold * len(columns))


def _count_violations(lazy: pl.LazyFrame, tests: list[_Test], null_rows: _NullRows) -> dict[str, Any]:
    """One pass over the data: the rows, the mostly-null rows, and each test's checked and failing values."""
    counts_exprs = [pl.len().alias("rows"), null_rows.mostly_null.sum().alias("mostly_null_rows")]
    for index, test in enumerate(tests):
        counts_exprs.append(pl.col(test.column).is_not_null().sum().alias(f"{index}:checked"))
        counts_exprs.append(test.failing.sum().alias(f"{index}:violations"))
    return lazy.select(counts_exprs).collect().row(0, named=True)


def _score_tests(tests: list[_Test], counts: dict[str, Any], params: TestCoverageParams) -> _Outcome:
    results = [
        _result(test, counts[f"{index}:checked"], counts[f"{index}:violations"]) for index, test in enumerate(tests)
    ]
    dimension_scores: dict[str, float | None] = {}
    for test_type in TEST_TYPES:
        rates = [result["pass_rate"] for result in results if result["test_type"] == test_type]
        dimension_scores[test_type] = round(sum(rates) / len(rates), 4) if rates else None
    weights = {"uniqueness": params.uniqueness_weight, "range": params.range_weight, "format": params.format_weight}
    score, effective = weighted_score(dimension_scores, weights)
    if tests and score is None:
        declared = [test_type for test_type in TEST_TYPES if dimension_scores[test_type] is not None]
        raise InvalidParametersError(
            f"{AGENT_ID}: the weights of the declared test types ({', '.join(declared)}) are all 0",
            agent_id=AGENT_ID,
            field=f"{declared[0]}_weight",
        )
    overall = score if score is not None else 0.0
    violations = {
        test_type: sum(r["violations"] for r in results if r["test_type"] == test_type) for test_type in TEST_TYPES
    }
    return _Outcome(
        results=results,
        dimension_scores=dimension_scores,
        effective_weights=effective,
        overall=overall,
        status=effectiveness_status(overall, params),
        violations=violations,
        mostly_null_rows=int(counts["mostly_null_rows"]),
    )


def _row_issues(
    lazy: pl.LazyFrame, tests: list[_Test], null_rows: _NullRows, width: int, params: TestCoverageParams
) -> pl.DataFrame:
    """Each failing value of each test, then the mostly-null rows, up to the stored cap."""
    queries = [
        issues_where(
            lazy,
            test.failing,
            column=test.column,
            issue_type=test.issue_type,
            severity=test.severity,
            message=test.message,
            value=pl.col(test.column),
        )
        for test in tests
    ]
    if null_rows.cells is not None:
        queries.append(
            issues_where(
                lazy,
                null_rows.mostly_null,
                column=None,
                issue_type="high_null_row",
                severity="info",
                message=format_text(
                    "{} of {} cells are null (more than {}%)",
                    null_rows.cells,
                    pl.lit(width),
                    pl.lit(f"{params.row_null_threshold:g}"),
                ),
                value=None,
            )
        )
    return collect_row_issues(queries, limit=params.max_stored_row_level_issues)


def _summary_metrics(rows: int, width: int, outcome: _Outcome, issues_found: int) -> dict[str, Any]:
    return {
        "total_records": rows,
        "total_fields": width,
        "test_coverage_score": outcome.overall,
        "coverage_status": outcome.status,
        "issues_found": issues_found,
        "tests_declared": len(outcome.results),
        "tests_passed": outcome.passed,
        "tests_failed": len(outcome.results) - outcome.passed,
        "uniqueness_violations": outcome.violations["uniqueness"],
        "range_violations": outcome.violations["range"],
        "format_violations": outcome.violations["format"],
        "high_null_rows": outcome.mostly_null_rows,
        "row_level_issues_total": outcome.total_row_issues,
    }


def _data(
    rows: int,
    columns: list[str],
    outcome: _Outcome,
    issues_list: list[dict[str, Any]],
    params: TestCoverageParams,
) -> dict[str, Any]:
    return {
        "test_coverage_scores": {"overall": outcome.overall, **outcome.dimension_scores},
        "coverage_status": outcome.status,
        "effective_weights": outcome.effective_weights,
        "total_records": rows,
        "fields_analyzed": columns,
        "tests": outcome.results,
        "test_coverage_issues": issues_list,
        "high_null_rows": {
            "threshold_percentage": params.row_null_threshold,
            "count": outcome.mostly_null_rows,
            "percentage": pct(outcome.mostly_null_rows, rows),
        },
        "conventions": {
            "pass_rate": "100 x passing / checked (non-null) values; a test with nothing to check passes",
            "dimension_score": "mean pass rate of the type's tests; null when none is declared",
            "weights": "declared types' weights normalised to sum 1 (an undeclared type's weight is redistributed)",
            "format": "full match: the pattern is anchored at both ends (Rust regex syntax)",
            "uniqueness": "nulls are not duplicates; every occurrence of a repeated value fails",
            "range": "inclusive bounds; a text value that is not a number, or NaN, fails",
        },
    }


def _offer_suggested_tests(data: dict[str, Any], findings: Findings, suggested: dict[str, Any]) -> None:
    data["suggested_tests"] = suggested
    count = len(suggested["unique_columns"]) + len(suggested["range_tests"]) + len(suggested["format_tests"])
    findings.recommend(
        f"Declare tests: {count} suggested from this data are in data.suggested_tests "
        '(paste them under "test-coverage-agent" in parameters.json)',
        "medium",
        kind="suggested_tests",
    )


def _declared_tests(
    frame: pl.DataFrame, params: TestCoverageParams, layouts: Mapping[str, Layout] | None = None
) -> list[_Test]:
    """The declared tests as Polars expressions; every column and pattern checked before any work (format
    tests on the text as the file holds it: ``layouts``, the input's dates read from text)."""
    require_columns(frame, params.unique_columns, agent_id=AGENT_ID, field="unique_columns")
    for column in params.range_tests:
        require_columns(frame, [column], agent_id=AGENT_ID, field=f"range_tests.{column}")
    for column in params.format_tests:
        require_columns(frame, [column], agent_id=AGENT_ID, field=f"format_tests.{column}")
    tests = [_uniqueness_test(column) for column in dict.fromkeys(params.unique_columns)]
    tests += [_range_test(frame, column, rule) for column, rule in params.range_tests.items()]
    tests += [
        _format_test(column, rule, as_text(column, frame.schema[column], (layouts or {}).get(column)))
        for column, rule in params.format_tests.items()
    ]
    return tests


def _uniqueness_test(column: str) -> _Test:
    value = pl.col(column)
    return _Test(
        "uniqueness",
        column,
        value.is_duplicated() & value.is_not_null(),
        {},
        "uniqueness_violation",
        "critical",
        format_text("Value occurs {} times; '{}' must be unique", pl.len().over(value), pl.lit(column)),
    )


def _range_test(frame: pl.DataFrame, column: str, rule: RangeRule) -> _Test:
    dtype = frame.schema[column]
    if not (dtype.is_numeric() or is_text(dtype)):
        raise InvalidParametersError(
            f"{AGENT_ID}.range_tests.{column}: column {column!r} is {dtype}, not numbers; range tests take numeric "
            "or text columns",
            agent_id=AGENT_ID,
            field=f"range_tests.{column}",
        )
    source = pl.col(column)
    number = (source.cast(pl.String).str.strip_chars() if is_text(dtype) else source).cast(pl.Float64, strict=False)
    out = number.is_null() | number.is_nan()
    exact = dtype.is_integer()  # integers compared in integers: ids past 2^53 exactly
    below, above = below_and_above(source if exact else number, dtype if exact else pl.Float64(), rule.min, rule.max)
    out = out | below | above
    bounds = f"[{_bound(rule.min, '-inf')}, {_bound(rule.max, 'inf')}]"
    message = (
        pl.when(number.is_null() | number.is_nan())
        .then(pl.lit(f"Not a number; '{column}' must lie in {bounds}"))
        .otherwise(pl.lit(f"Outside the allowed range {bounds} of '{column}'"))
    )
    return _Test(
        "range",
        column,
        source.is_not_null() & out,
        {"min": rule.min, "max": rule.max, "bounds": bounds},
        "range_violation",
        "warning",
        message,
    )


def _format_test(column: str, rule: str | FormatRule, text: pl.Expr) -> _Test:
    pattern, description = (rule, "format") if isinstance(rule, str) else (rule.pattern, rule.description)
    anchored = f"^(?:{pattern})$"
    field = f"format_tests.{column}"
    try:
        pl.select(pl.lit("").str.contains(anchored))
    except pl.exceptions.PolarsError as error:
        reason = str(error).strip().splitlines()
        detail = next(
            (line.strip() for line in reason if line.strip().startswith("error:")), reason[0] if reason else ""
        )
        raise InvalidParametersError(
            f"{AGENT_ID}.{field}: invalid regular expression {pattern!r} ({detail}); patterns use Rust regex "
            "syntax (no look-around, no back-references)",
            {"pattern": pattern},
            agent_id=AGENT_ID,
            field=field,
        ) from None
    value = pl.col(column)
    return _Test(
        "format",
        column,
        value.is_not_null() & ~text.str.contains(anchored),
        {"pattern": pattern, "anchored_pattern": anchored, "description": description},
        "format_violation",
        "warning",
        pl.lit(f"Does not match {description} ({pattern}) in '{column}'"),
    )


def _bound(value: float | None, missing: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # whole: 1234567890123456804, not 1.23457e+18
    return missing if value is None else f"{value:g}"


def _result(test: _Test, checked: int, violations: int) -> dict[str, Any]:
    checked, violations = int(checked), int(violations)
    pass_rate = round(100.0 * (checked - violations) / checked, 4) if checked else 100.0
    return {
        "test_id": f"{test.test_type}:{test.column}",
        "test_type": test.test_type,
        "field_name": test.column,
        **test.detail,
        "checked_values": checked,
        "violations": violations,
        "pass_rate": pass_rate,
        "passed": violations == 0,
    }


def _coverage_issue(result: dict[str, Any]) -> dict[str, Any]:
    kind, column, violations = result["test_type"], result["field_name"], result["violations"]
    if kind == "uniqueness":
        message = f"Column '{column}' has {violations} values that repeat another row's value"
    elif kind == "range":
        message = f"Column '{column}' has {violations} values outside {result['bounds']}"
    else:
        message = f"Column '{column}' has {violations} values not matching {result['description']}"
    return {
        "type": f"{kind}_violation",
        "field": column,
        "severity": "critical" if kind == "uniqueness" else "high",
        "message": message,
        "violations": violations,
        "pass_rate": result["pass_rate"],
    }


def _findings(
    results: list[dict[str, Any]],
    issues_list: list[dict[str, Any]],
    dimension_scores: dict[str, float | None],
    overall: float,
    status: str,
    mostly_null_rows: int,
    rows: int,
    params: TestCoverageParams,
) -> Findings:
    findings = Findings(AGENT_ID)
    if not results:
        findings.alert(
            "no_tests_declared",
            "medium",
            "No test is declared: nothing is covered (score 0)",
            "Declare unique_columns, range_tests and format_tests in the test-coverage-agent parameters",
            affected=0,
            recommend=True,
        )
    elif status != "excellent":
        findings.alert(
            "test_coverage",
            ("critical" if overall < 60 else "high") if status == "needs_improvement" else "medium",
            f"Test coverage {overall:.1f}/100 ({status.replace('_', ' ')}): {len(issues_list)} test(s) failing",
            "Fix the failing values or revisit the declared rules",
            affected=len(issues_list),
            recommend=False,
        )
    for test_type in TEST_TYPES:
        score = dimension_scores[test_type]
        if score is None or score >= 80:
            continue
        failing = [r["field_name"] for r in results if r["test_type"] == test_type and not r["passed"]]
        findings.alert(
            f"{test_type}_tests",
            "critical" if score < 60 else "high",
            f"{test_type.capitalize()} tests pass at {score:.1f}%: {', '.join(failing[:5])}",
            {
                "uniqueness": "Resolve the repeated key values (Clean My Data: duplicate-resolver)",
                "range": "Correct or quarantine the out-of-range values (Clean My Data: quarantine-agent)",
                "format": "Standardise the values to the declared formats (Clean My Data: field-standardization)",
            }[test_type],
            affected=len(failing),
            recommend=True,
        )
    for issue in issues_list:
        findings.issue(
            issue["type"],
            issue["severity"],
            issue["message"],
            field_name=issue["field"],
            details={"violations": issue["violations"], "pass_rate": issue["pass_rate"]},
        )
    if mostly_null_rows:
        share = pct(mostly_null_rows, rows)
        findings.alert(
            "high_null_rows",
            "medium" if share > 10 else "low",
            f"{mostly_null_rows:,} row(s) ({share:.2f}%) have more than {params.row_null_threshold:g}% null cells",
            "Complete or remove the mostly empty rows (Clean My Data: null-handler)",
            affected=0,
            recommend=True,
        )
        findings.issue(
            "high_null_rows",
            "medium" if share > 10 else "low",
            f"{mostly_null_rows:,} rows have more than {params.row_null_threshold:g}% null cells",
            field_name=None,
            details={"rows": mostly_null_rows},
        )
    return findings


SUGGESTED_FORMATS = {
    "email": r"[^@\s]+@[^@\s]+\.[^@\s]+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "iso_date": r"\d{4}-\d{2}-\d{2}",
}
SUGGESTION_SAMPLE_ROWS = 10_000
UNIQUE_SCREEN_ROWS = 10_000


def suggest_tests(frame: pl.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Tests this data passes today, to guard it tomorrow (see the module docstring)."""
    schema = frame.schema
    numeric = [c for c in columns if schema[c].is_numeric()]
    text = [c for c in columns if schema[c] == pl.String]
    facts = frame.select(
        *(pl.col(c).null_count().alias(f"nulls:{c}") for c in columns),
        *(pl.col(c).min().alias(f"min:{c}") for c in numeric),
        *(pl.col(c).max().alias(f"max:{c}") for c in numeric),
    ).row(0, named=True)
    unique = _unique_columns(frame, [c for c in columns if facts[f"nulls:{c}"] == 0]) if frame.height > 1 else []
    ranges = {
        c: {"min": _plain(facts[f"min:{c}"]), "max": _plain(facts[f"max:{c}"])}
        for c in numeric
        if facts[f"min:{c}"] is not None and _plain(facts[f"min:{c}"]) is not None
    }
    formats: dict[str, dict[str, str]] = {}
    if text:
        sample = frame.select(text).head(SUGGESTION_SAMPLE_ROWS)
        matched = sample.select(
            pl.col(c).drop_nulls().str.contains(f"^(?:{pattern})$").all().alias(f"{c}:{name}")
            for c in text
            for name, pattern in SUGGESTED_FORMATS.items()
        ).row(0, named=True)
        for c in text:
            name = next((n for n in SUGGESTED_FORMATS if matched[f"{c}:{n}"] and sample[c].drop_nulls().len()), None)
            if name is not None:
                formats[c] = {"pattern": SUGGESTED_FORMATS[name], "description": f"{name} (suggested)"}
    return {"unique_columns": unique, "range_tests": ranges, "format_tests": formats}


def _unique_columns(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """The ``columns`` (null-free) whose values are all distinct. A value repeated among the first
    ``UNIQUE_SCREEN_ROWS`` rows settles it for most columns at once; only the others are counted in full
    (hashing every value of a million-row text column is most of this agent's time)."""
    if not columns:
        return []
    head = frame.head(UNIQUE_SCREEN_ROWS)
    screened = head.select(pl.col(c).n_unique().alias(c) for c in columns).row(0, named=True)
    maybe = [c for c in columns if screened[c] == head.height]
    if not maybe or head.height == frame.height:
        return maybe
    counts = frame.select(pl.col(c).n_unique().alias(c) for c in maybe).row(0, named=True)
    return [c for c in maybe if counts[c] == frame.height]


def _plain(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return int(value) if isinstance(value, int) else None


def _cards(
    overall: float, status: str, passed: int, declared: int, violations: int, suggested: dict[str, Any] | None
) -> list[SummaryCard]:
    if declared == 0:
        count = 0 if suggested is None else sum(len(v) for v in suggested.values())
        coverage = SummaryCard(
            "test-coverage",
            "Test coverage",
            "no tests",
            "info",
            f"No test declared; {count} suggested from the data (data.suggested_tests)",
        )
    else:
        coverage = SummaryCard(
            "test-coverage",
            "Test coverage",
            f"{overall:.1f}",
            "excellent" if status == "excellent" else "good" if status == "good" else score_status(min(overall, 74)),
            f"{overall:.1f}/100 - {status.upper().replace('_', ' ')}",
        )
    return [
        coverage,
        SummaryCard(
            "tests-passed",
            "Tests passed",
            f"{passed}/{declared}",
            "info" if declared == 0 else "good" if passed == declared else "warning",
            "Declared uniqueness, range and format tests with no violation",
        ),
        SummaryCard(
            "violations",
            "Row-level findings",
            f"{violations:,}",
            "good" if violations == 0 else "warning",
            "Failing values plus mostly empty rows",
        ),
    ]
