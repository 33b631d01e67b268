"""field-standardization on a primary too large for memory: the chain gives a lazy scan of a Parquet spill
(``inputs.scan``, an empty ``primary`` of its schema) and the agent must return what its in-memory run returns on
the same data (the envelope but its timing, the row-level issues, no removed rows), its new data as a plan over the
scan (``result.scan``, ``result.rows``) instead of a frame, and without a cache of the data in that plan."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents.clean import standardization
from agents.envelope import REMOVED_ROWS_SCHEMA, ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params.field_standardization import FieldStandardizationParams
from tests.agents.clean_support import PROPERTY_SETTINGS, ROWS, framed, frames, standardization_params
from tests.agents.test_clean_speed_paths import speed_frame, standardization_settings
from tests.agents.test_standardization import invisible_frame, multi_line_frame

ROW = ROW_INDEX_COLUMN
HUGE = 10**12


def ignore(fraction: float, message: str) -> None:
    pass


def in_memory(frame: pl.DataFrame, params: FieldStandardizationParams) -> AgentResult:
    return standardization.run(AgentInputs(frame, "primary.csv"), params, ignore)


def streamed_inputs(frame: pl.DataFrame, folder: Path) -> AgentInputs:
    """As the chain gives a large primary: an empty frame of its schema, a scan of the data written to Parquet,
    its rows, and a work directory."""
    spill = folder / "in.parquet"
    frame.write_parquet(spill, mkdir=True)
    return AgentInputs(
        frame.clear(), "primary.csv", scan=pl.scan_parquet(spill), rows=frame.height, work_dir=folder / "work"
    )


def streamed(frame: pl.DataFrame, params: FieldStandardizationParams, folder: Path) -> AgentResult:
    fractions: list[float] = []
    result = standardization.run(streamed_inputs(frame, folder), params, lambda f, _m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    return result


# The node of a streaming plan that gathers a whole column (replace, replace_strict: a columnar function fed by a
# multiplexer) instead of running batch by batch.
BATCHED_AWAY = "columnar-function"


def physical_plan(query: pl.LazyFrame) -> str:
    return query.show_graph(engine="streaming", plan_stage="physical", raw_output=True) or ""


def envelope_of(result: AgentResult) -> dict[str, Any]:
    envelope = result.envelope.to_dict()
    envelope.pop("execution_time_ms")
    return envelope


def assert_same(frame: pl.DataFrame, params: FieldStandardizationParams, folder: Path) -> AgentResult:
    """Both runs on ``frame``: the same envelope, issues and removed rows; the streamed data as a plan without a
    cache whose rows are the in-memory frame. Returns the streamed result."""
    memory = in_memory(frame, params)
    stream = streamed(frame, params, folder)
    assert envelope_of(stream) == envelope_of(memory)
    assert_frame_equal(stream.row_level_issues, memory.row_level_issues)
    assert memory.removed is not None and stream.removed is not None
    assert_frame_equal(stream.removed, memory.removed)
    assert dict(stream.removed.schema) == REMOVED_ROWS_SCHEMA
    assert stream.frame is None and stream.scan is not None
    assert stream.rows == frame.height
    assert "CACHE" not in stream.scan.explain()
    assert BATCHED_AWAY not in physical_plan(stream.scan)
    assert memory.frame is not None
    assert_frame_equal(stream.scan.collect(engine="streaming"), memory.frame)
    return stream


SETTINGS = [FieldStandardizationParams(), *standardization_settings()]


ROUTES = {"by_table": HUGE, "mixed": 100, "row_by_row": -1}  # DISTINCT_TABLE_MAX


@pytest.fixture(params=list(ROUTES))
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the streamed run counts a column: through the table of its distinct values (as in memory), or row by
    row (a column with more than ``DISTINCT_TABLE_MAX`` distinct values): every column one way or the other, or
    (``mixed``) the speed frames' mostly distinct columns row by row and the others by table."""
    monkeypatch.setattr(standardization, "DISTINCT_TABLE_MAX", ROUTES[request.param])
    return str(request.param)


@pytest.mark.parametrize("settings", range(len(SETTINGS)))
@pytest.mark.parametrize(("seed", "id_kind"), [(0, "unique"), (1, "repeat"), (2, "none")])
def test_streamed_standardization_matches_in_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, route: str, seed: int, id_kind: str, settings: int
) -> None:
    monkeypatch.setattr(standardization, "DISTINCT_PER_PASS", 250)  # a wide column's variants in a few parts
    frame = speed_frame(seed, id_kind)
    params = SETTINGS[settings]
    result = assert_same(frame, params, tmp_path)
    assert result.envelope.summary_metrics["total_rows_processed"] == frame.height
    if settings:  # the parameters that change data did change some
        assert result.envelope.summary_metrics["values_changed"] > 0


