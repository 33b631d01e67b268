"""The ``semantic-mapper`` agent: maps columns to Agensium's standard vocabulary and values to standard spellings.

Each data column gets at most one standard name (``agents.params.semantic_mapper.STANDARD_NAMES``), in this
order of precedence:

1. ``custom_column_mappings`` (confidence 1, method ``custom``);
2. a role its name says (``agents.master.roles``, methods ``name`` / ``name+value``), as the standard name
   of :data:`ROLE_STANDARD` (an ``id`` column is ``customer_id``, ``order_id`` or ``product_id`` when its
   name says whose id it is);
3. the vocabulary names roles do not cover (:data:`VOCABULARY_NAMES`: price, created/updated date, date,
   status, age, quantity), matched on the normalised column name (whole name 0.9, a word of it 0.75);
4. a role its values alone say (method ``value``).

A vocabulary date name (``date``, ``created_date``, ``updated_date``) must fit the values too: a column that is
not temporal and whose sample is not mostly dates (``day`` holding days of the month) keeps half the name's
confidence (``agents.master.roles.NAME_DISAGREES``), as a role name its values contradict does. Its values
*confirm* it (method ``name+value``) when they are dates without a time of day (a ``Date`` column, a datetime
column of midnights, or text mostly dates with no ``hh:mm`` in any value); a timestamp (``ts`` holding
``2024-03-01T10:15:00Z``) only fits it. The other vocabulary names (price, status, age, quantity) have no
value check: their method is ``name``.

A mapping counts when its confidence is at least ``confidence_threshold``. Renaming a column on a guess is a
judgment call (PRODUCT.md "Defaults that never destroy data"): only a mapping the user asked for (custom) or
that the whole column name says *and its values confirm* (method ``name+value``: an alias of the role, or of a
vocabulary date name, whose values fit it) is applied; a guess (from the values alone, from a word inside a
longer name, or from the name alone with nothing in the values to confirm it: ``amount`` holding negative
amounts is not surely a ``price``, ``qty`` not surely a ``quantity``) gets status ``guessed`` and is proposed
(``data.proposals``: the ``custom_column_mappings`` that apply it). With ``apply_mappings`` the
column is renamed only where nothing is lost: a standard name already held by another column (or a bookkeeping
column) is reported, not applied; two columns mapping to the same name: the more confident one (then the
first) is renamed, the other reported. Values are replaced per ``custom_value_mappings`` (exact match of the
whole cell): the user asked for those. The built-in spellings of :data:`COUNTRY_SPELLINGS` (columns mapped to
``country``; matched ignoring case, dots and whitespace; a custom mapping of the same cell wins) are a
judgment call: with ``apply_builtin_value_mappings`` (ours, false by default; Agensium applies them) they
are applied, otherwise proposed (``data.proposals``), each spelling listed with the cells it would change
(``data.value_mappings[].changes``). Every changed cell is counted. Without ``apply_mappings`` nothing
changes and the renames and replacements are proposed.

A column a user-supplied data contract names (``agents.master.contract.named_columns``: contract-enforcer's
``contract_columns`` artifact, else the uploaded contract) keeps its name (status ``contract_name``): its
role still counts for matching, and it claims its standard name as a renamed column would.

**Lining up sources.** In the master chain the sources are stacked (``agents.master.sources``), so a column
of one source and a column of the same meaning but another name in another source (``dob`` and ``Birth
Date``) arrive as two columns, one empty in each source's rows. Columns whose mappings share a standard name
(or, for a custom mapping, name a contract column of that meaning) are lined up into one column when that
is unambiguous: no source holds values in two of them (so no value is lost or chosen), at most one is a
contract column (then the one column keeps the contract's name, else it takes the standard name), no other
column holds that name, and every one of the mappings is sure (custom, or the whole column name). The
column stands where the first of them stood; when their types differ, it holds each value as text, as
written (``agents.layouts.text_of``), as stacking sources does. Lined-up columns get status ``lined_up``.
When one of the mappings is only a guess, or ``apply_mappings`` is false, the line-up is proposed
(``data.proposals``, action ``line_up_columns``: the ``custom_column_mappings`` or ``apply_mappings`` that
apply it). Columns whose values share a source are never lined up (that would choose between values).

The agent returns the new frame (bookkeeping columns untouched) and ``artifacts["semantic_roles"]``: the
roles of the returned frame's columns (``detect_roles`` of the new frame, keyed by the new names).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from agents.clean.common import clean_result, effectiveness
from agents.columns import is_text, normalised_name, require_columns
from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    SOURCE_COLUMN,
    AgentInputs,
    AgentResult,
    Progress,
    SummaryCard,
    data_columns,
)
from agents.errors import InvalidParametersError
from agents.findings import Findings, card_status, proposal
from agents.formatting import pct
from agents.layouts import Layout, text_of
from agents.master.contract import CONTRACT_COLUMNS_ARTIFACT, uploaded_named_columns
from agents.master.roles import (
    CONFIRM_SHARE,
    NAME_DISAGREES,
    ColumnRole,
    detect_roles,
    is_scalar,
    name_role,
    value_evidence,
)
from agents.master.roles import NAME_EXACT as ROLE_NAME_EXACT
from agents.params.semantic_mapper import SemanticMapperParams
from agents.values import DATE_FORMATS, distinct_counts, plan_dates

AGENT_ID = "semantic-mapper"
AGENT_NAME = "Semantic Mapper"
CREDITS = 50
HIGH_CONFIDENCE: Final = 0.9
MAX_LISTED_SPELLINGS: Final = 100  # per column, the most frequent first (the counts cover all of them)
NAME_EXACT: Final = 0.9
NAME_PARTIAL: Final = 0.75

ROLE_STANDARD: Final[dict[str, str]] = {
    "given_name": "first_name",
    "surname": "last_name",
    "full_name": "full_name",
    "email": "email",
    "phone": "phone",
    "address": "address",
    "city": "city",
    "state": "state",
    "country": "country",
    "postcode": "zip_code",
    "date_of_birth": "birth_date",
    "gender": "gender",
    "id": "id",
}
"""The standard name of each role that has one (street numbers, second address lines, national ids and
companies have none in Agensium's vocabulary)."""

VOCABULARY_NAMES: Final[tuple[tuple[str, str], ...]] = (
    ("price", r"price|unit_?price|sale_?price|list_?price|cost|unit_?cost|amount|amt|total_?amount"),
    (
        "created_date",
        r"created(?:_?(?:at|on|date|time|ts|dt))?|creation_?(?:date|time)|date_?created|signup_?date"
        r"|registered(?:_?(?:at|on))?|registration_?date",
    ),
    (
        "updated_date",
        r"updated(?:_?(?:at|on|date|time|ts))?|modified(?:_?(?:at|on|date))?|last_?(?:modified|updated)"
        r"(?:_?(?:at|on|date))?|date_?(?:modified|updated)",
    ),
    ("date", r"date|dt|day|timestamp|ts|(?:order|transaction|invoice|event)_?date"),
    ("status", r"status|(?:order|account|customer)_?status"),
    ("age", r"age|age_?years|years_?old"),
    ("quantity", r"qty|quantity|units|unit_?count|item_?count|num_?items"),
)
_VOCABULARY_EXACT: Final = tuple((name, re.compile(rf"^(?:{aliases})$")) for name, aliases in VOCABULARY_NAMES)
_VOCABULARY_PARTIAL: Final = tuple(
    (name, re.compile(rf"(?:^|_)(?:{aliases})(?:_|$)")) for name, aliases in VOCABULARY_NAMES
)
DATE_NAMES: Final = frozenset({"date", "created_date", "updated_date"})
"""Vocabulary names whose values must be dates (a temporal column, or a sample mostly date-like)."""
ID_KINDS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("customer_id", re.compile(r"(?:^|_)(?:customer|client|cust)(?:_|id|$)")),
    ("order_id", re.compile(r"(?:^|_)order(?:_|id|$)")),
    ("product_id", re.compile(r"(?:^|_)(?:product|item|sku)(?:_|id|$)")),
)

