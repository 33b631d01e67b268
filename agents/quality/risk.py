"""The ``score-risk`` agent: personal-data and sensitive-field risk per column, compliance frameworks.

Per column (Agensium's scoring, reference/agents.md §1.4, with its name-only detection fixed, §1.7 #9):

- **sensitive name** (+60, ``sensitive_field_detection_enabled``): the name marks personal data (the
  profiler's name patterns, ``agents.profile.pii.NAME_PATTERNS``), a secret (password, token, API key,
  ...) or health information (patient, diagnosis, medical record, ...);
- **PII by value** (+80, ``pii_detection_enabled``): of ``pii_sample_size`` evenly spaced rows, more than
  ``pii_match_threshold`` (0.5) of a text column's non-null values fully match one of the profiler's
  value patterns (e-mail, phone, SSN, card number, IBAN, IP address). An integer column's values, in
  decimal, are matched by the digits-only rule: card numbers (exported unquoted, read as integers) with a
  card issuer's prefix, 13 to 19 digits and a valid Luhn check digit (``agents.profile.pii.card_number``),
  so that a 16-digit integer identifier does not pass for a card number; other numeric columns are not
  matched;
- the risk score is the sum, capped at 100; level ``high`` at or above ``high_risk_threshold``,
  ``medium`` at or above ``medium_risk_threshold``, else ``low``. The overall score is the mean over all
  columns (Agensium).

Compliance frameworks (``governance_check_enabled``), by the column's personal-data type:

- GDPR and CCPA: every personal-data type (e-mail, phone, name, address, postal code, IP address, date of
  birth, SSN, passport, tax id, IBAN, card number) and health information;
- PCI-DSS: card numbers;
- HIPAA: health information, and every personal-data column of a dataset that has a health column (HIPAA
  identifiers next to health data are protected health information);
- secrets (passwords, tokens, keys) touch no privacy framework but are scored like any sensitive field.

A governance gap is a risky column with no sign of protection: values matching a PII pattern in clear
text, or a sensitive name without ``encrypted/hashed/masked/tokenized/...`` in it.

Row-level issues: each sampled value that matches a PII pattern in a text column (or an integer column
found to hold card numbers) whose name does not mark it as sensitive (severity ``info``); the value is shown
masked (first two characters).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import polars as pl

from agents.columns import normalised_name
from agents.envelope import (
    ROW_INDEX_COLUMN,
    AgentInputs,
    AgentResult,
    Progress,
    Severity,
    SummaryCard,
    data_columns,
    format_text,
)
from agents.findings import Findings, collect_row_issues
from agents.params.score_risk import ScoreRiskParams
from agents.profile.pii import pii_type_by_name, value_pii_kind
from agents.quality.report import (
    PiiScan,
    dominant_pattern,
    quality_result,
    scan_pii,
)

AGENT_ID = "score-risk"
AGENT_NAME = "Risk Scorer"
NAME_POINTS = 60
VALUE_POINTS = 80

SECRET_NAME = re.compile(r"password|passwd|(^|_)pwd(_|$)|secret|api_?key|(^|_)token(_|$)|private_?key|credential")
HEALTH_NAME = re.compile(
    r"patient|medical|diagnos|health|(^|_)mrn(_|$)|(^|_)icd(_?\d+)?(_|$)|prescription|treatment|clinical"
    r"|blood_?type|allerg|medication"
)
PROTECTED_NAME = re.compile(r"encrypt|hash|mask|tokeni[sz]ed|pseudonym|anonymi[sz]ed|redact|(^|_)enc(_|$)")

PERSONAL_FRAMEWORKS = ("GDPR", "CCPA")
FRAMEWORKS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "email": PERSONAL_FRAMEWORKS,
    "phone": PERSONAL_FRAMEWORKS,
    "name": PERSONAL_FRAMEWORKS,
    "address": PERSONAL_FRAMEWORKS,
    "postal_code": PERSONAL_FRAMEWORKS,
    "ip_address": PERSONAL_FRAMEWORKS,
    "date_of_birth": PERSONAL_FRAMEWORKS,
    "ssn": PERSONAL_FRAMEWORKS,
    "passport": PERSONAL_FRAMEWORKS,
    "tax_id": PERSONAL_FRAMEWORKS,
    "iban": PERSONAL_FRAMEWORKS,
    "credit_card": (*PERSONAL_FRAMEWORKS, "PCI-DSS"),
    "health": (*PERSONAL_FRAMEWORKS, "HIPAA"),
    "secret": (),
}
FRAMEWORK_NOTES: dict[str, str] = {
    "GDPR": "personal data: needs a lawful basis (e.g. consent), minimisation and erasure on request",
    "CCPA": "personal information: consumers may access, delete and opt out of its sale",
    "HIPAA": "protected health information: encrypt, restrict access and keep an audit trail",
    "PCI-DSS": "cardholder data: never store it unencrypted; mask it wherever it is displayed",
}
FRAMEWORK_SEVERITY: dict[str, Any] = {"GDPR": "critical", "HIPAA": "critical", "PCI-DSS": "critical", "CCPA": "high"}
FRAMEWORK_MAPPING_DOC: dict[str, str] = {
    "GDPR": "every personal-data type and health information",
    "CCPA": "every personal-data type and health information",
    "PCI-DSS": "card numbers",
    "HIPAA": "health information, and every personal-data column of a dataset that has a health column",
}
PII_LABELS: dict[str, str] = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "ssn": "a social security number",
    "credit_card": "a card number",
    "ip_address": "an IP address",
    "iban": "an IBAN",
}


def run(inputs: AgentInputs, params: ScoreRiskParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = inputs.primary
    columns = data_columns(frame)
    progress(0.0, f"Scoring personal-data risk of {len(columns)} columns")
    scan = scan_pii(frame, params.pii_sample_size) if params.pii_detection_enabled else None
    progress(0.5, "Mapping sensitive fields to compliance frameworks")

    name_types = {column: sensitive_name_type(column) for column in columns}
    has_health = params.sensitive_field_detection_enabled and "health" in name_types.values()
    schema = frame.schema
    assessments = [
        _assess(column, str(schema[column]), name_types[column], scan, has_health, params) for column in columns
    ]
    summary = _risk_summary(assessments, params)
    progress(0.8, "Checking sampled values of unlabelled columns")
    # an integer column's values are shown only when the column holds card numbers: a lone Luhn-valid id is not one
    by_value = {item["field_name"] for item in assessments if item["detection"]["by_value"] is not None}
    unlabelled = (
        [
            column
            for column in columns
            if name_types[column] is None and (column not in scan.integers or column in by_value)
        ]
        if scan is not None
        else []
    )
    row_issues = collect_row_issues(_unlabelled_pii_queries(scan, unlabelled), limit=1_000_000) if scan else None
    unlabelled_matches = row_issues.height if row_issues is not None else 0
    findings = _findings(assessments, summary, row_issues, params)

    summary_metrics = {
        "total_fields_analyzed": len(columns),
        "fields_with_high_risk": summary["high_risk_fields"],
        "fields_with_medium_risk": summary["medium_risk_fields"],
        "fields_with_low_risk": summary["low_risk_fields"],
        "pii_fields_detected": summary["pii_fields_detected"],
        "sensitive_fields_detected": summary["sensitive_fields_detected"],
        "governance_gaps": summary["governance_gaps"],
        "overall_risk_score": summary["overall_risk_score"],
        "compliance_frameworks_impacted": len(summary["compliance_frameworks_impacted"]),
        "unlabelled_pii_values": unlabelled_matches,
    }
    data = {
        "field_risk_assessments": assessments,
        "risk_summary": summary,
        "pii_sample_rows": scan.sample.height if scan is not None else 0,
        "scoring": {
            "sensitive_name_points": NAME_POINTS,
            "pii_value_points": VALUE_POINTS,
            "cap": 100,
            "pii_value_rule": f"more than {params.pii_match_threshold:.0%} of sampled non-null values of a text "
            "column fully match one pattern, or of an integer column are card numbers (issuer prefix, 13-19 "
            "digits, Luhn check)",
            "overall_risk_score": "mean of the field risk scores over all columns",
            "frameworks": FRAMEWORK_MAPPING_DOC,
        },
    }
    progress(1.0, "Risk scoring complete")
    return quality_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=data,
        findings=findings,
        cards=_cards(summary, len(columns)),
        row_issues=row_issues,
    )


def sensitive_name_type(column: str) -> str | None:
    """The personal-data type the column's name marks (the profiler's name patterns), else ``secret`` or
    ``health``, else None."""
    pii_type = pii_type_by_name(column)
    if pii_type is not None:
        return pii_type
    name = normalised_name(column)
    if SECRET_NAME.search(name):
        return "secret"
    if HEALTH_NAME.search(name):
        return "health"
    return None


def _assess(
    column: str, dtype: str, name_type: str | None, scan: PiiScan | None, has_health: bool, params: ScoreRiskParams
) -> dict[str, Any]:
    factors: list[dict[str, Any]] = []
    score = 0
    named = name_type if params.sensitive_field_detection_enabled else None
    if named is not None:
        score += NAME_POINTS
        factors.append({"factor": "sensitive_field_name", "sensitive_type": named, "points": NAME_POINTS})
    signals = scan.signals.get(column) if scan is not None else None
    best_type, share = dominant_pattern(signals)
    value_type = best_type if best_type is not None and share > params.pii_match_threshold else None
    if value_type is not None and signals is not None:
        score += VALUE_POINTS
        factors.append(
            {
                "factor": "pii_detected",
                "pii_type": value_type,
                "match_share": round(share, 4),
                "confidence": round(share, 4),
                "sample_size": signals.sample_size,
                "points": VALUE_POINTS,
            }
        )
    score = min(100, score)
    level = risk_level(score, params)
    pii_type = value_type or (named if named not in {"secret", "health", None} else None)
    sensitive_type = value_type or named

    frameworks: list[str] = []
    compliance_issues: list[str] = []
    governance_gap = False
    if params.governance_check_enabled and sensitive_type is not None:
        found = set(FRAMEWORKS_BY_TYPE.get(sensitive_type, PERSONAL_FRAMEWORKS))
        if has_health and pii_type is not None:
            found.add("HIPAA")
        frameworks = sorted(found)
        compliance_issues = [f"{framework}: {FRAMEWORK_NOTES[framework]}" for framework in frameworks]
        protected = bool(PROTECTED_NAME.search(normalised_name(column)))
        governance_gap = value_type is not None or not protected
        if governance_gap:
            compliance_issues.append(
                "Sensitive values stored in clear text" if value_type else "No sign of encryption or masking"
            )
    return {
        "field_id": column,
        "field_name": column,
        "data_type": dtype,
        "risk_score": score,
        "risk_level": level,
        "risk_factors": factors,
        "pii_type": pii_type,
        "sensitive_type": sensitive_type,
        "detection": {
            "by_name": named,
            "by_value": value_type,
            "best_value_pattern": best_type,
            "value_match_share": round(share, 4) if signals is not None else None,
            "sample_size": signals.sample_size if signals is not None else None,
        },
        "compliance_frameworks": frameworks,
        "compliance_issues": compliance_issues,
        "governance_gap": governance_gap,
        "remediation_priority": level,
        "remediation_effort": "high" if value_type else "medium" if named else "low",
    }


def risk_level(score: float, params: ScoreRiskParams) -> str:
    if score >= params.high_risk_threshold:
        return "high"
    if score >= params.medium_risk_threshold:
        return "medium"
    return "low"


def _risk_summary(assessments: list[dict[str, Any]], params: ScoreRiskParams) -> dict[str, Any]:
    levels = Counter(item["risk_level"] for item in assessments)
    overall = round(sum(item["risk_score"] for item in assessments) / len(assessments), 2) if assessments else 0.0
    frameworks: dict[str, list[str]] = {}
    for item in assessments:
        for framework in item["compliance_frameworks"]:
            frameworks.setdefault(framework, []).append(item["field_name"])
    return {
        "overall_risk_score": overall,
        "overall_risk_level": risk_level(overall, params),
        "high_risk_fields": levels["high"],
        "medium_risk_fields": levels["medium"],
        "low_risk_fields": levels["low"],
        "high_risk_field_names": [item["field_name"] for item in assessments if item["risk_level"] == "high"],
        "medium_risk_field_names": [item["field_name"] for item in assessments if item["risk_level"] == "medium"],
        "pii_fields_detected": sum(item["pii_type"] is not None for item in assessments),
        "pii_fields_by_value": sum(item["detection"]["by_value"] is not None for item in assessments),
        "sensitive_fields_detected": sum(item["detection"]["by_name"] is not None for item in assessments),
        "governance_gaps": sum(item["governance_gap"] for item in assessments),
        "compliance_frameworks_impacted": sorted(frameworks),
        "fields_by_framework": {name: frameworks[name] for name in sorted(frameworks)},
    }


def _unlabelled_pii_queries(scan: PiiScan | None, columns: list[str]) -> list[pl.LazyFrame]:
    """One query over the sample in long form (a row per column and sampled value, column after column):
    the same expressions whatever the number of columns."""
    names = [column for column in columns if scan is not None and column in scan.signals]
    if scan is None or not names:
        return []
    long = (
        scan.sample.select(ROW_INDEX_COLUMN, *(pl.col(column).cast(pl.String) for column in names))
        .unpivot(on=names, index=ROW_INDEX_COLUMN, variable_name="column", value_name="sampled")
        .lazy()
    )
    values = pl.col("sampled").str.strip_chars()
    integers = sorted(scan.integers.intersection(names))
    matched = (
        pl.when(pl.col("column").is_in(integers))
        .then(value_pii_kind(values, integer=True))
        .otherwise(value_pii_kind(values, integer=False))
        if integers
        else value_pii_kind(values, integer=False)
    )
    label = matched.replace_strict(PII_LABELS, default=matched)
    query = long.filter(matched.is_not_null()).select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
        pl.col("column").cast(pl.String),
        pl.lit("pii_in_unlabelled_column", dtype=pl.String).alias("issue_type"),
        pl.lit("info", dtype=pl.String).alias("severity"),
        format_text("Value looks like {} but the column name does not mark personal data", label).alias("message"),
        (values.str.slice(0, 2) + pl.lit("***")).alias("value"),
    )
    return [query]


def _findings(
    assessments: list[dict[str, Any]],
    summary: dict[str, Any],
    row_issues: pl.DataFrame | None,
    params: ScoreRiskParams,
) -> Findings:
    findings = Findings(AGENT_ID)
    _overall_risk_alert(findings, summary)
    _risk_count_alerts(findings, summary, params)
    _sensitive_data_alerts(findings, assessments, summary)
    _unlabelled_pii_alert(findings, row_issues)
    for item in assessments:
        if item["risk_level"] == "low":
            continue
        _field_issues(findings, item)
        _field_recommendation(findings, item)
    return findings


def _overall_risk_alert(findings: Findings, summary: dict[str, Any]) -> None:
    overall, level = summary["overall_risk_score"], summary["overall_risk_level"]
    high, medium = summary["high_risk_fields"], summary["medium_risk_fields"]
    if level == "high":
        findings.alert(
            "risk_compliance",
            "critical",
            f"Overall risk score {overall:.1f}/100 (HIGH): the dataset holds high-risk data",
            f"Secure the {high} high-risk field(s): encryption, access control, audit logging",
            affected=high,
            recommend=True,
        )
    elif level == "medium":
        findings.alert(
            "risk_compliance",
            "high",
            f"Overall risk score {overall:.1f}/100 (MEDIUM): the dataset holds sensitive data",
            f"Review the controls of the {high + medium} at-risk field(s)",
            affected=high + medium,
            recommend=True,
        )
    else:
        findings.alert(
            "risk_compliance",
            "low",
            f"Overall risk score {overall:.1f}/100 (LOW)",
            "Keep monitoring data security and compliance",
            affected=summary["low_risk_fields"],
            recommend=False,
        )


def _risk_count_alerts(findings: Findings, summary: dict[str, Any], params: ScoreRiskParams) -> None:
    """PII found, and how many fields scored high or medium risk."""
    high, medium = summary["high_risk_fields"], summary["medium_risk_fields"]
    if summary["pii_fields_detected"]:
        findings.alert(
            "pii_detected",
            "critical",
            f"{summary['pii_fields_detected']} field(s) hold personally identifiable information",
            "Encrypt PII at rest, restrict and log access, set retention periods, minimise what is kept",
            affected=summary["pii_fields_detected"],
            recommend=True,
        )
    if high:
        findings.alert(
            "high_risk_fields",
            "critical" if high > 5 else "high",
            f"{high} field(s) scored high risk (>= {params.high_risk_threshold:g})",
            "Encrypt or tokenise the high-risk fields and restrict access to them",
            affected=high,
            recommend=False,
        )
    if medium:
        findings.alert(
            "medium_risk_fields",
            "medium",
            f"{medium} field(s) scored medium risk (>= {params.medium_risk_threshold:g})",
            "Consider masking or tokenising the medium-risk fields",
            affected=medium,
            recommend=False,
        )


def _sensitive_data_alerts(findings: Findings, assessments: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Secrets and health data, unprotected sensitive fields, and each compliance framework in scope."""
    sensitive_not_pii = [item for item in assessments if item["sensitive_type"] in {"secret", "health"}]
    if sensitive_not_pii:
        names = ", ".join(item["field_name"] for item in sensitive_not_pii[:5])
        findings.alert(
            "sensitive_data",
            "high",
            f"{len(sensitive_not_pii)} field(s) hold secrets or health data: {names}",
            "Store secrets hashed or in a vault; treat health data as special-category data",
            affected=len(sensitive_not_pii),
            recommend=True,
        )
    if summary["governance_gaps"]:
        findings.alert(
            "governance_gaps",
            "high",
            f"{summary['governance_gaps']} sensitive field(s) show no sign of encryption or masking",
            "Encrypt, hash or mask the sensitive fields and document who may read them",
            affected=summary["governance_gaps"],
            recommend=True,
        )
    for framework, fields in summary["fields_by_framework"].items():
        findings.alert(
            f"compliance_{framework.lower().replace('-', '_')}",
            FRAMEWORK_SEVERITY[framework],
            f"{framework}: {len(fields)} field(s) in scope ({', '.join(fields[:5])})",
            f"{framework}: {FRAMEWORK_NOTES[framework]}",
            affected=len(fields),
            recommend=True,
        )