@pytest.mark.parametrize("share", [0, HUGE])
def test_streamed_standardization_maps_values_or_runs_the_rules_per_row(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, share: int
) -> None:
    """Both ways to rewrite a changed column (its changed values mapped, or the rules run on every row) give the
    in-memory data in the plan."""
    monkeypatch.setattr(standardization, "REPLACE_SHARE", share)
    frame = speed_frame(3, "unique")
    for number, params in enumerate(SETTINGS):
        result = assert_same(frame, params, tmp_path / str(number))
        assert result.scan is not None
        per_row = standardization.TEXT in result.scan.explain()  # the rules' stages read the normalized text
        assert per_row == (share == HUGE and result.envelope.summary_metrics["values_changed"] > 0)


def test_streamed_standardization_removes_invisible_characters_alike(tmp_path: Path, route: str) -> None:
    for number, params in enumerate([FieldStandardizationParams(), FieldStandardizationParams(trim_whitespace=False)]):
        assert_same(invisible_frame(), params, tmp_path / str(number))
        assert_same(multi_line_frame(), params, tmp_path / f"lines-{number}")


def test_streamed_standardization_of_the_in_memory_cases(tmp_path: Path, route: str) -> None:
    """The in-memory tests' data: synonyms, case and whitespace; dates, units and typed columns; dates whose
    day/month order is a guess; the default's lowercase proposal."""
    cities = framed(
        {
            "city": ["  New   York ", "new york", "NYC", "Boston", None, "boston "],
            "status": ["Active", "ACTIVE", "y", "inactive", "N", "active"],
            "id": [1, 2, 3, 4, 5, 6],
        },
        ROWS,
    )
    synonyms = FieldStandardizationParams.model_validate(
        {
            "case_strategy": "lowercase",
            "synonym_mappings": {
                "city": {"NYC": "New York", "ny": "New York"},
                "status": {"Y": "Active", "N": "Inactive"},
            },
        }
    )
    result = assert_same(cities, synonyms, tmp_path / "synonyms")
    assert result.scan is not None
    assert result.scan.collect()["city"].to_list() == ["New York", "New York", "New York", "boston", None, "boston"]
    assert result.row_level_issues.filter(pl.col("column") == "city")["row_index"].to_list() == [1, 2, 5, 6, 10]

    mixed = framed(
        {
            "day": ["2024-01-05", "01/31/2024", "Jan 5, 2024", "2024-01-05 10:00", "nope", "05.02.2024"],
            "weight": ["12 kg", "5 LBS", "3kg", "x", "", None],
            "typed": [dt.date(2024, 1, d) for d in range(1, 7)],
            "tag": ["A", "b", "A", "b", "A", "b"],
            "grade": ["low", "high", "low", None, "low", "high"],
        },
        ROWS,
        tag=pl.Categorical,
        grade=pl.Enum(["low", "high"]),
    )
    units = FieldStandardizationParams.model_validate(
        {
            "case_strategy": "lowercase",
            "target_date_format": "%d/%m/%Y",
            "unit_standardization": True,
            "unit_mappings": {"weight": {"kg": {"factor": 2.20462, "target_unit": "lbs"}}},
        }
    )
    result = assert_same(mixed, units, tmp_path / "units")
    assert result.scan is not None
    out = result.scan.collect()
    assert out["weight"].to_list() == ["26.45544 lbs", "5 lbs", "6.61386 lbs", "x", "", None]
    assert out.schema["tag"] == pl.Categorical and out.schema["typed"] == pl.Date
    undated = result.row_level_issues.filter(pl.col("issue_type") == "unparseable_date")
    assert undated.select("row_index", "value").rows() == [(9, "nope")]
    assert_same(mixed, FieldStandardizationParams(), tmp_path / "defaults")

    early = framed({"old": ["2024-01-05", "0999-12-31", "2023-03-04", "2020-02-29", "1000-01-01", "2022-12-31", None]})
    result = assert_same(early, FieldStandardizationParams(target_date_format="%d/%m/%Y"), tmp_path / "early")
    assert result.scan is not None and result.scan.collect()["old"].to_list()[:2] == ["05/01/2024", "0999-12-31"]
    undated = result.row_level_issues.filter(pl.col("issue_type") == "unparseable_date")
    assert undated["value"].to_list() == ["0999-12-31"]  # before MIN_YEAR: not a date

    guess = framed({"when": ["01/02/2024", "03/04/2024", "05/06/2024", "07/08/2024", "x", "11/12/2024"]}, ROWS)
    result = assert_same(guess, FieldStandardizationParams(), tmp_path / "guess")
    assert "ambiguous_date_order" in {issue.issue_type for issue in result.envelope.issues}
    proposal = framed({"city": ["  New   York ", "new york", "Boston", "UA", "JFK", None]}, ROWS)
    result = assert_same(proposal, FieldStandardizationParams(), tmp_path / "proposal")
    assert result.envelope.data["proposals"][0]["cells_affected"] == 4


def test_streamed_standardization_unchanged_data_is_the_scan(tmp_path: Path, route: str) -> None:
    """Nothing to change (an Enum column included): the scan is returned as it came, rows and dtypes kept."""
    frame = framed({"a": ["x", "y", None, "x"], "grade": ["low", "high", "low", None]}, grade=pl.Enum(["low", "high"]))
    result = assert_same(frame, FieldStandardizationParams(), tmp_path)
    assert result.envelope.summary_metrics["values_changed"] == 0
    assert result.scan is not None and result.scan.collect_schema()["grade"] == pl.Enum(["low", "high"])