COUNTRY_SPELLINGS: Final[dict[str, str]] = {
    "usa": "USA",
    "us": "USA",
    "unitedstates": "USA",
    "unitedstatesofamerica": "USA",
    "uk": "UK",
    "unitedkingdom": "UK",
    "greatbritain": "UK",
    "gb": "UK",
    "uae": "UAE",
    "unitedarabemirates": "UAE",
}
"""Built-in value mappings of country columns, keyed by the value lower-cased without dots or whitespace."""

STATUS_TEXT: Final = {
    "applied": "renamed",
    "already_standard": "already has its standard name",
    "proposed": "not applied (apply_mappings is false)",
    "guessed": "a guess (from the values, a word of the name, or the name alone): proposed, not applied",
    "below_threshold": "confidence below confidence_threshold",
    "name_taken": "another column already has this name",
    "duplicate_target": "a more confident column maps to the same name",
    "contract_name": "the data contract names this column: it keeps its name",
    "lined_up": "lined up with a column of the same meaning from other sources",
}
LINE_UP_STATUSES: Final = frozenset(
    {"applied", "proposed", "already_standard", "contract_name", "duplicate_target", "guessed", "name_taken"}
)
"""The statuses of mappings that may be lined up with others of the same standard name (module docstring)."""


@dataclass
class ColumnMapping:
    column: str
    standard_name: str
    confidence: float
    method: str
    sure: bool = True  # False: a guess, proposed rather than applied (module docstring)
    status: str = "below_threshold"
    reason: str = ""
    lined_up_into: str = ""  # status lined_up: the column it now is part of

    @property
    def new_name(self) -> str:
        """The column's name in the returned frame."""
        if self.status == "lined_up":
            return self.lined_up_into
        return self.standard_name if self.status == "applied" else self.column

    @property
    def counts(self) -> bool:
        return self.status != "below_threshold"

    def report(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "standard_name": self.standard_name,
            "confidence": round(self.confidence, 4),
            "method": self.method,
            "applied": self.status in ("applied", "lined_up"),
            "status": self.status,
            "reason": self.reason or STATUS_TEXT[self.status],
            "new_column": self.new_name,
        }


