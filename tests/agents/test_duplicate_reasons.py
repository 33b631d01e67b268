"""duplicate-resolver calls a duplicate exact only when its rows cannot differ in the file (QA #17): rows equal once
missing-value tokens and numbers are read (``2,NA,y`` and ``2,,y``; ``3,4.0,z`` and ``3,4,z``) are duplicates in
meaning and still removed, but their reason says "equal after reading values". The agent sees values, not text: a
column is suspect when an earlier step's record shows it turned cells of it into nulls (their null cells) or rewrote
the text of its values (its filled cells). In memory, streamed, and through the clean chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.clean import duplicates
from agents.envelope import ChainContext
from agents.options import RunOptions
from agents.params.duplicate_resolver import DuplicateResolverParams
from tests.agents.clean_support import ROW, indexed
from tests.agents.streamed_support import assert_same_streamed_run, run_in_memory

READ = "equal after reading values"


def typed_rows() -> pl.DataFrame:
    """The QA file once read: b's "NA" and "" both null, its "4.0" and "4" both 4."""
    return indexed(
        {"a": [1, 1, 2, 2, 3, 3], "b": [None, None, None, None, 4, 4], "c": list("xxyyzz")}, [1, 2, 3, 4, 5, 6]
    )


def type_fixer_step(cells_changed: int) -> dict[str, Any]:
    """The type-fixer's record: b read from text, one token made null (and ``cells_changed - 1`` values rewritten)."""
    unchanged = {"dtype_before": "Int64", "dtype_after": "Int64", "nulls_before": 0, "nulls_after": 0}
    return {
        "step": 3,
        "agent_id": "type-fixer",
        "columns": {
            "a": {**unchanged, "cells_changed": 0},
            "b": {
                "dtype_before": "String",
                "dtype_after": "Int64",
                "nulls_before": 3,
                "nulls_after": 4,
                "cells_changed": cells_changed,
            },
            "c": {**unchanged, "dtype_before": "String", "dtype_after": "String", "cells_changed": 0},
        },
    }


def reasons(context: ChainContext, tmp_path: Path) -> dict[int, str]:
    frame = typed_rows()
    params = DuplicateResolverParams()
    result = assert_same_streamed_run(duplicates.run, frame, params, tmp_path, 2, context=context)
    assert run_in_memory(duplicates.run, frame, params, context=context).removed is not None
    assert result.removed is not None and result.removed[ROW].to_list() == [2, 4, 6]  # duplicates all the same
    return dict(zip(result.removed[ROW].to_list(), result.removed["reason"].to_list(), strict=True))


def test_without_earlier_steps_equal_rows_are_exact(tmp_path: Path) -> None:
    assert reasons(ChainContext(), tmp_path) == {
        2: "duplicate of row 1 (exact)",
        4: "duplicate of row 3 (exact)",
        6: "duplicate of row 5 (exact)",
    }


def test_null_cells_of_a_column_whose_tokens_were_read_are_not_exact(tmp_path: Path) -> None:
    """Only a token became null in b: its filled cells are as written, its empty ones may have been "" or "NA"."""
    context = ChainContext(steps=[type_fixer_step(cells_changed=1)])
    assert reasons(context, tmp_path) == {
        2: f"duplicate of row 1 ({READ})",
        4: f"duplicate of row 3 ({READ})",
        6: "duplicate of row 5 (exact)",
    }


def test_values_of_a_column_whose_text_was_rewritten_are_not_exact(tmp_path: Path) -> None:
    """b's "4.0" was written back as 4 (a cell changed beyond the token): its filled cells may differ too."""
    context = ChainContext(steps=[type_fixer_step(cells_changed=2)])
    assert set(reasons(context, tmp_path).values()) == {f"duplicate of row {row} ({READ})" for row in (1, 3, 5)}


def run_clean(tmp_path: Path, text: str, streamed: bool) -> pl.DataFrame:
    source = tmp_path / "primary.csv"
    source.write_text(text)
    options = RunOptions(streaming_threshold_bytes=0 if streamed else None)
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, lambda *_: None, run_options=options)
    assert result["summary"]["inputs"]["primary"].get("streamed", False) is streamed
    return pl.read_csv(out / "quarantine.csv", infer_schema=False)


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
def test_the_clean_chain_does_not_call_rows_differing_in_the_file_exact(tmp_path: Path, streamed: bool) -> None:
    quarantine = run_clean(tmp_path, "a,b,c\n1,,x\n1,,x\n2,NA,y\n2,,y\n3,4.0,z\n3,4,z\n", streamed)
    assert quarantine["row_index"].to_list() == ["2", "4", "6"]  # duplicates in meaning: removed
    assert quarantine["reason"].to_list() == [f"duplicate of row {row} ({READ})" for row in (1, 3, 5)]


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
def test_the_clean_chain_still_calls_copies_exact(tmp_path: Path, streamed: bool) -> None:
    """Copies whose columns no step rewrote, or whose filled cells it did not (b's token made null elsewhere)."""
    quarantine = run_clean(tmp_path, "a,b,c\n1,5.5,x\n1,5.5,x\n2,NA,y\n3,7.5,z\n3,7.5,z\n", streamed)
    assert quarantine["reason"].to_list() == ["duplicate of row 1 (exact)", "duplicate of row 4 (exact)"]
