"""What each data column of a master frame holds (a person's given name, an e-mail, a postcode...): its role.

:func:`detect_roles` reads two kinds of evidence and combines them:

- **The name.** The column name is normalised (``agents.columns.normalised_name``: camelCase, kebab-case,
  spaces and punctuation become lower-case snake case: ``LastName`` -> ``last_name``, ``E-mail`` ->
  ``e_mail``) and matched against each role's aliases (:data:`NAME_ALIASES`, in the order listed there):
  first as the whole name (confidence :data:`NAME_EXACT`), then as words inside it (``billing_city``,
  confidence :data:`NAME_PARTIAL`; a few aliases such as a bare ``name``, ``first`` or ``last`` count only as
  the whole name: ``first_order_date`` holds no given name).
- **The values.** An evenly spaced sample of at most :data:`SAMPLE_SIZE` non-null values per column (as
  text, trimmed) is matched against value patterns: e-mail addresses, phone numbers (7-15 digits, written
  with separators, a leading ``+``/``0``, or 10-11 digits; never a decimal number within -180..180 such as
  a longitude ``-80.6195833``), dates (shaped like a format of
  ``agents.values``, ``DATE_LIKE_PATTERN``, or a valid compact ``YYYYMMDD``; their four-digit years),
  postcodes (4-5 digits, US ZIP+4, or UK-like ``SW1A 1AA``), UUIDs, numeric ids (whole numbers all
  distinct in the whole column although random draws from their span would repeat:
  the birthday bound of ``agents.profile.semantic``), street addresses (a street-type word such as
  ``street``, ``rd``, ``place``), and person-name-like tokens (letters, apostrophes, hyphens and dots: one
  token, or two to four for a full name).

A column of numbers (a numeric dtype, or text whose sample, missing tokens such as "NA" aside, is at least
:data:`NUMBER_SHARE` numbers without leading zeros) gets no text role: from its name only one of
:data:`NUMBER_ROLES` (a phone, postcode, street number, national id, id, date of birth; a gender code when
the numbers are whole), from its values only an id, a phone or a birth date. "ef_regulation_business" holding
scores is no company, and repeating 4-5 digit amounts are no postcodes unless the name says so.

A role named by the column name is checked against its values (:data:`VALUE_CHECKS`): when at least
:data:`CONFIRM_SHARE` of the sample fits, the method is ``name+value`` and the confidences combine
(``1 - (1 - name) (1 - value)``); when the sample does not fit and the values alone say something else,
the values win (``value``); otherwise the name stands with half its confidence. A column whose name says
nothing gets a role from its values alone only when they are unambiguous (:func:`_value_role`): e-mails,
UUIDs, phone numbers, dates of people's births (years all past, none before 1880, median at least
:data:`BIRTH_MIN_AGE_YEARS` years ago), postcodes (UK-like, or 4-5 digits that repeat and are not years, as
text with leading zeros: never a column of numbers),
numeric ids, street addresses, and full names (2-4 name tokens, mostly distinct). Single name tokens (a
given name? a surname? a city?) only confirm a name. Anything else is ``other`` with confidence 0 and
method ``name+value`` (neither said anything).

Only data columns are read (``agents.envelope.data_columns``: never the chain's bookkeeping columns), and
only columns of scalar types (text, numbers, booleans, dates): lists, structs and binary are ``other``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import polars as pl

from agents.columns import is_text, narrow, normalised_name
from agents.envelope import data_columns
from agents.layouts import text_of
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.profile.semantic import RANDOM_REPEATS_EXPECTED
from agents.values import LEADING_ZERO_PATTERN, date_like

Method = Literal["name", "value", "name+value"]
METHODS: Final = ("name", "value", "name+value")
ROLES: Final = (
    "given_name",
    "surname",
    "full_name",
    "email",
    "phone",
    "street_number",
    "address",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
    "date_of_birth",
    "national_id",
    "id",
    "company",
    "gender",
    "other",
)

SAMPLE_SIZE: Final = 1000
NAME_EXACT: Final = 0.9
NAME_PARTIAL: Final = 0.75
CONFIRM_SHARE: Final = 0.5  # share of the sample that must fit the role a name says
VALUE_SHARE: Final = 0.8  # share of the sample that must fit for the values alone to decide
NAME_DISAGREES: Final = 0.5  # factor on a name's confidence when its values do not fit
BIRTH_MIN_AGE_YEARS: Final = 16
BIRTH_MIN_YEAR: Final = 1880
FULL_NAME_DISTINCT: Final = 0.5  # distinct share of the sample a full-name column has at least
POSTCODE_REPEAT: Final = 0.9  # a digit postcode column's sample is at most this share distinct
NUMBER_SHARE: Final = 0.95  # share of a text sample (missing tokens aside) written as numbers for a number column
NUMBER_ROLES: Final = frozenset({"phone", "postcode", "street_number", "national_id", "id", "date_of_birth"})
"""The roles a column of numbers may have when its name says so; ``gender`` too when they are whole numbers (a
code such as 1/2). Text roles (a name, a company, a city) never: "ef_regulation_business" holding scores is no
company, and 4-5 digit amounts are no postcodes unless the name says postcode (or the text keeps leading zeros,
and then it is no number column)."""
NUMBER_VALUE_ROLES: Final = frozenset({"phone", "id", "date_of_birth"})
"""The roles a column of numbers may have from its values alone."""

# (role, aliases as one regular expression over the normalised name, whether the aliases also count as
# words inside a longer name). Earlier roles win: "soc_sec_id" is a national id before it is an id.
_OPT = r"(?:_?(?:no|nr|num|number))?"
NAME_ALIASES: Final[tuple[tuple[str, str, bool], ...]] = (
    ("email", r"e_?mail(?:_?addr(?:ess)?)?|mail|email_?id", True),
    ("phone", rf"phone{_OPT}|tel(?:ephone)?{_OPT}|mobile(?:_?phone)?{_OPT}|cell(?:_?phone)?|fax|msisdn", True),
    ("phone", r"contact_?(?:no|nr|num|number)", True),
    ("date_of_birth", r"dob|d_o_b|date_?of_?birth|birth_?(?:date|day|dt)|birthdate|birthday|born(?:_on)?", True),
    (
        "national_id",
        r"ssn|nin|nino|national_?(?:id|insurance"
        + _OPT
        + r")|soc(?:ial)?_?sec(?:urity)?(?:_?id)?"
        + _OPT
        + r"|sin|tin|tax_?(?:id|no|number)|passport"
        + _OPT,
        True,
    ),
    ("given_name", r"first_?name|fname|first_?nm|given_?name|givenname|forename|christian_?name", True),
    ("surname", r"last_?name|lname|last_?nm|sur_?name|family_?name|lastname", True),
    ("given_name", r"first|given|forenames?", False),
    ("surname", r"last|family", False),
    ("company", r"company(?:_?name)?|organi[sz]ation(?:_?name)?|org_?name|employer|business(?:_?name)?|firm", True),
    ("street_number", r"(?:street|house|building)_?(?:no|nr|num|number)", True),
    ("address_2", r"addr(?:ess)?_?(?:line_?)?2|street_?2|line_?2", True),
    (
        "address",
        r"addr(?:ess)?(?:_?(?:line_?)?1)?|address_?line|street(?:_?(?:address|name))?|mailing_?address",
        True,
    ),
    ("city", r"city(?:_?name)?|town|suburb|locality|municipality|village", True),
    ("state", r"state(?:_?(?:code|name))?|province|territory", True),
    ("state", r"region|county", False),
    ("postcode", r"zip(?:_?code)?|zip5|post_?code|postal_?code|plz|pin_?code", True),
    ("country", r"country(?:_?(?:code|name))?|ctry", True),
    ("gender", r"gender|sex", True),
    ("full_name", r"(?:full|customer|client|person|contact|patient|member|display|account_?holder)_?name", True),
    ("full_name", r"name", False),
    ("id", r"id|uuid|guid|pk|key", True),
    (
        "id",
        r"(?:customer|client|user|account|member|order|product|person|patient|record|item|transaction|invoice|"
        r"employee|contact)_?(?:id|no|nr|num|number)",
        True,
    ),
)
_EXACT_NAMES: Final = tuple((role, re.compile(rf"^(?:{aliases})$")) for role, aliases, _ in NAME_ALIASES)
_PARTIAL_NAMES: Final = tuple(
    (role, re.compile(rf"(?:^|_)(?:{aliases})(?:_|$)")) for role, aliases, partial in NAME_ALIASES if partial
)

EMAIL: Final = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"
UUID: Final = r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PHONE_CHARACTERS: Final = r"^\+?[0-9 ().\-/]{7,24}$"
PLAIN_NUMBER: Final = r"^[0-9]+(?:\.[0-9]+)?$"
SMALL_DECIMAL: Final = r"^[+-]?[0-9]{1,3}\.[0-9]+$"  # within -180..180 (checked apart): coordinates, not phones
COORDINATE_LIMIT: Final = 180.0
COMPACT_DATE: Final = r"^[0-9]{8}$"
YEAR_IN_DATE: Final = r"((?:18|19|20)[0-9]{2})"
DIGIT_POSTCODE: Final = r"^(?:[0-9]{4,5}|[0-9]{5}-[0-9]{4})$"
UK_POSTCODE: Final = r"(?i)^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$"
ANY_POSTCODE: Final = r"^[A-Za-z0-9][A-Za-z0-9 \-]{2,9}$"
YEAR: Final = r"^(?:19|20)[0-9]{2}$"
INTEGER: Final = r"^[+-]?[0-9]{1,18}$"
NUMBER: Final = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NAME_TOKEN = r"\p{L}[\p{L}'’\-.]*"
NAME_TOKEN: Final = rf"^{_NAME_TOKEN}$"
FULL_NAME: Final = rf"^{_NAME_TOKEN}(?:,?\s+{_NAME_TOKEN}){{1,3}}$"
STREET_WORD: Final = (
    r"(?i)\b(?:street|st|road|rd|avenue|ave|place|pl|court|ct|drive|dr|lane|ln|way|boulevard|blvd|crescent|"
    r"cres|circuit|cct|terrace|tce|close|parade|pde|highway|hwy|square|sq|strasse|straße|rue|via|calle)\b"
)
STREET_NUMBER: Final = r"^[0-9]{1,5}\s*[A-Za-z]?$|^[0-9]{1,5}\s*[-/]\s*[0-9]{1,5}$"
TOKEN_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9\-_/. ]{3,39}$"  # with a digit: national ids
KEY_TOKEN: Final = r"^[A-Za-z0-9][A-Za-z0-9\-_/.:#]{0,63}$"  # record ids, keys
PLACE: Final = r"^\p{L}[\p{L}\s.'’\-()]*$"
HAS_LETTER: Final = r"\p{L}"
HAS_DIGIT: Final = r"[0-9]"

VALUE_CHECKS: Final[dict[str, str]] = {
    "email": "email",
    "phone": "phone_loose",
    "date_of_birth": "date",
    "national_id": "token_id",
    "given_name": "name_token",
    "surname": "name_token",
    "full_name": "name_any",
    "company": "has_letter",
    "street_number": "street_number",
    "address": "has_letter",
    "address_2": "has_letter",
    "city": "place",
    "state": "place",
    "country": "place",
    "postcode": "postcode_loose",
    "gender": "few_values",
    "id": "key_token",
}
"""For each role a column name can say, the sample share (a column of :func:`value_evidence`) that checks it."""


@dataclass(frozen=True)
class ColumnRole:
    """A column's role (one of :data:`ROLES`), how sure (0..1) and what said so (the name, the values or both)."""

    role: str
    confidence: float
    method: Method

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is not within 0..1")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}")


