"""A profiled column's semantic type, decided by evidence: one rule, in :func:`semantic_type`.

The evidence (:class:`ColumnEvidence`) is what the profiler already measured: the storage kind, rows,
non-null and distinct counts, min/max, string lengths, the text signals of a sample (shares of values that
parse as numbers, dates, booleans, or match a PII pattern) and the column's name. The rule reads it top to
bottom and the first match wins:

1. ``empty``: no non-null value.
2. ``constant``: one distinct value (``is_categorical`` stays true: a one-level category).
3. ``boolean``: a Boolean column, or numbers whose two values are 0 and 1.
4. ``date`` / ``datetime`` / ``time`` / ``duration``: the temporal storage kinds.
5. Text that a sample says is something else: a PII type (``email``, ``phone``, ...; most sampled values
   match its pattern, ``pii_match_threshold``), ``numeric_string`` / ``date_string`` (at least
   :data:`TYPE_SIGNAL_SHARE` of the sample parses; numbers are read as the type-fixer reads them: "1,418.91",
   "$5.17", "72%" count, "(212)" does not (agents.profile.pii.text_signals); numbers written with a decimal
   comma, "39,81", count when a sampled value can only be read that way), ``boolean_string`` (at least
   :data:`BOOLEAN_SIGNAL_SHARE` are true/false/yes/no words, at most :data:`BOOLEAN_MAX_DISTINCT` values).
6. ``identifier``: a key of the table. Integers: every value distinct although values drawn at random from
   their span would repeat (at least :data:`RANDOM_REPEATS_EXPECTED` repeats expected:
   ``n(n-1) / (2 (max - min + 1))``, the birthday bound; a run 1..n always qualifies from 7 rows, while 15
   distinct ages do not). Text: every value distinct and token-like (no spaces, at most
   :data:`TOKEN_MAX_LENGTH` characters: UUIDs, hashes, reference codes). Either: a name that says key
   (``id``, ``uuid``, ``guid``, ``key``, ``pk`` as a word of the name, ``customer_id``, ``CustomerID``) with
   at least :data:`IDENTIFIER_NAME_RATIO` of the values distinct.
   Integers whose decimal digits most sampled values show to be card numbers (Luhn, issuer prefix:
   ``agents.profile.pii.DIGIT_PATTERNS``) are ``credit_card`` alike.
7. Numbers (``integer``, ``float``): ``categorical`` (a code) when values repeat and there are at most
   :data:`LOW_CATEGORICAL_DISTINCT` distinct values (ydata-profiling's ``low_categorical_threshold``), or
   at most ``categorical_threshold`` distinct values that are at most ``categorical_ratio_threshold`` of
   the non-null values (month 1..12 or hour 0..23 over many rows; not 12 distinct values in 15 rows).
   Otherwise integers are ``discrete`` up to :data:`DISCRETE_MAX_DISTINCT` distinct values (few enough
   to show one bar per value: day of month, minute of the hour, counts) and ``continuous`` beyond (a delay
   in minutes with 527 values over -43..1301 reads as a measurement); other numbers are ``continuous``.
8. Text: ``categorical`` when at most ``max(categorical_threshold, TEXT_CATEGORICAL_DISTINCT)`` distinct
   values are at most :data:`TEXT_CATEGORICAL_RATIO` of the values (ydata-profiling: a categorical of
   more than 50 % distinct values is text; more than 50 distinct is high cardinality); ``code`` when more
   distinct values are token-like (tail numbers ``N14228``, SKUs, airport codes beyond 50: labels that
   repeat but are too many to group by); ``text`` otherwise (words, sentences, long values).
9. Any other storage kind (lists, structs, binary) is reported as its kind.

A column stored as Polars ``Categorical``/``Enum`` is categorical whatever its counts (it was declared so).
``is_categorical`` is true exactly for ``categorical``, ``boolean``, ``boolean_string`` and ``constant``
columns: the ones whose value counts describe them (imbalance, top-values charts, Cramér's V).

"Token-like" is judged on the values the profile shows (the most frequent values, completed by values seen
once): at most :data:`TOKEN_WHITESPACE_SHARE` of them contain whitespace. ``reason`` says in a short line
which evidence decided, with the numbers, for the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from agents.profile.column_stats import NUMERIC_KINDS

LOW_CATEGORICAL_DISTINCT: Final = 5  # ydata-profiling vars.num.low_categorical_threshold
TEXT_CATEGORICAL_DISTINCT: Final = 50  # ydata-profiling vars.cat.cardinality_threshold
TEXT_CATEGORICAL_RATIO: Final = 0.5  # ydata-profiling vars.cat.percentage_cat_threshold
DISCRETE_MAX_DISTINCT: Final = 60  # integers with more distinct values are read as a continuous scale
RANDOM_REPEATS_EXPECTED: Final = 3.0  # all-distinct integers are a key when random draws would repeat this often
IDENTIFIER_NAME_RATIO: Final = 0.95  # distinct share that makes a key-named column an identifier
TOKEN_MAX_LENGTH: Final = 64  # longest token-like value (a SHA-256 in hex)
TOKEN_WHITESPACE_SHARE: Final = 0.1  # at most this share of shown values may hold whitespace
TYPE_SIGNAL_SHARE: Final = 0.7  # share of sampled text parsing as numbers / dates (Agensium type-fixer)
BOOLEAN_SIGNAL_SHARE: Final = 0.9
BOOLEAN_MAX_DISTINCT: Final = 8  # true/false/yes/no with case variants


TEMPORAL_KINDS: Final = {
    "date": "date values",
    "datetime": "date-time values",
    "time": "time-of-day values",
    "duration": "durations",
}
DECLARED_CATEGORICAL_DTYPES: Final = ("Categorical", "Enum")
CATEGORICAL_TYPES: Final = frozenset({"categorical", "boolean", "boolean_string", "constant"})
_KEY_NAME = re.compile(r"(^|_)(id|ids|uuid|guid|key|pk)(_|$)")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class ColumnEvidence:
    """What is known of one column. Shares are 0..1; ``whitespace_share`` is of the values the profile
    shows (None: not known), the other shares of the text sample (0 without one)."""

    name: str
    kind: str  # agents.profile.column_stats.column_kind: integer, float, string, boolean, date, ...
    rows: int
    non_null: int
    distinct: int | None
    seen_once: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    integer_valued: bool = False
    dtype: str = ""
    min_length: int | None = None
    max_length: int | None = None
    whitespace_share: float | None = None
    value_pii: str | None = None  # the PII pattern most sampled values match (at pii_match_threshold)
    value_pii_share: float = 0.0
    numeric_share: float = 0.0
    decimal_comma_share: float = 0.0  # numbers written with a decimal comma ("39,81"): pii.TextSignals
    date_share: float = 0.0
    boolean_share: float = 0.0

    @property
    def distinct_ratio(self) -> float:
        return (self.distinct or 0) / self.non_null if self.non_null else 0.0

    @property
    def all_distinct(self) -> bool:
        return self.non_null > 1 and self.distinct == self.non_null


@dataclass(frozen=True)
class SemanticType:
    """The decision: ``name`` (``semantic_type`` of the profile), ``is_categorical`` and a short ``reason``."""

    name: str
    is_categorical: bool
    reason: str
    decimal_comma: bool = False  # a numeric_string whose numbers are written with a decimal comma ("39,81")


def semantic_type(
    evidence: ColumnEvidence, *, categorical_threshold: int = 20, categorical_ratio_threshold: float = 0.05
) -> SemanticType:
    """The semantic type of a column from its evidence: the rule of this module's docstring."""
    e = evidence
    if e.non_null == 0:
        return _typed("empty", "no values: every row is missing")
    if e.distinct == 1:
        return _typed("constant", f"the same value in all {e.non_null:,} non-null rows: constant")
    if e.dtype.startswith(DECLARED_CATEGORICAL_DTYPES):
        return _typed("categorical", f"{_n(e.distinct)} distinct values, stored as a {e.dtype} type")
    if e.kind == "boolean":
        return _typed("boolean", "true/false values")
    if e.kind in NUMERIC_KINDS and e.distinct == 2 and e.minimum == 0 and e.maximum == 1:
        return _typed("boolean", "two values, 0 and 1: a yes/no flag")
    if e.kind in TEMPORAL_KINDS:
        return _typed(e.kind, TEMPORAL_KINDS[e.kind])
    if e.kind == "string":
        return _text_type(e, categorical_threshold)
    if e.kind in NUMERIC_KINDS:
        return _numeric_type(e, categorical_threshold, categorical_ratio_threshold)
    return _typed(e.kind, f"values stored as {e.dtype or e.kind}")


