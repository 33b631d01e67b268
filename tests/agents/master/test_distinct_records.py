"""Default runs must not merge records that their own data says are different (QA D12): airports of the same
name in different states with different codes, loans that share only a state and an amount, scores of
different countries; numbers get no text role from their values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN
from agents.master.matching import MatchSettings, resolve
from agents.master.roles import detect_roles

TOWNS = [
    "Burlington", "Springfield", "Franklin", "Clinton", "Madison", "Georgetown", "Salem", "Fairview",
    "Greenville", "Bristol", "Dover", "Oxford", "Jackson", "Marion", "Newport", "Ashland",
]  # fmt: skip
STATES = ["IA", "VT", "NC", "WI", "CO", "KS", "TX", "TN", "OH", "PA", "NY", "GA", "AL", "MS", "KY", "OR"]
KINDS = ["Municipal", "Regional", "County", "International"]


def _with_row_index(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))


def _airports() -> pl.DataFrame:
    """Every town has an airport in several states: same name and city, another state, code and place."""
    rng = np.random.default_rng(7)
    rows = []
    for t, town in enumerate(TOWNS):
        for s in range(4):
            state = STATES[(t + 3 * s) % len(STATES)]
            rows.append(
                {
                    "iata": f"{chr(65 + t)}{chr(65 + s)}{chr(65 + (t * s) % 26)}",
                    "name": f"{town} {KINDS[s % 2]}",
                    "city": town,
                    "state": state,
                    "country": "USA",
                    "latitude": round(float(rng.uniform(25, 49)), 6),
                    "longitude": round(float(rng.uniform(-124, -67)), 6),
                }
            )
    return pl.DataFrame(rows)


def _loans(rows: int = 400) -> pl.DataFrame:
    """Applications that repeat states and round amounts, differing in everything else."""
    rng = np.random.default_rng(11)
    return pl.DataFrame(
        {
            "emp_title": rng.choice(["nurse", "teacher", "driver", "manager", "clerk", "engineer"], rows),
            "state": rng.choice(["CA", "TX", "NY", "FL"], rows),
            "annual_income": rng.integers(20, 200, rows) * 1000.0,
            "loan_amount": rng.choice([5000, 10000, 12000, 15000, 20000, 25000], rows),
            "total_debit_limit": rng.choice([10000, 15000, 20000, 30000], rows),
            "term": rng.choice([36, 60], rows),
            "interest_rate": np.round(rng.uniform(5, 25, rows), 2),
            "grade": rng.choice(list("ABCDEFG"), rows),
            "issue_month": rng.choice(["Jan-2018", "Feb-2018", "Mar-2018"], rows),
            "paid_total": np.round(rng.uniform(0, 30000, rows), 2),
        }
    )


def _chain_golden_records(tmp_path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    path = tmp_path / "primary.csv"
    frame.write_csv(path)
    run_tool("master-my-data", [], {"primary.csv": path}, {}, tmp_path / "out", lambda *_: None)
    return pl.read_csv(tmp_path / "out" / "crosswalk.csv")


def test_numbers_get_no_text_role_from_their_values_or_a_word_in_their_name() -> None:
    rows = 300
    rng = np.random.default_rng(3)
    scores = [f"{value:.6f}" if value < 9 else "NA" for value in rng.uniform(0, 10, rows)]
    frame = pl.DataFrame(
        {
            "loan_amount": rng.choice([5000, 10000, 12000, 15000, 20000], rows),  # 4-5 digits that repeat
            "c1": rng.choice([1000, 2000, 3000, 4000], rows),  # no name at all
            "ef_regulation_business": scores,  # "business" says company; the values are scores
            "pf_identity_sex_male": scores,  # "sex" says gender
            "zip": rng.choice([2000, 2010, 3000], rows),  # the name says postcode: numbers may be one
            "c2": rng.choice(["02134", "01002", "02139"], rows),  # leading zeros: text postcodes
        }
    )
    roles = {name: role.role for name, role in detect_roles(frame).items()}
    assert roles == {
        "loan_amount": "other",
        "c1": "other",
        "ef_regulation_business": "other",
        "pf_identity_sex_male": "other",
        "zip": "postcode",
        "c2": "postcode",
    }


def test_airports_of_one_name_in_different_states_stay_apart() -> None:
    frame = _with_row_index(_airports())
    roles = detect_roles(frame)
    resolution = resolve(frame, roles, MatchSettings())
    assert resolution.stats["multi_row_clusters"] == 0
    # what kept them apart: the model alone links same-named airports of different states
    assert resolution.stats["contradicted_links"] > 0
    unchecked = resolve(frame, roles, MatchSettings(contradiction_check=False))
    assert unchecked.stats["multi_row_clusters"] > 0


def test_airports_through_the_chain_give_one_golden_record_each(tmp_path: Path) -> None:
    crosswalk = _chain_golden_records(tmp_path, _airports())
    assert crosswalk["golden_id"].n_unique() == crosswalk.height


def test_loans_sharing_only_state_and_amount_stay_apart(tmp_path: Path) -> None:
    loans = _loans()
    crosswalk = _chain_golden_records(tmp_path, loans)
    assert crosswalk["golden_id"].n_unique() == loans.height


def test_loans_stay_apart_even_with_amounts_taken_for_postcodes() -> None:
    """The second line of defence: equal on a couple of common keys, different in every other column."""
    frame = _with_row_index(_loans())
    roles = {name: role.role for name, role in detect_roles(frame).items()}
    roles |= {"loan_amount": "postcode", "total_debit_limit": "postcode"}
    resolution = resolve(frame, roles, MatchSettings())
    assert resolution.stats["blocking"]["same_match_key_pairs"] > 0
    assert resolution.stats["multi_row_clusters"] == 0


def _customers() -> pl.DataFrame:
    """Ten customers with a unique record id, each once, and a second row of Anna Meier under another id."""
    first = ["anna", "ben", "carla", "dieter", "eva", "felix", "greta", "hans", "ida", "jonas"]
    last = ["meier", "schulz", "wagner", "becker", "hoffmann", "koch", "richter", "klein", "wolf", "neumann"]
    rows = [
        {
            "customer_id": 1000 + index,
            "first_name": given,
            "last_name": surname,
            "email": f"{given}.{surname}@example.com",
            "phone": f"+49 30 {5550100 + index}",
            "city": "Berlin" if index % 2 else "Hamburg",
            "last_order_total": 10.5 * (index + 1),
            "last_order_date": f"2024-0{1 + index % 9}-1{index % 10}",
        }
        for index, (given, surname) in enumerate(zip(first, last, strict=True))
    ]
    rows.append({**rows[0], "customer_id": 2000, "last_order_total": 99.0, "last_order_date": "2025-01-02"})
    return pl.DataFrame(rows)


def test_a_duplicate_with_its_own_id_and_orders_still_merges_on_its_email() -> None:
    frame = _with_row_index(_customers())
    resolution = resolve(frame, detect_roles(frame), MatchSettings())
    clusters = resolution.clusters
    assert clusters.filter(pl.col("cluster").is_duplicated())[ROW_INDEX_COLUMN].to_list() == [1, 11]


@pytest.mark.parametrize("same", ["first_name", "last_name"])
def test_records_with_different_ids_and_attributes_do_not_merge_on_a_name(same: str) -> None:
    """Two people who share one name part, with their own id, e-mail, phone and city: different people."""
    customers = _customers().head(10)
    stranger = customers.row(0, named=True) | {
        "customer_id": 3000,
        "first_name": "anna" if same == "first_name" else "anne",
        "last_name": "meier" if same == "last_name" else "maier",
        "email": "a.m@example.org",
        "phone": "+49 89 1234567",
        "city": "Munich",
        "last_order_total": 1.0,
        "last_order_date": "2023-05-05",
    }
    frame = _with_row_index(pl.concat([customers, pl.DataFrame([stranger], schema=customers.schema)]))
    resolution = resolve(frame, detect_roles(frame), MatchSettings())
    assert resolution.stats["multi_row_clusters"] == 0
