"""Match keys: each compared column normalised by its semantic role, plus name parts and phonetic codes.

Conventions (every value is text afterwards; a value that normalises to nothing becomes null):
- names, city, free text: folded (below), apostrophes dropped ("o'brien" → "obrien"), any other
  run of characters that are neither letters, marks nor digits one space (Unicode classes: "王小明",
  "Иван Петров", "محمد علي" stay as they are), trimmed. Folding: Unicode NFKD, the diacritics of Latin,
  Greek, Cyrillic, Arabic and Hebrew letters dropped ("Zoë" → "zoe", "Γιώργος" → "γιωργοσ", "Ёлка" →
  "елка"; the vowel signs of Indic and other scripts are parts of letters and stay, decomposed), lowercase,
  "ß" → "ss" and final "ς" → "σ" (what lowercasing upper-case text gives);
- address: as text, then the usual street-type abbreviations spelled out ("st" → "street", "rd" → "road");
- company: as text, "&" as "and", without a leading "the" or the legal forms it ends with ("Acme Corp", "ACME
  CORPORATION", "Acme, Inc." and "Acme S.A." are all "acme": ``LEGAL_FORMS``);
- e-mail: lowercase without blanks, null unless it holds an "@";
- phone: digits only, the last 9 (so "(02) 9876-5432", "0298765432" and "+61 2 9876 5432" agree), null
  under 6 digits or when every digit is the same ("0000000000", "1111111": placeholders, not numbers);
- postcode, street number, ids: folded letters (with their marks) and digits only;
- date of birth: "YYYYMMDD" — a date column formatted, eight digits kept as they are (typos included, so
  the comparison can still see one wrong digit), other text parsed with common day-first, ISO and
  month-first layouts (first that reads wins);
- state, country: as text; gender: its first letter.
Missing-value tokens (``DEFAULT_NULL_TOKENS``: "NA", "n/a", "null", ...) and blanks are null.

Derived columns (reserved names, never data): ``GIVEN`` and ``SURNAME`` — the name parts, from the
given-name and surname columns, or else the first and last token of a full name; their metaphone
codes (``*_METAPHONE``, computed once per distinct value and joined back: blocking on sound);
``CONTENT_HASH`` — a hash of the normalised compared values, the content order that breaks ties (sorted
neighbourhood, random pairs) so that the result does not depend on the input's row order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jellyfish
import polars as pl

from agents.params.common import DEFAULT_NULL_TOKENS

GIVEN = "__given__"
SURNAME = "__surname__"
GIVEN_METAPHONE = "__given_metaphone__"
SURNAME_METAPHONE = "__surname_metaphone__"
CONTENT_HASH = "__content_hash__"
DERIVED_COLUMNS = (GIVEN, SURNAME, GIVEN_METAPHONE, SURNAME_METAPHONE)
NORMALISED = "__normalised__"
PER_ROW_KINDS = frozenset({"email", "phone"})
BY_VALUE_MIN_ROWS = 50_000
"""From this many rows, the other kinds are normalised once per distinct value and joined back; e-mails and
phones (their values hardly repeat) and smaller frames row by row."""

ROLE_KINDS: dict[str, str] = {
    "given_name": "name",
    "surname": "name",
    "full_name": "name",
    "email": "email",
    "phone": "phone",
    "street_number": "code",
    "address": "address",
    "address_2": "address",
    "city": "name",
    "state": "name",
    "postcode": "code",
    "country": "name",
    "date_of_birth": "date",
    "national_id": "code",
    "id": "code",
    "company": "company",
    "gender": "gender",
    "other": "name",
}
"""How each role's values are normalised (an unknown role is normalised as text)."""

STREET_TYPES: dict[str, tuple[str, ...]] = {
    "street": ("st", "str"),
    "road": ("rd",),
    "avenue": ("ave", "av"),
    "drive": ("dr", "drv"),
    "court": ("ct", "crt"),
    "place": ("pl",),
    "lane": ("ln",),
    "crescent": ("cres", "cr"),
    "boulevard": ("blvd",),
    "terrace": ("tce", "ter"),
    "circuit": ("cct",),
    "highway": ("hwy",),
    "parade": ("pde",),
    "square": ("sq",),
}

LEGAL_FORMS = (
    "corp corporation inc incorporated ltd limited llc llp lp plc gmbh mbh ag kg sa sas sarl srl spa bv nv oy ab"
    " aps asa pty pte pvt co company cie kk"
).split()
"""Legal forms a company name ends with ("Acme Corp", "ACME CORPORATION", "Acme, Inc.", "Acme GmbH", "Acme S.A.",
"Acme Co., Ltd."): dropped (however many) when the name keeps a word, so the names compare as the same."""
LEGAL_FORM_ENDING = rf"(?:\s+(?:{'|'.join(LEGAL_FORMS)}))+$"