def _numeric_type(e: ColumnEvidence, categorical_threshold: int, categorical_ratio_threshold: float) -> SemanticType:
    distinct = e.distinct or 0
    if e.value_pii:  # card numbers read as integers (agents.profile.pii.DIGIT_PATTERNS)
        return _typed(e.value_pii, f"{e.value_pii_share:.0%} of sampled integers match the {e.value_pii} rule")
    values = "integer values" if e.integer_valued else "decimal values"
    if e.integer_valued:
        if e.all_distinct and _expected_random_repeats(e) >= RANDOM_REPEATS_EXPECTED:
            return _typed("identifier", f"{distinct:,} integers, each in one row: an identifier")
        if _key_named(e.name) and e.distinct_ratio >= IDENTIFIER_NAME_RATIO:
            return _typed("identifier", f"named as a key, {e.distinct_ratio:.0%} of values distinct: an identifier")
    repeats = distinct < e.non_null
    if repeats and distinct <= LOW_CATEGORICAL_DISTINCT:
        return _typed("categorical", f"only {distinct} distinct {values}: a categorical code")
    if distinct <= categorical_threshold and e.distinct_ratio <= categorical_ratio_threshold:
        return _typed("categorical", f"{distinct} distinct {values} among {e.non_null:,}: a categorical code")
    span = _span(e)
    if e.integer_valued and distinct <= DISCRETE_MAX_DISTINCT:
        return _typed("discrete", f"{distinct} distinct {values}{span}: discrete")
    return _typed("continuous", f"{distinct:,} distinct {values}{span}: continuous")


