"""agents.envelope.build_issue_summary: the same issues give the same summary, keys in the same order, whatever
the order of the row-level issues (the JSON report is compared across runs and cached results)."""

from __future__ import annotations

import json
import random

import polars as pl

from agents.envelope import ROW_LEVEL_ISSUE_SCHEMA, build_issue_summary


def test_the_summary_keys_come_in_one_order_whatever_the_row_order() -> None:
    kinds = [("outlier_zscore", "medium"), ("missing_value", "low"), ("invalid_email", "high"), ("pattern", "low")]
    rows = [
        {"row_index": i, "column": f"c{i % 3}", "issue_type": kind, "severity": severity, "message": "", "value": ""}
        for i, (kind, severity) in enumerate(kinds * 50)
    ]
    issues = [{"issue_type": "pattern", "severity": "info", "field_name": "c1"}]
    summaries = set()
    for seed in range(20):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        summary = build_issue_summary(issues, pl.DataFrame(shuffled, schema=ROW_LEVEL_ISSUE_SCHEMA))
        summaries.add(json.dumps(summary))  # key order included
    assert len(summaries) == 1
    summary = json.loads(summaries.pop())
    assert summary["by_type"] == {"pattern": 51, "invalid_email": 50, "missing_value": 50, "outlier_zscore": 50}
    assert list(summary["by_type"]) == ["pattern", "invalid_email", "missing_value", "outlier_zscore"]
    assert summary["by_severity"] == {"info": 1, "high": 50, "low": 100, "medium": 50}
    assert summary["total_issues"] == 201
