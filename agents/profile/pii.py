"""PII and semantic-type detection: by column name, and by value patterns on an evenly spaced sample."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from agents.decimal_comma import DECIMAL_COMMA_NUMBER_PATTERN, DECIMAL_COMMA_PATTERN
from agents.layouts import beyond_double
from agents.values import CURRENCY_SIGN, number_text, written_otherwise

# Anchored value patterns, checked on a sample of non-null values (Polars regex engine: no look-around).
VALUE_PATTERNS: dict[str, str] = {
    "email": r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$",
    "phone": r"^(\+\d{1,3}[\s.\-]?)?\(?\d{2,4}\)?[\s.\-]\d{3,4}[\s.\-]?\d{3,4}$",
    "ssn": r"^\d{3}-\d{2}-\d{4}$",
    "credit_card": r"^(\d{4}[ \-]?){3}\d{4}$",
    "ip_address": r"^(\d{1,3}\.){3}\d{1,3}$",
    "iban": r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$",
}

# A payment card number written as digits alone: a card issuer's prefix and length (Visa 4, 13/16/19 digits;
# Mastercard 51-55 and 2221-2720, 16; American Express 34/37, 15; Diners Club 300-305/36/38, 14; Discover 6011,
# 644-649, 65, 16-19; JCB 3528-3589, 16-19; UnionPay 62, 16-19) and a valid Luhn check digit (card_number).
CARD_ISSUER_PATTERN = (
    r"^(4(\d{12}|\d{15}|\d{18})|5[1-5]\d{14}|2(22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}|3[47]\d{13}"
    r"|3(0[0-5]\d|[68]\d\d)\d{10}|6(011|4[4-9]\d|5\d\d)\d{12,15}|35(2[89]|[3-8]\d)\d{12,15}|62\d{14,17})$"
)
CARD_MAX_DIGITS = 19

# The value patterns that hold on digits alone, as an expression over digit strings: also applied to the values of
# an integer column, written in decimal (a card number exported unquoted is read as an integer). Only card numbers:
# the text rules for phone numbers and SSNs need their separators ("555-123-4567", "123-45-6789"), without which
# a 9- or 10-digit integer is as likely an amount or an id; a card number's issuer prefix and Luhn check digit
# keep ordinary integer ids and amounts out (one in ten 16-digit numbers passes Luhn, and the column needs most
# of its sampled values to).

# Column-name patterns, matched against the lower-cased name with non-alphanumerics turned into "_".
NAME_PATTERNS: dict[str, str] = {
    "email": r"e_?mail|(^|_)mail(_|$)",
    "phone": r"phone|mobile|(^|_)(tel|cell|fax)(_|$)",
    "ssn": r"(^|_)ssn(_|$)|social_?sec|(^|_)soc_?sec(_|$)|national_id|national_insurance|(^|_)nin(_|$)",
    "credit_card": r"credit_?card|card_?num|(^|_)(cc|ccn|pan)(_|$)",
    "iban": r"iban|account_?num|bank_?account",
    "passport": r"passport",
    "tax_id": r"tax_?id|(^|_)tin(_|$)|vat_?num",
    "date_of_birth": r"(^|_)dob(_|$)|birth",
    "name": r"^(name|surname|(first|last|full|middle|given|family|customer|person|contact|client|employee"
    r"|patient|user)_?name)$",
    "address": r"address|street|(^|_)addr(_|$)",
    "postal_code": r"(^|_)(zip|zipcode|zip_code|postcode|postal_code)(_|$)",
    "ip_address": r"(^|_)ip(_|$)|ip_?address",
}

SENSITIVITY: dict[str, str] = {
    "ssn": "high",
    "credit_card": "high",
    "iban": "high",
    "passport": "high",
    "tax_id": "high",
    "date_of_birth": "medium",
    "email": "medium",
    "phone": "medium",
    "name": "medium",
    "address": "medium",
    "postal_code": "low",
    "ip_address": "low",
}

DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    # month names (English): "1 Jan 2000", "Jan 1 2000", "January 1, 2000"
    "%d %b %Y",
    "%b %d %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%B %d %Y",
    "%B %d, %Y",
)
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f%#z",  # with Z or an offset (a column of them that was left text, e.g. one odd value)
    "%Y-%m-%d %H:%M:%S%.f%#z",
)
BOOLEAN_WORDS = ["true", "false", "yes", "no", "y", "n", "t", "f"]


@dataclass(frozen=True)
class TextSignals:
    """Shares (0..1) of a string column's sampled non-null values that fit each pattern."""

    sample_size: int
    pattern_shares: dict[str, float]
    numeric_share: float
    date_share: float
    boolean_share: float
    # numbers written with a decimal comma ("39,81", "1.234,5", "7" among them); 0 unless one of the sampled
    # values can only be read with a decimal comma (agents.decimal_comma)
    decimal_comma_share: float = 0.0
    # numbers the type-fixer reads only with a judgement call (agents.values.number_text): shares of the sample
    # written with a currency symbol ("$5.17"), a percent sign ("72%") or as a code ("007", "+5")
    currency_share: float = 0.0
    percent_share: float = 0.0
    code_share: float = 0.0
    # numbers with more digits than a float holds ("1.123456789012345678", agents.layouts.beyond_double): the
    # readers and the type-fixer keep their column text, so every value comes back as written
    beyond_double_share: float = 0.0