DATE_LAYOUTS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%m/%d/%Y", "%d %b %Y", "%d %B %Y")
PHONE_DIGITS = 9
MIN_PHONE_DIGITS = 6
FOLDED_MARKS = r"(\p{Latin}|\p{Greek}|\p{Cyrillic}|\p{Arabic}|\p{Hebrew})\p{M}+"
"""Diacritics dropped by folding: marks after a letter of these scripts (Indic vowel signs stay)."""
REPEATED_DIGIT = "^(?:" + "|".join(f"{digit}+" for digit in range(10)) + ")$"
"""A phone of one digit repeated ("0000000000") is a placeholder: null."""


def normalise(frame: pl.DataFrame, columns: Mapping[str, str]) -> pl.DataFrame:
    """One normalised text column per entry of ``columns`` (column → role), same name, same row order,
    plus the derived columns of the module docstring (``CONTENT_HASH`` only when ``columns`` is not empty)."""
    kinds = {name: ROLE_KINDS.get(role, "name") for name, role in columns.items()}
    by_value = {
        name: kind
        for name, kind in kinds.items()
        if kind not in PER_ROW_KINDS and frame.height >= BY_VALUE_MIN_ROWS and name != NORMALISED
    }
    direct = [_normalised(frame, name, kind).alias(name) for name, kind in kinds.items() if name not in by_value]
    # without compared columns the frame still has one row per input row: positions index it
    normalised = frame.select(direct) if direct else pl.DataFrame(height=frame.height)
    if by_value:
        normalised = normalised.with_columns(
            _by_distinct_value(frame, name, kind) for name, kind in by_value.items()
        ).select(list(columns))
    normalised = normalised.with_columns(_name_parts(normalised, columns))
    for part, metaphone in ((GIVEN, GIVEN_METAPHONE), (SURNAME, SURNAME_METAPHONE)):
        codes = phonetic_codes(normalised.get_column(part))
        normalised = normalised.join(
            codes.rename({"value": part, "metaphone": metaphone}),
            on=part,
            how="left",
            maintain_order="left",
        )
    if columns:
        normalised = normalised.with_columns(pl.struct(list(columns)).hash(seed=20240610).alias(CONTENT_HASH))
    return normalised


def _by_distinct_value(frame: pl.DataFrame, name: str, kind: str) -> pl.Series:
    """``name`` normalised value by distinct value and joined back (names, places, dates and codes repeat:
    a million rows hold a few thousand streets), one row per row of ``frame``."""
    values = frame.select(pl.col(name).unique())
    mapped = values.with_columns(_normalised(values, name, kind).alias(NORMALISED))
    joined = frame.select(name).join(mapped, on=name, how="left", maintain_order="left", nulls_equal=True)
    return joined.get_column(NORMALISED).alias(name)


def phonetic_codes(values: pl.Series) -> pl.DataFrame:
    """``value`` and its ``metaphone`` code for each distinct non-null value (blanks removed before coding,
    so "van der berg" codes like "vanderberg"); a value metaphone cannot code (no Latin letter: "иван",
    "王小明") is its own code. One Python call per distinct value, never per row."""
    distinct = values.drop_nulls().unique().sort()
    squeezed = distinct.str.replace_all(" ", "", literal=True).to_list()
    return pl.DataFrame(
        {"value": distinct, "metaphone": _codes(jellyfish.metaphone, squeezed)},
        schema={"value": pl.String, "metaphone": pl.String},
    )


def _codes(encoder: Callable[[str], str], values: list[str]) -> list[str | None]:
    return [(encoder(value) or value) if value else None for value in values]


def _name_parts(normalised: pl.DataFrame, columns: Mapping[str, str]) -> list[pl.Expr]:
    by_role: dict[str, str] = {}
    for name, role in columns.items():
        by_role.setdefault(role, name)
    full = pl.col(by_role["full_name"]) if "full_name" in by_role else None
    given_sources: list[pl.Expr] = [pl.col(by_role["given_name"])] if "given_name" in by_role else []
    surname_sources: list[pl.Expr] = [pl.col(by_role["surname"])] if "surname" in by_role else []
    if full is not None:
        tokens = full.str.split(" ")
        given_sources.append(tokens.list.first())
        surname_sources.append(pl.when(tokens.list.len() > 1).then(tokens.list.last()))
    return [
        (pl.coalesce(given_sources) if given_sources else pl.lit(None, dtype=pl.String)).alias(GIVEN),
        (pl.coalesce(surname_sources) if surname_sources else pl.lit(None, dtype=pl.String)).alias(SURNAME),
    ]


