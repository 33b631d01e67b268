"""golden-record-builder: its outputs (master data, crosswalk) against independent counts, the crosswalk and
golden-record properties (Hypothesis), shuffle invariance through the real matcher, and its parameters."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.master import golden
from agents.master.matching import Resolution
from agents.master.roles import ColumnRole
from agents.master.survivorship import with_bookkeeping
from agents.params.golden_record_builder import GoldenRecordBuilderParams
from tests.agents.master.people import people

ROW = ROW_INDEX_COLUMN
CROSSWALK_SCHEMA = {
    "source": pl.String,
    "source_row": pl.Int64,
    "golden_id": pl.String,
    "match_probability": pl.Float64,
    "rule": pl.String,
}
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(frame: pl.DataFrame, artifacts: dict[str, Any] | None = None, **params: Any) -> AgentResult:
    fractions: list[float] = []
    model = GoldenRecordBuilderParams(**params)
    inputs = AgentInputs(frame, "primary.csv", artifacts=artifacts or {})
    result = golden.run(inputs, model, lambda fraction, _m: fractions.append(fraction))
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success" and result.frame is None
    assert envelope["data"]["parameters"] == model.model_dump()
    assert set(result.outputs) == {"master_data.csv", "crosswalk.csv"}
    crosswalk, master = result.outputs["crosswalk.csv"], result.outputs["master_data.csv"]
    assert dict(crosswalk.schema) == CROSSWALK_SCHEMA
    assert master.columns[0] == "golden_id" and master.columns[-3:] == ["trust_score", "source_count", "record_count"]
    assert isinstance(result.artifacts["resolution"], Resolution)
    assert result.artifacts["golden_records"] is master
    assert set(crosswalk["golden_id"]) == set(master["golden_id"])
    return result


def two_sources() -> pl.DataFrame:
    crm = pl.DataFrame(
        {
            "email": ["ann@x.com", "bo@y.org", "cy@z.net"],
            "first_name": ["Annabel", "Bo", "Cy"],
            "city": ["Oslo", None, "Paris"],
        }
    )
    primary = pl.DataFrame(
        {
            "email": ["ANN@x.com ", "dee@w.io", "bo@y.org", None],
            "first_name": ["Ann", "Dee", "Bob", "Eve"],
            "city": ["Bergen", "Lima", "Rome", "Kyiv"],
        }
    )
    frames = [
        part.with_columns(
            pl.lit(label).alias(SOURCE_COLUMN),
            pl.int_range(1, part.height + 1, dtype=pl.Int64).alias(SOURCE_ROW_COLUMN),
        )
        for label, part in (("primary", primary), ("crm", crm))
    ]
    return pl.concat(frames).with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def test_exact_matching_on_the_detected_email_across_two_sources() -> None:
    frame = two_sources()
    result = build(
        frame,
        enable_fuzzy_matching=False,
        source_priority={"crm": 1, "primary": 2},
        survivorship_rules={"first_name": "source_priority", "city": "source_priority"},
    )
    master, crosswalk = result.outputs["master_data.csv"], result.outputs["crosswalk.csv"]
    # Ann (primary 1 + crm 1), Bo (primary 3 + crm 2), Dee, Eve, Cy
    assert master.height == 5
    by_name = {row["first_name"]: row for row in master.to_dicts()}
    assert set(by_name) == {"Annabel", "Bo", "Dee", "Eve", "Cy"}
    assert (by_name["Annabel"]["city"], by_name["Annabel"]["source_count"], by_name["Annabel"]["record_count"]) == (
        "Oslo",
        2,
        2,
    )
    assert by_name["Bo"]["city"] == "Rome"  # crm ranks first but has no city
    assert by_name["Annabel"]["trust_score"] == pytest.approx((0.9 + 0.9 + 0.8) / 3)  # email: most_complete
    assert by_name["Eve"]["trust_score"] == 1.0
    assert crosswalk.select("source", "source_row").rows() == [
        ("primary", 1),
        ("primary", 2),
        ("primary", 3),
        ("primary", 4),
        ("crm", 1),
        ("crm", 2),
        ("crm", 3),
    ]
    assert crosswalk["golden_id"][0] == crosswalk["golden_id"][4]
    assert crosswalk["rule"].to_list() == ["exact:email", None, "exact:email", None, "exact:email", "exact:email", None]
    metrics = result.envelope.summary_metrics
    assert metrics == {
        "input_records": 7,
        "golden_records_created": 5,
        "clusters_formed": 2,
        "compression_ratio": 1.4,
        "conflicts_resolved": 4,  # Ann: email, name, city; Bo: name
        "values_survived": 14,  # 5 records x 3 columns, Eve without an e-mail
        "average_trust_score": pytest.approx(master["trust_score"].mean(), abs=1e-4),
    }
    data = result.envelope.data
    assert data["cluster_size_histogram"] == [{"size": 1, "clusters": 3}, {"size": 2, "clusters": 2}]
    sample = data["merged_cluster_samples"][0]
    assert [member["source"] for member in sample["members"]] == ["primary", "crm"]
    assert sample["conflicting_columns"] == ["email", "first_name", "city"]
    assert data["matching"]["method"] == "exact" and data["matching"]["match_key_columns"] == ["email"]
    assert "rec:source_priority" not in {item.recommendation_id for item in result.envelope.recommendations}


def test_semantic_roles_from_an_earlier_agent_are_used() -> None:
    frame = pl.DataFrame({"code": ["A1", "a1", "B2"], "label": ["x", "y", "z"]})
    roles = {"code": ColumnRole("national_id", 1.0, "name"), "label": ColumnRole("other", 0.0, "name+value")}
    result = build(frame, {"semantic_roles": roles}, enable_fuzzy_matching=False)
    assert result.outputs["master_data.csv"]["record_count"].to_list() == [2, 1]
    assert result.envelope.data["matching"]["roles_source"] == "semantic-mapper"


def test_no_entity_key_means_one_golden_record_per_distinct_row() -> None:
    frame = pl.DataFrame({"colour": ["red", "red", "blue"], "size": [1, 1, 2]})
    result = build(frame, enable_fuzzy_matching=False)
    assert result.outputs["master_data.csv"]["record_count"].to_list() == [2, 1]  # identical rows share one
    assert result.outputs["crosswalk.csv"]["rule"].to_list() == ["identical", "identical", None]
    assert [alert.alert_id for alert in result.envelope.alerts] == ["no_match_keys"]


def test_low_trust_golden_records_are_reported() -> None:
    frame = pl.DataFrame(
        {"email": ["a@x.com", "a@x.com", "b@x.com"], "name": ["Al", "Alan", "Bo"], "city": ["Rome", "Oslo", "Lima"]}
    )
    result = build(frame, enable_fuzzy_matching=False, default_survivorship_rule="first", min_trust_score=0.9)
    # the Al cluster: email agrees (1.0), name and city first (0.75 each) -> 0.8333
    issues = result.row_level_issues
    assert issues["row_index"].to_list() == [1] and issues["issue_type"].to_list() == ["low_trust_score"]
    assert issues["value"].to_list() == ["0.8333"]
    assert result.envelope.data["low_trust_records"] == 1
    assert "low_trust" in {alert.alert_id for alert in result.envelope.alerts}


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["ann@x.com", "ANN@x.com", "bo@y.org", None]),
        st.sampled_from(["Ann", "Anne", "Bo", None]),
        st.sampled_from(["primary", "crm"]),
    ),
    min_size=1,
    max_size=25,
)


def frame_of(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    emails, names, sources = (list(items) for items in zip(*rows, strict=True))
    frame = pl.DataFrame(
        {"email": emails, "given_name": names, SOURCE_COLUMN: sources},
        schema_overrides={"email": pl.String, "given_name": pl.String},
    )
    return frame.with_row_index(ROW, offset=1).with_columns(
        pl.col(ROW).cast(pl.Int64),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(SOURCE_COLUMN).alias(SOURCE_ROW_COLUMN),
    )


def check_outputs(frame: pl.DataFrame, result: AgentResult) -> None:
    crosswalk, master = result.outputs["crosswalk.csv"], result.outputs["master_data.csv"]
    # every input row exactly once
    assert crosswalk.height == frame.height
    assert sorted(crosswalk.select("source", "source_row").rows()) == sorted(
        frame.select(SOURCE_COLUMN, SOURCE_ROW_COLUMN).rows()
    )
    assert master.height <= frame.height and master["golden_id"].n_unique() == master.height
    assert master["record_count"].sum() == frame.height
    sizes = crosswalk.group_by("golden_id").len()
    assert dict(sizes.iter_rows()) == dict(master.select("golden_id", "record_count").iter_rows())
    # identical rows share a golden record
    data = frame.join(crosswalk, left_on=[SOURCE_COLUMN, SOURCE_ROW_COLUMN], right_on=["source", "source_row"])
    per_value = data.group_by("email", "given_name").agg(pl.col("golden_id").n_unique())
    assert per_value["golden_id"].max() == 1


@PROPERTY_SETTINGS
@given(rows=rows_strategy)
def test_crosswalk_and_golden_records_properties_exact(rows: list[tuple[Any, ...]]) -> None:
    frame = frame_of(rows)
    check_outputs(frame, build(frame, enable_fuzzy_matching=False))


@PROPERTY_SETTINGS
@given(rows=rows_strategy)
def test_crosswalk_and_golden_records_properties_fuzzy(rows: list[tuple[Any, ...]]) -> None:
    frame = frame_of(rows)
    check_outputs(frame, build(frame))


def test_the_real_matcher_end_to_end_and_shuffle_invariance() -> None:
    truth = people(300, seed=3)
    frame = with_bookkeeping(truth.drop("entity"))
    result = build(frame)
    master, crosswalk = result.outputs["master_data.csv"], result.outputs["crosswalk.csv"]
    entities = truth["entity"].n_unique()
    assert 0.9 * entities <= master.height <= 1.1 * entities
    assert result.envelope.data["matching"]["method"] == "fuzzy"
    assert result.envelope.data["matching"]["stats"]["candidate_pairs"] > 0
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=11)
    again = build(shuffled)
    # Equal but for the last bits of float sums taken in another order (probabilities, trust scores).
    assert_frame_equal(again.outputs["master_data.csv"].sort("golden_id"), master.sort("golden_id"), rel_tol=1e-12)
    assert_frame_equal(
        again.outputs["crosswalk.csv"].sort("source", "source_row"),
        crosswalk.sort("source", "source_row"),
        rel_tol=1e-12,
    )


def test_fuzzy_threshold_maps_to_the_match_probability() -> None:
    assert golden.match_settings(GoldenRecordBuilderParams()).threshold == 0.9  # the matcher's calibrated default
    chosen = golden.match_settings(GoldenRecordBuilderParams(fuzzy_threshold=80.0, match_key_weights={"email": 50.0}))
    assert chosen.threshold == 0.8 and chosen.match_key_weights == {"email": 50.0}
    low = golden.match_settings(GoldenRecordBuilderParams(fuzzy_threshold=30.0))
    assert low.review_band <= low.threshold == 0.3


def test_parameters_are_validated() -> None:
    assert GoldenRecordBuilderParams().enable_fuzzy_matching is True
    for bad in (
        {"fuzzy_threshold": 120.0},
        {"match_key_weights": {"email": 101.0}},
        {"default_survivorship_rule": "best"},
        {"survivorship_rules": {"name": "most_recent"}},
        {"default_survivorship_rule": "source_priority"},
        {"min_trust_score": -0.1},
        {"enable_fuzzy_matching": "yes"},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            GoldenRecordBuilderParams.model_validate(bad)
    frame = two_sources()
    with pytest.raises(InvalidParametersError, match="unknown column") as error:
        build(frame, match_key_columns=["nope"])
    assert error.value.field == "match_key_columns"
    with pytest.raises(InvalidParametersError) as error:
        build(frame, timestamp_column="nope", default_survivorship_rule="most_recent")
    assert error.value.field == "timestamp_column"
    with pytest.raises(InvalidParametersError, match="enable_fuzzy_matching"):
        build(frame, enable_fuzzy_matching=False, match_key_weights={"email": 10.0})


def test_an_earlier_runs_master_data_and_a_column_named_cluster_go_through() -> None:
    frame = pl.DataFrame({"email": ["a@x.com", "a@x.com", "b@y.org"], "cluster": [7, 8, 9]})
    first = build(frame, enable_fuzzy_matching=False, default_survivorship_rule="max")
    master = first.outputs["master_data.csv"]
    assert master.select("email", "cluster").rows() == [("a@x.com", 8), ("b@y.org", 9)]
    second = build(master, enable_fuzzy_matching=False)
    again = second.outputs["master_data.csv"]
    assert again.columns == [
        "golden_id",
        "golden_id_original",
        "email",
        "cluster",
        "trust_score_original",
        "source_count_original",
        "record_count_original",
        "trust_score",
        "source_count",
        "record_count",
    ]
    assert again["golden_id_original"].to_list() == master["golden_id"].to_list()
    assert again["record_count_original"].to_list() == [2, 1]


# ---------------------------------------------------------------------------------------------------------
# the whole master-my-data chain, from files


def run_master(path: Path, out: Path, parameters: dict[str, Any] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """master_data.csv and crosswalk.csv of a master-my-data run on ``path`` (the primary), read as text."""
    result = run_tool("master-my-data", [], {f"primary{path.suffix}": path}, parameters or {}, out, lambda *_: None)
    assert {agent: step["status"] for agent, step in result["agents"].items()} == dict.fromkeys(
        result["agents"], "success"
    )
    read = lambda name: pl.read_csv(out / name, infer_schema=False)  # noqa: E731
    return read("master_data.csv"), read("crosswalk.csv")


def as_floats_where_numeric(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col(name).cast(pl.Float64) for name in ("trust_score", "match_probability") if name in frame.columns
    )


@pytest.mark.parametrize("fuzzy", [True, False])
def test_shuffling_the_file_changes_no_golden_record_and_no_crosswalk_entry(tmp_path: Path, fuzzy: bool) -> None:
    """The issue's requirement: shuffling the input rows changes no cluster and no golden_id."""
    rows = people(100, seed=3).drop("entity", "corruptions")
    original, shuffled = tmp_path / "original.csv", tmp_path / "shuffled.csv"
    rows.write_csv(original)
    rows.sample(fraction=1.0, shuffle=True, seed=11).write_csv(shuffled)
    parameters = {"golden-record-builder": {"enable_fuzzy_matching": fuzzy}}
    master, crosswalk = run_master(original, tmp_path / "a", parameters)
    master_again, crosswalk_again = run_master(shuffled, tmp_path / "b", parameters)
    assert master.height < rows.height  # duplicates were merged: the test can see clusters change
    assert_frame_equal(
        as_floats_where_numeric(master.sort("golden_id")),
        as_floats_where_numeric(master_again.sort("golden_id")),
        check_exact=False,
        abs_tol=1e-9,
    )

    def by_content(crosswalk: pl.DataFrame, path: Path) -> pl.DataFrame:
        """Each input row's values with the crosswalk's entry for it, sorted by everything."""
        data = pl.read_csv(path, infer_schema=False).with_row_index("source_row", offset=1)
        joined = crosswalk.with_columns(pl.col("source_row").cast(pl.UInt32)).join(data, on="source_row")
        assert joined.height == crosswalk.height == rows.height
        return as_floats_where_numeric(joined.drop("source_row")).sort(pl.all(), nulls_last=True)

    assert_frame_equal(
        by_content(crosswalk, original), by_content(crosswalk_again, shuffled), check_exact=False, abs_tol=1e-9
    )


