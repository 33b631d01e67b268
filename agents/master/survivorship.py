"""Survivorship: one golden record per cluster of matched rows, each value chosen by a rule, with its
provenance (Agensium's rules and confidences, reference/agents.md §1.6).

Conventions:

- A *cluster* is a set of rows of the stacked master frame (``clusters``: ``ROW_INDEX_COLUMN`` and
  ``cluster``, the cluster's smallest row index). A row of ``frame`` missing from ``clusters`` is a cluster
  of its own. The bookkeeping columns (``agents.envelope.BOOKKEEPING_COLUMNS``) are never data: they are
  not survived. A frame without them (a test, a notebook) is numbered 1..n from source ``primary``.
- A row's *content key* (``MEMBER_KEY``) is the JSON text of its source label and every data column's value
  as text (``agents.layouts.as_text``; null stays null). Every tie below goes to the richer spelling of a
  text value (proper or mixed case before all lower-case before all upper-case, then more characters outside
  ASCII: "Jürgen" before "Jurgen", "Weiß" before "WEISS", "emilie@mail.fr" before "EMILIE@MAIL.FR"), then to
  the value whose text sorts first, then to the row whose content key sorts first, so shuffling the rows
  changes no golden value and no golden id. Only the first / last rules look at *file order* (the stacked
  frame's row order, ``ROW_INDEX_COLUMN``), because that is what they ask for; rows identical in content are
  interchangeable and only the provenance's ``source_row`` may name either of them.
- Per column and cluster only the rows holding a value (not null) compete. With at most one distinct
  value there is no conflict: the value survives with confidence 1.0. Otherwise the column's rule
  (``rules``, else ``default_rule``) picks the winning row:

  - most_complete: the longest value as text, trimmed, counted on its folded spelling (:func:`folded_text`:
    "Weiß" is as long as "WEISS", "Ærøskøbing" as "AEroskobing") (confidence 0.8);
  - most_recent: the latest ``timestamp_column``; rows without a timestamp rank last (0.85);
  - source_priority: the best-ranked source, lower rank wins, unranked sources last (0.9; 0.7 when the
    winner's source is unranked);
  - most_frequent: the value most rows hold, as text (0.5 + 0.5 x its share of the rows holding a
    value, at most 0.95);
  - min / max: the smallest / largest value in the column's own order (0.9);
  - first / last: the first / last row in file order (0.75);
  - quality_score: the highest value quality, below (that quality).

  Aliases (Agensium's resolver names): completeness and richness = most_complete, freshness and recency =
  most_recent, frequency = most_frequent, validation and quality = quality_score (a value of valid format
  always outscores an invalid one, which is what Agensium's ``validation`` picks).
- Value quality (Agensium's): 0.5 + min(0.2, length / 100) (the length of its folded spelling), + 0.3 when
  the value has the valid format of its column's role (email, phone, a date for date_of_birth or a
  date/datetime column) or - 0.2 when it does not; per ``validation_rules[column]``: pattern (whole value)
  + 0.2 / - 0.2, min_length reached + 0.1, one of allowed_values (case-insensitive) + 0.2; clipped to 0..1.
- **Column groups.** The columns of one role group (:data:`COLUMN_GROUPS`: a person's given name and
  surname; an address's street number, lines, city, state and postcode), two or more of them sharing one
  rule other than min / max, survive together: per cluster one row is chosen for the group (the row holding
  the most of its columns, then the rule over the whole record, then, for a name, the orientation the whole
  data uses: :func:`name_positions`, then the richer spelling, the values' text and the content key), and
  each column of the group takes that row's value when it holds one (else its own rule decides). So two
  records of one person with given name and surname swapped never give "Jürgen, Jürgen". The provenance
  names the other columns of the group (``together_with``).
- **Dates in several layouts.** A text column whose values are all dates, read unambiguously, but written in
  two or more layouts (:func:`date_layouts`: ``14/03/1985``, ``1985-03-14``, ``19850314``) survives as dates
  (equal dates are no conflict), and its golden values are written in its dominant layout. Any other column
  keeps its values as written.
- ``source_priority`` ranks the label in ``source_column`` (a data column naming each row's source) when
  given, else the row's source (``SOURCE_COLUMN``).
- Provenance: one row per golden value (golden record x data column): ``golden_id``, ``column``,
  ``value`` (as text), ``source`` and ``source_row`` of the row it came from (null when the cluster has no
  value), ``rule``, ``confidence``, ``conflict`` (the cluster held two or more distinct values),
  ``distinct_values`` and ``together_with`` (the other columns of its column group, comma-separated; null
  outside a group and for a single row). A record's ``trust_score`` is the mean confidence of its fields.
- ``golden_id`` = "G-" + the first 16 hex digits of the SHA-256 of the cluster's sorted content keys (one
  per member, duplicates kept), joined by newlines: the id derives from what the cluster holds, never from
  row numbers, so the same rows give the same id whatever their order or position. Two clusters of
  identical content (rows a matcher left apart) are told apart by hashing a counter in, in file order.

Only clusters of two or more rows are aggregated: a column at a time, their rows sorted by cluster and the
rule's keys (texts by their rank, not the text itself), the first row of each cluster winning (up to
``TOGETHER_ROWS`` such rows, one ``group_by`` with a ``sort_by(...).first()`` per column instead); single
rows are their own golden record. Hashing the ids is the one step done per cluster in Python (``hashlib``,
a batch of clusters at a time): Polars' own hash is not stable across versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, get_args

import polars as pl

from agents.columns import is_date_like, is_text, narrow, require_columns
from agents.envelope import (
    ROW_INDEX_COLUMN,
    SOURCE_COLUMN,
    SOURCE_ROW_COLUMN,
    data_columns,
)
from agents.findings import Findings
from agents.formatting import plain_value
from agents.layouts import as_text
from agents.master.er.normalise import FOLDED_MARKS
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.params.survivorship_resolver import SurvivorshipRule
from agents.values import DATE_FORMATS, TemporalFormat, date_like, distinct_counts, parse_temporal, plan_dates

PRIMARY_SOURCE = "primary"
RULE_ALIASES: dict[str, str] = {
    "completeness": "most_complete",
    "richness": "most_complete",
    "freshness": "most_recent",
    "recency": "most_recent",
    "frequency": "most_frequent",
    "validation": "quality_score",
    "quality": "quality_score",
}
ACCEPTED_RULES: tuple[str, ...] = get_args(SurvivorshipRule)  # the parameter models' rules, aliases included
RULES: tuple[str, ...] = tuple(rule for rule in ACCEPTED_RULES if rule not in RULE_ALIASES)
CONFIDENCE: dict[str, float] = {
    "most_complete": 0.8,
    "most_recent": 0.85,
    "source_priority": 0.9,
    "min": 0.9,
    "max": 0.9,
    "first": 0.75,
    "last": 0.75,
}
UNRANKED_SOURCE_CONFIDENCE = 0.7
NO_CONFLICT_CONFIDENCE = 1.0
MOST_FREQUENT_CAP = 0.95

EMAIL_PATTERN = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"
PHONE_PATTERN = r"^\+?\(?[0-9]{1,4}\)?[-\s./0-9]{6,}$"
DATE_PATTERN = r"^(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{8})$"
FORMAT_PATTERNS: dict[str, str] = {"email": EMAIL_PATTERN, "phone": PHONE_PATTERN, "date_of_birth": DATE_PATTERN}

PROVENANCE_SCHEMA: dict[str, pl.DataType] = {
    "golden_id": pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "source": pl.String(),
    "source_row": pl.Int64(),
    "rule": pl.String(),
    "confidence": pl.Float64(),
    "conflict": pl.Boolean(),
    "distinct_values": pl.Int64(),
    "together_with": pl.String(),
}
GOLDEN_META = ("trust_score", "source_count", "record_count")

CLUSTER = "cluster"  # in ``clusters`` (Resolution.clusters' shape)
GOLDEN_ID = "golden_id"  # in the golden records and the provenance
MEMBER_CLUSTER = "__cluster__"  # in the members frame (private names: a data column may be called "cluster")
MEMBER_GOLDEN_ID = "__golden_id__"
MEMBER_KEY = "__member_key__"
RENAMED_SUFFIX = "_original"
GOLDEN_ID_DIGITS = 16
ID_BATCH_ROWS = 50_000
TOGETHER_ROWS = 5_000  # _survive_merged: up to this many rows, every column in one group_by
IN_MEMORY: Final = "in-memory"  # queries of an expression per column: polars' streaming engine plans them in
# the square of their expressions (2,000 columns' statistics: 4 s streaming, 0.2 s in memory)
_SIZE = "__cluster_size__"
_TS = "__survival_timestamp__"
_RANK = "__source_rank__"
_POSITION = "__name_position__"

COLUMN_GROUPS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("person_name", ("given_name", "surname")),
    ("address", ("street_number", "address", "address_2", "city", "state", "postcode")),
)
"""Roles whose columns describe one thing together: they survive from one record (module docstring)."""
GROUP_REASONS: Final[dict[str, str]] = {
    "person_name": "the name parts survive together, from one record, so that records with the given name and "
    "surname swapped never give one value for both",
    "address": "the address parts survive together, from the most complete record, so that a street does not go "
    "with another record's town; a part that record lacks comes from the others by the column's own rule",
}
FOLDED_LETTERS: Final[dict[str, str]] = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
}
"""Lower-case letters that NFKD does not decompose, with their usual ASCII spelling (folded_text)."""
UNGROUPED_RULES: Final = frozenset({"min", "max"})  # a value order per column: no record to take together
COMPACT_DATE_FORMAT: Final = "%Y%m%d"
COMPACT_DATE: Final = r"^\d{8}$"
COMPACT_OTHERS: Final = ("%d%m%Y", "%m%d%Y")  # eight digits read either way too: not unambiguous
LAYOUT_SAMPLE: Final = 1000


def canonical_rule(rule: str) -> str:
    """The rule an accepted name stands for (``ValueError`` for an unknown one)."""
    name = RULE_ALIASES.get(rule, rule)
    if name not in RULES:
        raise ValueError(f"unknown survivorship rule {rule!r}; accepted: {', '.join(ACCEPTED_RULES)}")
    return name


def with_bookkeeping(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the three bookkeeping columns: the chain's when present, else rows 1..n of
    source ``primary``."""
    missing: list[pl.Expr] = []
    if ROW_INDEX_COLUMN not in frame.columns:
        missing.append(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))
    if SOURCE_COLUMN not in frame.columns:
        missing.append(pl.lit(PRIMARY_SOURCE, pl.String).alias(SOURCE_COLUMN))
    if not missing and SOURCE_ROW_COLUMN in frame.columns:
        return frame
    frame = frame.with_columns(missing) if missing else frame
    if SOURCE_ROW_COLUMN not in frame.columns:
        frame = frame.with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias(SOURCE_ROW_COLUMN))
    return frame


