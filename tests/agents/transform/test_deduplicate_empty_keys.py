"""``deduplicate on email``: an empty key equals nothing, so rows without an e-mail are never removed as duplicates of
each other (QA pass 4, #8: "keeping last" on a sign-up list kept one e-mail-less sign-up of all); whole equal rows,
empty cells included, still are. In memory, streamed, and streamed in buckets (agents.external)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents import external
from agents.chain import run_tool
from agents.options import RunOptions
from agents.transform import execute

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
CSV = "name,email,city\nAnn,a@x.com,Oslo\nBob,,Rome\nAnn2,a@x.com,Oslo\nCy,,\nDee,,Rome\nBob,,Rome\n"


def run(tmp_path: Path, commands: list[str], mode: str) -> tuple[list[str], str]:
    source = tmp_path / "primary.csv"
    source.write_text(CSV)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    parameters = {"transformer": {"commands": commands}}
    result = run_tool("transform-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None,
                      run_options=MODES[mode])  # fmt: skip
    assert result["status"] == "success", result["agents"]
    steps = result["agents"]["transformer"]["data"]["steps"]
    return (out / "transformed_data.csv").read_text().splitlines()[1:], steps[-1]["sentence"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bucketed", [False, True])
def test_empty_keys_are_not_duplicates(
    tmp_path: Path, mode: str, bucketed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    found: list[object] = []
    if bucketed:
        monkeypatch.setattr(external, "BUCKET_BYTES", 8)  # the keys exceed a bucket: found bucket by bucket

        def duplicates(*args: Any) -> pl.Series | None:
            found.append(external.duplicates_external(*args))
            return found[-1]  # type: ignore[return-value]

        monkeypatch.setattr(execute, "duplicates_external", duplicates)
    rows, sentence = run(tmp_path, ["deduplicate on email keeping last"], mode)
    assert (bucketed and mode == "streamed") == any(item is not None for item in found)
    assert rows == ["Bob,,Rome", "Ann2,a@x.com,Oslo", "Cy,,", "Dee,,Rome", "Bob,,Rome"]
    assert sentence == (
        "Removed 1 duplicate row (same email), keeping the last; rows with an empty email are not duplicates"
    )
    rows, _ = run(tmp_path, ["deduplicate on email, city"], mode)
    assert rows == ["Ann,a@x.com,Oslo", "Bob,,Rome", "Cy,,", "Dee,,Rome", "Bob,,Rome"]


@pytest.mark.parametrize("mode", MODES)
def test_whole_equal_rows_with_empty_cells_are_duplicates(tmp_path: Path, mode: str) -> None:
    rows, sentence = run(tmp_path, ["deduplicate"], mode)
    assert rows == ["Ann,a@x.com,Oslo", "Bob,,Rome", "Ann2,a@x.com,Oslo", "Cy,,", "Dee,,Rome"]
    assert sentence.startswith("Removed 1 duplicate row (identical in every column)")
    assert pl.read_csv(tmp_path / "primary.csv").height == 6


@pytest.mark.parametrize("mode", MODES)
def test_blank_keys_and_a_column_named_like_the_extra_key(tmp_path: Path, mode: str) -> None:
    source = tmp_path / "primary.csv"
    source.write_text('__key_gap__,email\n1,"  "\n2,"  "\n3,a@x.com\n4,a@x.com\n')
    out = tmp_path / "out"
    out.mkdir()
    parameters = {"transformer": {"commands": ["deduplicate on email"]}}
    result = run_tool("transform-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None,
                      run_options=MODES[mode])  # fmt: skip
    assert result["status"] == "success", result["agents"]
    kept = pl.read_csv(out / "transformed_data.csv", infer_schema=False)
    assert kept.columns == ["__key_gap__", "email"]
    assert kept["__key_gap__"].to_list() == ["1", "2", "3"]  # two blank e-mails are two people