def test_typed_columns_go_through_the_chain_as_text_with_nulls_kept(tmp_path: Path) -> None:
    """Duration, list, boolean, date and all-null columns (a Parquet primary keeps their types): the chain runs,
    duplicates merge, and the golden values keep their nulls (no "null" text, no {"col": [...]} wrapper)."""
    frame = pl.DataFrame(
        {
            "email": ["ann@x.com", "ANN@x.com", "bo@y.org", "cy@z.net"],
            "wait": [dt.timedelta(hours=1), None, dt.timedelta(minutes=5), None],
            "tags": [["a", "b"], None, ["c"], None],
            "active": [True, None, False, None],
            "joined": [dt.date(2020, 1, 2), None, dt.date(2021, 3, 4), None],
            "nothing": pl.Series([None, None, None, None], dtype=pl.String),
        }
    )
    path = tmp_path / "typed.parquet"
    frame.write_parquet(path)
    master, crosswalk = run_master(path, tmp_path / "out", {"golden-record-builder": {"enable_fuzzy_matching": False}})
    assert crosswalk.height == 4 and master.height == 3
    ann = master.filter(pl.col("email").str.to_lowercase() == "ann@x.com").row(0, named=True)
    assert ann["record_count"] == "2"
    assert (ann["wait"], ann["tags"], ann["active"], ann["joined"], ann["nothing"]) == (
        "PT1H",
        '["a","b"]',
        "true",
        "2020-01-02",
        None,
    )
    cy = master.filter(pl.col("email") == "cy@z.net").row(0, named=True)
    assert (cy["wait"], cy["tags"], cy["active"], cy["joined"], cy["nothing"]) == (None, None, None, None, None)
    # the provenance renders values with the product's text, nulls kept
    golden_frame = with_bookkeeping(frame)
    result = build(golden_frame, enable_fuzzy_matching=False)
    provenance = result.artifacts["provenance"]
    values = dict(provenance.filter(pl.col("column") != "email").select("column", "value").iter_rows())
    assert values == {"wait": "PT1H", "tags": '["a","b"]', "active": "true", "joined": "2020-01-02", "nothing": None}