def require_named_columns(frame: pl.DataFrame, params: Any, agent_id: str, **more: list[str]) -> None:
    """Every column the survivorship parameters common to the master agents name (``match_key_columns``,
    ``survivorship_rules``, ``source_column``, ``timestamp_column``), and the ``more`` of one agent, exists."""
    named: dict[str, list[str]] = {
        "match_key_columns": list(params.match_key_columns),
        **more,
        "survivorship_rules": list(params.survivorship_rules),
        "source_column": [params.source_column] if params.source_column else [],
        "timestamp_column": [params.timestamp_column] if params.timestamp_column else [],
    }
    for field_name, names in named.items():
        require_columns(frame, names, agent_id=agent_id, field=field_name)


def cluster_members(frame: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (with bookkeeping) in file order, plus each row's cluster (``MEMBER_CLUSTER``; a row missing
    from ``clusters`` is its own), content key (``MEMBER_KEY``, as the rank of its text) and golden id
    (``MEMBER_GOLDEN_ID``, from the text)."""
    work = with_bookkeeping(frame)
    assigned = clusters.select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), pl.col(CLUSTER).cast(pl.Int64).alias(MEMBER_CLUSTER)
    )
    if assigned.get_column(ROW_INDEX_COLUMN).equals(work.get_column(ROW_INDEX_COLUMN).cast(pl.Int64)):
        members = work.with_columns(assigned.get_column(MEMBER_CLUSTER))  # in file order already: no join
    else:
        members = work.join(assigned, on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
    members = members.with_columns(
        pl.coalesce(MEMBER_CLUSTER, ROW_INDEX_COLUMN).alias(MEMBER_CLUSTER), content_key(work).alias(MEMBER_KEY)
    )
    if not members[ROW_INDEX_COLUMN].is_sorted():
        members = members.sort(ROW_INDEX_COLUMN)
    ids = golden_ids(members)
    # The ids need the text; the tie-breaks only its order: its dense rank, so that every survived column's
    # sort does not carry a copy of each row's whole content (gigabytes at 1M rows).
    members = members.with_columns(pl.col(MEMBER_KEY).rank("dense"))
    return members.join(ids, on=MEMBER_CLUSTER, how="left", maintain_order="left")


def content_key(frame: pl.DataFrame) -> pl.Expr:
    """Each row's content key (module docstring): its source label and data values as JSON text."""
    schema = frame.schema  # built anew on every access: once, not per column
    fields = [pl.col(SOURCE_COLUMN).cast(pl.String)]
    fields += [as_text(name, schema[name]).alias(name) for name in data_columns(frame)]
    return pl.struct(fields).struct.json_encode()


def golden_ids(members: pl.DataFrame) -> pl.DataFrame:
    """``MEMBER_CLUSTER`` -> ``MEMBER_GOLDEN_ID`` (module docstring) for the clusters of ``members``
    (``MEMBER_CLUSTER``, ``MEMBER_KEY``, ``ROW_INDEX_COLUMN``)."""
    rows = members.lazy().select(
        MEMBER_CLUSTER,
        MEMBER_KEY,
        pl.col(ROW_INDEX_COLUMN).alias("__first__"),
        pl.len().over(MEMBER_CLUSTER).alias(_SIZE),
    )
    # a cluster of one row is its content key as it is: only the others need a group_by
    single = rows.filter(pl.col(_SIZE) == 1).select(MEMBER_CLUSTER, MEMBER_KEY, "__first__")
    merged = (
        rows.filter(pl.col(_SIZE) > 1)
        .group_by(MEMBER_CLUSTER)
        .agg(pl.col(MEMBER_KEY).sort().str.join("\n"), pl.col("__first__").min())
    )
    contents = (
        pl.concat([single, merged], how="vertical")
        .sort("__first__")
        .with_columns(pl.int_range(pl.len()).over(MEMBER_KEY).alias("__copy__"))
        .collect()
    )
    # hashed a batch at a time: the texts as Python strings all at once would cost gigabytes at 1M rows
    ids = [
        pl.Series(
            MEMBER_GOLDEN_ID,
            [
                "G-"
                + hashlib.sha256((text if copy == 0 else f"{text}\n#{copy}").encode()).hexdigest()[:GOLDEN_ID_DIGITS]
                for text, copy in zip(batch[MEMBER_KEY].to_list(), batch["__copy__"].to_list(), strict=True)
            ],
            dtype=pl.String,
        )
        for batch in contents.iter_slices(ID_BATCH_ROWS)
    ]
    return contents.select(MEMBER_CLUSTER).with_columns(
        pl.concat(ids) if ids else pl.Series(MEMBER_GOLDEN_ID, [], dtype=pl.String)
    )