@dataclass
class LineUp:
    """Columns of the same meaning from different sources, lined up into one (module docstring)."""

    target: str  # the one column's name
    columns: list[str]  # the input columns, in column order
    sources: dict[str, list[str]]  # column -> the sources holding values in it
    guesses: list[str]  # the columns whose mapping is only a guess (none: ``apply_mappings`` lines them up)
    applied: bool = False
    dtype: str = ""  # applied: the one column's type

    def report(self) -> dict[str, Any]:
        return {
            "column": self.target,
            "columns": self.columns,
            "sources": self.sources,
            "applied": self.applied,
            **({"dtype": self.dtype} if self.applied else {}),
        }


@dataclass
class ValueMapping:
    column: str  # the column's name in the returned frame
    source: str  # custom | built_in
    replacements: dict[str, str]
    applied: bool = False  # False: counted and proposed, the cells keep their values
    cells_changed: int = 0  # the cells it changes (applied) or would change (proposed)
    cells_mappable: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # built-in: {value, replacement, cells}


@dataclass
class Outcome:
    frame: pl.DataFrame
    output: pl.DataFrame
    mappings: list[ColumnMapping]
    values: list[ValueMapping]
    applied: bool
    roles: dict[str, ColumnRole] = field(default_factory=dict)
    line_ups: list[LineUp] = field(default_factory=list)

    @property
    def counted(self) -> list[ColumnMapping]:
        return [mapping for mapping in self.mappings if mapping.counts]

    @property
    def renamed(self) -> int:
        return sum(mapping.status in ("applied", "lined_up") for mapping in self.mappings)

    @property
    def cells_changed(self) -> int:
        """Cells the applied value mappings changed."""
        return sum(item.cells_changed for item in self.values if item.applied)

    @property
    def cells_proposed(self) -> int:
        """Cells the value mappings not applied would change."""
        return sum(item.cells_changed for item in self.values if not item.applied)


