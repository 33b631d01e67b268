"""Schemathesis hooks of tests/service/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

The agents' parameter models check relations JSON Schema cannot state (thresholds in order, `min` ≤ `max`, a
preview rule that drops columns names them), so a create whose inline parameters fit the document can still
be refused: 422 INVALID_PARAMETERS, and only that. positive_data_acceptance admits a 422 for the create route
(see CONFIG there); this check makes sure such a 422 is never anything else.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def create_refusals_are_parameter_relations(ctx: Any, response: Any, case: Any) -> bool | None:
    if case.operation.label != "POST /api/v1/tasks" or response.status_code != 422:
        return None
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    error = response.json().get("error", {})
    if error.get("code") != "INVALID_PARAMETERS":
        raise AssertionError(f"a schema-valid create was refused with {error.get('code')}: {error.get('message')}")
    return True