def test_streamed_standardization_keeps_row_order_over_many_batches(tmp_path: Path, route: str) -> None:
    """Enough rows for the streaming engine to work in many batches: the issues (the first 1,000 changes per
    column, every value of a date column that is not a date) and the data keep the input's row order."""
    n = 300_000
    rng = np.random.default_rng(7)
    names = np.array(["Ann", " ann ", "Bob", "B  ob", None, "Carol"], dtype=object)
    days = np.array(["2024-01-05", "31/01/2024", "no date", None, "2024-02-28"], dtype=object)
    frame = pl.DataFrame(
        {
            ROW: np.cumsum(rng.integers(1, 4, n)).astype(np.int64),
            "name": names[rng.integers(0, len(names), n)],
            "day": days[rng.integers(0, len(days), n)],
            "free": [f" v{value} " for value in rng.integers(0, n // 2, n)],
        },
        schema_overrides={"name": pl.String, "day": pl.String},
    )
    params = FieldStandardizationParams(case_strategy="lowercase", target_date_format="%d/%m/%Y")
    result = assert_same(frame, params, tmp_path)
    issues = result.row_level_issues
    for column in ("name", "day", "free"):
        changed = issues.filter((pl.col("column") == column) & (pl.col("issue_type") == "value_standardized"))
        assert changed.height == standardization.EXAMPLES_PER_COLUMN
        assert changed["row_index"].is_sorted()
    undated = issues.filter(pl.col("issue_type") == "unparseable_date")["row_index"]
    assert undated.len() == frame.filter(pl.col("day") == "no date").height > 0 and undated.is_sorted()


@pytest.mark.parametrize(
    "raw",
    [
        {"target_columns": ["nope"]},
        {"synonym_mappings": {"city": {"a": "B", "b": "C"}}},
        {"target_date_format": "%H:%M"},
    ],
)
def test_streamed_standardization_parameter_errors(tmp_path: Path, raw: dict[str, Any]) -> None:
    frame = framed({"city": ["x"]})
    params = FieldStandardizationParams.model_validate(raw)
    with pytest.raises(InvalidParametersError) as memory:
        in_memory(frame, params)
    with pytest.raises(InvalidParametersError) as stream:
        streamed(frame, params, tmp_path)
    assert stream.value.field == memory.value.field


@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_streamed_standardization_property(frame: pl.DataFrame, data: st.DataObject) -> None:
    params = FieldStandardizationParams() if data.draw(st.booleans()) else standardization_params(data)
    table_max = data.draw(st.sampled_from([HUGE, 3, -1]))
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        patch.setattr(standardization, "DISTINCT_TABLE_MAX", table_max)
        patch.setattr(standardization, "DISTINCT_PER_PASS", data.draw(st.sampled_from([HUGE, 2])))
        assert_same(frame, params, Path(folder))


def test_streamed_standardization_counts_many_distinct_values_row_by_row(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A column with more distinct values than ``DISTINCT_TABLE_MAX`` is counted row by row, the others through
    their tables; the results are the in-memory run's."""
    monkeypatch.setattr(standardization, "DISTINCT_TABLE_MAX", 100)
    counted: list[str] = []
    original = standardization._wide_report

    def spied(
        scan: pl.LazyFrame, index: int, plan: Any, params: FieldStandardizationParams, passes: int
    ) -> dict[str, Any]:
        counted.append(plan.column)
        return original(scan, index, plan, params, passes)

    monkeypatch.setattr(standardization, "_wide_report", spied)
    frame = speed_frame(4, "unique")
    assert_same(frame, SETTINGS[1], tmp_path)
    distinct = {name: frame[name].n_unique() for name in counted}
    assert counted and all(count > 100 for count in distinct.values())
    assert "name" not in counted  # 11 values


@pytest.mark.parametrize("share", [0, HUGE])
def test_streamed_standardization_queries_run_batch_by_batch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, route: str, share: int
) -> None:
    """Every query of a streamed run that reads the scan runs on the streaming engine batch by batch: none holds
    a node that gathers a whole column (synonyms, units and dates looked up row by row without replace)."""
    monkeypatch.setattr(standardization, "REPLACE_SHARE", share)
    plans: list[str] = []
    collect, collect_all = pl.LazyFrame.collect, pl.collect_all

    def recorded_collect(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("engine") == "streaming":
            plans.append(physical_plan(self))
        return collect(self, *args, **kwargs)

    def recorded_collect_all(queries: list[pl.LazyFrame], *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("engine") == "streaming":
            plans.extend(physical_plan(query) for query in queries)
        return collect_all(queries, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", recorded_collect)
    monkeypatch.setattr(pl, "collect_all", recorded_collect_all)
    frame = speed_frame(5, "repeat")
    for number, params in enumerate(SETTINGS[1:4]):
        result = streamed(frame, params, tmp_path / str(number))
        assert result.envelope.summary_metrics["values_changed"] > 0
    scans = [plan for plan in plans if "multi-scan[parquet]" in plan]
    assert scans and all(BATCHED_AWAY not in plan for plan in scans)