def _unlabelled_pii_alert(findings: Findings, row_issues: pl.DataFrame | None) -> None:
    if row_issues is not None and row_issues.height:
        columns = sorted(set(row_issues["column"].to_list()))
        findings.alert(
            "pii_in_unlabelled_columns",
            "medium",
            f"{row_issues.height} sampled value(s) look like personal data in column(s) whose names do not say "
            f"so: {', '.join(columns[:5])}",
            "Check these columns for personal data and rename or protect them",
            affected=len(columns),
            recommend=True,
        )


def _field_issues(findings: Findings, item: dict[str, Any]) -> None:
    """An at-risk field's issues: its risk, each risk factor, and each compliance issue."""
    name, score = item["field_name"], item["risk_score"]
    findings.issue(
        "pii_or_sensitive_data",
        "critical" if item["risk_level"] == "high" else "high",
        f"{name}: risk {score}/100 ({item['risk_level'].upper()})",
        field_name=name,
        details={"risk_score": score},
    )
    for factor in item["risk_factors"]:
        if factor["factor"] == "pii_detected":
            findings.issue(
                f"pii_{factor['pii_type']}",
                "critical",
                f"{name}: {factor['match_share']:.0%} of {factor['sample_size']} sampled values look like "
                f"{PII_LABELS.get(factor['pii_type'], factor['pii_type'])}",
                field_name=name,
                details={"match_share": factor["match_share"]},
            )
        else:
            findings.issue(
                "sensitive_personal_data",
                "high",
                f"{name}: the name marks {factor['sensitive_type'].replace('_', ' ')} data",
                field_name=name,
            )
    for text in item["compliance_issues"]:
        framework = text.split(":", 1)[0]
        findings.issue(
            "compliance_violation" if framework in FRAMEWORK_NOTES else "governance_gap",
            FRAMEWORK_SEVERITY.get(framework, "high"),
            f"{name}: {text}",
            field_name=name,
        )


