"""quarantine-agent's parameter descriptions say what the agent does: its expected_schema reads text as the
type-fixer converts it by default, so a currency amount or a percentage is no number (the description used to say
"'$1,234' is numeric")."""

from __future__ import annotations

import re

import polars as pl

from agents.clean import quarantine
from agents.params.quarantine_agent import QuarantineAgentParams


def test_the_expected_schema_examples_are_what_quarantine_does() -> None:
    description = QuarantineAgentParams.model_fields["expected_schema"].description or ""
    numeric = re.findall(r"'([^']*)' is numeric", description)
    refused = re.search(r";([^;:]*) are not numbers", description)
    not_numbers = re.findall(r"'([^']*)'", refused[1]) if refused else []
    assert numeric and not_numbers, description
    values = pl.Series([*numeric, *not_numbers])
    read = pl.select(quarantine._number(pl.lit(values))).to_series()
    assert read.is_not_null().to_list() == [True] * len(numeric) + [False] * len(not_numbers), description