def run(inputs: AgentInputs, params: SemanticMapperParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = inputs.primary
    columns = data_columns(frame)
    _validate(frame, params)
    progress(0.0, f"Mapping {len(columns):,} columns to the standard vocabulary")
    schema = frame.schema  # built anew on every access: once, not per column
    evidence = value_evidence(frame, [name for name in columns if is_scalar(schema[name])])
    roles = detect_roles(frame, evidence) if params.auto_detect_semantics else {}
    kept = _contract_columns(inputs)
    found = candidates(schema, columns, roles, evidence, params, dated_columns(frame, columns, evidence))
    mappings = resolve_mappings(frame, found, params, kept)
    line_ups = find_line_ups(frame, mappings, kept, params)
    value_columns = _value_columns(frame, mappings, params)

    progress(0.4, "Mapping values to their standard spellings")
    renames = {mapping.column: mapping.standard_name for mapping in mappings if mapping.status == "applied"}
    output = frame.rename(renames) if renames else frame
    output, values = _map_values(output, mappings, renames, _with_lined_up(value_columns, line_ups), params)
    output = apply_line_ups(output, renames, line_ups, inputs.text_layouts)

    progress(0.7, "Detecting the roles of the mapped columns")
    changed = {item.column for item in values if item.cells_changed and item.applied}
    changed |= {line_up.target for line_up in line_ups if line_up.applied}
    carried = {renames.get(name, name): facts for name, facts in evidence.items()}
    new_roles = detect_roles(output, {name: facts for name, facts in carried.items() if name not in changed})
    outcome = Outcome(frame, output, mappings, values, params.apply_mappings, new_roles, line_ups)
    result = _result(outcome, params, started)
    result.artifacts = {"semantic_roles": new_roles}
    progress(1.0, f"Mapped {len(outcome.counted):,} of {len(columns):,} columns")
    return result


def _with_lined_up(value_columns: dict[str, str], line_ups: list[LineUp]) -> dict[str, list[str]]:
    """The columns each key of ``custom_value_mappings`` maps values in: its column, and every column lined up with
    it (they become one column: mapping only one of them would leave the other source's values unmapped)."""
    together = {column: line_up.columns for line_up in line_ups if line_up.applied for column in line_up.columns}
    return {key: together.get(column, [column]) for key, column in value_columns.items()}


def _contract_columns(inputs: AgentInputs) -> frozenset[str]:
    """The columns a user-supplied data contract names: contract-enforcer's artifact, else the uploaded one."""
    named = inputs.artifacts.get(CONTRACT_COLUMNS_ARTIFACT)
    return frozenset(named if named is not None else uploaded_named_columns(inputs))


def _validate(frame: pl.DataFrame, params: SemanticMapperParams) -> None:
    require_columns(frame, params.custom_column_mappings, agent_id=AGENT_ID, field="custom_column_mappings")
    for column, target in params.custom_column_mappings.items():
        if target in BOOKKEEPING_COLUMNS:
            raise InvalidParametersError(
                f"{AGENT_ID}.custom_column_mappings.{column}: {target!r} is a column the chain keeps for itself",
                agent_id=AGENT_ID,
                field=f"custom_column_mappings.{column}",
            )


def _value_columns(frame: pl.DataFrame, mappings: list[ColumnMapping], params: SemanticMapperParams) -> dict[str, str]:
    """The data column each key of ``custom_value_mappings`` names: a column of the data, or the column
    mapped to that standard name. An unknown key, or a column that is not text, is an error."""
    present = data_columns(frame)
    by_standard = {mapping.standard_name: mapping.column for mapping in mappings if mapping.counts}
    resolved: dict[str, str] = {}
    for key in params.custom_value_mappings:
        column = key if key in present else by_standard.get(key)
        if column is None:
            require_columns(frame, [key], agent_id=AGENT_ID, field="custom_value_mappings")
            continue
        if not is_text(frame.schema[column]):
            raise InvalidParametersError(
                f"{AGENT_ID}.custom_value_mappings.{key}: '{column}' is {frame.schema[column]}; values are mapped "
                "in text columns only",
                agent_id=AGENT_ID,
                field=f"custom_value_mappings.{key}",
            )
        resolved[key] = column
    return resolved


def candidates(
    schema: pl.Schema,
    columns: list[str],
    roles: dict[str, ColumnRole],
    evidence: dict[str, dict[str, Any]],
    params: SemanticMapperParams,
    dated: frozenset[str] = frozenset(),
) -> list[ColumnMapping]:
    """Each column's best standard name (module docstring), or none, and whether it is sure or a guess
    (``dated``: the columns whose values are dates without a time of day, :func:`dated_columns`)."""
    found: list[ColumnMapping] = []
    for column in columns:
        if column in params.custom_column_mappings:
            found.append(ColumnMapping(column, params.custom_column_mappings[column], 1.0, "custom"))
            continue
        if not params.auto_detect_semantics:
            continue
        role = roles.get(column)
        by_role = _role_standard(column, role) if role is not None else None
        by_name = _vocabulary(column)
        if role is not None and by_role is not None and role.method != "value":
            said = name_role(column)
            whole = said is not None and said.role == role.role and said.confidence == ROLE_NAME_EXACT
            whole = whole and role.confidence >= ROLE_NAME_EXACT  # lower: the values disagree with the name
            whole = whole and role.method == "name+value"  # the name alone (no values to confirm it): a guess
            found.append(ColumnMapping(column, by_role, role.confidence, role.method, whole))
        elif by_name is not None:
            name, confidence = by_name
            fits = _values_fit(name, schema[column], evidence.get(column))
            confidence = confidence if fits else round(confidence * NAME_DISAGREES, 4)
            confirmed = fits and name in DATE_NAMES and column in dated  # the values say so too
            method = "name+value" if confirmed else "name"
            found.append(ColumnMapping(column, name, confidence, method, confirmed and confidence == NAME_EXACT))
        elif role is not None and by_role is not None:
            found.append(ColumnMapping(column, by_role, role.confidence, role.method, False))
    return found


def _values_fit(name: str, dtype: pl.DataType, evidence: dict[str, Any] | None) -> bool:
    """Whether a column's values fit the vocabulary name its column name says: a date name needs a temporal
    column or a sample mostly of dates (or no sample at all); the other names take any values."""
    if name not in DATE_NAMES or dtype.is_temporal() or evidence is None or not evidence["sampled"]:
        return True
    return float(evidence.get("date") or 0.0) >= CONFIRM_SHARE


def dated_columns(frame: pl.DataFrame, columns: list[str], evidence: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The columns a vocabulary date name fits whose values confirm it (module docstring): dates without a
    time of day. Only the columns whose name says a date name are read."""
    schema = frame.schema
    wanted = [name for name in columns if (_vocabulary(name) or ("", 0.0))[0] in DATE_NAMES]
    checks: dict[str, pl.Expr] = {}
    dated: set[str] = set()
    for name in wanted:
        dtype = schema[name]
        if dtype == pl.Date:
            dated.add(name)
        elif isinstance(dtype, pl.Datetime):
            checks[name] = (pl.col(name).dt.truncate("1d") == pl.col(name)).all() & (pl.col(name).count() > 0)
        elif is_text(dtype):
            facts = evidence.get(name)
            if facts is not None and facts["sampled"] and float(facts.get("date") or 0.0) >= CONFIRM_SHARE:
                checks[name] = ~pl.col(name).str.contains(r"\d:\d\d").any()
    if checks:
        row = frame.select(expr.alias(name) for name, expr in checks.items()).row(0, named=True)
        dated |= {name for name, confirmed in row.items() if confirmed}
    return frozenset(dated)


def _role_standard(column: str, role: ColumnRole) -> str | None:
    standard = ROLE_STANDARD.get(role.role)
    if standard == "id":
        normalised = normalised_name(column)
        for name, pattern in ID_KINDS:
            if pattern.search(normalised):
                return name
    return standard


def _vocabulary(column: str) -> tuple[str, float] | None:
    normalised = normalised_name(column)
    for name, pattern in _VOCABULARY_EXACT:
        if pattern.match(normalised):
            return name, NAME_EXACT
    for name, pattern in _VOCABULARY_PARTIAL:
        if pattern.search(normalised):
            return name, NAME_PARTIAL
    return None


def resolve_mappings(
    frame: pl.DataFrame, found: list[ColumnMapping], params: SemanticMapperParams, kept: frozenset[str] = frozenset()
) -> list[ColumnMapping]:
    """Each mapping's status: applied (or proposed), guessed, already standard, kept by the contract
    (``kept``: it claims its standard name but keeps its own), below the threshold, or not applied because the
    name is taken. A contract's column claims a name first, then a sure mapping before a guess, then the most
    confident (ties: column order)."""
    existing = set(frame.columns)
    claimed: dict[str, str] = {}
    order = sorted(
        range(len(found)),
        key=lambda index: (found[index].column not in kept, not found[index].sure, -found[index].confidence, index),
    )
    sure_names = {mapping.column for mapping in found if mapping.sure}
    for index in order:
        mapping = found[index]
        if mapping.confidence < params.confidence_threshold:
            mapping.status = "below_threshold"
        elif mapping.standard_name == mapping.column:
            mapping.status = "already_standard"
            claimed[mapping.column] = mapping.column
        elif mapping.standard_name in claimed:
            mapping.status = "duplicate_target"
            holder = claimed[mapping.standard_name]
            if holder in kept:
                mapping.reason = f"'{holder}' (named by the data contract) maps to '{mapping.standard_name}'"
            elif holder in sure_names and not mapping.sure:
                mapping.reason = (
                    f"'{holder}' maps to '{mapping.standard_name}' for certain (custom or its whole name), "
                    f"'{mapping.column}' only by a guess"
                )
            else:
                mapping.reason = f"'{holder}' maps to '{mapping.standard_name}' with more confidence"
        elif mapping.column in kept:
            mapping.status = "contract_name"
            claimed[mapping.standard_name] = mapping.column
        elif mapping.standard_name in existing:
            mapping.status = "name_taken"
            mapping.reason = f"the data already has a column '{mapping.standard_name}'"
        elif not mapping.sure:
            mapping.status = "guessed"
            claimed[mapping.standard_name] = mapping.column
        else:
            mapping.status = "applied" if params.apply_mappings else "proposed"
            claimed[mapping.standard_name] = mapping.column
    return found


def find_line_ups(
    frame: pl.DataFrame, mappings: list[ColumnMapping], kept: frozenset[str], params: SemanticMapperParams
) -> list[LineUp]:
    """The columns of different sources to line up into one (module docstring), each applied or proposed;
    the lined-up mappings get status ``lined_up``. Only in a frame of stacked sources."""
    if SOURCE_COLUMN not in frame.columns:
        return []
    meaning = {mapping.column: mapping.standard_name for mapping in mappings if mapping.column in kept}
    groups: dict[str, list[ColumnMapping]] = {}
    for mapping in mappings:
        if mapping.status in LINE_UP_STATUSES:
            custom = mapping.method == "custom"
            key = meaning.get(mapping.standard_name, mapping.standard_name) if custom else mapping.standard_name
            groups.setdefault(key, []).append(mapping)
    groups = {key: members for key, members in groups.items() if len(members) > 1}
    if not groups:
        return []
    order = {name: index for index, name in enumerate(frame.columns)}
    columns = sorted({mapping.column for members in groups.values() for mapping in members}, key=order.__getitem__)
    held = (
        frame.lazy()
        .group_by(SOURCE_COLUMN, maintain_order=True)
        .agg(pl.col(name).is_not_null().any().alias(f"c{index}") for index, name in enumerate(columns))
        .collect()
    )
    sources = {
        name: [str(label) for label, holds in zip(held[SOURCE_COLUMN], held[f"c{index}"], strict=True) if holds]
        for index, name in enumerate(columns)
    }
    line_ups = []
    for key, members in groups.items():
        members.sort(key=lambda mapping: order[mapping.column])
        contract = [mapping.column for mapping in members if mapping.column in kept]
        target = contract[0] if contract else key
        labels = [label for mapping in members for label in sources[mapping.column]]
        names = {mapping.column for mapping in members}
        if len(contract) > 1 or len(labels) != len(set(labels)) or (target in frame.columns and target not in names):
            continue  # two contract columns, a source holding values in two of them, or the name is another's
        guesses = [m.column for m in members if not m.sure and m.column not in kept]  # a contract's column: named
        sure = not guesses
        if sure and params.apply_mappings and not any(mapping.new_name == target for mapping in members):
            continue  # none of them takes the name (it is not theirs to take)
        line_up = LineUp(target, [m.column for m in members], {m.column: sources[m.column] for m in members}, guesses)
        line_up.applied = sure and params.apply_mappings  # then one of them takes the name (above)
        if line_up.applied:
            for mapping in members:
                if mapping.new_name != target:
                    mapping.status = "lined_up"
                    mapping.lined_up_into = target
                    mapping.reason = (
                        f"lined up into '{target}' with "
                        + ", ".join(f"'{other}'" for other in line_up.columns if other != mapping.column)
                        + f": no source holds values in two of them ({_sources_text(line_up)})"
                    )
        line_ups.append(line_up)
    return line_ups


def _sources_text(line_up: LineUp) -> str:
    return "; ".join(f"'{name}' from {', '.join(labels) or 'no source'}" for name, labels in line_up.sources.items())


def apply_line_ups(
    frame: pl.DataFrame,
    renames: dict[str, str],
    line_ups: list[LineUp],
    layouts: Mapping[str, Layout],
) -> pl.DataFrame:
    """``frame`` (already under the new names) with each applied line-up's columns as one column where the
    first of them stood; the values as they are when the columns share a type, else as text as written
    (``layouts``: the input's, keyed by the old names)."""
    applied = [line_up for line_up in line_ups if line_up.applied]
    if not applied:
        return frame
    merged: dict[str, pl.Expr] = {}  # the first column of each line-up -> the one column
    for line_up in applied:
        current = [renames.get(name, name) for name in line_up.columns]
        parts = _common_parts(frame, line_up.columns, current, layouts)
        merged[current[0]] = pl.coalesce(parts).alias(line_up.target)
    gone = {renames.get(name, name) for line_up in applied for name in line_up.columns}
    frame = frame.select(
        merged[name] if name in merged else pl.col(name) for name in frame.columns if name in merged or name not in gone
    )
    for line_up in applied:
        line_up.dtype = str(frame.schema[line_up.target])
    return frame


def _common_parts(
    frame: pl.DataFrame, old: list[str], current: list[str], layouts: Mapping[str, Layout]
) -> list[pl.Expr]:
    """The columns ``current`` (input names ``old``) as one type: their own when they share it; a date column
    and text columns whose every value reads as a date in one day/month order (``agents.values.plan_dates``,
    no tie) as dates; else each as text as written."""
    schema = frame.schema
    dtypes = {schema[name] for name in current}
    if len(dtypes) == 1:
        return [pl.col(name) for name in current]
    typed = dtypes - {pl.String()}
    if typed == {pl.Date()}:
        parts = [pl.col(name) if schema[name] == pl.Date else _as_dates(frame, name) for name in current]
        if all(part is not None for part in parts):
            return [part for part in parts if part is not None]
    return [text_of(pl.col(new), schema[new], layouts.get(name)) for name, new in zip(old, current, strict=True)]


def _as_dates(frame: pl.DataFrame, column: str) -> pl.Expr | None:
    """The text ``column`` as dates when every value reads as one in a single day/month order; else None."""
    plan = plan_dates(distinct_counts(frame, column), column, DATE_FORMATS)
    if plan.kind != "date" or plan.parsed != plan.non_null:
        return None
    if any(str(item["decided_by"]).startswith("tie") for item in plan.ambiguity):
        return None
    return plan.expression(pl.col(column).str.strip_chars())


def _map_values(
    frame: pl.DataFrame,
    mappings: list[ColumnMapping],
    renames: dict[str, str],
    value_columns: dict[str, list[str]],
    params: SemanticMapperParams,
) -> tuple[pl.DataFrame, list[ValueMapping]]:
    """Replace values per ``custom_value_mappings`` and, with ``apply_builtin_value_mappings``, the built-in
    country spellings (module docstring); ``frame`` already carries the new names. A mapping not applied is
    only counted (and a built-in one's spellings listed)."""
    custom: dict[str, dict[str, str]] = {}
    for key, replacements in params.custom_value_mappings.items():
        for column in value_columns[key]:
            custom.setdefault(renames.get(column, column), {}).update(replacements)
    country_columns = [
        renames.get(mapping.column, mapping.column)
        for mapping in mappings
        if mapping.counts and mapping.standard_name == "country"
    ]
    countries = [name for name in country_columns if is_text(frame.schema[name])]
    plans: dict[str, pl.Expr] = {}
    items: list[ValueMapping] = []
    counters: list[pl.Expr] = []
    spellings: list[tuple[ValueMapping, pl.Expr, pl.Expr, pl.Expr]] = []  # built-in: item, text, spelled, scope
    builtin_applied = params.apply_mappings and params.apply_builtin_value_mappings
    for name in dict.fromkeys([*custom, *countries]):
        text = pl.col(name).cast(pl.String)
        mapped: pl.Expr = text
        named = text.is_in(list(custom.get(name, {}))).fill_null(False)  # cells a custom mapping decides
        if name in countries:
            spelling = text.str.to_lowercase().str.replace_all(r"[.\s]+", "")
            spelled = pl.coalesce(
                spelling.replace_strict(COUNTRY_SPELLINGS, default=None, return_dtype=pl.String), text
            )
            items.append(ValueMapping(name, "built_in", dict(COUNTRY_SPELLINGS), builtin_applied))
            counters.extend(_changed(spelled, text, ~named, len(items) - 1))
            spellings.append((items[-1], text, spelled, ~named))
            mapped = spelled if builtin_applied else text
        if name in custom:
            replaced = text.replace(custom[name])
            items.append(ValueMapping(name, "custom", custom[name], params.apply_mappings))
            counters.extend(_changed(replaced, text, named, len(items) - 1))
            mapped = pl.when(named).then(replaced).otherwise(mapped) if params.apply_mappings else mapped
        if any(item.applied for item in items if item.column == name):
            plans[name] = mapped
    if not items:
        return frame, items
    counts = frame.lazy().select(counters).collect().row(0, named=True)
    for index, item in enumerate(items):
        item.cells_changed = int(counts[f"changed_{index}"] or 0)
        item.cells_mappable = int(counts[f"cells_{index}"] or 0)
    for item, text, spelled, scope in spellings:
        if item.cells_changed:
            item.changes = _spellings(frame, text, spelled, scope)
    if plans:
        frame = frame.with_columns(plans[name].alias(name) for name in plans)
    return frame, items


def _spellings(frame: pl.DataFrame, text: pl.Expr, spelled: pl.Expr, scope: pl.Expr) -> list[dict[str, Any]]:
    """Each value the built-in spellings change, with its replacement and cells, the most frequent first."""
    changed = (
        frame.lazy()
        .filter(scope & spelled.ne_missing(text))
        .group_by(text.alias("value"), spelled.alias("replacement"))
        .agg(pl.len().alias("cells"))
        .sort(["cells", "value"], descending=[True, False])
        .head(MAX_LISTED_SPELLINGS)
        .collect()
    )
    return [{**row, "cells": int(row["cells"])} for row in changed.iter_rows(named=True)]


def _changed(mapped: pl.Expr, text: pl.Expr, scope: pl.Expr, index: int) -> list[pl.Expr]:
    """The cells of ``scope`` that the mapping changes, and the non-null cells of ``scope``."""
    return [
        (mapped.ne_missing(text) & scope).sum().alias(f"changed_{index}"),
        (text.is_not_null() & scope).sum().alias(f"cells_{index}"),
    ]


def _result(outcome: Outcome, params: SemanticMapperParams, started: float) -> AgentResult:
    score = _score(outcome, params)
    findings = _findings(outcome, params)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(outcome),
        data=_data(outcome, score, params),
        frame=outcome.output if outcome.applied and outcome.output is not outcome.frame else None,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(outcome, score),
    )


def _summary_metrics(outcome: Outcome) -> dict[str, Any]:
    counted = outcome.counted
    total = len(data_columns(outcome.frame))
    average = sum(mapping.confidence for mapping in counted) / len(counted) if counted else 0.0
    cells = outcome.cells_changed
    return {
        "mapped_columns": len(counted),
        "unmapped_columns": total - len(counted),
        "high_confidence_mappings": sum(mapping.confidence >= HIGH_CONFIDENCE for mapping in counted),
        "average_confidence": round(average, 4),
        "total_value_mappings": cells,
        "total_transformations": outcome.renamed + cells,
    }


def _score(outcome: Outcome, params: SemanticMapperParams) -> dict[str, Any]:
    counted = outcome.counted
    total = len(data_columns(outcome.frame))
    mappable = sum(item.cells_mappable for item in outcome.values)
    left = outcome.cells_proposed
    components = {
        "mapping_coverage": pct(len(counted), total) if total else 100.0,
        "confidence": 100.0 * sum(mapping.confidence for mapping in counted) / len(counted) if counted else 0.0,
        "value_consistency": 100.0 - pct(left, mappable) if mappable else 100.0,
    }
    weights = {
        "mapping_coverage": params.mapping_coverage_weight,
        "confidence": params.confidence_weight,
        "value_consistency": params.value_consistency_weight,
    }
    return effectiveness(components, weights, params)


def _data(outcome: Outcome, score: dict[str, Any], params: SemanticMapperParams) -> dict[str, Any]:
    mapped = {mapping.column for mapping in outcome.counted}
    return {
        "vocabulary": list(dict.fromkeys([*ROLE_STANDARD.values(), *(name for name, _ in VOCABULARY_NAMES)])),
        "mappings": [mapping.report() for mapping in outcome.mappings],
        "unmapped_columns": [name for name in data_columns(outcome.frame) if name not in mapped],
        "renamed_columns": {m.column: m.new_name for m in outcome.mappings if m.status in ("applied", "lined_up")},
        "lined_up_columns": [line_up.report() for line_up in outcome.line_ups],
        "value_mappings": [
            {
                "column": item.column,
                "source": item.source,
                "replacements": len(item.replacements),
                "cells_changed": item.cells_changed,
                "applied": item.applied,
                **({"changes": item.changes} if item.source == "built_in" else {}),
            }
            for item in outcome.values
        ],
        "semantic_roles": {
            name: {"role": role.role, "confidence": role.confidence, "method": role.method}
            for name, role in outcome.roles.items()
        },
        "proposals": _proposals(outcome, params),
        "effectiveness": score,
        "quality_status": score["status"],
    }


def _proposals(outcome: Outcome, params: SemanticMapperParams) -> list[dict[str, Any]]:
    """Without ``apply_mappings``: the renames and the value mappings it would apply; and the built-in
    spellings not applied, with the cells each would change."""
    items = []
    renames = [mapping for mapping in outcome.mappings if mapping.status == "proposed"]
    by_apply = [item for item in outcome.values if item.source == "custom" or params.apply_builtin_value_mappings]
    cells = sum(item.cells_changed for item in by_apply)
    if not outcome.applied and (renames or cells):
        items.append(
            proposal(
                AGENT_ID,
                "apply_mappings",
                f"Rename {len(renames):,} columns to their standard names and replace {cells:,} values by their "
                "standard spelling",
                {"apply_mappings": True},
                columns=[mapping.column for mapping in renames],
                cells_affected=cells,
            )
        )
    guessed = [mapping for mapping in outcome.mappings if mapping.status == "guessed"]
    if guessed:
        examples = "; ".join(
            f"'{m.column}' -> '{m.standard_name}' ({m.method}, {m.confidence:.2f})" for m in guessed[:5]
        )
        chosen = {**params.custom_column_mappings, **{m.column: m.standard_name for m in guessed}}
        items.append(
            proposal(
                AGENT_ID,
                "custom_column_mappings",
                f"Rename {len(guessed):,} columns whose standard name is a guess (from their values, a word of "
                f"their name, or their name alone): {examples}",
                {"custom_column_mappings": chosen, **({} if outcome.applied else {"apply_mappings": True})},
                columns=[mapping.column for mapping in guessed],
            )
        )
    proposed = [line_up for line_up in outcome.line_ups if not line_up.applied]
    if proposed:
        items.append(_line_up_proposal(proposed, outcome, params))
    built_in = [
        item for item in outcome.values if item.source == "built_in" and not item.applied and item.cells_changed
    ]
    if built_in:
        cells = sum(item.cells_changed for item in built_in)
        examples = "; ".join(
            f"'{change['value']}' -> '{change['replacement']}' ({change['cells']:,})"
            for item in built_in
            for change in item.changes[:5]
        )
        fragment = {"apply_builtin_value_mappings": True, **({} if outcome.applied else {"apply_mappings": True})}
        items.append(
            proposal(
                AGENT_ID,
                "apply_builtin_value_mappings",
                f"Replace {cells:,} country names by their standard spelling: {examples}",
                fragment,
                columns=[item.column for item in built_in],
                cells_affected=cells,
            )
        )
    return items


def _line_up_proposal(proposed: list[LineUp], outcome: Outcome, params: SemanticMapperParams) -> dict[str, Any]:
    """The parameters that line up the ``proposed`` columns: ``apply_mappings`` when every mapping is sure,
    else the ``custom_column_mappings`` that make them sure (a contract's column keeps its name)."""
    chosen = {column: line_up.target for line_up in proposed for column in line_up.guesses}
    fragment: dict[str, Any] = {}
    if chosen:
        fragment["custom_column_mappings"] = {**params.custom_column_mappings, **chosen}
    if not outcome.applied:
        fragment["apply_mappings"] = True
    examples = "; ".join(
        f"{' + '.join(repr(name) for name in line_up.columns)} -> '{line_up.target}' ({_sources_text(line_up)})"
        for line_up in proposed[:5]
    )
    return proposal(
        AGENT_ID,
        "line_up_columns",
        f"Line up {len(proposed):,} {'group' if len(proposed) == 1 else 'groups'} of columns that hold the same "
        f"field in different sources into one column each: {examples}",
        fragment,
        columns=[column for line_up in proposed for column in line_up.columns],
    )


def _findings(outcome: Outcome, params: SemanticMapperParams) -> Findings:
    findings = Findings(AGENT_ID)
    blocked = [m for m in outcome.mappings if m.status in ("name_taken", "duplicate_target")]
    for mapping in blocked:
        findings.issue(
            "mapping_conflict",
            "medium",
            f"'{mapping.column}' maps to '{mapping.standard_name}' but was not renamed: {mapping.reason}",
            field_name=mapping.column,
            details={"standard_name": mapping.standard_name, "status": mapping.status},
        )
    if blocked:
        findings.alert(
            "schema_mapping",
            "medium",
            f"{len(blocked):,} columns keep their names: their standard name is taken",
            "Rename or drop the column holding the name, or map the column with custom_column_mappings",
            kind="name_conflicts",
            affected=len(blocked),
            recommend=True,
        )
    weak = [m for m in outcome.mappings if m.status == "below_threshold"]
    if weak:
        examples = ", ".join(f"{m.column} -> {m.standard_name}" for m in weak[:5])
        findings.recommend(
            f"Confirm {len(weak):,} uncertain mappings ({examples}) with custom_column_mappings, or lower "
            f"confidence_threshold (now {params.confidence_threshold})",
            "low",
            kind="uncertain_mappings",
        )
    total = len(data_columns(outcome.frame))
    if total and len(outcome.counted) < total / 2:
        findings.alert(
            "schema_mapping",
            "low",
            f"Only {len(outcome.counted):,} of {total:,} columns map to the standard vocabulary",
            "Map the business columns with custom_column_mappings",
            kind="low_coverage",
            affected=total - len(outcome.counted),
        )
    return findings


def _cards(outcome: Outcome, score: dict[str, Any]) -> list[SummaryCard]:
    total = len(data_columns(outcome.frame))
    renamed = outcome.renamed if outcome.applied else sum(m.status == "proposed" for m in outcome.mappings)
    guessed = sum(m.status == "guessed" for m in outcome.mappings)
    if outcome.applied:
        values = f"{outcome.cells_changed:,} values standardised"
        values += f", {outcome.cells_proposed:,} more proposed" if outcome.cells_proposed else ""
        description = f"{renamed:,} columns renamed; {values}"
    else:
        description = f"{renamed:,} columns to rename; {outcome.cells_proposed:,} values to standardise"
    description += f"; {guessed:,} guessed names proposed" if guessed else ""
    lined_up = sum(line_up.applied for line_up in outcome.line_ups)
    description += f"; {lined_up:,} columns lined up across sources" if lined_up else ""
    return [
        SummaryCard(
            "exec_semantic_mapping",
            "Semantic Mapping",
            f"{len(outcome.counted):,} of {total:,} columns mapped",
            "info",
            description,
        ),
        SummaryCard(
            "exec_semantic_effectiveness",
            "Mapping Effectiveness",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
