"""Survivorship (agents.master.survivorship) against an independent per-cluster computation in plain Python:
every rule with ties and nulls, the confidences, provenance complete, golden ids stable under shuffling;
exact clusters; and the survivorship-resolver agent."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.master import resolver, survivorship
from agents.master.survivorship import PROVENANCE_SCHEMA, RULES, survive
from agents.params.survivorship_resolver import SurvivorshipResolverParams, SurvivorshipRule

ROW = ROW_INDEX_COLUMN
BASE_CONFIDENCE = {"most_complete": 0.8, "most_recent": 0.85, "min": 0.9, "max": 0.9, "first": 0.75, "last": 0.75}
EMAIL = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"


def stacked(columns: dict[str, list[Any]], sources: list[str] | None = None) -> pl.DataFrame:
    """A master frame: rows 1..n, their sources, and each source's own row numbers."""
    height = len(next(iter(columns.values())))
    labels = sources or ["primary"] * height
    seen: Counter[str] = Counter()
    source_rows = []
    for label in labels:
        seen[label] += 1
        source_rows.append(seen[label])
    return pl.DataFrame(
        {ROW: list(range(1, height + 1)), SOURCE_COLUMN: labels, SOURCE_ROW_COLUMN: source_rows, **columns},
        schema_overrides={ROW: pl.Int64, SOURCE_ROW_COLUMN: pl.Int64},
    )


def clusters_of(labels: list[int]) -> pl.DataFrame:
    """``labels[i]`` = the cluster of row i+1; the cluster id becomes its smallest row index."""
    frame = pl.DataFrame(
        {ROW: list(range(1, len(labels) + 1)), "label": labels}, schema={ROW: pl.Int64, "label": pl.Int64}
    )
    return frame.select(ROW, pl.col(ROW).min().over("label").alias("cluster"))


def content_key(row: dict[str, Any], columns: list[str]) -> str:
    """A row's content key, independently: its source and values as text, as compact JSON."""
    values = {column: None if row[column] is None else str(row[column]) for column in columns}
    return json.dumps({SOURCE_COLUMN: row[SOURCE_COLUMN], **values}, separators=(",", ":"), ensure_ascii=False)


def expected_id(keys: list[str]) -> str:
    return "G-" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# an independent survivorship, one cluster at a time


def quality(value: Any, role: str | None) -> float:
    if value is None or str(value).strip() == "":
        return 0.0
    text = str(value).strip()
    score = 0.5 + min(0.2, len(text) / 100)
    if role == "email":
        score += 0.3 if re.match(EMAIL, text) else -0.2
    return min(1.0, max(0.0, score))


def expected_winner(
    rows: list[dict[str, Any]], rule: str, role: str | None = None, ranks: dict[str, int] | None = None
) -> tuple[Any, int | None, float, bool]:
    """(value, winning row, confidence, conflict) for one cluster's rows (file order) and one column; ties
    go to the value's text, then the row's content key ("key"), then (identical rows) the row."""
    present = [row for row in rows if row["value"] is not None]
    if not present:
        return None, None, 1.0, False
    distinct = {row["value"] for row in present}
    counts = Counter(row["value"] for row in present)
    ranks = ranks or {}
    big = 10**9

    def tie(row: dict[str, Any]) -> tuple[int, int, str, str, int]:
        # the richer spelling first (proper case, then accents), then the text, the content key, the row
        text = str(row["value"])
        upper, lower = any(char.isupper() for char in text), any(char.islower() for char in text)
        cased = 2 if upper and not lower else 1 if lower and not upper else 0
        return cased, -sum(ord(char) > 127 for char in text), text, row["key"], row["row"]

    if rule == "most_complete":
        winner = min(present, key=lambda row: (-len(str(row["value"]).strip()), *tie(row)))
    elif rule == "most_recent":
        winner = min(present, key=lambda row: (row["ts"] is None, -(row["ts"] or 0), *tie(row)))
    elif rule == "source_priority":
        winner = min(present, key=lambda row: (ranks.get(row["source"], big), *tie(row)))
    elif rule == "most_frequent":
        winner = min(present, key=lambda row: (-counts[row["value"]], *tie(row)))
    elif rule in ("min", "max"):
        best = min(distinct) if rule == "min" else max(distinct)
        winner = min((row for row in present if row["value"] == best), key=tie)
    elif rule == "first":
        winner = present[0]
    elif rule == "last":
        winner = present[-1]
    else:
        winner = min(present, key=lambda row: (-quality(row["value"], role), *tie(row)))
    if rule == "most_frequent":
        confidence = min(0.95, 0.5 + 0.5 * counts[winner["value"]] / len(present))
    elif rule == "quality_score":
        confidence = quality(winner["value"], role)
    elif rule == "source_priority":
        confidence = 0.9 if winner["source"] in ranks else 0.7
    else:
        confidence = BASE_CONFIDENCE[rule]
    conflict = len(distinct) > 1
    return winner["value"], winner["row"], (confidence if conflict else 1.0), conflict