OTHER: Final = ColumnRole("other", 0.0, "name+value")


def detect_roles(
    frame: pl.DataFrame, known_evidence: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, ColumnRole]:
    """The role of every data column of ``frame``, in column order (module docstring). ``known_evidence``
    (from :func:`value_evidence`, keyed by this frame's names) spares sampling columns whose values are known
    (e.g. a column only renamed since)."""
    columns = data_columns(frame)
    known = known_evidence or {}
    schema = frame.schema  # built anew on every access: once, not per column
    scalar = [name for name in columns if is_scalar(schema[name])]
    evidence: dict[str, Mapping[str, Any]] = {name: known[name] for name in scalar if name in known}
    evidence.update(value_evidence(frame, [name for name in scalar if name not in known]))
    roles: dict[str, ColumnRole] = {}
    for name in columns:
        if name not in evidence:
            roles[name] = name_role(name) or OTHER
            continue
        roles[name] = _combine(name_role(name), evidence[name], _numbers(schema[name], evidence[name]))
    return roles


def _numbers(dtype: pl.DataType, evidence: Mapping[str, Any]) -> Literal["whole", "decimal"] | None:
    """Whether a column holds numbers ("whole" or "decimal"): a numeric dtype, or text whose sample, missing
    tokens aside, is at least :data:`NUMBER_SHARE` numbers without leading zeros; else None."""
    if dtype.is_numeric():
        return "whole" if dtype.is_integer() else "decimal"
    if not is_text(dtype) or not evidence["sampled"]:
        return None
    if float(evidence.get("number") or 0.0) < NUMBER_SHARE:
        return None
    return "whole" if float(evidence.get("integer_of_numbers") or 0.0) >= NUMBER_SHARE else "decimal"


