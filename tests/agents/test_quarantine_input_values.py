"""quarantine.csv shows each removed row as the input held it (padding, missing-value tokens, dates and amounts as
written), not as the agents before its removal had changed it: in memory from the input frame the chain keeps, streamed
from the input's spill (agents.streamed.StreamFlow). A row the input lacks (an agent added it) shows its values when
removed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict

from agents import registry
from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult, Envelope, Progress
from agents.options import RunOptions

HEADER = "id,name,amount,day,ratio"
MESSY = [  # each written twice: the duplicate-resolver removes the second
    "1,  Ann ,$12,05/01/2024,0.10",
    "2,bob  smith,N/A,null,1.25",
    '3,Zoë,"$1,200",07/01/2024,2.50',
    "4,,12.50,,",
]
CHAIN = ["type-fixer", "field-standardization", "duplicate-resolver"]


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    lines = [f"{i},name {i % 7},${i}.00,0{i % 9 + 1}/02/2024,{i % 5}.75" for i in range(10, 60)]
    path = tmp_path / "primary.csv"
    path.write_text("\n".join([HEADER, *lines, *MESSY, *MESSY]) + "\n", encoding="utf-8")
    return path


def _run(csv: Path, out: Path, streamed: bool, chain: list[str] = CHAIN) -> dict[str, Any]:
    options = RunOptions(streaming_threshold_bytes=0 if streamed else None)
    return run_tool("clean-my-data", chain, {"primary.csv": csv}, {}, out, lambda *_: None, run_options=options)


def _as_text(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
def test_quarantined_rows_show_the_input_values(tmp_path: Path, csv: Path, streamed: bool) -> None:
    result = _run(csv, tmp_path / "out", streamed)
    assert result["summary"]["inputs"]["primary"].get("streamed", False) is streamed
    quarantine = _as_text(tmp_path / "out" / "quarantine.csv")
    assert quarantine["agent_id"].unique().to_list() == ["duplicate-resolver"]
    assert quarantine["row_index"].cast(pl.Int64).to_list() == list(range(55, 59))  # the second copies
    data = quarantine.select(HEADER.split(","))
    source = _as_text(csv).with_row_index(ROW_INDEX_COLUMN, offset=1)
    wanted = source.filter(pl.col(ROW_INDEX_COLUMN).is_between(55, 58)).drop(ROW_INDEX_COLUMN)
    assert data.rows() == wanted.rows()
    assert data.rows()[:2] == [
        ("1", "  Ann ", "$12", "05/01/2024", "0.10"),
        ("2", "bob  smith", "N/A", "null", "1.25"),
    ]
    cleaned = _as_text(tmp_path / "out" / "cleaned_data.csv")  # the agents did change these rows' values
    assert "  Ann " not in cleaned["name"].to_list() and "N/A" not in cleaned["amount"].to_list()


def test_streamed_and_in_memory_quarantines_are_the_same_bytes(tmp_path: Path, csv: Path) -> None:
    _run(csv, tmp_path / "memory", streamed=False)
    _run(csv, tmp_path / "streamed", streamed=True)
    memory = (tmp_path / "memory" / "quarantine.csv").read_bytes()
    assert memory == (tmp_path / "streamed" / "quarantine.csv").read_bytes()
    assert memory.count(b"\n") == 1 + len(MESSY)


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


ADDED = 10_000  # the row index of the row the first agent adds


def _add_row(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    """Adds a row of its own (one the input lacks) and uppercases every name."""
    envelope = Envelope(status="success", agent_id="a", agent_name="A")
    extra = pl.DataFrame({ROW_INDEX_COLUMN: [ADDED], "name": ["ADDED"]}, schema_overrides={ROW_INDEX_COLUMN: pl.Int64})
    if inputs.scan is not None:
        scan = pl.concat([inputs.scan, extra.lazy()], how="diagonal_relaxed")
        return AgentResult(envelope, scan=scan.with_columns(pl.col("name").str.to_uppercase()))
    frame = pl.concat([inputs.primary, extra], how="diagonal_relaxed")
    return AgentResult(envelope, frame=frame.with_columns(pl.col("name").str.to_uppercase()))


def _drop_added_and_first(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    """Removes the added row and the input's first row."""
    envelope = Envelope(status="success", agent_id="b", agent_name="B")
    kept = ~pl.col(ROW_INDEX_COLUMN).is_in([ADDED, 1])
    if inputs.scan is not None:
        return AgentResult(envelope, scan=inputs.scan.filter(kept))
    return AgentResult(envelope, frame=inputs.primary.filter(kept))


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
def test_a_row_the_input_lacks_shows_its_values_when_removed(
    tmp_path: Path, csv: Path, streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for agent_id, run in (("type-fixer", _add_row), ("duplicate-resolver", _drop_added_and_first)):
        spec = dataclasses.replace(registry.AGENTS[agent_id], parameters_model=NoParams, run=run)
        monkeypatch.setitem(registry.AGENTS, agent_id, spec)
    result = _run(csv, tmp_path / "out", streamed, ["type-fixer", "duplicate-resolver"])
    assert result["summary"]["inputs"]["primary"].get("streamed", False) is streamed
    assert result["summary"]["rows_quarantined"] == 2
    quarantine = _as_text(tmp_path / "out" / "quarantine.csv")
    assert quarantine.select("row_index", "id", "name").rows() == [
        ("1", "10", "NAME 3"),  # the input lacks row 10000: the rows are as the agent before left them
        (str(ADDED), None, "ADDED"),
    ]
