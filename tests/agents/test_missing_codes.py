"""A missing-value token in a column of number-like codes (``007``, ``+5``, ``-0``) leaves it text, as the reader
leaves the same column without the token (agents.values.inferred_types follows agents.readers' rule), in the profile
in memory and streamed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from agents.chain import run_tool
from agents.options import RunOptions
from agents.params.transformer import TransformerParams
from agents.transform.resolve import resolve
from agents.values import normalize_missing, normalize_missing_lazy
from service.lifecycle import recorded_schema


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["007", "010", "100", "N/A"], pl.String),
        (["+5", "6", "NA"], pl.String),
        (["-0", "6", "NA"], pl.String),
        (["0.5", "-0.25", "NA"], pl.Float64),
        (["0", "7", "100", "NA"], pl.Int64),
    ],
)
def test_codes_stay_text_once_their_tokens_are_nulls(values: list[str], dtype: pl.DataType) -> None:
    frame, missing = normalize_missing(pl.DataFrame({"code": values}))
    assert frame.schema["code"] == dtype
    assert missing.counts == {"code": {values[-1]: 1}}
    assert frame["code"].null_count() == 1


@pytest.mark.parametrize("threshold", [None, 0])
def test_the_profile_of_a_code_column_with_a_token(tmp_path: Path, threshold: int | None) -> None:
    fields = {}
    for name, text in {
        "na": "code,v\n007,1\n010,2\n100,3\nN/A,4\n",
        "plain": "code,v\n007,1\n010,2\n100,3\n007,4\n",
    }.items():
        primary = tmp_path / f"{name}.csv"
        primary.write_text(text, encoding="utf-8")
        options = RunOptions(streaming_threshold_bytes=threshold)
        result = run_tool(
            "profile-my-data", ["unified-profiler"], {"primary.csv": primary}, {}, tmp_path / name, ignore,
            run_options=options,
        )  # fmt: skip
        profiled = result["agents"]["unified-profiler"]["data"]["fields"]
        fields[name] = {field["field_name"]: field for field in profiled}
    assert fields["na"]["code"]["polars_dtype"] == fields["plain"]["code"]["polars_dtype"] == "String"
    assert fields["na"]["code"]["properties"]["null_count"] == 1
    assert fields["na"]["code"]["properties"]["retyped_from_text"] is None


def test_a_profile_records_the_types_a_chained_transform_reads(tmp_path: Path) -> None:
    """A profile's dataset version records a column typed only once its tokens became nulls as search and transform
    read it by default (typed): the service resolves a chained transform's commands against that record, and
    refused `distance / air_time` while it recorded the column as text."""
    path = tmp_path / "flights.csv"
    path.write_text("distance,air_time,code\n100,NA,007\n200,40,010\n300,50,N/A\n")
    result = run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, tmp_path / "out", ignore)
    recorded = recorded_schema(result["summary"]["dataset"])
    assert recorded == {"distance": "Int64", "air_time": "Int64", "code": "String"}
    resolve(TransformerParams(commands=["add column speed = distance / air_time"]), recorded)


@pytest.mark.parametrize("engine", ["auto", "streaming"])
def test_wide_integers_and_booleans_with_a_token_are_typed_losslessly(engine: str) -> None:
    """20-digit account numbers with an NA became Float64 (every value rounded to 1.2345678901234567e+19), and a
    true/false column with an NA failed the run (Polars casts no text to Boolean)."""
    frame = pl.DataFrame(
        {"acct": ["12345678901234567891", "NA", "12345678901234567892"], "flag": ["true", "false", "NA"]}
    )
    lazy, report = normalize_missing_lazy(frame.lazy(), engine=engine)  # type: ignore[arg-type]
    typed = lazy.collect()
    assert typed.schema == {"acct": pl.Int128, "flag": pl.Boolean}
    assert typed["acct"].cast(pl.String).to_list() == ["12345678901234567891", None, "12345678901234567892"]
    assert typed["flag"].to_list() == [True, False, None]
    assert report.retyped == {"acct": "Int128", "flag": "Boolean"}
    assert normalize_missing(frame)[0].equals(typed)