def name_role(column: str) -> ColumnRole | None:
    """The role a column's name alone says (method ``name``), or None."""
    normalised = normalised_name(column)
    for role, pattern in _EXACT_NAMES:
        if pattern.match(normalised):
            return ColumnRole(role, NAME_EXACT, "name")
    for role, pattern in _PARTIAL_NAMES:
        if pattern.search(normalised):
            return ColumnRole(role, NAME_PARTIAL, "name")
    return None


def _combine(
    by_name: ColumnRole | None, evidence: Mapping[str, Any], numbers: Literal["whole", "decimal"] | None = None
) -> ColumnRole:
    by_value = _value_role(evidence)
    if numbers is not None:  # a column of numbers: no text role, from its name or its values (NUMBER_ROLES)
        allowed = NUMBER_ROLES | ({"gender"} if numbers == "whole" else set())
        by_name = by_name if by_name is not None and by_name.role in allowed else None
        by_value = by_value if by_value is not None and by_value.role in NUMBER_VALUE_ROLES else None
    if by_name is None:
        return by_value or OTHER
    if not evidence["sampled"]:
        return by_name
    share = float(evidence.get(VALUE_CHECKS.get(by_name.role, ""), 0.0) or 0.0)
    if share >= CONFIRM_SHARE:
        confidence = 1.0 - (1.0 - by_name.confidence) * (1.0 - 0.9 * share)
        return ColumnRole(by_name.role, round(min(confidence, 0.99), 4), "name+value")
    if by_value is not None and by_value.role != by_name.role:
        return by_value
    return ColumnRole(by_name.role, round(by_name.confidence * NAME_DISAGREES, 4), "name")


