"""A range for a text column none of whose values reads as a number (QA #3): ``range_constraints: {"name": {"min":
0, "max": 5}}`` on names completed with 0 rows checked and no alert. It is now refused (INVALID_PARAMETERS naming
the column), as the searcher refuses a numeric range on a text column, in memory and streamed. A text column of
numbers is still checked as numbers (its other values are the type check's business)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.options import RunOptions

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
AGENT = "quarantine-agent"


def ignore_progress(*_: object) -> None:
    return None


def _run(tmp_path: Path, text: str, ranges: dict[str, Any], mode: str) -> dict[str, Any]:
    path = tmp_path / "primary.csv"
    path.write_text(text, encoding="utf-8")
    parameters = {AGENT: {"range_constraints": ranges}}
    return run_tool(
        "clean-my-data",
        [AGENT],
        {path.name: path},
        parameters,
        tmp_path / "out",
        ignore_progress,
        run_options=MODES[mode],
    )


DATA = "id,name,score,code,blank\n1,alice,3,7,\n2,bob,9,x12,\n3,NA,1,4,\n4,carol,,5,\n"


@pytest.mark.parametrize("mode", MODES)
def test_a_range_on_a_text_column_of_words_is_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        _run(tmp_path, DATA, {"name": {"min": 0, "max": 5}}, mode)
    message = str(caught.value)
    assert "'name'" in message and "a numeric range needs a numeric column" in message
    assert caught.value.field == "range_constraints.name"


@pytest.mark.parametrize("mode", MODES)
def test_a_text_column_of_numbers_is_checked_as_numbers(tmp_path: Path, mode: str) -> None:
    """``code`` is text ("x12" among numbers): 7 is above 6, "x12" is left to the type check."""
    result = _run(tmp_path, DATA, {"code": {"min": 0, "max": 6}, "score": {"max": 5}, "blank": {"min": 0}}, mode)
    assert result["status"] == "success"
    with (tmp_path / "out" / "cleaned_data.csv").open(newline="", encoding="utf-8") as handle:
        kept = [row["id"] for row in csv.DictReader(handle)]
    assert kept == ["3", "4"]  # row 1: code 7 > 6; row 2: score 9 > 5
