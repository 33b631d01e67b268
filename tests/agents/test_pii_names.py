"""PII types read from column names (agents.profile.pii.pii_type_by_name), on the names real files use."""

from __future__ import annotations

import pytest

from agents.profile.pii import pii_type_by_name


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("soc_sec_id", "ssn"),  # FEBRL (QA: was not flagged)
        ("SocialSecurityNumber", "ssn"),
        ("social_sec_no", "ssn"),
        ("SSN", "ssn"),
        ("national_insurance_number", "ssn"),
        ("given_name", "name"),
        ("surname", "name"),
        ("date_of_birth", "date_of_birth"),
        ("postcode", "postal_code"),
        ("address_1", "address"),
        ("email", "email"),
        ("sec_id", None),  # a security (finance) id is no person's
        ("lesson", None),
        ("season", None),
    ],
)
def test_pii_type_by_name(column: str, expected: str | None) -> None:
    assert pii_type_by_name(column) == expected