def _value_role(evidence: Mapping[str, Any]) -> ColumnRole | None:
    """The role the sampled values alone make unambiguous (method ``value``), or None."""
    if not evidence["sampled"]:
        return None

    def share(key: str) -> float:
        return float(evidence.get(key) or 0.0)

    def role(name: str, confidence: float) -> ColumnRole:
        return ColumnRole(name, round(min(confidence, 0.99), 4), "value")

    if share("email") >= VALUE_SHARE:
        return role("email", share("email"))
    if share("uuid") >= VALUE_SHARE:
        return role("id", 0.9 * share("uuid"))
    if share("date") >= VALUE_SHARE and evidence["birth_like"]:
        return role("date_of_birth", 0.7 * share("date"))
    if share("phone") >= VALUE_SHARE:
        return role("phone", 0.85 * share("phone"))
    if share("uk_postcode") >= VALUE_SHARE:
        return role("postcode", 0.85 * share("uk_postcode"))
    if (
        share("digit_postcode") >= 0.9
        and share("distinct") <= POSTCODE_REPEAT
        and share("year") < VALUE_SHARE
        and share("date") < VALUE_SHARE
    ):
        return role("postcode", 0.65 * share("digit_postcode"))
    if evidence["numeric_id"]:
        return role("id", 0.8)
    if share("street") >= 0.6:
        return role("address", 0.7 * share("street"))
    if share("full_name") >= VALUE_SHARE and share("distinct") >= FULL_NAME_DISTINCT:
        return role("full_name", 0.65 * share("full_name"))
    return None