def random_case(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """60 rows in clusters of 1-5 with many ties and nulls: a text, an integer and an e-mail column, two
    sources and a timestamp with ties and gaps."""
    rng = np.random.default_rng(seed)
    labels: list[int] = []
    while len(labels) < 60:
        labels += [len(labels)] * int(rng.integers(1, 6))
    labels = labels[:60]
    rng.shuffle(labels)  # clusters scattered over the file
    height = len(labels)

    def pick(pool: list[Any]) -> list[Any]:
        return [pool[index] for index in rng.integers(0, len(pool), height)]

    frame = stacked(
        {
            "name": pick(["Ann", "Anne", "ann ", "ANN", "Änne", "Annabel", None, None]),
            "score": pick([1, 2, 3, 10, None]),
            "email": pick(["a@x.com", "bad", "ann@example.org", None]),
            "updated": pick([5, 7, 7, 9, None]),
        },
        sources=pick(["primary", "crm", "shop"]),
    )
    return frame, clusters_of(labels)


def reference(frame: pl.DataFrame, clusters: pl.DataFrame, rule: str, ranks: dict[str, int]) -> dict[str, Any]:
    """{golden_id: {column: (value, source, source_row, confidence, conflict)}} by the plain-Python rules."""
    joined = frame.join(clusters, on=ROW).sort(ROW)
    result: dict[str, Any] = {}
    columns = ["name", "score", "email", "updated"]
    for _, group in joined.group_by("cluster"):
        rows = group.sort(ROW).to_dicts()
        keys = {row[ROW]: content_key(row, columns) for row in rows}
        golden_id = expected_id(list(keys.values()))
        by_row = {row[ROW]: row for row in rows}
        fields = {}
        for column in columns:
            items = [
                {
                    "row": row[ROW],
                    "value": row[column],
                    "ts": row["updated"],
                    "source": row[SOURCE_COLUMN],
                    "key": keys[row[ROW]],
                }
                for row in rows
            ]
            value, winner, confidence, conflict = expected_winner(
                items, rule, "email" if column == "email" else None, ranks
            )
            source = by_row[winner][SOURCE_COLUMN] if winner else None
            source_row = by_row[winner][SOURCE_ROW_COLUMN] if winner else None
            fields[column] = (None if value is None else str(value), source, source_row, round(confidence, 6), conflict)
        result[golden_id] = fields
    return result


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_rule_matches_an_independent_computation(rule: str, seed: int) -> None:
    frame, clusters = random_case(seed)
    ranks = {"crm": 1, "primary": 2}  # "shop" unranked: last, confidence 0.7
    golden, provenance = survive(
        frame, clusters, {}, rule, ranks, "updated", roles={"email": "email", "name": "given_name"}
    )
    expected = reference(frame, clusters, rule, ranks)
    assert set(golden["golden_id"]) == set(expected)
    assert provenance.height == golden.height * 4  # one row per golden value
    for row in provenance.to_dicts():
        value, source, source_row, confidence, conflict = expected[row["golden_id"]][row["column"]]
        assert (row["value"], row["source"], row["source_row"], row["conflict"]) == (
            value,
            source,
            source_row,
            conflict,
        ), row
        assert row["confidence"] == pytest.approx(confidence), row
        assert row["rule"] == rule
    trust = provenance.group_by("golden_id").agg(pl.col("confidence").mean().alias("expected"))
    checked = golden.join(trust, on="golden_id")
    assert checked.height == golden.height
    assert np.allclose(checked["trust_score"].to_numpy(), checked["expected"].to_numpy(), atol=1e-6)
    # The golden values are the provenance's, in the column's own type.
    for column in ("name", "score", "email", "updated"):
        shown = provenance.filter(pl.col("column") == column).select("golden_id", "value")
        values = golden.select("golden_id", pl.col(column).cast(pl.String).alias("golden")).join(shown, on="golden_id")
        assert values["golden"].to_list() == values["value"].to_list()
    assert golden.schema["score"] == frame.schema["score"]


def test_ties_go_to_the_values_text_and_nulls_never_win() -> None:
    frame = stacked(
        {
            "name": [None, "Bob", "Rob", "Bob", None],
            "city": ["Oslo", "Bergen", None, "Oslo", "Bergen"],
            "age": [None, None, None, None, None],
        }
    )
    clusters = clusters_of([0, 0, 0, 0, 0])
    for rule, name, city in (
        ("most_complete", "Bob", "Bergen"),  # Bob/Rob tie on length: "Bob" sorts first; Bergen longest
        ("most_frequent", "Bob", "Bergen"),  # Oslo and Bergen twice each: "Bergen" sorts first
        ("first", "Bob", "Oslo"),
        ("last", "Bob", "Bergen"),
        ("min", "Bob", "Bergen"),
        ("max", "Rob", "Oslo"),
    ):
        golden, provenance = survive(frame, clusters, {}, rule, {}, None)
        assert golden.select("name", "city", "age").row(0) == (name, city, None), rule
        age = provenance.filter(pl.col("column") == "age").row(0, named=True)
        assert (age["value"], age["source"], age["source_row"], age["confidence"], age["conflict"]) == (
            None,
            None,
            None,
            1.0,
            False,
        )
    golden, provenance = survive(frame, clusters, {}, "most_frequent", {}, None)
    chosen = provenance.filter(pl.col("column") == "name").row(0, named=True)
    assert chosen["source_row"] == 2 and chosen["confidence"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert chosen["distinct_values"] == 2
    crowd = stacked({"name": ["a"] * 11 + ["b"]})
    _, provenance = survive(crowd, clusters_of([0] * 12), {}, "most_frequent", {}, None)
    assert provenance["confidence"].to_list() == [0.95]  # 0.5 + 0.5 * 11/12 capped


def test_per_column_rules_aliases_and_source_column() -> None:
    frame = stacked(
        {
            "name": ["Ann", "Annabel", "Anne"],
            "email": ["not-an-email-but-long", "a@x.com", "b@y.org"],
            "updated": ["2020-01-05", "2023-06-01", None],
            "system": ["erp", "crm", "web"],
        }
    )
    clusters = clusters_of([0, 0, 0])
    golden, provenance = survive(
        frame,
        clusters,
        {"name": "freshness", "email": "validation", "system": "source_priority"},
        "richness",
        {"web": 1, "erp": 2},
        "updated",
        roles={"email": "email"},
        source_column="system",
    )
    row = golden.row(0, named=True)
    assert row["name"] == "Annabel"  # latest date (text read as dates), not the longest
    assert row["email"] == "a@x.com"  # a valid address beats a longer invalid one
    assert row["system"] == "web"  # ranked 1 by the system column
    assert row["updated"] == "2020-01-05"  # richness = most_complete (ties: first row)
    rules = dict(provenance.select("column", "rule").iter_rows())
    assert rules == {
        "name": "most_recent",
        "email": "quality_score",
        "updated": "most_complete",
        "system": "source_priority",
    }
    assert row["source_count"] == 1 and row["record_count"] == 3


def test_unranked_winner_and_parameter_errors() -> None:
    frame = stacked({"name": ["Ann", "Anne"]}, sources=["shop", "web"])
    golden, provenance = survive(frame, clusters_of([0, 0]), {}, "source_priority", {"crm": 1}, None)
    assert provenance["confidence"].to_list() == [0.7]
    assert golden["source_count"].to_list() == [2]
    with pytest.raises(ValueError, match="most_recent rule needs timestamp_column"):
        survive(frame, clusters_of([0, 0]), {"name": "most_recent"}, "first", {}, None)
    with pytest.raises(ValueError, match="unknown survivorship rule"):
        survive(frame, clusters_of([0, 0]), {}, "best", {}, None)
    with pytest.raises(ValueError, match="not a data column"):
        survive(frame, clusters_of([0, 0]), {}, "first", {}, "missing")


def test_golden_ids_and_everything_else_are_stable_under_shuffling() -> None:
    frame, clusters = random_case(7)
    golden, provenance = survive(frame, clusters, {"score": "max"}, "most_frequent", {"crm": 1}, "updated")
    for seed in range(3):
        shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        shuffled_clusters = clusters.sample(fraction=1.0, shuffle=True, seed=seed + 10)
        again, again_provenance = survive(
            shuffled, shuffled_clusters, {"score": "max"}, "most_frequent", {"crm": 1}, "updated"
        )
        assert again.equals(golden)
        assert again_provenance.equals(provenance)
    # ids derive from the members' content: the hash of their sorted content keys
    columns = ["name", "score", "email", "updated"]
    keyed = frame.join(clusters, on=ROW).to_dicts()
    by_cluster: dict[int, list[str]] = {}
    for row in keyed:
        by_cluster.setdefault(row["cluster"], []).append(content_key(row, columns))
    ids = {expected_id(keys) for keys in by_cluster.values()}
    assert set(golden["golden_id"]) == ids and golden["golden_id"].n_unique() == golden.height
    assert all(re.fullmatch(r"G-[0-9a-f]{16}", value) for value in golden["golden_id"])


def test_golden_ids_do_not_depend_on_row_numbers() -> None:
    """The same content at other positions (row 1 of another file, another source row) keeps its id; other
    content at the same position gets another; identical clusters left apart still get distinct ids."""
    one = stacked({"name": ["Ann", "Bo"]})
    other = stacked({"name": ["Cy", "Ann"]})
    first, _ = survive(one, clusters_of([0, 1]), {}, "first", {}, None)
    second, _ = survive(other, clusters_of([0, 1]), {}, "first", {}, None)
    assert first["golden_id"][0] == second["golden_id"][1]  # Ann, row 1 then row 2
    assert first["golden_id"][1] != second["golden_id"][0]  # row 1: Bo vs Cy
    twins = stacked({"name": ["Ann", "Ann", "Ann"]})
    apart, _ = survive(twins, clusters_of([0, 1, 1]), {}, "first", {}, None)
    alone, _ = survive(twins, clusters_of([0, 1, 2]), {}, "first", {}, None)
    assert apart["golden_id"].n_unique() == 2 and alone["golden_id"].n_unique() == 3
    assert apart["golden_id"][0] == alone["golden_id"][0] == first["golden_id"][0]


def test_rows_missing_from_clusters_are_their_own_and_singleton_provenance_is_optional() -> None:
    frame = stacked({"name": ["Ann", "Ann", "Bo"], "age": [1, 2, None]})
    partial = pl.DataFrame({ROW: [1, 2], "cluster": [1, 1]})
    golden, provenance = survive(frame, partial, {}, "first", {}, None)
    assert golden["record_count"].to_list() == [2, 1]
    assert provenance.height == 2 * 2 and dict(provenance.schema) == PROVENANCE_SCHEMA
    lone = provenance.filter(pl.col("golden_id") == golden["golden_id"][1]).to_dicts()
    assert [(row["value"], row["source_row"], row["confidence"]) for row in lone] == [("Bo", 3, 1.0), (None, None, 1.0)]
    _, merged_only = survive(frame, partial, {}, "first", {}, None, singleton_provenance=False)
    assert merged_only.height == 2 and set(merged_only["golden_id"]) == {golden["golden_id"][0]}


def test_frames_without_bookkeeping_are_numbered_from_primary() -> None:
    frame = pl.DataFrame({"name": ["Ann", "Ann"]})
    golden, provenance = survive(frame, pl.DataFrame({ROW: [1, 2], "cluster": [1, 1]}), {}, "first", {}, None)
    key = content_key({SOURCE_COLUMN: "primary", "name": "Ann"}, ["name"])
    assert golden["golden_id"].to_list() == [expected_id([key, key])]
    assert provenance.row(0, named=True)["source"] == "primary"


def test_value_quality_matches_agensiums_formula() -> None:
    values = ["a@x.com", "not an email", "  ", None, "x" * 40 + "@example.com"]
    frame = pl.DataFrame({"email": values})
    scores = frame.select(survivorship.value_quality("email", pl.String(), "email")).to_series().to_list()
    assert scores == pytest.approx([quality(value, "email") for value in values])
    rules = {"pattern": "[a-z]+@x\\.com", "min_length": 8, "allowed_values": ["A@X.COM"]}
    custom = frame.select(survivorship.value_quality("email", pl.String(), "email", rules)).to_series().to_list()
    # a@x.com: 0.5 + 0.07 + 0.3 (format) + 0.2 (pattern) + 0 (7 < 8) + 0.2 (allowed) -> clipped to 1
    assert custom[0] == 1.0
    assert custom[1] == pytest.approx(0.5 + 0.12 - 0.2 - 0.2 + 0.1)


def test_exact_clusters_normalise_keys_by_role() -> None:
    frame = stacked(
        {
            "email": ["Ann@X.com ", "ann@x.com", None, "bo@y.org", "bo@y.org"],
            "phone": ["(02) 9876-5432", "0298765432", "02 9876 5432", None, "1"],
        }
    )
    roles = {"email": "email", "phone": "phone"}
    by_email, skipped = survivorship.exact_clusters(frame, ["email"], roles)
    assert skipped.is_empty() and dict(skipped.schema) == survivorship.SKIPPED_KEYS_SCHEMA
    assert by_email["cluster"].to_list() == [1, 1, 3, 4, 4]
    assert by_email["match_probability"].to_list() == [1.0, 1.0, None, 1.0, 1.0]
    assert by_email["rule"].to_list() == ["exact:email", "exact:email", None, "exact:email", "exact:email"]
    by_phone, _ = survivorship.exact_clusters(frame, ["phone"], roles)
    assert by_phone["cluster"].to_list() == [1, 1, 1, 4, 5]
    alone, _ = survivorship.exact_clusters(frame, [], roles)
    assert alone["cluster"].to_list() == [1, 2, 3, 4, 5]


def test_exact_keys_ignore_placeholders_and_giant_groups() -> None:
    """Five people whose e-mail is a placeholder stay apart; an invalid e-mail or a short phone is no key;
    a key value shared by more rows than the cap is skipped and reported; identical rows still merge."""
    emails = ["N/A", "n/a", "unknown", "UNKNOWN", "  ", "no-at-sign", "none", "-", "ann@x.com", "ANN@x.com"]
    frame = stacked({"email": emails, "name": [f"p{index}" for index in range(10)]})
    clusters, skipped = survivorship.exact_clusters(frame, ["email"], {"email": "email"})
    assert clusters["cluster"].to_list() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9]
    assert skipped.is_empty()
    phones = stacked({"phone": ["123-45", "12345", "0298765432", "(02) 9876 5432"]})
    clusters, _ = survivorship.exact_clusters(phones, ["phone"], {"phone": "phone"})
    assert clusters["cluster"].to_list() == [1, 2, 3, 3]
    crowd = stacked({"phone": ["0299999999"] * 5 + ["0211111111"] * 2 + ["0299999999"], "n": [1, 2, 3, 4, 5, 6, 7, 1]})
    clusters, skipped = survivorship.exact_clusters(crowd, ["phone"], {"phone": "phone"}, max_group=3)
    assert clusters["cluster"].to_list() == [1, 2, 3, 4, 5, 6, 6, 1]  # row 8 = row 1 in every column
    assert clusters["rule"].to_list() == [
        "identical",
        None,
        None,
        None,
        None,
        "exact:phone",
        "exact:phone",
        "identical",
    ]
    assert skipped.to_dicts() == [{"key": "0299999999", "rows": 6}]


def test_resolver_reports_skipped_key_values() -> None:
    frame = stacked({"email": ["ann@x.com"] * 501 + ["bo@y.org"] * 2, "n": list(range(503))})
    result = resolve_rows(frame)
    assert result.envelope.data["skipped_key_values"] == [{"key": "ann@x.com", "rows": 501}]
    assert result.envelope.summary_metrics["clusters_analyzed"] == 1
    assert "skipped_keys" in {alert.alert_id for alert in result.envelope.alerts}


def test_entity_key_columns_follow_the_order_of_preference() -> None:
    assert survivorship.entity_key_columns({"e": "email", "p": "phone"}) == ["e"]
    assert survivorship.entity_key_columns({"p": "phone", "n": "national_id"}) == ["p"]
    names = {"g": "given_name", "s": "surname", "d": "date_of_birth", "c": "city"}
    assert survivorship.entity_key_columns(names) == ["g", "s", "d"]
    assert survivorship.entity_key_columns({"g": "given_name", "s": "surname"}) == []
    assert survivorship.entity_key_columns({"f": "full_name", "d": "date_of_birth"}) == ["f", "d"]


def test_the_parameter_rule_names_are_the_modules() -> None:
    accepted = set(SurvivorshipRule.__args__)  # type: ignore[attr-defined]
    assert accepted == set(survivorship.ACCEPTED_RULES)


# ---------------------------------------------------------------------------------------------------------
# the survivorship-resolver agent


def resolve_rows(frame: pl.DataFrame, **params: Any) -> AgentResult:
    fractions: list[float] = []
    model = SurvivorshipResolverParams(**params)
    result = resolver.run(AgentInputs(frame, "primary.csv"), model, lambda fraction, _m: fractions.append(fraction))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success" and result.frame is None
    assert envelope["data"]["parameters"] == model.model_dump()
    return result


def customers() -> pl.DataFrame:
    return stacked(
        {
            "email": ["ann@x.com", "ANN@x.com", "bo@y.org", "bo@y.org", "cy@z.net", None],
            "name": ["Ann", "Annabel", "Bo", "Bo", "Cy", "Dee"],
            "city": ["Oslo", "Bergen", "Rome", None, "Paris", "Lima"],
        },
        sources=["primary", "crm", "primary", "crm", "crm", "primary"],
    )


def test_resolver_groups_by_the_detected_email_and_counts_conflicts() -> None:
    result = resolve_rows(customers())
    metrics = result.envelope.summary_metrics
    # Two clusters (Ann, Bo); Ann conflicts in email, name and city; Bo agrees (a null is not a conflict).
    assert metrics["clusters_analyzed"] == 2
    assert metrics["conflicts_detected"] == 3
    data = result.envelope.data
    assert data["match_key_columns"] == ["email"] and data["match_key_source"] == "detected"
    fields = {item["column"]: item for item in data["resolved_fields"]}
    assert fields["name"]["winner"] == "Annabel" and fields["name"]["competing_values"] == ["Ann", "Annabel"]
    assert fields["email"]["winner"] == "ANN@x.com"  # equal quality: the text that sorts first
    # quality_score confidences: Annabel 0.57, Bergen 0.56, ann@x.com 0.89
    confidences = sorted(item["confidence"] for item in fields.values())
    assert confidences == pytest.approx([0.56, 0.57, 0.89])
    assert metrics["conflicts_resolved"] == 3 and metrics["unresolved_conflicts"] == 0
    assert metrics["resolution_rate"] == 100.0
    assert metrics["average_confidence"] == pytest.approx(round((0.56 + 0.57 + 0.89) / 3, 4))
    assert metrics["values_survived"] == 6  # Ann: 3 values, Bo: 3 values (city from the row that has one)


def test_resolver_reports_unresolved_conflicts_at_the_clusters_first_row() -> None:
    result = resolve_rows(customers(), min_confidence_threshold=0.6, survivorship_rules={"email": "first"})
    metrics = result.envelope.summary_metrics
    assert (metrics["conflicts_resolved"], metrics["unresolved_conflicts"]) == (1, 2)
    assert metrics["resolution_rate"] == pytest.approx(33.33)
    issues = result.row_level_issues
    assert issues["row_index"].to_list() == [1, 1] and issues["column"].to_list() == ["city", "name"]
    assert set(issues["issue_type"]) == {"unresolved_conflict"}
    assert {alert.alert_id for alert in result.envelope.alerts} >= {"unresolved"}


def test_resolver_with_match_keys_and_validation_rules() -> None:
    frame = customers().with_columns(pl.Series("team", ["a", "a", "a", "a", "b", "b"]))
    result = resolve_rows(
        frame,
        match_key_columns=["team"],
        field_validation_rules={"city": {"allowed_values": ["rome"]}},
        max_reported_conflicts=50,
    )
    data = result.envelope.data
    assert data["match_key_source"] == "parameter" and result.envelope.summary_metrics["clusters_analyzed"] == 2
    city = next(item for item in data["resolved_fields"] if item["column"] == "city" and item["first_row"] == 1)
    assert city["winner"] == "Rome"  # allowed value: +0.2


def test_resolver_without_an_entity_key_groups_nothing() -> None:
    result = resolve_rows(stacked({"colour": ["red", "red"], "size": [1, 2]}))
    assert result.envelope.summary_metrics["clusters_analyzed"] == 0
    assert [alert.alert_id for alert in result.envelope.alerts] == ["no_match_keys"]


def test_resolver_parameters_are_validated() -> None:
    with pytest.raises(ValidationError):
        SurvivorshipResolverParams.model_validate({"default_rule": "best"})
    with pytest.raises(ValidationError, match="timestamp_column"):
        SurvivorshipResolverParams.model_validate({"survivorship_rules": {"name": "freshness"}})
    with pytest.raises(ValidationError, match="source_priority"):
        SurvivorshipResolverParams.model_validate({"default_rule": "source_priority"})
    with pytest.raises(ValidationError):
        SurvivorshipResolverParams.model_validate({"min_confidence_threshold": 2})
    with pytest.raises(ValidationError):
        SurvivorshipResolverParams.model_validate({"unknown": 1})
    with pytest.raises(InvalidParametersError, match="unknown column"):
        resolve_rows(customers(), match_key_columns=["nope"])
    with pytest.raises(InvalidParametersError, match="invalid regular expression") as error:
        resolve_rows(customers(), field_validation_rules={"name": {"pattern": "(?=a)"}})
    assert error.value.field == "field_validation_rules.name"