def member_columns(members: pl.DataFrame) -> list[str]:
    """The data columns of a members frame (without its cluster and golden id)."""
    return [name for name in data_columns(members) if name not in (MEMBER_CLUSTER, MEMBER_GOLDEN_ID, MEMBER_KEY)]


def golden_names(columns: Sequence[str]) -> dict[str, str]:
    """Each data column's name in the golden records: its own, or with ``RENAMED_SUFFIX`` when it is one of
    the golden records' own columns (``golden_id``, ``trust_score``, ... of an earlier run's master data)."""
    taken = {GOLDEN_ID, *GOLDEN_META}
    names: dict[str, str] = {}
    for name in columns:
        target = name
        while target in taken or (target != name and target in columns):
            target += RENAMED_SUFFIX
        names[name] = target
        taken.add(target)
    return names


@dataclass(frozen=True)
class _Plan:
    """How one column survives: its index (for private column names), rule and helper columns."""

    index: int
    column: str
    rule: str
    dtype: pl.DataType
    target: str  # its name in the golden records (golden_names)
    group: str | None = None  # the column group (COLUMN_GROUPS) it survives with
    together: str | None = None  # the other columns of its group, for the provenance

    def name(self, kind: str) -> str:
        return f"__{kind}_{self.index}__"

    @property
    def flag(self) -> str:
        """The helper column marking its group's winning row of each cluster."""
        return f"__group_{self.group}__"


