"""PII and semantic-type detection: by column name, and by value patterns on an evenly spaced sample."""

from __future__ import annotations

import re
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
