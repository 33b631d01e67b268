"""The ``governance-checker``: are lineage, consent and classification recorded for every row?

For each category the required fields are the columns named in ``required_lineage_fields``,
``required_consent_fields`` or ``required_classification_fields``; when a category names none and
``detect_fields_by_name`` is on, the columns whose names look like that category (``LINEAGE_NAME``,
``CONSENT_NAME``, ``CLASSIFICATION_NAME``) are used instead and the report says they were detected.

- A field's score is the share of rows (× 100) holding a usable value: not null, not blank text, and for
  a consent field whose name contains ``status`` one of ``valid_consent_statuses`` (case-insensitive). A
  required field that is not in the data scores 0 (presence and completeness in one number).
- A category's score is the mean of its fields' scores, and 0 when it has no field at all (nothing is
  recorded). Agensium starts each category at 100 and deducts 20–25 points per missing field.
- governance = weighted mean (0.3 lineage, 0.4 consent, 0.3 classification; normalised by their sum).
- ``compliance_status``: ``compliant`` at or above ``compliance_threshold`` (80), ``partially_compliant``
  at or above ``needs_review_threshold`` (60; Agensium calls this status ``needs_review``), else
  ``non_compliant``.

Personal data found by name or by value on ``pii_sample_size`` evenly spaced rows (the profiler's patterns)
is listed, and flagged when classification is incomplete; it does not change the score.
Row-level issues: each row of a present required field without a usable value.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.columns import is_text, normalised_name, with_row_index
from agents.envelope import AgentInputs, AgentResult, Progress, SummaryCard, data_columns
from agents.findings import Findings, collect_row_issues, issues_where, score_status
from agents.params.governance_checker import GovernanceCheckerParams
from agents.profile.pii import pii_type_by_name
from agents.quality.report import (
    dominant_pattern,
    quality_result,
    scan_pii,
    weighted_score,
)

AGENT_ID = "governance-checker"
AGENT_NAME = "Governance Checker"
CATEGORIES = ("lineage", "consent", "classification")
PII_VALUE_SHARE = 0.5

LINEAGE_NAME = re.compile(
    r"(^|_)(source|sources|src|lineage|origin|provenance|etl|ingest|ingested|ingestion|batch_id|load_id"
    r"|loaded_at|loaded_by|data_owner|record_source|system_of_record|upstream)(_|$)"
)
CONSENT_NAME = re.compile(
    r"consent|(^|_)opt_?(in|out)(_|$)|optin|optout|gdpr|ccpa|do_not_(sell|contact|call|email|track)"
    r"|(^|_)(subscribed|unsubscribed)(_|$)|marketing_(ok|allowed|permission)|(^|_)permission"
)
CLASSIFICATION_NAME = re.compile(
    r"classification|classified|sensitivity|confidential|(^|_)data_class(_|$)|security_level|access_level"
    r"|privacy_level|(^|_)pii_(flag|level|class|category)(_|$)|(^|_)tlp(_|$)"
)
NAME_PATTERNS = {"lineage": LINEAGE_NAME, "consent": CONSENT_NAME, "classification": CLASSIFICATION_NAME}
ROW_SEVERITY: dict[str, Any] = {"lineage": "info", "consent": "warning", "classification": "info"}
CATEGORY_ADVICE = {
    "lineage": "Record where each row comes from (source system, load batch, owner)",
    "consent": "Record each person's consent (status, date, purpose) and honour withdrawals (GDPR/CCPA)",
    "classification": "Label each row's sensitivity (public / internal / confidential / restricted)",
}


@dataclass(frozen=True)
class _Scores:
    categories: dict[str, dict[str, Any]]  # per category: its required fields, their usability, its score
    effective_weights: dict[str, float]
    overall: float
    status: str


def run(inputs: AgentInputs, params: GovernanceCheckerParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = inputs.primary
    columns = data_columns(frame)
    rows = frame.height
    progress(0.0, f"Checking governance fields of {len(columns)} columns")
    required = _required_fields(columns, params)
    usable = _usable_masks(frame, columns, required, params)
    expressions = [mask.sum().alias(f"{category}:{name}") for (category, name), mask in usable.items()]
    counts = frame.lazy().select(expressions or [pl.len()]).collect().row(0, named=True)
    progress(0.4, "Scoring lineage, consent and classification")
    scores = _score(frame, columns, required, counts, params)

    progress(0.6, "Looking for unclassified personal data")
    pii_fields = _pii_fields(frame, columns, params.pii_sample_size)

    progress(0.8, "Listing rows without governance values")
    row_issues = _row_issues(frame, usable, params)
    total_row_issues = sum(rows - int(counts[f"{category}:{name}"]) for category, name in usable)

    governance_issues = _governance_issues(scores.categories, pii_fields)
    findings = _findings(scores.categories, governance_issues, pii_fields, scores.overall, scores.status)
    summary_metrics = _summary_metrics(scores, rows, len(columns), governance_issues, pii_fields, total_row_issues)
    data = _data(scores, columns, rows, governance_issues, pii_fields, params)
    progress(1.0, "Governance check complete")
    return quality_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=data,
        findings=findings,
        cards=_cards(scores.overall, scores.status, scores.categories),
        row_issues=row_issues,
        row_issues_total=total_row_issues,
    )


def _usable_masks(
    frame: pl.DataFrame, columns: list[str], required: dict[str, dict[str, Any]], params: GovernanceCheckerParams
) -> dict[tuple[str, str], pl.Expr]:
    """Per (category, required field in the data), true on the rows whose value is usable."""
    valid_statuses = sorted({status.strip().lower() for status in params.valid_consent_statuses})
    usable: dict[tuple[str, str], pl.Expr] = {}
    for category in CATEGORIES:
        for name in required[category]["fields"]:
            if name in columns:
                usable[(category, name)] = _usable(frame, category, name, valid_statuses)
    return usable


def _score(
    frame: pl.DataFrame,
    columns: list[str],
    required: dict[str, dict[str, Any]],
    counts: dict[str, Any],
    params: GovernanceCheckerParams,
) -> _Scores:
    categories: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        fields = [_field_usability(frame, columns, category, name, counts) for name in required[category]["fields"]]
        score = round(sum(item["usable_percentage"] for item in fields) / len(fields), 4) if fields else 0.0
        categories[category] = {**required[category], "fields": fields, "score": score}
    weights = {
        "lineage": params.lineage_weight,
        "consent": params.consent_weight,
        "classification": params.classification_weight,
    }
    weighted, effective = weighted_score({name: categories[name]["score"] for name in CATEGORIES}, weights)
    overall = weighted if weighted is not None else 0.0
    return _Scores(categories, effective, overall, compliance_status(overall, params))


def _field_usability(
    frame: pl.DataFrame, columns: list[str], category: str, name: str, counts: dict[str, Any]
) -> dict[str, Any]:
    rows = frame.height
    present = name in columns
    usable_rows = int(counts[f"{category}:{name}"]) if present else 0
    return {
        "field_name": name,
        "present": present,
        "usable_rows": usable_rows,
        "missing_rows": rows - usable_rows if present else rows,
        "usable_percentage": round(100.0 * usable_rows / rows, 4) if rows else 0.0,
        "checked_against_valid_statuses": present and _is_status_field(frame, category, name),
    }


def _row_issues(
    frame: pl.DataFrame, usable: dict[tuple[str, str], pl.Expr], params: GovernanceCheckerParams
) -> pl.DataFrame:
    """Each row without a usable value in a required field, up to the stored cap."""
    lazy = with_row_index(frame).lazy()
    queries = [
        issues_where(
            lazy,
            ~mask,
            column=name,
            issue_type=f"missing_{category}_value"
            if not _is_status_field(frame, category, name)
            else "missing_or_invalid_consent_status",
            severity=ROW_SEVERITY[category],
            message=f"No usable {category} value in '{name}'",
            value=pl.col(name),
        )
        for (category, name), mask in usable.items()
    ]
    return collect_row_issues(queries, limit=params.max_stored_row_level_issues)


def _summary_metrics(
    scores: _Scores,
    rows: int,
    width: int,
    governance_issues: list[dict[str, Any]],
    pii_fields: list[dict[str, Any]],
    total_row_issues: int,
) -> dict[str, Any]:
    categories = scores.categories
    missing_required = sum(not item["present"] for c in CATEGORIES for item in categories[c]["fields"])
    return {
        "total_records": rows,
        "total_fields": width,
        "governance_score": scores.overall,
        "compliance_status": scores.status,
        "issues_found": len(governance_issues),
        "lineage_score": categories["lineage"]["score"],
        "consent_score": categories["consent"]["score"],
        "classification_score": categories["classification"]["score"],
        "required_fields": sum(len(categories[c]["fields"]) for c in CATEGORIES),
        "missing_required_fields": missing_required,
        "detected_fields": sum(
            len(categories[c]["fields"]) for c in CATEGORIES if categories[c]["source"] == "detected"
        ),
        "pii_fields": len(pii_fields),
        "row_level_issues_total": total_row_issues,
    }


def _data(
    scores: _Scores,
    columns: list[str],
    rows: int,
    governance_issues: list[dict[str, Any]],
    pii_fields: list[dict[str, Any]],
    params: GovernanceCheckerParams,
) -> dict[str, Any]:
    categories = scores.categories
    return {
        "governance_scores": {"overall": scores.overall, **{name: categories[name]["score"] for name in CATEGORIES}},
        "governance_score": scores.overall,
        "compliance_status": scores.status,
        "status_cutoffs": {
            "compliant": f">= {params.compliance_threshold:g}",
            "partially_compliant": f">= {params.needs_review_threshold:g}",
            "non_compliant": f"< {params.needs_review_threshold:g}",
        },
        "effective_weights": scores.effective_weights,
        "categories": categories,
        "governance_issues": governance_issues,
        "pii_fields": pii_fields,
        "total_records": rows,
        "fields_analyzed": columns,
        "conventions": {
            "field_score": "100 x rows with a usable value (not null, not blank, valid consent status) / rows; "
            "0 for a required field that is not in the data",
            "category_score": "mean of its fields' scores; 0 when the category has no field",
            "detection": "a category with no field named uses the columns whose names look like it",
        },
    }


def compliance_status(score: float, params: GovernanceCheckerParams) -> str:
    if score >= params.compliance_threshold:
        return "compliant"
    if score >= params.needs_review_threshold:
        return "partially_compliant"
    return "non_compliant"


def detect_fields(columns: list[str], category: str) -> list[str]:
    pattern = NAME_PATTERNS[category]
    return [name for name in columns if pattern.search(normalised_name(name))]


def _required_fields(columns: list[str], params: GovernanceCheckerParams) -> dict[str, dict[str, Any]]:
    named = {
        "lineage": params.required_lineage_fields,
        "consent": params.required_consent_fields,
        "classification": params.required_classification_fields,
    }
    required: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        if named[category]:
            required[category] = {"source": "named", "fields": list(dict.fromkeys(named[category]))}
            continue
        detected = detect_fields(columns, category) if params.detect_fields_by_name else []
        required[category] = {"source": "detected" if detected else "none", "fields": detected}
    return required


def _is_status_field(frame: pl.DataFrame, category: str, name: str) -> bool:
    return category == "consent" and "status" in normalised_name(name) and is_text(frame.schema[name])


def _usable(frame: pl.DataFrame, category: str, name: str, valid_statuses: list[str]) -> pl.Expr:
    value = pl.col(name)
    if not is_text(frame.schema[name]):
        return value.is_not_null()
    text = value.cast(pl.String).str.strip_chars()
    if _is_status_field(frame, category, name):
        return text.str.to_lowercase().is_in(valid_statuses).fill_null(False)
    return (text.str.len_chars() > 0).fill_null(False)


def _pii_fields(frame: pl.DataFrame, columns: list[str], sample_size: int) -> list[dict[str, Any]]:
    scan = scan_pii(frame, sample_size)
    found = []
    for name in columns:
        by_name = pii_type_by_name(name)
        best, share = dominant_pattern(scan.signals.get(name))
        by_value = best if best is not None and share > PII_VALUE_SHARE else None
        if by_name or by_value:
            found.append(
                {"field_name": name, "pii_type": by_value or by_name, "by_name": by_name, "by_value": by_value}
            )
    return found


def _governance_issues(categories: dict[str, dict[str, Any]], pii_fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    for category in CATEGORIES:
        info = categories[category]
        if not info["fields"]:
            issues.append(
                {
                    "type": f"no_{category}_fields",
                    "field": None,
                    "severity": "critical" if category == "consent" else "high",
                    "message": f"No {category} field is named or found by name: {category} is not recorded",
                }
            )
        for item in info["fields"]:
            name = item["field_name"]
            if not item["present"]:
                issues.append(
                    {
                        "type": f"missing_{category}_field",
                        "field": name,
                        "severity": "critical",
                        "message": f"Required {category} field '{name}' is not in the data",
                    }
                )
            elif item["missing_rows"]:
                issues.append(
                    {
                        "type": f"incomplete_{category}_field",
                        "field": name,
                        "severity": "high" if item["usable_percentage"] < 80 else "medium",
                        "message": f"'{name}' has no usable value in {item['missing_rows']:,} rows "
                        f"({100 - item['usable_percentage']:.1f}%)",
                        "missing_rows": item["missing_rows"],
                    }
                )
    if pii_fields and categories["classification"]["score"] < 100:
        for item in pii_fields:
            issues.append(
                {
                    "type": "pii_without_classification",
                    "field": item["field_name"],
                    "severity": "high",
                    "message": f"'{item['field_name']}' holds personal data ({item['pii_type']}) but rows are not "
                    "fully classified",
                    "pii_type": item["pii_type"],
                }
            )
    return issues


def _findings(
    categories: dict[str, dict[str, Any]],
    governance_issues: list[dict[str, Any]],
    pii_fields: list[dict[str, Any]],
    overall: float,
    status: str,
) -> Findings:
    findings = Findings(AGENT_ID)
    if status != "compliant":
        findings.alert(
            "governance_compliance",
            "critical" if status == "non_compliant" else "high",
            f"Governance {overall:.1f}/100: {status.replace('_', ' ')}",
            "Record lineage, consent and classification for every row",
            affected=len(governance_issues),
            recommend=False,
        )
    for category in CATEGORIES:
        info = categories[category]
        if info["source"] == "detected":
            findings.alert(
                f"{category}_fields_detected",
                "low",
                f"No {category} field named; using column(s) that look like {category}: "
                + ", ".join(item["field_name"] for item in info["fields"]),
                f"Name the {category} fields explicitly (required_{category}_fields) to confirm them",
                affected=len(info["fields"]),
                recommend=False,
            )
        score = info["score"]
        if score < 80:
            missing = [item["field_name"] for item in info["fields"] if not item["present"]]
            detail = (
                f"missing field(s): {', '.join(missing)}"
                if missing
                else ("no field recorded" if not info["fields"] else "incomplete values")
            )
            findings.alert(
                f"data_{category}",
                "critical" if score < 50 else "high" if score < 65 else "medium",
                f"{category.capitalize()} score {score:.1f}/100 ({detail})",
                CATEGORY_ADVICE[category],
                affected=len(missing) or len(info["fields"]),
                recommend=True,
            )
    if pii_fields and categories["classification"]["score"] < 100:
        findings.alert(
            "pii_without_classification",
            "high",
            f"{len(pii_fields)} field(s) hold personal data while rows are not fully classified: "
            + ", ".join(item["field_name"] for item in pii_fields[:5]),
            "Classify the rows holding personal data and restrict access to them",
            affected=len(pii_fields),
            recommend=True,
        )
    for issue in governance_issues:
        details = {key: value for key, value in issue.items() if key not in {"type", "field", "severity", "message"}}
        findings.issue(issue["type"], issue["severity"], issue["message"], field_name=issue["field"], details=details)
    return findings


def _cards(overall: float, status: str, categories: dict[str, dict[str, Any]]) -> list[SummaryCard]:
    cards = [
        SummaryCard(
            "governance",
            "Governance compliance",
            f"{overall:.1f}",
            "good" if status == "compliant" else "warning" if status == "partially_compliant" else "critical",
            f"{overall:.1f}/100 - {status.upper().replace('_', ' ')}",
        )
    ]
    for category in CATEGORIES:
        info = categories[category]
        cards.append(
            SummaryCard(
                f"{category}-score",
                f"{category.capitalize()}",
                f"{info['score']:.1f}",
                score_status(info["score"]),
                f"{len(info['fields'])} field(s), {info['source']}",
            )
        )
    return cards