def _normalised(frame: pl.DataFrame, name: str, kind: str) -> pl.Expr:
    dtype = frame.schema[name]
    if kind == "date":
        return _date(pl.col(name), dtype)
    raw = _as_text(pl.col(name), dtype).str.strip_chars()
    raw = pl.when(raw.is_in(list(DEFAULT_NULL_TOKENS)) | (raw == "")).then(None).otherwise(raw)
    if kind == "email":
        text = raw.str.to_lowercase().str.replace_all(r"\s+", "")
        return _null_if_empty(pl.when(text.str.contains("@", literal=True)).then(text))
    if kind == "phone":
        digits = raw.str.replace_all(r"\D", "")
        kept = digits.str.slice(-PHONE_DIGITS)
        return pl.when((digits.str.len_chars() >= MIN_PHONE_DIGITS) & ~kept.str.contains(REPEATED_DIGIT)).then(kept)
    if kind == "code":
        return _null_if_empty(_folded(raw).str.replace_all(r"[^\p{L}\p{M}\p{N}]", ""))
    if kind == "gender":
        return _null_if_empty(_folded(raw).str.replace_all(r"[^\p{L}]", "").str.slice(0, 1))
    if kind == "company":
        return _null_if_empty(company_name(raw))
    text = clean_text(raw)
    if kind == "address":
        text = _expand_street_types(text)
    return _null_if_empty(text)


def company_name(expr: pl.Expr) -> pl.Expr:
    """A company name as text (:func:`clean_text`, dots dropped), "&" read as "and", without a leading "the" and
    the legal forms it ends with (:data:`LEGAL_FORMS`) when a word is left: "The Acme Corp.", "Acme S.A." and
    "ACME CORPORATION" are all "acme"."""
    # dots dropped, not spaced: "S.A." and "SA", "L.L.C." and "LLC", "J.P. Morgan" and "JP Morgan" are one word
    undotted = expr.str.replace_all(".", "", literal=True).str.replace_all("&", " and ", literal=True)
    text = clean_text(undotted)
    stripped = text.str.replace(r"^the\s+", "").str.replace(LEGAL_FORM_ENDING, "")
    return pl.when(stripped.str.len_chars() > 0).then(stripped).otherwise(text)


def clean_text(expr: pl.Expr) -> pl.Expr:
    """Folded lowercase text with punctuation as single spaces (apostrophes dropped), trimmed; letters of
    every script kept (see the module docstring)."""
    text = _folded(expr).str.replace_all(r"['’`]", "")
    return text.str.replace_all(r"[^\p{L}\p{M}\p{N}]+", " ").str.strip_chars()


def _folded(expr: pl.Expr) -> pl.Expr:
    # left decomposed (NFKD), the same on both sides of every comparison: recomposing costs more than it brings
    decomposed = expr.str.normalize("NFKD").str.replace_all(FOLDED_MARKS, "${1}")
    return decomposed.str.to_lowercase().str.replace_many(["ß", "ς"], ["ss", "σ"])


def _expand_street_types(text: pl.Expr) -> pl.Expr:
    for full, abbreviations in STREET_TYPES.items():
        text = text.str.replace_all(rf"\b(?:{'|'.join(abbreviations)})\b", full)
    return text


def _null_if_empty(text: pl.Expr) -> pl.Expr:
    return pl.when(text.str.len_chars() > 0).then(text)


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Text of any column; whole floats without their ".0" (a postcode read as 2119.0 is "2119")."""
    if dtype.is_float():
        whole = expr.is_finite() & (expr == expr.floor())
        return pl.when(whole).then(expr.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(expr.cast(pl.String))
    if isinstance(dtype, pl.Date | pl.Datetime):
        return expr.dt.strftime("%Y-%m-%d")
    return expr.cast(pl.String)


def _date(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Date | pl.Datetime):
        return expr.dt.strftime("%Y%m%d")
    text = _as_text(expr, dtype).str.strip_chars()
    eight_digits = text.str.contains(r"^\d{8}$")
    head = text.str.replace(r"[T ]\d{1,2}:\d{2}.*$", "")
    parsed = pl.coalesce([head.str.to_date(layout, strict=False) for layout in DATE_LAYOUTS])
    return pl.when(eight_digits).then(text).otherwise(parsed.dt.strftime("%Y%m%d"))
