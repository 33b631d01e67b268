"""The profile's null counts equal pandas' ``read_csv`` (README "Missing values", QA #17): every token of pandas'
default ``na_values`` (``STR_NA_VALUES`` of the pandas installed) is a missing value. "-nan", "#N/A N/A", "1.#IND"
and "-1.#QNAN" were not: a numeric column holding "-nan" stayed text, and its null count differed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas._libs.parsers import STR_NA_VALUES

from agents.chain import run_tool
from agents.options import RunOptions
from agents.params.common import DEFAULT_NULL_TOKENS

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
TOKENS = sorted(STR_NA_VALUES)


def ignore_progress(*_: object) -> None:
    return None


def test_the_default_tokens_are_pandas_default_list() -> None:
    assert set(DEFAULT_NULL_TOKENS) | {""} == set(STR_NA_VALUES)
    assert len(set(DEFAULT_NULL_TOKENS)) == len(DEFAULT_NULL_TOKENS)


def _csv() -> str:
    """One numeric column per token (``n0``...), the token in its second row, and one text column holding every
    token among words."""
    rows = len(TOKENS) + 2
    columns: dict[str, list[str]] = {
        f"n{index}": ["1.5", token] + ["2.5"] * (rows - 2) for index, token in enumerate(TOKENS)
    }
    columns["text"] = ["word", *TOKENS, "other"]
    header = ",".join(columns)
    lines = [
        ",".join(f'"{values[row]}"' if values[row] == "" else values[row] for values in columns.values())
        for row in range(rows)
    ]
    return "\n".join([header, *lines]) + "\n"


@pytest.mark.parametrize("mode", MODES)
def test_profile_null_counts_equal_pandas_read_csv(tmp_path: Path, mode: str) -> None:
    text = _csv()
    path = tmp_path / "primary.csv"
    path.write_text(text, encoding="utf-8")
    expected = pd.read_csv(io.StringIO(text))
    result = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {path.name: path},
        {},
        tmp_path / "out",
        ignore_progress,
        run_options=MODES[mode],
    )
    assert result["status"] == "success"
    fields: dict[str, Any] = {
        field["field_name"]: field for field in result["agents"]["unified-profiler"]["data"]["fields"]
    }
    counts = {name: field["properties"]["null_count"] for name, field in fields.items()}
    assert counts == {name: int(expected[name].isna().sum()) for name in expected.columns}
    for index, token in enumerate(TOKENS):  # each numeric column is numeric, as pandas reads it (float64)
        assert expected[f"n{index}"].dtype == "float64"
        assert fields[f"n{index}"]["data_type"] == "float", token
        assert fields[f"n{index}"]["statistics"]["mean"] == pytest.approx(expected[f"n{index}"].mean()), token