def _field_recommendation(findings: Findings, item: dict[str, Any]) -> None:
    name, score = item["field_name"], item["risk_score"]
    priority: Severity = "critical" if item["risk_level"] == "high" else "high"
    action = (
        "Encrypt (AES-256), restrict access (RBAC) and log reads of" if priority == "critical" else "Mask or tokenise"
    )
    findings.recommend(f"{action} '{name}' (risk {score}/100)", priority, field_name=name, owner="data_security")


def _cards(summary: dict[str, Any], columns: int) -> list[SummaryCard]:
    overall, level = summary["overall_risk_score"], summary["overall_risk_level"]
    frameworks = summary["compliance_frameworks_impacted"]
    pii = summary["pii_fields_detected"]
    return [
        SummaryCard(
            "risk-level",
            "Risk level",
            f"{overall:.1f} ({level.upper()})",
            "critical" if level == "high" else "warning" if level == "medium" else "good",
            f"Mean field risk over {columns} columns",
        ),
        SummaryCard(
            "pii-fields",
            "Fields with personal data",
            str(pii),
            "warning" if pii else "good",
            f"{summary['pii_fields_by_value']} confirmed by sampled values",
        ),
        SummaryCard(
            "high-risk-fields",
            "High-risk fields",
            str(summary["high_risk_fields"]),
            "critical" if summary["high_risk_fields"] else "good",
            f"{summary['medium_risk_fields']} medium, {summary['low_risk_fields']} low",
        ),
        SummaryCard(
            "compliance",
            "Compliance frameworks",
            ", ".join(frameworks) if frameworks else "none",
            "warning" if frameworks else "good",
            "Frameworks whose rules apply to fields of this dataset",
        ),
    ]
