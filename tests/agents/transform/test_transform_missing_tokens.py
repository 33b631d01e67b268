"""transform-my-data reads missing-value tokens as nulls (PRODUCT.md "Missing values"), in memory and streamed
(``streaming_threshold_bytes=0``): a comparison and an arithmetic expression see the numbers pandas sees
(``pd.read_csv``'s default ``na_values``), transformed_data.csv writes a null as an empty field, the read report says
per column how many tokens became nulls, and ``inputs.primary.null_tokens`` [] reads them as text (the earlier
behaviour: a comparison of text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.options import RunOptions
from tests.agents.search.test_search_missing_tokens import flights

TOOL = "transform-my-data"
OPTIONS = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "primary.csv"
    path.write_text(flights(), encoding="utf-8")
    return path


def transform(
    out: Path, csv: Path, commands: list[str], options: RunOptions, inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    parameters = {"transformer": {"commands": commands}, **({"inputs": inputs} if inputs is not None else {})}
    result = run_tool(TOOL, [], {"primary.csv": csv}, parameters, out, ignore, run_options=options)
    json.dumps(result, allow_nan=False)
    assert result["status"] == "success", result["agents"]
    return result


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_comparisons_and_arithmetic_see_numbers(tmp_path: Path, csv: Path, mode: str) -> None:
    expected = pd.read_csv(csv, dtype={"code": str})
    result = transform(tmp_path / "kept", csv, ["keep rows where delay > 60"], OPTIONS[mode])
    chosen = expected[expected["delay"] > 60]
    assert result["summary"]["dataset"]["rows"] == len(chosen)
    written = pl.read_parquet(tmp_path / "kept" / "transformed_data.parquet")
    assert written["id"].to_list() == chosen["id"].tolist()
    assert written.schema["delay"] == pl.Int64 and written.schema["code"] == pl.String
    missing = result["summary"]["inputs"]["primary"]["missing_tokens"]
    assert missing["retyped_columns"] == {
        "delay": "Int64",
        "distance": "Float64",
        "day": "Datetime(time_unit='us', time_zone=None)",
    }
    as_written = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert missing["by_column"]["distance"] == {"N/A": int((as_written["distance"] == "N/A").sum())}

    result = transform(tmp_path / "derived", csv, ["add column per_mile = delay / distance"], OPTIONS[mode])
    derived = pl.read_parquet(tmp_path / "derived" / "transformed_data.parquet")
    truth = (expected["delay"] / expected["distance"]).to_numpy()
    got = derived["per_mile"].to_numpy().astype(float)
    assert np.array_equal(np.isnan(got), np.isnan(truth)) and np.allclose(got[~np.isnan(got)], truth[~np.isnan(truth)])
    text = pd.read_csv(tmp_path / "derived" / "transformed_data.csv", dtype=str, keep_default_na=False)
    assert (text["delay"][expected["delay"].isna()] == "").all()  # a null as an empty field, as clean writes it
    assert (text["per_mile"][np.isnan(truth)] == "").all()
    assert text["day"].str.fullmatch(r"(2024-03-\d\d \d\d:\d\d)?").all()  # in their layout
    assert set(text["code"]) - {""} == set(expected["code"].dropna())  # codes keep their zeros


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_null_tokens_empty_reads_the_tokens_as_text(tmp_path: Path, mode: str) -> None:
    primary = tmp_path / "primary.csv"
    primary.write_text("name,amount\nA,10.5\nB,NA\nC,20\nD,-5\n", encoding="utf-8")
    result = transform(tmp_path / "numbers", primary, ["keep rows where amount > 6"], OPTIONS[mode])
    assert (tmp_path / "numbers" / "transformed_data.csv").read_text(
        encoding="utf-8"
    ) == "name,amount\nA,10.5\nC,20\n"  # typed once its token is a null, written as it was
    assert result["summary"]["inputs"]["primary"]["missing_tokens"]["by_column"] == {"amount": {"NA": 1}}
    result = transform(tmp_path / "nulled", primary, ["add column twice = amount * 2"], OPTIONS[mode])
    written = (tmp_path / "nulled" / "transformed_data.csv").read_text(encoding="utf-8")
    assert written == "name,amount,twice\nA,10.5,21.0\nB,,\nC,20,40.0\nD,-5,-10.0\n"  # a new column as Polars writes
    with pytest.raises(InvalidParametersError):  # as text, amount is no number
        transform(
            tmp_path / "text",
            primary,
            ["add column twice = amount * 2"],
            OPTIONS[mode],
            {"primary": {"null_tokens": []}},
        )