def card_number(digits: pl.Expr) -> pl.Expr:
    """Whether each string of decimal digits is a payment card number (:data:`CARD_ISSUER_PATTERN` and the Luhn
    check: from the right, every second digit doubled, less 9 above 9, the sum a multiple of 10); False for
    anything else (a sign, a separator), null for null."""
    candidate = pl.when(digits.str.contains(CARD_ISSUER_PATTERN)).then(digits.str.zfill(CARD_MAX_DIGITS))
    terms = []
    for index in range(CARD_MAX_DIGITS):  # the leading zeros of the padding add nothing
        digit = candidate.str.slice(index, 1).cast(pl.Int32)
        doubled = (CARD_MAX_DIGITS - 1 - index) % 2 == 1
        terms.append(digit * 2 - pl.when(digit >= 5).then(9).otherwise(0) if doubled else digit)
    luhn = pl.sum_horizontal(terms) % 10 == 0
    return pl.when(digits.is_null()).then(None).otherwise((candidate.is_not_null() & luhn).fill_null(False))


SAMPLED_KINDS = frozenset({"string", "integer"})
"""The profiler's column kinds whose sampled values are matched: text (:func:`text_signals`) and integers
(:func:`integer_signals`)."""

DIGIT_PATTERNS: dict[str, Callable[[pl.Expr], pl.Expr]] = {"credit_card": card_number}
"""The value rules applied to integer columns (their values' decimal digits): see :data:`CARD_ISSUER_PATTERN`."""


NUMBER_PARAMETERS = {
    "currency_share": "convert_currency",
    "percent_share": "convert_percentages",
    "code_share": "convert_codes",
}
"""The type-fixer's parameter that converts numbers written each way (its judgement calls)."""


def pii_type_by_name(column: str) -> str | None:
    normalised = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
    for pii_type, pattern in NAME_PATTERNS.items():
        if re.search(pattern, normalised):
            return pii_type
    return None