def is_scalar(dtype: pl.DataType) -> bool:
    """Text, numbers, booleans and dates: the dtypes whose values are sampled."""
    return bool(
        dtype == pl.String
        or dtype == pl.Boolean
        or dtype.is_numeric()
        or dtype.is_temporal()
        or isinstance(dtype, pl.Categorical | pl.Enum)
    )


def sample_values(frame: pl.DataFrame, columns: Sequence[str], size: int = SAMPLE_SIZE) -> pl.DataFrame:
    """At most ``size`` evenly spaced non-null values of each column, as trimmed text: a long frame of
    ``column`` and ``value`` (blank values left out)."""
    if not columns:
        return pl.DataFrame(schema={"column": pl.String, "value": pl.String})
    exprs = []
    schema = frame.schema
    for name in columns:
        values = pl.col(name).drop_nulls()
        count = values.len().cast(pl.Int64)
        taken = pl.min_horizontal(count, pl.lit(size, pl.Int64))
        positions = pl.int_range(0, taken, dtype=pl.Int64) * count // pl.max_horizontal(taken, pl.lit(1, pl.Int64))
        exprs.append(text_of(values.gather(positions), schema[name]).str.strip_chars().implode().alias(name))
    # in memory: the streaming engine (polars' default) takes time in the square of a query's expressions
    wide = narrow(frame, columns).select(exprs).collect(engine="in-memory")
    return (
        wide.unpivot(variable_name="column", value_name="value")
        .explode("value")
        .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    )


def value_evidence(frame: pl.DataFrame, columns: list[str]) -> dict[str, dict[str, Any]]:
    """Per column: the shares of its sample that fit each value pattern, ``sampled`` (values seen),
    ``birth_like`` and ``numeric_id``."""
    if not columns:
        return {}
    long = sample_values(frame, columns)
    value = pl.col("value")
    digits = value.str.replace_all(r"[^0-9]", "").str.len_chars()
    coordinate = value.str.contains(SMALL_DECIMAL) & (
        value.cast(pl.Float64, strict=False).abs() <= COORDINATE_LIMIT
    ).fill_null(False)
    phone_loose = value.str.contains(PHONE_CHARACTERS) & digits.is_between(7, 15) & ~date_like(value) & ~coordinate
    formatted = ~value.str.contains(PLAIN_NUMBER) | value.str.starts_with("0") | digits.is_between(10, 11)
    compact = value.str.contains(COMPACT_DATE) & value.str.to_date("%Y%m%d", strict=False).is_not_null()
    is_date = date_like(value) | compact
    year = value.str.extract(YEAR_IN_DATE, 1).cast(pl.Int32, strict=False).filter(is_date)
    shares = (
        long.lazy()
        .group_by("column")
        .agg(
            pl.len().alias("sampled"),
            (value.n_unique() / pl.len()).alias("distinct"),
            value.str.contains(EMAIL).mean().alias("email"),
            value.str.contains(UUID).mean().alias("uuid"),
            (phone_loose & formatted).mean().alias("phone"),
            phone_loose.mean().alias("phone_loose"),
            value.str.contains(DIGIT_POSTCODE).mean().alias("digit_postcode"),
            value.str.contains(UK_POSTCODE).mean().alias("uk_postcode"),
            (value.str.contains(ANY_POSTCODE) & value.str.contains(HAS_DIGIT)).mean().alias("postcode_loose"),
            value.str.contains(YEAR).mean().alias("year"),
            value.str.contains(INTEGER).mean().alias("integer"),
            (
                (value.str.contains(NUMBER) & ~value.str.contains(LEADING_ZERO_PATTERN)).sum()
                / pl.max_horizontal((~value.is_in(list(DEFAULT_NULL_TOKENS))).sum(), pl.lit(1))
            ).alias("number"),
            (value.str.contains(INTEGER).sum() / pl.max_horizontal(value.str.contains(NUMBER).sum(), pl.lit(1))).alias(
                "integer_of_numbers"
            ),
            value.str.contains(NAME_TOKEN).mean().alias("name_token"),
            value.str.contains(FULL_NAME).mean().alias("full_name"),
            (value.str.contains(NAME_TOKEN) | value.str.contains(FULL_NAME)).mean().alias("name_any"),
            value.str.contains(STREET_WORD).mean().alias("street"),
            value.str.contains(STREET_NUMBER).mean().alias("street_number"),
            (value.str.contains(TOKEN_ID) & value.str.contains(HAS_DIGIT)).mean().alias("token_id"),
            value.str.contains(KEY_TOKEN).mean().alias("key_token"),
            value.str.contains(PLACE).mean().alias("place"),
            value.str.contains(HAS_LETTER).mean().alias("has_letter"),
            (value.n_unique() <= 10).cast(pl.Float64).alias("few_values"),
            is_date.mean().alias("date"),
            is_date.sum().alias("dates"),
            year.count().alias("years"),
            year.min().alias("first_year"),
            year.max().alias("last_year"),
            year.median().alias("median_year"),
        )
        .collect()
    )
    evidence = {row["column"]: row for row in shares.iter_rows(named=True)}
    this_year = dt.date.today().year
    ids = _numeric_ids(
        frame, [name for name, row in evidence.items() if row["integer"] == 1.0 and row["distinct"] == 1.0]
    )
    result: dict[str, dict[str, Any]] = {}
    for name in columns:
        row = evidence.get(name, {"sampled": 0})
        birth_like = _birth_like(row, this_year) if row["sampled"] else False
        result[name] = {**row, "birth_like": birth_like, "numeric_id": name in ids}
    return result


