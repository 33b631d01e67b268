"""Properties of the whole clean-my-data chain on generated data (hypothesis): cleaning never adds rows,
every input row ends in the cleaned data or in quarantine (never both), and profiling the cleaned output
shows no more issues of the cleaned kinds (duplicate rows, missing cells, numbers stored as text) than
profiling the input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.chain import run_tool

CITIES = ["Paris", "paris", " Paris ", "Lyon", "LYON", "Nice"]


@st.composite
def messy_frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(min_value=8, max_value=60))
    amounts = draw(
        st.lists(
            st.one_of(st.none(), st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)),
            min_size=rows,
            max_size=rows,
        )
    )
    cities = draw(st.lists(st.sampled_from(CITIES), min_size=rows, max_size=rows))
    prices = draw(st.lists(st.integers(min_value=0, max_value=99_999), min_size=rows, max_size=rows))
    frame = pl.DataFrame(
        {
            "id": list(range(1, rows + 1)),
            "amount": pl.Series(amounts, dtype=pl.Float64),
            "city": cities,
            "price": [f"${p / 100:,.2f}" for p in prices],
        }
    )
    duplicated = draw(st.integers(min_value=0, max_value=min(5, rows)))
    return pl.concat([frame, frame.head(duplicated)])


def profile(path: Path, out: Path) -> dict:
    result = run_tool("profile-my-data", ["unified-profiler"], {path.name: path}, {}, out, lambda *_: None)
    return result["agents"]["unified-profiler"]


def numeric_text_alerts(envelope: dict) -> int:
    return sum(alert["category"] == "numeric_in_string" for alert in envelope["alerts"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=messy_frames())
def test_cleaning_never_adds_rows_loses_none_and_leaves_no_more_issues(tmp_path_factory, frame: pl.DataFrame) -> None:
    work = tmp_path_factory.mktemp("clean")
    primary = work / "primary.csv"
    frame.write_csv(primary)
    result = run_tool("clean-my-data", [], {"primary.csv": primary}, {}, work / "out", lambda *_: None)
    assert result["status"] == "success", {k: v.get("error") for k, v in result["agents"].items()}
    cleaned = pl.read_csv(work / "out" / "cleaned_data.csv", infer_schema_length=None)
    quarantine = pl.read_csv(work / "out" / "quarantine.csv", infer_schema_length=None)

    assert cleaned.height <= frame.height
    assert cleaned.height + quarantine.height == frame.height
    kept_ids = set(cleaned["id"].to_list())
    assert len(kept_ids) == cleaned.height
    assert quarantine["row_index"].n_unique() == quarantine.height
    for step in result["steps"]:
        assert step["rows_after"] <= step["rows_before"]

    before = profile(primary, work / "profile-before")
    (work / "again").mkdir()
    cleaned_path = work / "again" / "primary.csv"
    cleaned.write_csv(cleaned_path)
    after = profile(cleaned_path, work / "profile-after")
    for metric in ("duplicate_rows", "missing_cells"):
        assert after["summary_metrics"][metric] <= before["summary_metrics"][metric], metric
    assert numeric_text_alerts(after) <= numeric_text_alerts(before)