def _text_type(e: ColumnEvidence, categorical_threshold: int) -> SemanticType:
    distinct = e.distinct or 0
    if e.value_pii:
        return _typed(e.value_pii, f"{e.value_pii_share:.0%} of sampled values match the {e.value_pii} pattern")
    if e.numeric_share >= TYPE_SIGNAL_SHARE:
        return _typed("numeric_string", f"{e.numeric_share:.0%} of sampled values are numbers stored as text")
    if e.decimal_comma_share >= TYPE_SIGNAL_SHARE:
        return _typed(
            "numeric_string",
            f"{e.decimal_comma_share:.0%} of sampled values are numbers written with a decimal comma, stored as text",
            decimal_comma=True,
        )
    if e.date_share >= TYPE_SIGNAL_SHARE:
        return _typed("date_string", f"{e.date_share:.0%} of sampled values are dates stored as text")
    if e.boolean_share >= BOOLEAN_SIGNAL_SHARE and distinct <= BOOLEAN_MAX_DISTINCT:
        return _typed("boolean_string", "true/false or yes/no words stored as text")
    tokens = _token_like(e)
    lengths = _lengths(e)
    if tokens and e.all_distinct:
        return _typed("identifier", f"{distinct:,} distinct tokens ({lengths}), each in one row: an identifier")
    if tokens and _key_named(e.name) and e.distinct_ratio >= IDENTIFIER_NAME_RATIO:
        return _typed("identifier", f"named as a key, {e.distinct_ratio:.0%} of values distinct: an identifier")
    if distinct <= max(categorical_threshold, TEXT_CATEGORICAL_DISTINCT) and e.distinct_ratio <= TEXT_CATEGORICAL_RATIO:
        return _typed("categorical", f"{distinct} distinct values among {e.non_null:,}: categorical")
    if tokens:
        return _typed("code", f"{distinct:,} distinct short tokens ({lengths}, no spaces): a code")
    return _typed("text", f"{distinct:,} distinct values ({lengths}): free text")


def whitespace_share(values: Iterable[object]) -> float | None:
    """The share of the text values holding whitespace (None without any)."""
    texts = [value for value in values if isinstance(value, str)]
    if not texts:
        return None
    return sum(any(character.isspace() for character in text) for text in texts) / len(texts)


def _typed(name: str, reason: str, *, decimal_comma: bool = False) -> SemanticType:
    return SemanticType(name, name in CATEGORICAL_TYPES, reason, decimal_comma)


def _token_like(e: ColumnEvidence) -> bool:
    short = e.max_length is not None and e.max_length <= TOKEN_MAX_LENGTH
    return short and (e.whitespace_share is None or e.whitespace_share <= TOKEN_WHITESPACE_SHARE)


def _key_named(name: str) -> bool:
    words = re.sub(r"[^a-z0-9]+", "_", _CAMEL_BOUNDARY.sub("_", name).lower()).strip("_")
    return bool(_KEY_NAME.search(words))


def _expected_random_repeats(e: ColumnEvidence) -> float:
    """Expected repeated pairs among the non-null values drawn at random from min..max (birthday bound)."""
    if e.minimum is None or e.maximum is None:
        return 0.0
    return e.non_null * (e.non_null - 1) / (2 * (e.maximum - e.minimum + 1))


def _span(e: ColumnEvidence) -> str:
    if e.minimum is None or e.maximum is None:
        return ""
    return f" from {_number(e.minimum)} to {_number(e.maximum)}"


def _lengths(e: ColumnEvidence) -> str:
    if e.min_length is None or e.max_length is None:
        return "length unknown"
    if e.min_length == e.max_length:
        return f"{e.max_length} characters"
    return f"{e.min_length}-{e.max_length} characters"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _n(count: int | None) -> str:
    return "unknown" if count is None else f"{count:,}"