def _birth_like(row: Mapping[str, Any], this_year: int) -> bool:
    """Dates of people's births: most carry a four-digit year, none after this year or before
    ``BIRTH_MIN_YEAR``, the median at least ``BIRTH_MIN_AGE_YEARS`` years ago."""
    years, dates = row.get("years") or 0, row.get("dates") or 0
    if not dates or years < VALUE_SHARE * dates:
        return False
    return bool(
        row["last_year"] <= this_year
        and row["first_year"] >= BIRTH_MIN_YEAR
        and row["median_year"] <= this_year - BIRTH_MIN_AGE_YEARS
    )


def _numeric_ids(frame: pl.DataFrame, columns: list[str]) -> set[str]:
    """The columns of whole numbers, all distinct in the whole column, although values drawn at random from
    their span would repeat at least ``RANDOM_REPEATS_EXPECTED`` times (a run 1..n qualifies from 7 rows;
    15 distinct amounts between 0 and 10,000 do not)."""
    if not columns:
        return set()
    schema = frame.schema
    exprs = []
    for index, name in enumerate(columns):
        number = text_of(pl.col(name), schema[name]).str.strip_chars().cast(pl.Int64, strict=False)
        exprs += [
            pl.col(name).count().alias(f"count_{index}"),
            pl.col(name).n_unique().alias(f"distinct_{index}"),
            pl.col(name).null_count().alias(f"nulls_{index}"),
            number.count().alias(f"numbers_{index}"),
            number.min().alias(f"min_{index}"),
            number.max().alias(f"max_{index}"),
        ]
    row = narrow(frame, columns).select(exprs).collect(engine="in-memory").row(0, named=True)  # as sample_values
    ids: set[str] = set()
    for index, name in enumerate(columns):
        count, numbers = row[f"count_{index}"], row[f"numbers_{index}"]
        distinct = row[f"distinct_{index}"] - (1 if row[f"nulls_{index}"] else 0)
        if not count or numbers != count or distinct != count:
            continue
        span = row[f"max_{index}"] - row[f"min_{index}"] + 1
        if count * (count - 1) / (2 * span) >= RANDOM_REPEATS_EXPECTED:
            ids.add(name)
    return ids
