"""Filling missing cells with a bare missing-value token (QA8 re-check N6: ``fill missing allergy with None`` wrote
the text ``None``, which every later read takes for missing, while ``= None`` in a condition means an empty cell):
refused saying why; a quoted token is the text the user insists on, and ``none`` is a word."""

from __future__ import annotations

import pytest

from agents.errors import InvalidParametersError
from agents.params.transformer import TransformerParams
from agents.transform.resolve import resolve


@pytest.mark.parametrize("token", ["None", "NA", "null", "N/A", "NaN"])
def test_a_bare_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        resolve(TransformerParams(commands=[f"fill missing allergy with {token}"]), {"allergy": "String"})
    assert f"'{token}' is a missing-value token" in str(caught.value)


@pytest.mark.parametrize(("written", "value"), [('"N/A"', "N/A"), ("none", "none"), ("unknown", "unknown")])
def test_a_quoted_token_or_a_word_fills(written: str, value: str) -> None:
    resolved = resolve(TransformerParams(commands=[f"fill missing allergy with {written}"]), {"allergy": "String"})
    assert resolved.operations == [{"op": "fill_nulls", "columns": ["allergy"], "strategy": "constant", "value": value}]