def survive(
    frame: pl.DataFrame,
    clusters: pl.DataFrame,
    rules: Mapping[str, str],
    default_rule: str,
    source_priority: Mapping[str, int],
    timestamp_column: str | None,
    *,
    roles: Mapping[str, str] | None = None,
    validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
    source_column: str | None = None,
    singleton_provenance: bool = True,
    members: pl.DataFrame | None = None,
    singletons: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Golden records and their provenance (module docstring).

    ``golden``: ``golden_id``, the data columns (their dtypes; renamed by :func:`golden_names` when an
    earlier run's master data brings ``golden_id``, ``trust_score``, ... as data), ``trust_score``,
    ``source_count`` (distinct sources), ``record_count``; one row per cluster, in file order of the
    clusters' first rows.
    ``provenance``: ``PROVENANCE_SCHEMA``, golden record by golden record, columns in frame order; without
    ``singleton_provenance`` only the rows of clusters of two or more records (a single row's values
    trivially come from it with confidence 1.0). Without ``singletons`` neither holds the clusters of one
    row. ``members`` (from :func:`cluster_members`) saves recomputing them. ``ValueError`` for an unknown
    rule, most_recent without ``timestamp_column`` or a column that is not in the frame."""
    members = members if members is not None else cluster_members(frame, clusters)
    columns = member_columns(members)
    for name in (timestamp_column, source_column):
        if name is not None and name not in columns:
            raise ValueError(f"column {name!r} is not a data column")
    targets = golden_names(columns)
    layouts = date_layouts(members, [name for name in columns if name not in (timestamp_column, source_column)])
    if layouts:  # survived as dates (equal dates agree), written back in the column's dominant layout below
        members = members.with_columns(expression.alias(name) for name, (expression, _) in layouts.items())
    schema = members.schema
    rule_of = {name: canonical_rule(rules.get(name, default_rule)) for name in columns}
    groups = column_groups(columns, roles or {}, rule_of)
    plans = []
    for index, name in enumerate(columns):
        group, together = next(((key, names) for key, names in groups.items() if name in names), (None, []))
        others = ", ".join(other for other in together if other != name) or None
        plans.append(_Plan(index, name, rule_of[name], schema[name], targets[name], group, others))
    if timestamp_column is None and any(plan.rule == "most_recent" for plan in plans):
        raise ValueError("the most_recent rule needs timestamp_column")
    members = members.with_columns(pl.len().over(MEMBER_CLUSTER).alias(_SIZE))
    merged = members.filter(pl.col(_SIZE) > 1)
    names = groups.get("person_name")
    swapped = bool(names) and merged.height > 0 and swapped_name_clusters(merged, roles or {}) > 0
    positions = name_positions(members, names[0], names[1]) if names and swapped else None
    context = _Context(dict(roles or {}), dict(validation_rules or {}), source_priority, source_column, positions)
    if merged.height:
        golden_merged, provenance_merged = _survive_merged(merged, plans, timestamp_column, context)
    else:  # the same empty frames, without planning queries of an expression or two per column
        golden_merged, provenance_merged = _nothing_merged(merged, plans)
    del merged
    if not singletons:
        provenance_merged = provenance_merged.sort(MEMBER_CLUSTER, "__column_index__").select(list(PROVENANCE_SCHEMA))
        return _in_layouts(golden_merged.drop(MEMBER_CLUSTER), provenance_merged, layouts, targets)
    singles = members.filter(pl.col(_SIZE) == 1)
    golden_single = singles.select(
        MEMBER_CLUSTER,
        pl.col(MEMBER_GOLDEN_ID).alias(GOLDEN_ID),
        *[pl.col(name).alias(plan.target) for name, plan in zip(columns, plans, strict=True)],
        pl.lit(NO_CONFLICT_CONFIDENCE, pl.Float64).alias("trust_score"),
        pl.lit(1, pl.Int64).alias("source_count"),
        pl.lit(1, pl.Int64).alias("record_count"),
    )
    golden = pl.concat([golden_single, golden_merged], how="vertical").sort(MEMBER_CLUSTER)
    provenance_parts = [provenance_merged]
    if singleton_provenance:
        provenance_parts.insert(0, _single_provenance(singles, plans))
    provenance = (
        pl.concat(provenance_parts, how="vertical")
        .sort(MEMBER_CLUSTER, "__column_index__")
        .select(list(PROVENANCE_SCHEMA))
    )
    return _in_layouts(golden.drop(MEMBER_CLUSTER), provenance, layouts, targets)


@dataclass(frozen=True)
class _Context:
    roles: dict[str, str]
    validation_rules: dict[str, Mapping[str, Any]]
    source_priority: Mapping[str, int]
    source_column: str | None
    positions: pl.DataFrame | None = None  # name_positions, when the name parts survive together


def column_groups(columns: Sequence[str], roles: Mapping[str, str], rules: Mapping[str, str]) -> dict[str, list[str]]:
    """The columns that survive together (module docstring), by group name (``COLUMN_GROUPS``): two or more
    columns of the group's roles (the first column of each role) sharing one rule that is not min/max. The
    person name's columns are given name, then surname."""
    found: dict[str, list[str]] = {}
    for group, wanted in COLUMN_GROUPS:
        names = [next((name for name in columns if roles.get(name) == role), None) for role in wanted]
        chosen = [name for name in names if name is not None]
        if len(chosen) < 2 or len({rules[name] for name in chosen}) != 1 or rules[chosen[0]] in UNGROUPED_RULES:
            continue
        if group == "person_name" and len(chosen) != len(wanted):
            continue
        found[group] = chosen
    return found


def folded_text(text: pl.Expr) -> pl.Expr:
    """Text as spelled without accents and case (NFKD, the marks of Latin, Greek, Cyrillic, Arabic and Hebrew
    letters dropped, lowercase, the letters of :data:`FOLDED_LETTERS` as spelled in ASCII): "Weiß", "WEISS" and
    "weiss" are one spelling, and so are "Ærøskøbing" and "AEroskobing"."""
    decomposed = text.str.normalize("NFKD").str.replace_all(FOLDED_MARKS, "${1}")
    return decomposed.str.to_lowercase().str.replace_many(list(FOLDED_LETTERS), list(FOLDED_LETTERS.values()))


def folded_length(text: pl.Expr) -> pl.Expr:
    """The length of :func:`folded_text` without folding: a precomposed accented letter is one letter either
    way, so the text's length, plus one per letter folded to two (:data:`FOLDED_LETTERS`), minus its combining
    marks (decomposed input). Compatibility forms (ligatures) count as written."""
    doubled = "".join(letter for letter, spelled in FOLDED_LETTERS.items() if len(spelled) == 2)
    doubled += doubled.upper().replace("SS", "ẞ")
    return text.str.len_chars() + text.str.count_matches(f"[{doubled}]") - text.str.count_matches(r"\p{M}")


def name_positions(members: pl.DataFrame, given: str, surname: str) -> pl.DataFrame:
    """Per name (``value``, folded and trimmed): how many more rows of the whole data hold it as a given name
    than as a surname (``net``); the orientation a swapped pair of records is resolved to (module docstring)."""
    schema = members.schema

    def uses(column: str, sign: int) -> pl.LazyFrame:
        value = folded_text(as_text(column, schema[column]).str.strip_chars())
        return narrow(members, [column]).select(value.alias("value"), pl.lit(sign, pl.Int64).alias("net"))

    return (
        pl.concat([uses(given, 1), uses(surname, -1)])
        .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
        .group_by("value")
        .agg(pl.col("net").sum())
        .filter(pl.col("net") != 0)
        .collect()
    )


def swapped_name_clusters(members: pl.DataFrame, roles: Mapping[str, str]) -> int:
    """The clusters of ``members`` (from :func:`cluster_members`) holding two records whose given name and
    surname are each other's (folded, different from each other)."""
    names = [next((name for name in member_columns(members) if roles.get(name) == role), None) for role in
             ("given_name", "surname")]  # fmt: skip
    given, surname = names
    if given is None or surname is None:
        return 0
    schema = members.schema
    g = folded_text(as_text(given, schema[given]).str.strip_chars())
    s = folded_text(as_text(surname, schema[surname]).str.strip_chars())
    rows = (
        narrow(members, [MEMBER_CLUSTER, given, surname])
        .filter(pl.len().over(MEMBER_CLUSTER) > 1)
        .select(MEMBER_CLUSTER, g.alias("g"), s.alias("s"))
        .filter(pl.col("g").is_not_null() & pl.col("s").is_not_null() & (pl.col("g") != pl.col("s")))
        .unique()
    )
    swapped = rows.join(
        rows.select(MEMBER_CLUSTER, pl.col("s").alias("g"), pl.col("g").alias("s")),
        on=[MEMBER_CLUSTER, "g", "s"],
        how="semi",
    )
    return int(swapped.select(pl.col(MEMBER_CLUSTER).n_unique()).collect().item())


def date_layouts(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, tuple[pl.Expr, str]]:
    """The text columns whose values are dates written in two or more layouts (``14/03/1985`` next to
    ``1985-03-14`` or ``19850314``), every value read unambiguously: ``agents.values.plan_dates`` with the date
    formats reads all of them with no day/month tie, and compact ``YYYYMMDD`` values read that way only. Per
    column: the expression reading its values as dates, and its dominant layout (the one most values are
    written in) as a strftime pattern. A two-digit year is not unambiguous (its century is a guess)."""
    schema = frame.schema
    texts = [name for name in columns if schema[name] == pl.String]
    if not texts:
        return {}

    def datelike(expr: pl.Expr) -> pl.Expr:
        return date_like(expr) | expr.str.strip_chars().str.contains(COMPACT_DATE)

    head = (
        narrow(frame, texts)
        .select(
            (datelike(pl.col(name).drop_nulls().head(LAYOUT_SAMPLE)).all() & pl.col(name).is_not_null().any()).alias(
                name
            )
            for name in texts
        )
        .collect(engine=IN_MEMORY)
        .row(0, named=True)
    )
    found: dict[str, tuple[pl.Expr, str]] = {}
    for name in (name for name in texts if head[name]):
        layout = _date_layout(frame, name)
        if layout is not None:
            found[name] = layout
    return found


def _date_layout(frame: pl.DataFrame, column: str) -> tuple[pl.Expr, str] | None:
    """:func:`date_layouts` of one column, or None."""
    values = distinct_counts(frame, column)
    compact = pl.col("value").str.contains(COMPACT_DATE)
    spelled = values.filter(~compact)
    layouts: list[tuple[str, int, bool]] = []  # strftime pattern, values, four-digit year
    parts: list[pl.Expr] = []
    text = pl.col(column).str.strip_chars()
    if spelled.height:
        plan = plan_dates(spelled, column, DATE_FORMATS)
        if plan.parsed != plan.non_null or any(str(item["decided_by"]).startswith("tie") for item in plan.ambiguity):
            return None
        for fmt, count in plan.formats:  # a day/month swap of a layout already used reads the same values
            if fmt.swapped not in {pattern for pattern, _, _ in layouts}:
                layouts.append((fmt.pattern, count, fmt.four_digit_year))
        parts.append(plan.expression(text))
    digits = values.filter(compact)
    if digits.height:
        value = pl.col("value")
        readings = digits.select(  # years before agents.values.MIN_YEAR are no readings (parse_temporal)
            parse_temporal(value, TemporalFormat(COMPACT_DATE_FORMAT, "date")).is_not_null().all().alias("read"),
            pl.any_horizontal(
                parse_temporal(value, TemporalFormat(pattern, "date")).is_not_null() for pattern in COMPACT_OTHERS
            )
            .any()
            .alias("other"),
            pl.col("count").sum().alias("rows"),
        ).row(0, named=True)
        if not readings["read"] or readings["other"]:
            return None
        layouts.append((COMPACT_DATE_FORMAT, int(readings["rows"]), True))
        compact_dates = parse_temporal(text, TemporalFormat(COMPACT_DATE_FORMAT, "date"))
        parts.append(pl.when(text.str.contains(COMPACT_DATE)).then(compact_dates))
    if len(layouts) < 2 or not all(four_digits for _, _, four_digits in layouts):
        return None  # one layout: the values stay as written; a two-digit year: its century is a guess
    dominant = max(layouts, key=lambda item: item[1])[0]  # ties: the first (the plan's order, then compact)
    return pl.coalesce(parts), dominant


def _in_layouts(
    golden: pl.DataFrame,
    provenance: pl.DataFrame,
    layouts: Mapping[str, tuple[pl.Expr, str]],
    targets: Mapping[str, str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The golden records and provenance with each :func:`date_layouts` column's dates as text in its dominant
    layout."""
    if not layouts:
        return golden, provenance
    golden = golden.with_columns(
        pl.col(targets[name]).dt.strftime(layout).alias(targets[name]) for name, (_, layout) in layouts.items()
    )
    value = pl.col("value")
    rewritten = pl.lit(None, pl.String)
    for name, (_, layout) in layouts.items():
        rewritten = (
            pl.when(pl.col("column") == name)
            .then(value.str.to_date("%Y-%m-%d", strict=False).dt.strftime(layout))
            .otherwise(rewritten)
        )
    changed = pl.col("column").is_in(list(layouts))
    return golden, provenance.with_columns(pl.when(changed).then(rewritten).otherwise(value).alias("value"))


def _single_provenance(singles: pl.DataFrame, plans: Sequence[_Plan]) -> pl.DataFrame:
    """Provenance of one-row clusters: every value from its row, confidence 1.0, no conflict."""
    # each query starts from its own few columns: planning over the whole (wide) frame costs its width per column
    shared = [MEMBER_CLUSTER, MEMBER_GOLDEN_ID, SOURCE_COLUMN, SOURCE_ROW_COLUMN]
    parts = [
        narrow(singles, [*shared, plan.column]).select(
            MEMBER_CLUSTER,
            pl.lit(plan.index, pl.Int64).alias("__column_index__"),
            pl.col(MEMBER_GOLDEN_ID).alias(GOLDEN_ID),
            pl.lit(plan.column, pl.String).alias("column"),
            as_text(plan.column, plan.dtype).alias("value"),
            pl.when(pl.col(plan.column).is_not_null()).then(pl.col(SOURCE_COLUMN)).alias("source"),
            pl.when(pl.col(plan.column).is_not_null()).then(pl.col(SOURCE_ROW_COLUMN)).alias("source_row"),
            pl.lit(plan.rule, pl.String).alias("rule"),
            pl.lit(NO_CONFLICT_CONFIDENCE, pl.Float64).alias("confidence"),
            pl.lit(False).alias("conflict"),
            pl.col(plan.column).is_not_null().cast(pl.Int64).alias("distinct_values"),
            pl.lit(None, pl.String).alias("together_with"),
        )
        for plan in plans
    ]
    if not parts:
        return _empty_provenance()
    return pl.concat(parts, how="vertical").collect(engine=IN_MEMORY).cast(_internal_schema())  # type: ignore[arg-type]


def _survive_merged(
    merged: pl.DataFrame, plans: Sequence[_Plan], timestamp_column: str | None, context: _Context
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Golden records and provenance of the clusters of two or more rows. Up to ``TOGETHER_ROWS`` rows, one
    group_by sorts each column's rows within their cluster (a query's fixed cost dominates there); beyond,
    one pass per column (:func:`_column_winners`), so that only one column's helpers are alive at a time
    (one group_by of every column's helpers costs gigabytes at 1M rows)."""
    helpers: list[pl.Expr] = []
    if timestamp_column is not None:
        helpers.append(timestamp_expression(merged, timestamp_column).alias(_TS))
    label = (
        as_text(context.source_column, merged.schema[context.source_column])
        if context.source_column
        else pl.col(SOURCE_COLUMN).cast(pl.String)
    )
    ranks = {str(source): int(rank) for source, rank in context.source_priority.items()}
    helpers.append(label.replace_strict(ranks, default=None, return_dtype=pl.Int64).alias(_RANK))
    flags = _group_flags(merged, plans, helpers, context)
    if flags:
        merged = merged.with_columns(flags)
    flag_names = [flag.name for flag in flags]
    cluster_figures = [
        pl.col(MEMBER_GOLDEN_ID).first().alias(GOLDEN_ID),
        pl.col(SOURCE_COLUMN).n_unique().cast(pl.Int64).alias("source_count"),
        pl.len().cast(pl.Int64).alias("record_count"),
    ]
    if merged.height <= TOGETHER_ROWS:
        grouped = (
            merged.lazy()
            .with_columns(helpers)
            .with_columns(helper for plan in plans for helper in _helper_columns(plan, context))
            .with_columns(helper for plan in plans for helper in _dependent_helpers(plan))
            .group_by(MEMBER_CLUSTER)
            .agg(*cluster_figures, *(item for plan in plans for item in _aggregations(plan, _sorted_first(plan))))
            .sort(MEMBER_CLUSTER)
            .collect(engine=IN_MEMORY)
        )
    else:
        grouped = merged.lazy().group_by(MEMBER_CLUSTER).agg(cluster_figures).sort(MEMBER_CLUSTER).collect()
        keyed = merged.select(MEMBER_CLUSTER, ROW_INDEX_COLUMN, MEMBER_KEY, *flag_names, *helpers)
        for plan in plans:
            winners = _column_winners(keyed.with_columns(merged.get_column(plan.column)), plan, context)
            if not winners.get_column(MEMBER_CLUSTER).equals(grouped.get_column(MEMBER_CLUSTER)):
                raise AssertionError("survivorship: a column's winners are not in cluster order")
            grouped = grouped.hstack(winners.drop(MEMBER_CLUSTER).get_columns())
    grouped = grouped.with_columns(
        pl.mean_horizontal([pl.col(plan.name("confidence")) for plan in plans]).round(6).alias("trust_score")
        if plans
        else pl.lit(NO_CONFLICT_CONFIDENCE, pl.Float64).alias("trust_score")
    )
    golden = grouped.select(
        MEMBER_CLUSTER,
        GOLDEN_ID,
        *[pl.col(plan.name("value")).alias(plan.target) for plan in plans],
        pl.col("trust_score").cast(pl.Float64),
        "source_count",
        "record_count",
    )
    origin = narrow(merged, [ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN]).select(
        pl.col(ROW_INDEX_COLUMN).alias("__winner__"), pl.col(SOURCE_COLUMN), pl.col(SOURCE_ROW_COLUMN)
    )
    kinds = ("value", "winner", "confidence", "distinct")
    parts = [
        narrow(grouped, [MEMBER_CLUSTER, GOLDEN_ID, *(plan.name(kind) for kind in kinds)])
        .select(
            MEMBER_CLUSTER,
            pl.lit(plan.index, pl.Int64).alias("__column_index__"),
            GOLDEN_ID,
            pl.lit(plan.column, pl.String).alias("column"),
            as_text(plan.name("value"), plan.dtype).alias("value"),
            pl.col(plan.name("winner")).alias("__winner__"),
            pl.lit(plan.rule, pl.String).alias("rule"),
            pl.col(plan.name("confidence")).alias("confidence"),
            (pl.col(plan.name("distinct")) > 1).alias("conflict"),
            pl.col(plan.name("distinct")).alias("distinct_values"),
            pl.lit(plan.together, pl.String).alias("together_with"),
        )
        .join(origin, on="__winner__", how="left")
        .rename({SOURCE_COLUMN: "source", SOURCE_ROW_COLUMN: "source_row"})
        .select(list(_internal_schema()))
        for plan in plans
    ]
    if not parts:
        return golden, _empty_provenance()
    provenance = pl.concat(parts, how="vertical").collect(engine=IN_MEMORY).cast(_internal_schema())  # type: ignore[arg-type]
    return golden, provenance


def _group_flags(
    merged: pl.DataFrame, plans: Sequence[_Plan], helpers: Sequence[pl.Expr], context: _Context
) -> list[pl.Series]:
    """Per column group: whether each row of ``merged`` is the one its group's values of the cluster come from
    (:func:`_group_winners`), as a Series named by the plans' ``flag``, in ``merged``'s order."""
    grouped: dict[str, list[_Plan]] = {}
    for plan in plans:
        if plan.group is not None:
            grouped.setdefault(plan.group, []).append(plan)
    flags = []
    for group, members in grouped.items():
        # Only the clusters whose rows differ in the group's values need a winner: elsewhere every row is as
        # good (each column's own rule takes the one value there is), so every row is flagged.
        content = pl.struct([pl.col(plan.column) for plan in members]).hash(7)
        differ = content.min().over(MEMBER_CLUSTER) != content.max().over(MEMBER_CLUSTER)
        disagreeing = merged.filter(differ)
        winners = _group_winners(disagreeing, group, members, helpers, context)
        rows = narrow(merged, [MEMBER_CLUSTER, ROW_INDEX_COLUMN]).join(
            winners.lazy(), on=MEMBER_CLUSTER, how="left", maintain_order="left"
        )
        winner = pl.col("__group_winner__")
        flag = rows.select(winner.is_null() | (pl.col(ROW_INDEX_COLUMN) == winner)).collect()
        flags.append(flag.to_series().alias(members[0].flag))
    return flags


def _group_winners(
    merged: pl.DataFrame, group: str, plans: Sequence[_Plan], helpers: Sequence[pl.Expr], context: _Context
) -> pl.DataFrame:
    """The row each cluster's values of one column group come from (``MEMBER_CLUSTER``, ``__group_winner__``):
    the rows holding the most of its columns, then by the group's rule over the whole record (most_complete:
    the longest values together, as folded text; most_recent, source_priority, first, last: as for a column;
    most_frequent: the combination most rows hold; quality_score: the highest value qualities together), then,
    for a person's name, the orientation the rest of the data uses (:func:`name_positions`), then the richer
    spelling (proper case, accents), then the values' text and the rows' content keys."""
    rule = plans[0].rule
    columns = [plan.column for plan in plans]
    texts = [as_text(plan.column, plan.dtype).str.strip_chars() for plan in plans]
    row = pl.col(ROW_INDEX_COLUMN)
    filled = pl.sum_horizontal([pl.col(name).is_not_null() for name in columns])
    keys: list[tuple[pl.Expr, bool]] = [(filled, True)]
    if rule in ("first", "last"):
        keys.append((row, rule == "last"))
    elif rule == "most_complete":
        keys.append((pl.sum_horizontal([folded_length(text).fill_null(0) for text in texts]), True))
    elif rule == "most_recent":
        keys += [(pl.col(_TS).is_null(), False), (pl.col(_TS), True)]
    elif rule == "source_priority":
        keys += [(pl.col(_RANK).is_null(), False), (pl.col(_RANK), False)]
    elif rule == "most_frequent":
        keys.append((pl.len().over(MEMBER_CLUSTER, *texts), True))
    elif rule == "quality_score":
        qualities = [
            value_quality(
                plan.column, plan.dtype, context.roles.get(plan.column), context.validation_rules.get(plan.column)
            )
            for plan in plans
        ]
        keys.append((pl.sum_horizontal(qualities), True))
    work = merged.lazy().select(MEMBER_CLUSTER, ROW_INDEX_COLUMN, MEMBER_KEY, *columns, *helpers)
    if group == "person_name" and context.positions is not None and context.positions.height:
        positions = context.positions.lazy()
        for index, text in enumerate(texts):
            work = work.with_columns(folded_text(text).alias(f"__folded_{index}__")).join(
                positions.rename({"value": f"__folded_{index}__", "net": f"__net_{index}__"}),
                on=f"__folded_{index}__",
                how="left",
                maintain_order="left",
            )
        # given name first: the more the data uses it as a given name and the surname as a surname, the better
        keys.append((pl.col("__net_0__").fill_null(0) - pl.col("__net_1__").fill_null(0), True))
    keys += [
        (pl.sum_horizontal([_case_class(text).fill_null(0) for text in texts]), False),
        (pl.sum_horizontal([_marks(text).fill_null(0) for text in texts]), True),
        *((text, False) for text in texts),
        (pl.col(MEMBER_KEY), False),
        (row, False),
    ]
    return (
        work.sort(
            [pl.col(MEMBER_CLUSTER), *(key for key, _ in keys)],
            descending=[False, *(descending for _, descending in keys)],
            nulls_last=True,
        )
        .group_by(MEMBER_CLUSTER, maintain_order=True)
        .agg(row.first().alias("__group_winner__"))
        .collect()
    )


def _case_class(text: pl.Expr) -> pl.Expr:
    """How a text is cased, the proper first: 0 mixed case (or no cased letters), 1 all lower-case, 2 all
    upper-case."""
    upper, lower = text.str.contains(r"\p{Lu}"), text.str.contains(r"\p{Ll}")
    return pl.when(upper & ~lower).then(2).when(lower & ~upper).then(1).otherwise(0).cast(pl.Int64)


def _marks(text: pl.Expr) -> pl.Expr:
    """The characters outside ASCII (accents, "ß", other scripts): the folded spelling has fewer."""
    return text.str.count_matches(r"[^\x00-\x7F]").cast(pl.Int64)


def _nothing_merged(merged: pl.DataFrame, plans: Sequence[_Plan]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`_survive_merged`'s golden records and provenance of an empty ``merged``."""
    golden = merged.select(
        pl.col(MEMBER_CLUSTER).cast(pl.Int64),
        pl.col(MEMBER_GOLDEN_ID).alias(GOLDEN_ID),
        *[pl.col(plan.column).alias(plan.target) for plan in plans],
        pl.lit(None, pl.Float64).alias("trust_score"),
        pl.lit(None, pl.Int64).alias("source_count"),
        pl.lit(None, pl.Int64).alias("record_count"),
    )
    return golden, _empty_provenance()


def _column_winners(keyed: pl.DataFrame, plan: _Plan, context: _Context) -> pl.DataFrame:
    """One column's winner in every cluster of ``keyed`` (``MEMBER_CLUSTER``, ``ROW_INDEX_COLUMN``,
    ``MEMBER_KEY``, the source rank, the timestamp when there is one, and the column): the rows sorted by
    cluster and the rule's keys (:func:`_sort_keys`), the first of each cluster winning; one row per cluster,
    in cluster order, with its value, winner row, distinct values and confidence."""
    keys, descending = _sort_keys(plan)
    return (
        keyed.lazy()
        .with_columns(_helper_columns(plan, context))
        .with_columns(_dependent_helpers(plan))
        .sort([pl.col(MEMBER_CLUSTER), *keys], descending=[False, *descending], nulls_last=True)
        .group_by(MEMBER_CLUSTER, maintain_order=True)
        .agg(_aggregations(plan, pl.Expr.first))
        .collect()
    )


def _sorted_first(plan: _Plan) -> Callable[[pl.Expr], pl.Expr]:
    """Within a group: the value of the row that sorts first by the column's keys (:func:`_sort_keys`)."""
    keys, descending = _sort_keys(plan)

    def first(expr: pl.Expr) -> pl.Expr:
        return expr.sort_by(keys, descending=descending, nulls_last=True).first()

    return first


def _helper_columns(plan: _Plan, context: _Context) -> list[pl.Expr]:
    """Per-row columns the column's rule sorts by: the value's text as its rank among the column's values
    (ties and distinct values need only its order, and sorting by a number is cheaper than by the text)
    and what the rule needs."""
    text = as_text(plan.column, plan.dtype)
    helpers = [text.rank("dense").alias(plan.name("text"))]
    if is_text(plan.dtype):
        helpers += [_case_class(text).alias(plan.name("case")), _marks(text).alias(plan.name("marks"))]
    if plan.rule == "most_complete":  # as folded text: "Weiß" is as long as "WEISS"
        helpers.append(folded_length(text.str.strip_chars()).alias(plan.name("length")))
    elif plan.rule == "quality_score":
        role = context.roles.get(plan.column)
        rules = context.validation_rules.get(plan.column)
        helpers.append(value_quality(plan.column, plan.dtype, role, rules).alias(plan.name("quality")))
    return helpers


def _dependent_helpers(plan: _Plan) -> list[pl.Expr]:
    """Helpers computed from :func:`_helper_columns`' (most_frequent: how many rows of the cluster hold
    the value)."""
    if plan.rule == "most_frequent":
        return [pl.len().over(MEMBER_CLUSTER, plan.name("text")).alias(plan.name("count"))]
    return []


def _sort_keys(plan: _Plan) -> tuple[list[pl.Expr], list[bool]]:
    """The winner is the first row by these keys: nulls of the column always last, then the rule's keys,
    then (module docstring) the value's text and the row's content key; first / last: file order."""
    missing = pl.col(plan.column).is_null()
    row = pl.col(ROW_INDEX_COLUMN)
    lead: list[tuple[pl.Expr, bool]] = [(missing, False)]
    if plan.group is not None:  # the row its group survives from, when it holds a value
        lead.append((~pl.col(plan.flag), False))
    if plan.rule in ("first", "last"):
        lead.append((row, plan.rule == "last"))
        return [key for key, _ in lead], [descending for _, descending in lead]
    keys: list[tuple[pl.Expr, bool]]
    if plan.rule == "most_complete":
        keys = [(pl.col(plan.name("length")), True)]
    elif plan.rule == "most_recent":
        keys = [(pl.col(_TS).is_null(), False), (pl.col(_TS), True)]
    elif plan.rule == "source_priority":
        keys = [(pl.col(_RANK).is_null(), False), (pl.col(_RANK), False)]
    elif plan.rule == "most_frequent":
        keys = [(pl.col(plan.name("count")), True)]
    elif plan.rule == "min":
        keys = [(pl.col(plan.column), False)]
    elif plan.rule == "max":
        keys = [(pl.col(plan.column), True)]
    else:  # quality_score
        keys = [(pl.col(plan.name("quality")), True)]
    if is_text(plan.dtype):  # on a tie, the richer spelling: proper case, then accents
        keys += [(pl.col(plan.name("case")), False), (pl.col(plan.name("marks")), True)]
    keys += [(pl.col(plan.name("text")), False), (pl.col(MEMBER_KEY), False), (row, False)]
    keys = [*lead, *keys]
    return [key for key, _ in keys], [descending for _, descending in keys]


def _aggregations(plan: _Plan, winner: Callable[[pl.Expr], pl.Expr]) -> list[pl.Expr]:
    """Per cluster: the value, winner row, distinct values and confidence; ``winner`` takes an expression's
    value at the winning row (the first of rows already sorted, or :func:`_sorted_first`)."""
    present = pl.col(plan.column).count()
    distinct = pl.col(plan.name("text")).drop_nulls().n_unique().cast(pl.Int64)
    if plan.rule == "most_frequent":
        share = winner(pl.col(plan.name("count"))) / present
        confidence = pl.min_horizontal(pl.lit(MOST_FREQUENT_CAP), 0.5 + 0.5 * share)
    elif plan.rule == "quality_score":
        confidence = winner(pl.col(plan.name("quality")))
    elif plan.rule == "source_priority":
        ranked = winner(pl.col(_RANK)).is_not_null()
        confidence = pl.when(ranked).then(CONFIDENCE["source_priority"]).otherwise(UNRANKED_SOURCE_CONFIDENCE)
    else:
        confidence = pl.lit(CONFIDENCE[plan.rule])
    return [
        winner(pl.col(plan.column)).alias(plan.name("value")),
        pl.when(present > 0).then(winner(pl.col(ROW_INDEX_COLUMN))).alias(plan.name("winner")),
        distinct.alias(plan.name("distinct")),
        pl.when(distinct > 1)
        .then(confidence.cast(pl.Float64).round(6))
        .otherwise(NO_CONFLICT_CONFIDENCE)
        .alias(plan.name("confidence")),
    ]


def value_quality(column: str, dtype: pl.DataType, role: str | None, rules: Mapping[str, Any] | None = None) -> pl.Expr:
    """Agensium's value quality 0..1 (module docstring); 0 for a null."""
    text = as_text(column, dtype).str.strip_chars()
    score = 0.5 + pl.min_horizontal(pl.lit(0.2), folded_length(text) / 100)
    valid = format_valid(column, dtype, role)
    if valid is not None:
        score = score + pl.when(valid).then(0.3).otherwise(-0.2)
    rules = rules or {}
    if rules.get("pattern"):
        score = score + pl.when(text.str.contains(anchored(str(rules["pattern"])))).then(0.2).otherwise(-0.2)
    if rules.get("min_length") is not None:
        score = score + pl.when(text.str.len_chars() >= int(rules["min_length"])).then(0.1).otherwise(0.0)
    if rules.get("allowed_values"):
        allowed = pl.Series([str(value).strip().lower() for value in rules["allowed_values"]], dtype=pl.String)
        score = score + pl.when(text.str.to_lowercase().is_in(allowed.implode())).then(0.2).otherwise(0.0)
    return pl.when(text.is_null() | (text == "")).then(0.0).otherwise(score.clip(0.0, 1.0).round(6)).cast(pl.Float64)


def format_valid(column: str, dtype: pl.DataType, role: str | None) -> pl.Expr | None:
    """Whether each value has the valid format of the column's role (None when the role has no format):
    e-mail and phone patterns; a date (a date/datetime column, or text like 2020-01-31 or 20200131) for
    date_of_birth and every date/datetime column."""
    if is_date_like(dtype):
        return pl.col(column).is_not_null()
    pattern = FORMAT_PATTERNS.get(role or "")
    if pattern is None:
        return None
    return as_text(column, dtype).str.strip_chars().str.contains(pattern)


def anchored(pattern: str) -> str:
    """A pattern the whole value must match."""
    return f"^(?:{pattern})$"


def timestamp_expression(frame: pl.DataFrame, column: str) -> pl.Expr:
    """``column`` as something that sorts by time: dates and numbers as they are, text read with the
    dates toolkit's formats (agents.values; unreadable values are null and rank last)."""
    dtype = frame.schema[column]
    if dtype.is_temporal() or dtype.is_numeric() or not is_text(dtype):
        return pl.col(column)
    plan = plan_dates(distinct_counts(frame, column), column)
    if not plan.formats:
        return pl.lit(None, pl.Datetime("us"))
    return plan.expression(pl.col(column).cast(pl.String))


def _internal_schema() -> dict[str, pl.DataType]:
    return {MEMBER_CLUSTER: pl.Int64(), "__column_index__": pl.Int64(), **PROVENANCE_SCHEMA}


def _empty_provenance() -> pl.DataFrame:
    return pl.DataFrame(schema=_internal_schema())


# ---------------------------------------------------------------------------------------------------------
# exact clusters (the resolver, and the golden-record-builder without fuzzy matching)

MAX_KEY_GROUP = 500
MIN_PHONE_DIGITS = 7
MISSING_KEY_WORDS: tuple[str, ...] = ("unknown", "none", "-", "n/a", "null", "nan", "#n/a", "<na>")
SKIPPED_KEYS_SCHEMA: dict[str, pl.DataType] = {"key": pl.String(), "rows": pl.Int64()}

ENTITY_KEY_ROLES: tuple[tuple[str, ...], ...] = (
    ("email",),
    ("phone",),
    ("national_id",),
    ("given_name", "surname", "date_of_birth"),
    ("full_name", "date_of_birth"),
)


def entity_key_columns(roles: Mapping[str, str]) -> list[str]:
    """The columns that identify an entity, by role: the first e-mail column, else phone, else national
    id, else given name + surname + date of birth, else full name + date of birth; [] when none fits."""
    for wanted in ENTITY_KEY_ROLES:
        found = [next((name for name, role in roles.items() if role == part), None) for part in wanted]
        if all(found):
            return [name for name in found if name is not None]
    return []


def normalised_key(column: str, dtype: pl.DataType, role: str | None) -> pl.Expr:
    """A match-key part, null when it cannot identify anyone: blank, a missing-value token
    (``DEFAULT_NULL_TOKENS`` as they are, ``MISSING_KEY_WORDS`` in any case), an e-mail without a name and
    a domain around its "@", a phone of fewer than ``MIN_PHONE_DIGITS`` digits. Otherwise e-mail lowercased
    without whitespace, phone digits only, national ids letters and digits upper-cased, other text
    whitespace runs collapsed and lowercased."""
    raw = as_text(column, dtype).str.strip_chars()
    placeholder = raw.is_in(list(DEFAULT_NULL_TOKENS)) | raw.str.to_lowercase().is_in(list(MISSING_KEY_WORDS))
    text: pl.Expr = pl.when(~placeholder).then(raw)
    if role == "email":
        text = text.str.replace_all(r"\s+", "").str.to_lowercase()
        text = pl.when(text.str.contains(r"^[^@]+@[^@]+$")).then(text)
    elif role == "phone":
        text = text.str.replace_all(r"\D+", "")
        text = pl.when(text.str.len_chars() >= MIN_PHONE_DIGITS).then(text)
    elif role == "national_id":
        text = text.str.replace_all(r"[^0-9A-Za-z]+", "").str.to_uppercase()
    else:
        text = text.str.replace_all(r"\s+", " ").str.to_lowercase()
    return pl.when(text != "").then(text)


def exact_clusters(
    frame: pl.DataFrame, key_columns: Sequence[str], roles: Mapping[str, str], *, max_group: int = MAX_KEY_GROUP
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clusters of rows equal on every normalised key column (:func:`normalised_key`), in the shape of
    ``Resolution.clusters``: ``ROW_INDEX_COLUMN``, ``cluster`` (the smallest row index), ``match_probability``
    (1.0 in a cluster of two or more rows, else null) and ``rule`` ("exact:<keys>", or "identical" for rows
    equal in every data column, else null); and the key values shared by more than ``max_group`` rows
    (``SKIPPED_KEYS_SCHEMA``: ``key``, its parts joined by " | ", and ``rows``), most rows first: a value
    that many rows share is a placeholder, not an identity, so those rows are not merged on it. A row with
    an empty key part or a skipped key joins only the rows identical to it in every data column (as every
    row does without key columns)."""
    work = with_bookkeeping(frame)
    row = pl.col(ROW_INDEX_COLUMN).cast(pl.Int64)
    schema = work.schema
    names = [f"__key_{index}__" for index in range(len(key_columns))]
    parts = [
        normalised_key(name, schema[name], roles.get(name)).alias(alias)
        for name, alias in zip(key_columns, names, strict=True)
    ]
    filled = pl.all_horizontal([pl.col(name).is_not_null() for name in names]) if names else pl.lit(False)
    oversized = filled & (pl.len().over(names) > max_group) if names else pl.lit(False)
    columns = data_columns(work)
    content = pl.struct([as_text(name, schema[name]) for name in columns]).struct.json_encode() if columns else row
    keyed = (
        work.lazy()
        .select(row, content.alias("__content__"), *parts)
        .with_columns(oversized.alias("__oversized__"))
        .with_columns((filled & ~pl.col("__oversized__")).alias("__complete__"))
        .collect()
    )
    complete = pl.col("__complete__")
    size = pl.len().over(CLUSTER)
    label = "exact:" + "+".join(key_columns)
    by_key = row.min().over(names) if names else row
    clusters = (
        keyed.lazy()
        .with_columns(pl.when(complete).then(by_key).otherwise(row.min().over("__content__")).alias(CLUSTER))
        .select(
            ROW_INDEX_COLUMN,
            CLUSTER,
            pl.when(size > 1).then(1.0).cast(pl.Float64).alias("match_probability"),
            pl.when(size <= 1)
            .then(pl.lit(None, pl.String))
            .when(complete)
            .then(pl.lit(label))
            .otherwise(pl.lit("identical"))
            .alias("rule"),
        )
        .sort(ROW_INDEX_COLUMN)
        .collect()
    )
    skipped = (
        keyed.filter(pl.col("__oversized__"))
        .group_by(pl.concat_str([pl.col(name) for name in names], separator=" | ").alias("key"))
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .sort(["rows", "key"], descending=[True, False])
        if names
        else pl.DataFrame(schema=SKIPPED_KEYS_SCHEMA)
    )
    return clusters, skipped.cast(SKIPPED_KEYS_SCHEMA)  # type: ignore[arg-type]


def role_names(roles: Mapping[str, Any]) -> dict[str, str]:
    """``{column: role}`` from ``semantic_roles`` (``ColumnRole`` objects, or role names as they are)."""
    return {str(name): str(getattr(role, "role", role)) for name, role in roles.items()}


# ---------------------------------------------------------------------------------------------------------
# what the master agents share


def column_roles(frame: pl.DataFrame, artifacts: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """``{column: role}`` of the frame's data columns and where they came from: semantic-mapper's
    ``semantic_roles`` artifact when an earlier agent left it (columns it did not cover are ``other``),
    else ``agents.master.roles.detect_roles``."""
    columns = data_columns(frame)
    given = artifacts.get("semantic_roles")
    if given:
        names = role_names(given)
        return {name: names.get(name, "other") for name in columns}, "semantic-mapper"
    from agents.master.roles import detect_roles

    return role_names(detect_roles(frame)), "detected"


def report_skipped_keys(
    findings: Findings, skipped: Sequence[Mapping[str, Any]], max_group: int = MAX_KEY_GROUP
) -> None:
    """An alert for the key values :func:`exact_clusters` did not merge on (``skipped``: its rows as dicts,
    ``key`` and ``rows``)."""
    if not skipped:
        return
    shown = ", ".join(f"'{item['key']}' ({item['rows']:,} rows)" for item in skipped[:5])
    findings.alert(
        "matching",
        "medium",
        f"{len(skipped):,} match key values are shared by more than {max_group:,} rows and were not merged on: {shown}",
        "Such values are placeholders rather than identities; clean them (e.g. to empty) or choose other "
        "match_key_columns",
        kind="skipped_keys",
        affected=sum(int(item["rows"]) for item in skipped),
    )


def jsonable(value: Any, *, max_items: int = 1000) -> Any:
    """``value`` as JSON-ready data: mappings and sequences item by item (at most ``max_items`` each),
    frames as their first ``max_items`` rows, scalars via ``agents.formatting.plain_value``."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item, max_items=max_items) for key, item in list(value.items())[:max_items]}
    if isinstance(value, pl.DataFrame):
        return [jsonable(row, max_items=max_items) for row in value.head(max_items).to_dicts()]
    if isinstance(value, pl.Series):
        return [plain_value(item) for item in value.head(max_items).to_list()]
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [jsonable(item, max_items=max_items) for item in items[:max_items]]
    return plain_value(value)
