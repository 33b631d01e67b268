"""Data columns named as the chain's own bookkeeping (``reason``, ``agent_id``, ``row_index``): real files have a
``reason`` column (a cancellation's, a visit's). Before, the default duplicate-resolver failed on one (a Polars
DuplicateError) and quarantine.csv could not be written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from agents.chain import run_tool
from agents.options import RunOptions

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
ROWS = (
    "id,reason,agent_id,row_index,amount,note\n"
    "1,late,x,5,10,\n"
    "1,late,x,5,10,\n"  # an exact duplicate of the row above
    "2,early,y,6,,keep\n"
    "3,late,z,7,500000,\n"
    "4,early,y,8,12,\n"
    "5,late,x,9,11,\n"
    "6,early,y,10,13,\n"
)
REMOVING = {
    "quarantine-agent": {"required_fields": ["note"]},
    "null-handler": {"global_strategy": "drop_rows"},
    "outlier-remover": {"detection_method": "iqr", "removal_strategy": "remove", "columns": ["amount"]},
}


def ignore(*_: object) -> None:
    return None


def rows_of(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("parameters", [{}, REMOVING], ids=["defaults", "removing"])
def test_columns_named_like_the_quarantine_s_own(tmp_path: Path, mode: str, parameters: dict[str, object]) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(ROWS, encoding="utf-8")
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": source}, parameters, out, ignore, run_options=MODES[mode])
    failed = {agent: item["error"] for agent, item in result["agents"].items() if item["status"] != "success"}
    assert failed == {}
    cleaned, quarantine = rows_of(out / "cleaned_data.csv"), rows_of(out / "quarantine.csv")
    assert cleaned[0] == ["id", "reason", "agent_id", "row_index", "amount", "note"]
    # the quarantine's own columns step aside: each name once, the input's columns as they are
    assert quarantine[0] == [
        "_row_index",
        "_agent_id",
        "_reason",
        "id",
        "reason",
        "agent_id",
        "row_index",
        "amount",
        "note",
    ]
    removed = {int(row[0]): (row[1], row[2], row[3:]) for row in quarantine[1:]}
    if parameters:  # its empty note removes it first
        assert removed[2][0] == "quarantine-agent" and "note" in removed[2][1]
    else:
        assert removed[2][0] == "duplicate-resolver" and "duplicate of row 1" in removed[2][1]
    assert removed[2][2] == ["1", "late", "x", "5", "10", ""]  # the input's values, its own "reason" among them
    assert len(cleaned) - 1 + len(quarantine) - 1 == 7  # every input row accounted for
    if parameters:
        assert {row[1] for row in quarantine[1:]} == {"quarantine-agent", "null-handler"}
