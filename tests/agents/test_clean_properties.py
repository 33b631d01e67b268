"""Hypothesis properties shared by cleanse-previewer, quarantine-agent, type-fixer and field-standardization:
no rows added, rows kept + removed = rows in, row order and columns kept."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clean import previewer, quarantine, standardization, type_fixer
from agents.envelope import ROW_INDEX_COLUMN
from agents.errors import InvalidParametersError
from tests.agents.clean_support import (
    PROPERTY_SETTINGS,
    frames,
    params_for,
    run_agent,
)


@pytest.mark.parametrize("module", [previewer, quarantine, type_fixer, standardization], ids=lambda m: m.AGENT_ID)
@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_no_agent_adds_or_loses_rows(module: Any, frame: pl.DataFrame, data: st.DataObject) -> None:
    try:
        result = run_agent(module, frame, params_for(module, data))
    except InvalidParametersError as refused:  # a range on a text column none of whose values is a number
        assert module is quarantine and "a numeric range needs a numeric column" in refused.message, refused
        return
    out, removed = result.frame, result.removed
    assert out is not None and removed is not None
    assert out.height <= frame.height and out.height + removed.height == frame.height
    kept, dropped = out[ROW_INDEX_COLUMN].to_list(), removed[ROW_INDEX_COLUMN].to_list()
    assert not set(kept) & set(dropped)
    assert sorted(kept + dropped) == frame[ROW_INDEX_COLUMN].to_list()
    assert kept == [row for row in frame[ROW_INDEX_COLUMN].to_list() if row not in set(dropped)]  # order kept
    assert removed["reason"].null_count() == 0 and (removed["reason"].str.len_chars() > 0).all()
    assert out.columns == frame.columns
    assert set(result.row_level_issues["row_index"].to_list()) <= set(frame[ROW_INDEX_COLUMN].to_list())