def sample_rows(frame: pl.DataFrame, sample_size: int) -> pl.DataFrame:
    step = max(1, frame.height // max(sample_size, 1))
    return frame.gather_every(step).head(sample_size)


def text_signals(sample: pl.DataFrame, columns: list[str]) -> dict[str, TextSignals]:
    """Every string column's pattern shares from one query over the sample in long form (one row per
    column and value): a dozen expressions whatever the width, not a dozen per column (a select of
    100,000 expressions takes seconds to plan and run even on a 20-row sample)."""
    if not columns:
        return {}
    long = sample.select(pl.col(column).cast(pl.String).alias(str(index)) for index, column in enumerate(columns))
    values = pl.col("value").str.strip_chars()
    # a number as the type-fixer reads it (agents.values.number_text); "1,500" (1500, or 1.5 with a decimal comma)
    # only when the column's numbers show that commas group thousands ("1,234,567", a point), as the type-fixer
    commas = values.str.count_matches(",", literal=True)
    point = values.str.contains(".", literal=True)
    # "(212)" is an area code as much as an accounting negative: no number here (the type-fixer's judgement call)
    read = number_text(values).cast(pl.Float64, strict=False).is_not_null() & ~values.str.starts_with("(")
    ambiguous = (commas == 1) & ~point
    number = read & (~ambiguous | (read & ((commas >= 2) | point)).any())
    parsed_dates = [values.str.to_date(fmt, strict=False) for fmt in DATE_FORMATS] + [
        values.str.to_datetime(fmt, strict=False).dt.date() for fmt in DATETIME_FORMATS
    ]
    shares = (
        long.unpivot(variable_name="index", value_name="value")
        .drop_nulls("value")
        .with_columns(beyond_double(pl.col("value")).alias("__beyond__"))
        .group_by("index")
        .agg(
            pl.len().alias("n"),
            *(values.str.contains(pattern).mean().alias(pii_type) for pii_type, pattern in VALUE_PATTERNS.items()),
            # a number as the type-fixer reads it: grouped thousands ("1,418.91"), a currency symbol ("$5.17"), a
            # percent sign ("72%"), or anything Polars casts ("1e3", "inf")
            (values.cast(pl.Float64, strict=False).is_not_null() | number).mean().alias("numeric"),
            (number & values.str.contains(CURRENCY_SIGN)).mean().alias("currency"),
            (number & values.str.contains("%", literal=True)).mean().alias("percent"),
            (number & written_otherwise(number_text(values))).mean().alias("code"),
            (number & pl.col("__beyond__")).mean().alias("beyond"),
            pl.coalesce(parsed_dates).is_not_null().mean().alias("date"),
            values.str.to_lowercase().is_in(BOOLEAN_WORDS).mean().alias("boolean"),
            pl.when(values.str.contains(DECIMAL_COMMA_PATTERN).any())
            .then(values.str.contains(DECIMAL_COMMA_NUMBER_PATTERN).mean())
            .otherwise(0.0)
            .alias("decimal_comma"),
        )
    )
    found = {int(row["index"]): row for row in shares.iter_rows(named=True)}
    empty = dict.fromkeys(
        ["n", *VALUE_PATTERNS, "numeric", "date", "boolean", "decimal_comma", "currency", "percent", "code", "beyond"]
    )
    signals: dict[str, TextSignals] = {}
    for index, column in enumerate(columns):
        row = found.get(index, empty)
        signals[column] = TextSignals(
            sample_size=int(row["n"] or 0),
            pattern_shares={pii_type: float(row[pii_type] or 0.0) for pii_type in VALUE_PATTERNS},
            numeric_share=float(row["numeric"] or 0.0),
            date_share=float(row["date"] or 0.0),
            boolean_share=float(row["boolean"] or 0.0),
            decimal_comma_share=float(row["decimal_comma"] or 0.0),
            currency_share=float(row["currency"] or 0.0),
            percent_share=float(row["percent"] or 0.0),
            code_share=float(row["code"] or 0.0),
            beyond_double_share=float(row["beyond"] or 0.0),
        )
    return signals


def integer_signals(sample: pl.DataFrame, columns: list[str]) -> dict[str, TextSignals]:
    """Every integer column's shares of sampled non-null values, written in decimal, that fit each of the
    :data:`DIGIT_PATTERNS` (card numbers): one query over the sample in long form, as :func:`text_signals`.
    The other shares are 0 but ``numeric_share`` (1: they are numbers)."""
    if not columns:
        return {}
    long = sample.select(pl.col(column).cast(pl.String).alias(str(index)) for index, column in enumerate(columns))
    value = pl.col("value")
    shares = (
        long.unpivot(variable_name="index", value_name="value")
        .drop_nulls("value")
        .group_by("index")
        .agg(pl.len().alias("n"), *(rule(value).mean().alias(kind) for kind, rule in DIGIT_PATTERNS.items()))
    )
    found = {int(row["index"]): row for row in shares.iter_rows(named=True)}
    signals: dict[str, TextSignals] = {}
    for index, column in enumerate(columns):
        row = found.get(index)
        size = int(row["n"]) if row is not None else 0
        signals[column] = TextSignals(
            sample_size=size,
            pattern_shares={kind: float(row[kind] or 0.0) if row is not None else 0.0 for kind in DIGIT_PATTERNS},
            numeric_share=1.0 if size else 0.0,
            date_share=0.0,
            boolean_share=0.0,
        )
    return signals


def value_signals(sample: pl.DataFrame, text_columns: list[str], integer_columns: list[str]) -> dict[str, TextSignals]:
    """The PII and type signals of the sampled text columns (:func:`text_signals`) and integer columns
    (:func:`integer_signals`)."""
    return {**text_signals(sample, text_columns), **integer_signals(sample, integer_columns)}


def value_pii_kind(values: pl.Expr, integer: bool) -> pl.Expr:
    """The PII type each value matches (first of :data:`VALUE_PATTERNS` for text, :data:`DIGIT_PATTERNS` for an
    integer column's values cast to text), else null."""
    if integer:
        return pl.coalesce([pl.when(rule(values)).then(pl.lit(kind)) for kind, rule in DIGIT_PATTERNS.items()])
    return pl.coalesce(
        [pl.when(values.str.contains(pattern)).then(pl.lit(kind)) for kind, pattern in VALUE_PATTERNS.items()]
    )
