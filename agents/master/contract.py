"""The ``contract-enforcer`` agent: checks the data against a data contract and makes the lossless changes it asks.

The contract (``agents.params.contract_enforcer.DataContract``) comes from the ``contract`` parameter, or
else from the uploaded ``schema.json`` / ``schema.yaml`` (``AgentInputs.contract``). Without one there is
nothing to enforce: the agent says so and changes nothing. Steps, in order:

1. **Renames** (``column_mappings``, ``rename_columns``): a column is renamed to its contract name unless
   that name is already a column (a ``rename_conflict``, reported). Then the columns semantic-mapper (which runs
   after this agent in the master chain) would put under a name the contract uses are checked under it
   (:func:`_semantic_view`): ``GivenName`` of a CRM source lined up with the primary's ``first_name``, ``dob``
   renamed ``birth_date``: its sure mappings with its default parameters, the contract's columns keeping
   their names (``agents.master.semantic``). With ``rename_columns`` (and ``auto_transform``) the data goes on
   so (transformations ``map_column``, ``renamed_columns``), so semantic-mapper finds them in place;
   otherwise only the renames are used for the checks and undone in the output, and columns of several sources
   are not lined up (a note says so). Every later step uses contract names.
2. **Schema**: a ``required_columns`` column that is missing is a critical violation; empty cells of a
   required column are violations (``missing_required_value``). When the contract lists its columns
   (required, optional, typed, constrained or unique), other data columns are ``extra_column``
   violations; ``drop_extra_columns`` drops them, otherwise the drop is proposed.
3. **Types** (``column_types``: string, integer, float, boolean, date, datetime). Text is read as type-fixer
   reads it (``agents.values``: "1,234" is an integer, "yes" a boolean; dates by the column's best formats,
   and a column whose day/month order is a tie, or with dates of a 2-digit year (its century a guess), is not
   converted; a ``date`` also as eight digits ``19850314``, text or integer, as the other master agents read one:
   :func:`compact_date`); missing-value tokens ("N/A", "") are
   empty cells, not failures. Other types convert where nothing is lost (whole floats to integers,
   integers 0/1 to booleans, midnight datetimes to dates, anything to string). A value that does not
   convert is a critical ``type_mismatch``. ``cast_types`` casts a column when every value converts;
   with failures only under default_value_strategy null, default or drop (which then handles them).
4. **Values** (``value_constraints``): ``allowed_values`` (compared as numbers when the column and the
   values are numeric, else as text), ``pattern`` (the whole value as text must match; Rust regex syntax,
   linear time; an invalid pattern is an InvalidParametersError), ``min`` / ``max`` (inclusive; numbers,
   text read as numbers; other values are the type check's business). Checked on the converted values
   where a type is declared. Violations are warnings (critical in ``strict_mode``).
5. **Uniqueness** (``uniqueness_constraints``): every row whose key (one column or several together,
   without empty cells) repeats is a critical ``uniqueness_violation``; nothing is removed.

Invalid values (type failures and, with ``enforce_values``, value violations) follow
``default_value_strategy``: ``keep`` (ours, the default) leaves them and proposes the other strategies with
their counts; ``null`` empties them; ``default`` writes the constraint's ``default`` (or empties them);
``drop`` removes their rows (``AgentResult.removed`` with the reasons). ``auto_transform`` false changes
nothing and proposes the changes. Every violation of a cell or row is a row-level issue (``row_index`` =
``ROW_INDEX_COLUMN``); column-level ones are issues. ``artifacts["contract_columns"]``: every column the
contract names (:func:`named_columns`); the later master agents keep those names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl
from pydantic import ValidationError

from agents.bounds import below_and_above
from agents.clean.common import clean_result, effectiveness, no_removed_rows, removed_rows
from agents.columns import check_regex, is_date_like, is_text, with_row_index
from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    AgentInputs,
    AgentResult,
    Progress,
    Severity,
    SummaryCard,
    data_columns,
)
from agents.errors import InvalidParametersError
from agents.findings import Findings, card_status, collect_row_issues, issues_where, names_where, proposal
from agents.formatting import number_label, pct, shown
from agents.params.contract_enforcer import CANONICAL_TYPES, ContractEnforcerParams, DataContract, ValueConstraint
from agents.values import (
    DATE_FORMATS,
    TEMPORAL_FORMATS,
    TemporalFormat,
    distinct_counts,
    guessed_orders,
    is_missing,
    parse_boolean,
    parse_integer,
    parse_number,
    parse_temporal,
    plan_dates,
)

AGENT_ID = "contract-enforcer"
CONTRACT_COLUMNS_ARTIFACT: Final = "contract_columns"  # named_columns of the contract enforced
AGENT_NAME = "Contract Enforcer"
CREDITS = 75
MAX_EXACT_FLOAT_INTEGER: Final = 2**53
TARGET_DTYPES: Final[dict[str, pl.DataType]] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
}
ALWAYS_CRITICAL: Final = frozenset({"missing_required_column", "type_mismatch", "uniqueness_violation"})
CRITICAL_IN_STRICT_MODE: Final = frozenset(
    {"extra_column", "missing_required_value", "value_not_allowed", "pattern_mismatch", "out_of_range"}
)


@dataclass
class Check:
    """One row-level rule: ``mask`` is true on the rows breaking it; ``flag`` names its column in the work
    frame. ``invalid`` checks mark the cell of ``column`` as invalid (default_value_strategy handles it)."""

    kind: str
    column: str
    mask: pl.Expr
    message: pl.Expr | str
    detail: str
    invalid: bool = False
    flag: str = ""
    count: int = 0


@dataclass
class Conversion:
    """How one column reads as its contract type: the converted value (null where it does not convert);
    ``blocked`` says why the column is never cast."""

    column: str
    target: str
    converted: pl.Expr
    fails: pl.Expr
    blocked: str | None = None
    failures: int = 0
    cast: bool = False


@dataclass
class Violation:
    """A violation kind on a column: column-level (missing, extra, rename conflict) or a count of cells."""

    kind: str
    column: str | None
    severity: str  # critical | warning
    message: str
    count: int = 1


@dataclass
class Outcome:
    frame: pl.DataFrame
    contract: DataContract
    source: str
    output: pl.DataFrame | None = None
    violations: list[Violation] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    mapped: dict[str, str] = field(default_factory=dict)  # _semantic_view: column -> the contract name it is under
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    removed: pl.DataFrame = field(default_factory=no_removed_rows)
    invalid_rows: int = 0
    invalid_cells: int = 0
    cells_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(item.count for item in self.violations if item.severity == severity)

    @property
    def final_frame(self) -> pl.DataFrame:
        return self.output if self.output is not None else self.frame


def run(inputs: AgentInputs, params: ContractEnforcerParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    contract, source = _contract(inputs, params)
    progress(0.0, f"Checking {frame.height:,} rows against the data contract")
    outcome = Outcome(frame, contract, source)
    if contract.is_empty:
        outcome.notes.append(
            "no data contract (schema.json / schema.yaml or the contract parameter): nothing to enforce"
        )
        progress(1.0, "No data contract: nothing to enforce")
        return _result(outcome, params, started, None)
    _validate(contract)

    work = _rename(outcome, params)
    work = _semantic_view(outcome, work, inputs, params)
    _schema(outcome, work, params)
    progress(0.2, "Checking types and values")
    outcome.conversions = _conversions(work, contract)
    outcome.checks = _checks(work, outcome, params)
    work = _evaluate(work, outcome, params)

    progress(0.5, "Listing violations")
    row_issues = _row_issues(work, outcome.checks, params)

    progress(0.7, "Applying the changes the contract and the parameters allow")
    if params.auto_transform:
        outcome.output = _apply(work, outcome, params)
    _propose(outcome, params)
    progress(1.0, f"{outcome.count('critical') + outcome.count('warning'):,} violations")
    result = _result(outcome, params, started, row_issues)
    result.artifacts = {CONTRACT_COLUMNS_ARTIFACT: named_columns(contract)}
    return result


def _contract(inputs: AgentInputs, params: ContractEnforcerParams) -> tuple[DataContract, str]:
    if not params.contract.is_empty:
        return params.contract, "parameter"
    uploaded = getattr(inputs, "contract", None)
    if not uploaded:
        return DataContract(), "none"
    try:
        return DataContract.model_validate(uploaded, strict=True), "schema file"
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'contract'}: {item['msg']}" for item in error.errors()[:5]
        )
        raise InvalidParametersError(
            f"{AGENT_ID}.contract: the uploaded data contract does not fit the contract shape ({problems})",
            {
                "errors": [
                    {"loc": [str(part) for part in item["loc"]], "msg": item["msg"]} for item in error.errors()[:20]
                ]
            },
            agent_id=AGENT_ID,
            field="contract",
        ) from None


def _validate(contract: DataContract) -> None:
    for column, constraint in contract.value_constraints.items():
        if constraint.pattern is not None:
            check_regex(constraint.pattern, agent_id=AGENT_ID, field=f"contract.value_constraints.{column}.pattern")
    for column in [*contract.column_mappings.values(), *_contract_columns(contract)]:
        if column in BOOKKEEPING_COLUMNS:
            raise InvalidParametersError(
                f"{AGENT_ID}.contract: {column!r} is a column the chain keeps for itself",
                agent_id=AGENT_ID,
                field="contract",
            )


def _severity(kind: str, params: ContractEnforcerParams) -> str:
    if kind in ALWAYS_CRITICAL or (params.strict_mode and kind in CRITICAL_IN_STRICT_MODE):
        return "critical"
    return "warning"


# ---------------------------------------------------------------------------------------------------------
# renames and schema


def _rename(outcome: Outcome, params: ContractEnforcerParams) -> pl.DataFrame:
    """The frame under the contract's names. Without rename_columns (or auto_transform) the renames are
    proposed and the checks read each column under its contract name all the same."""
    frame = outcome.frame
    present = set(frame.columns)
    renames: dict[str, str] = {}
    for source, target in outcome.contract.column_mappings.items():
        if source == target or source not in present:
            continue
        if target in present or target in renames.values():
            message = f"'{source}' is not renamed to '{target}': a column '{target}' already exists"
            outcome.violations.append(Violation("rename_conflict", source, "warning", message))
            continue
        renames[source] = target
    outcome.renames = renames
    if not renames:
        return frame
    if params.auto_transform and params.rename_columns:
        for source, target in renames.items():
            outcome.log.append({"action": "rename", "column": source, "detail": f"renamed to '{target}'", "cells": 0})
        return frame.rename(renames)
    outcome.proposals.append(
        proposal(
            AGENT_ID,
            "rename_columns",
            f"Rename {len(renames):,} columns to their contract names",
            {"auto_transform": True, "rename_columns": True},
            columns=list(renames),
        )
    )
    return frame.rename(renames)  # the work frame only: the output keeps the original names


def _semantic_view(
    outcome: Outcome, work: pl.DataFrame, inputs: AgentInputs, params: ContractEnforcerParams
) -> pl.DataFrame:
    """``work`` with the columns semantic-mapper would put under a contract name under that name (module
    docstring): its sure renames onto a contract name not yet in the data, and its line-ups of columns of
    different sources into a contract name. ``outcome.mapped`` records them."""
    from agents.master import semantic  # it imports this module (the contract's column names)
    from agents.master.roles import detect_roles, is_scalar, value_evidence
    from agents.params.semantic_mapper import SemanticMapperParams

    kept = frozenset(named_columns(outcome.contract))
    columns = data_columns(work)
    if not kept or not columns or kept.issuperset(columns):
        return work
    defaults = SemanticMapperParams()
    schema = work.schema
    evidence = value_evidence(work, [name for name in columns if is_scalar(schema[name])])
    roles = detect_roles(work, evidence)
    dated = semantic.dated_columns(work, columns, evidence)
    found = semantic.candidates(schema, columns, roles, evidence, defaults, dated)
    mappings = semantic.resolve_mappings(work, found, defaults, kept)
    applied = params.auto_transform and params.rename_columns
    line_ups = [
        item for item in semantic.find_line_ups(work, mappings, kept, defaults) if item.applied and item.target in kept
    ]
    lined = {name for item in line_ups for name in item.columns}
    renames = {
        m.column: m.standard_name
        for m in mappings
        if m.status == "applied" and m.standard_name in kept and (applied or m.column not in lined)
    }
    if not applied and line_ups:
        listed = "; ".join(f"{' + '.join(repr(name) for name in item.columns)} -> '{item.target}'" for item in line_ups)
        outcome.notes.append(
            f"columns of different sources that semantic-mapper lines up under a contract name were checked each on "
            f"its own (rename_columns and auto_transform apply it): {listed}"
        )
        line_ups = []
    if not renames and not line_ups:
        return work
    mapped = semantic.apply_line_ups(work.rename(renames), renames, line_ups, inputs.text_layouts)
    outcome.mapped = {name: renames[name] for name in renames}
    outcome.mapped.update({name: item.target for item in line_ups for name in item.columns if name != item.target})
    for name, target in outcome.mapped.items():
        how = next(m for m in mappings if m.column == name)
        detail = f"under the contract's '{target}' ({how.reason or semantic.STATUS_TEXT[how.status]}; {how.method})"
        if applied:
            outcome.log.append({"action": "map_column", "column": name, "detail": detail, "cells": 0})
    return mapped


def named_columns(contract: DataContract) -> list[str]:
    """Every column the contract names (listed, typed, constrained, unique, and both sides of its
    ``column_mappings``): the later master agents keep these names (semantic-mapper renames none of them)."""
    mapped = [name for pair in contract.column_mappings.items() for name in pair]
    return list(dict.fromkeys([*_contract_columns(contract), *mapped]))


def uploaded_named_columns(inputs: AgentInputs) -> list[str]:
    """:func:`named_columns` of the uploaded contract (``AgentInputs.contract``), for an agent that runs where
    contract-enforcer's artifact is missing; a contract that does not fit the shape names none."""
    if not inputs.contract:
        return []
    try:
        return named_columns(DataContract.model_validate(inputs.contract, strict=True))
    except ValidationError:
        return []


def _contract_columns(contract: DataContract) -> list[str]:
    unique = [name for item in contract.uniqueness_constraints for name in ([item] if isinstance(item, str) else item)]
    named = [
        *contract.required_columns,
        *contract.optional_columns,
        *contract.column_types,
        *contract.value_constraints,
        *unique,
    ]
    return list(dict.fromkeys(named))


def _schema(outcome: Outcome, work: pl.DataFrame, params: ContractEnforcerParams) -> None:
    contract = outcome.contract
    present = data_columns(work)
    outcome.missing = [name for name in contract.required_columns if name not in present]
    for name in outcome.missing:
        outcome.violations.append(
            Violation("missing_required_column", name, "critical", f"required column '{name}' is missing")
        )
    named = set(_contract_columns(contract))
    if named:
        named |= set(contract.column_mappings.values())
    outcome.extra = [name for name in present if named and name not in named]
    severity = _severity("extra_column", params)
    for name in outcome.extra:
        outcome.violations.append(Violation("extra_column", name, severity, f"column '{name}' is not in the contract"))
    for name in _contract_columns(contract):
        if name not in present and name not in contract.required_columns:
            outcome.notes.append(f"'{name}' is named by the contract but not in the data: its rules were not checked")


# ---------------------------------------------------------------------------------------------------------
# types


def _conversions(work: pl.DataFrame, contract: DataContract) -> list[Conversion]:
    conversions = []
    for column, type_name in contract.column_types.items():
        if column in work.columns:
            conversion = _conversion(work, column, CANONICAL_TYPES[type_name])
            if conversion is not None:
                conversions.append(conversion)
    return conversions


def _conversion(work: pl.DataFrame, column: str, target: str) -> Conversion | None:
    """How ``column`` reads as ``target`` (module docstring); None when it already is that type."""
    dtype = work.schema[column]
    x = pl.col(column)
    wanted = TARGET_DTYPES[target]
    if dtype == wanted or (target == "string" and is_text(dtype)) or (target == "date" and dtype == pl.Date):
        return None
    blocked: str | None = None
    if target == "string":
        converted = x.cast(pl.String)
    elif is_text(dtype):
        converted, blocked = _from_text(work, column, target)
    elif target == "integer" and dtype.is_integer():
        converted = x.cast(pl.Int64, strict=False)
    elif target == "integer" and dtype.is_float():
        whole = x.is_finite() & (x == x.round(0)) & (x.abs() < MAX_EXACT_FLOAT_INTEGER)
        converted = pl.when(whole).then(x.cast(pl.Int64, strict=False))
    elif target == "float" and dtype.is_numeric():
        converted = x.cast(pl.Float64)
    elif target == "boolean" and dtype.is_integer():
        converted = pl.when(x == 1).then(True).when(x == 0).then(False)
    elif target == "datetime" and is_date_like(dtype):
        converted = x.cast(pl.Datetime("us"))
    elif target == "date" and isinstance(dtype, pl.Datetime):
        converted = pl.when(x == x.dt.truncate("1d")).then(x.cast(pl.Date))
    elif target == "date" and dtype.is_integer():  # 19850314 read as a number
        converted = compact_date(x.cast(pl.String))
    else:
        converted = pl.lit(None, wanted)
    converted = converted.cast(wanted)
    fails = ~is_missing(x, dtype) & converted.is_null()
    return Conversion(column, target, converted, fails, blocked=blocked)


def _from_text(work: pl.DataFrame, column: str, target: str) -> tuple[pl.Expr, str | None]:
    x = pl.col(column)
    if target in ("integer", "float"):
        # A code (0800, +44, 007) is no number: its leading zero or sign would be lost, so it does not convert.
        number = parse_integer(x) if target == "integer" else parse_number(x)
        return pl.when(~x.str.strip_chars().str.contains(WRITTEN_AS_CODE)).then(number), None
    if target == "boolean":
        return parse_boolean(x), None
    formats = DATE_FORMATS if target == "date" else TEMPORAL_FORMATS
    plan = plan_dates(distinct_counts(work, column), column, formats)
    guessed = guessed_orders(plan.ambiguity)
    blocked = None
    if guessed:
        item = guessed[0]
        why = "a tie" if str(item["decided_by"]).startswith("tie") else "contradicted by its values"
        blocked = (
            f"its day/month order is {why} ({item['chosen_format']} or {item['alternative_format']}), so it is not "
            "converted"
        )
    elif plan.two_digit_years:
        blocked = f"{plan.century_note()}, so it is not converted"
    if target == "date":
        return pl.coalesce(plan.expression(x), compact_date(x)), blocked
    return plan.expression(x), blocked


WRITTEN_AS_CODE: Final = r"^(\+|[+-]?0[0-9])"
"""A number text written as a code: a leading ``+``, or a leading zero before another digit (``0800``, ``+44``)."""

COMPACT_DATE: Final = TemporalFormat("%Y%m%d", "date")
"""ISO 8601's basic date, ``19850314``: eight digits, as the master agents read a date (agents.master.roles,
agents.master.survivorship, agents.master.er.normalise). Not among agents.values' formats: a column of such
numbers is no date column for clean or profile."""


def compact_date(text: pl.Expr) -> pl.Expr:
    """The date of each value written as eight digits ``YYYYMMDD`` (spaces around them aside) that is a calendar date
    of a four-digit year from agents.values.MIN_YEAR on, as agents.values.parse_temporal reads one; else null."""
    return pl.when(text.str.strip_chars().str.contains(r"^[0-9]{8}$")).then(parse_temporal(text, COMPACT_DATE))


# ---------------------------------------------------------------------------------------------------------
# row-level checks


def _checks(work: pl.DataFrame, outcome: Outcome, params: ContractEnforcerParams) -> list[Check]:
    contract = outcome.contract
    schema = work.schema
    checks: list[Check] = []
    for name in contract.required_columns:
        if name in work.columns:
            text = f"required field '{name}' is empty"
            checks.append(Check("missing_required_value", name, is_missing(pl.col(name), schema[name]), text, text))
    conversions = {item.column: item for item in outcome.conversions}
    for item in outcome.conversions:
        target = f"{'an' if item.target[0] in 'aeiou' else 'a'} {item.target}"
        message = pl.concat_str(
            pl.lit(f"'{item.column}' value '"), shown(pl.col(item.column)), pl.lit(f"' is not {target}")
        )
        checks.append(Check("type_mismatch", item.column, item.fails, message, f"not {target}", invalid=True))
    for column, constraint in contract.value_constraints.items():
        if column not in work.columns:
            continue
        checks += _value_checks(work, column, constraint, conversions.get(column), params)
        conversion = conversions.get(column)
        dtype = TARGET_DTYPES[conversion.target] if conversion is not None else schema[column]
        if (constraint.min is not None or constraint.max is not None) and not (dtype.is_numeric() or is_text(dtype)):
            outcome.notes.append(f"min/max of '{column}' not checked: it holds {dtype} values, not numbers")
    for unique in contract.uniqueness_constraints:
        columns = [unique] if isinstance(unique, str) else list(unique)
        if any(name not in work.columns for name in columns):
            continue
        complete = pl.all_horizontal([pl.col(name).is_not_null() for name in columns])
        key = pl.struct(columns) if len(columns) > 1 else pl.col(columns[0])
        label = ", ".join(columns)
        text = f"the value of ({label}) repeats in other rows" if len(columns) > 1 else f"'{label}' value repeats"
        checks.append(Check("uniqueness_violation", label, complete & key.is_duplicated(), text, text))
    for index, check in enumerate(checks):
        check.flag = f"__check_{index}__"
    return checks


def _value_checks(
    work: pl.DataFrame,
    column: str,
    constraint: ValueConstraint,
    conversion: Conversion | None,
    params: ContractEnforcerParams,
) -> list[Check]:
    dtype = work.schema[column]
    typed = conversion.converted if conversion is not None else pl.col(column)
    typed_dtype = TARGET_DTYPES[conversion.target] if conversion is not None else dtype
    present = ~is_missing(pl.col(column), dtype)
    invalid = params.enforce_values
    found: list[Check] = []

    def check(kind: str, mask: pl.Expr, text: str) -> None:
        message = pl.concat_str(pl.lit(f"'{column}' value '"), shown(pl.col(column)), pl.lit(f"' {text}"))
        found.append(Check(kind, column, present & mask.fill_null(False), message, text, invalid=invalid))

    if constraint.allowed_values is not None:
        listed = ", ".join(str(value) for value in constraint.allowed_values[:10])
        more = ", ..." if len(constraint.allowed_values) > 10 else ""
        check("value_not_allowed", ~_allowed(typed, typed_dtype, constraint), f"is not one of [{listed}{more}]")
    if constraint.pattern is not None:
        text = pl.col(column).cast(pl.String)
        check(
            "pattern_mismatch",
            ~text.str.contains(f"^(?:{constraint.pattern})$"),
            f"does not match /{constraint.pattern}/",
        )
    if constraint.min is not None or constraint.max is not None:
        number = (
            typed.cast(pl.Float64)
            if typed_dtype.is_numeric()
            else parse_number(typed)
            if is_text(typed_dtype)
            else None
        )
        if number is not None:
            exact = typed_dtype.is_integer()  # integers compared in integers: ids past 2^53 exactly
            below, above = below_and_above(
                typed if exact else number, typed_dtype if exact else pl.Float64(), constraint.min, constraint.max
            )
            low = number_label(constraint.min) if constraint.min is not None else "-inf"
            high = number_label(constraint.max) if constraint.max is not None else "inf"
            check("out_of_range", (below | above) & number.is_not_nan(), f"is outside [{low}, {high}]")
    return found


def _allowed(typed: pl.Expr, dtype: pl.DataType, constraint: ValueConstraint) -> pl.Expr:
    values = constraint.allowed_values or []
    numbers = [value for value in values if isinstance(value, int | float) and not isinstance(value, bool)]
    if dtype.is_numeric() and len(numbers) == len(values):
        return typed.cast(pl.Float64).is_in([float(value) for value in numbers])
    texts = [str(value).lower() if isinstance(value, bool) else str(value) for value in values]
    return typed.cast(pl.String).is_in(texts)


def _evaluate(work: pl.DataFrame, outcome: Outcome, params: ContractEnforcerParams) -> pl.DataFrame:
    """The work frame with one flag column per check, and every count in one query."""
    checks = outcome.checks
    if not checks:
        return work
    flagged = work.with_columns(check.mask.fill_null(False).alias(check.flag) for check in checks)
    invalid = [check.flag for check in checks if check.invalid]
    checked = list(dict.fromkeys(check.column for check in checks if check.column in work.columns))
    counts = (
        flagged.lazy()
        .select(
            *(pl.col(check.flag).sum().alias(check.flag) for check in checks),
            (pl.any_horizontal(invalid).sum() if invalid else pl.lit(0)).alias("__invalid_rows__"),
            pl.sum_horizontal(
                [(~is_missing(pl.col(name), work.schema[name])).sum() for name in checked] or [pl.lit(0)]
            ).alias("__cells__"),
        )
        .collect()
        .row(0, named=True)
    )
    for check in checks:
        check.count = int(counts[check.flag] or 0)
    for conversion, check in zip(outcome.conversions, [c for c in checks if c.kind == "type_mismatch"], strict=True):
        conversion.failures = check.count
    outcome.invalid_rows = int(counts["__invalid_rows__"] or 0)
    outcome.invalid_cells = sum(check.count for check in checks if check.invalid)
    outcome.cells_checked = int(counts["__cells__"] or 0)
    by_kind: dict[tuple[str, str], int] = {}
    for check in checks:
        if check.count:
            by_kind[(check.kind, check.column)] = by_kind.get((check.kind, check.column), 0) + check.count
    for (kind, column), count in by_kind.items():
        message = f"{count:,} {kind.replace('_', ' ')} violations in '{column}'"
        outcome.violations.append(Violation(kind, column, _severity(kind, params), message, count))
    return flagged


def _row_issues(work: pl.DataFrame, checks: list[Check], params: ContractEnforcerParams) -> pl.DataFrame:
    parts = [
        issues_where(
            work,
            pl.col(check.flag),
            column=check.column,
            issue_type=check.kind,
            severity=_severity(check.kind, params),
            message=check.message,
            value=pl.col(check.column) if check.column in work.columns else None,
        )
        for check in checks
        if check.count
    ]
    return collect_row_issues(parts, in_file_order=True)


# ---------------------------------------------------------------------------------------------------------
# changes


def _apply(work: pl.DataFrame, outcome: Outcome, params: ContractEnforcerParams) -> pl.DataFrame | None:
    """The new frame (None when nothing changes): renames (already in ``work``), casts, invalid values per
    ``default_value_strategy``, extra columns dropped when asked."""
    strategy = params.default_value_strategy
    invalid = [check for check in outcome.checks if check.invalid and check.count]
    handles_invalid = strategy != "keep"
    for conversion in outcome.conversions:
        conversion.cast = (
            params.cast_types and conversion.blocked is None and (conversion.failures == 0 or handles_invalid)
        )
    if strategy == "drop" and invalid:
        reason = names_where([(check.detail, pl.col(check.flag)) for check in invalid], separator="; ")
        mask = pl.any_horizontal([pl.col(check.flag) for check in invalid])
        outcome.removed = removed_rows(work, mask, pl.concat_str(pl.lit("breaks the data contract: "), reason))
        work = work.filter(~mask)
        outcome.log.append(
            {"action": "drop_rows", "column": None, "detail": "rows with invalid values", "cells": 0,
             "rows": outcome.removed.height}
        )  # fmt: skip
    replaced: dict[str, pl.Expr] = {}
    for conversion in outcome.conversions:
        if conversion.cast:
            replaced[conversion.column] = conversion.converted
            outcome.log.append(
                {"action": "cast", "column": conversion.column, "detail": f"cast to {conversion.target}", "cells": 0}
            )
    if strategy in ("null", "default"):
        for column in dict.fromkeys(check.column for check in invalid):
            flags = [pl.col(check.flag) for check in invalid if check.column == column]
            current = replaced.get(column, pl.col(column))
            dtype = TARGET_DTYPES[_target_of(outcome, column)] if column in replaced else work.schema[column]
            fill = _default(outcome, column, dtype) if strategy == "default" else pl.lit(None, dtype)
            replaced[column] = pl.when(pl.any_horizontal(flags)).then(fill).otherwise(current)
            cells = int(work.select(pl.any_horizontal(flags).sum()).item())
            action = "null_invalid" if strategy == "null" else "default_invalid"
            outcome.log.append(
                {"action": action, "column": column, "detail": f"{cells:,} invalid values", "cells": cells}
            )
    if replaced:
        work = work.with_columns(expr.alias(name) for name, expr in replaced.items())
    if params.drop_extra_columns and outcome.extra:
        work = work.drop(outcome.extra)
        for name in outcome.extra:
            outcome.log.append({"action": "drop_column", "column": name, "detail": "not in the contract", "cells": 0})
    if not outcome.log:
        return None
    work = work.select(name for name in work.columns if not name.startswith("__check_"))
    if not params.rename_columns:  # the checks read contract names; the data keeps its own
        back = {target: source for source, target in [*outcome.renames.items(), *outcome.mapped.items()]}
        work = work.rename({target: source for target, source in back.items() if target in work.columns})
    return work


def _target_of(outcome: Outcome, column: str) -> str:
    return next(item.target for item in outcome.conversions if item.column == column)


def _default(outcome: Outcome, column: str, dtype: pl.DataType) -> pl.Expr:
    constraint = outcome.contract.value_constraints.get(column)
    if constraint is None or constraint.default is None:
        return pl.lit(None, dtype)
    value = pl.Series([constraint.default]).cast(dtype, strict=False)
    if value.null_count():
        raise InvalidParametersError(
            f"{AGENT_ID}.contract.value_constraints.{column}.default: {constraint.default!r} is not a {dtype} value",
            agent_id=AGENT_ID,
            field=f"contract.value_constraints.{column}.default",
        )
    return pl.lit(value[0], dtype)


def _propose(outcome: Outcome, params: ContractEnforcerParams) -> None:
    """The changes not made, with the parameters that make them."""
    transform = {"auto_transform": True} if not params.auto_transform else {}
    if outcome.extra and not (params.drop_extra_columns and params.auto_transform):
        outcome.proposals.append(
            proposal(
                AGENT_ID,
                "drop_extra_columns",
                f"Drop the {len(outcome.extra):,} columns the contract does not name",
                {**transform, "drop_extra_columns": True},
                columns=outcome.extra,
            )
        )
    lossless = [item for item in outcome.conversions if not item.failures and item.blocked is None]
    if lossless and not (params.cast_types and params.auto_transform):
        outcome.proposals.append(
            proposal(
                AGENT_ID,
                "cast_types",
                f"Cast {len(lossless):,} columns to their contract types (every value converts)",
                {**transform, "cast_types": True},
                columns=[item.column for item in lossless],
            )
        )
    invalid = [check for check in outcome.checks if check.invalid and check.count]
    if not invalid or (params.default_value_strategy != "keep" and params.auto_transform):
        return
    columns = list(dict.fromkeys(check.column for check in invalid))
    outcome.proposals += [
        proposal(
            AGENT_ID,
            "null_invalid_values",
            f"Empty the {outcome.invalid_cells:,} invalid values (the rows stay)",
            {**transform, "default_value_strategy": "null"},
            columns=columns,
            cells_affected=outcome.invalid_cells,
        ),
        proposal(
            AGENT_ID,
            "drop_invalid_rows",
            f"Remove the {outcome.invalid_rows:,} rows holding invalid values",
            {**transform, "default_value_strategy": "drop"},
            columns=columns,
            rows_affected=outcome.invalid_rows,
        ),
    ]


# ---------------------------------------------------------------------------------------------------------
# the envelope


def _result(
    outcome: Outcome, params: ContractEnforcerParams, started: float, row_issues: pl.DataFrame | None
) -> AgentResult:
    score = _score(outcome, params)
    findings = _findings(outcome)
    summary = _summary_metrics(outcome)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary,
        data=_data(outcome, score),
        frame=outcome.output,
        removed=outcome.removed,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(outcome, summary, score),
        row_level_issues=row_issues,
    )


def _summary_metrics(outcome: Outcome) -> dict[str, Any]:
    critical, warnings = outcome.count("critical"), outcome.count("warning")
    return {
        "original_columns": len(data_columns(outcome.frame)),
        "final_columns": len(data_columns(outcome.final_frame)),
        "violations_count": critical + warnings,
        "critical_violations": critical,
        "warnings_count": warnings,
        "transformations_applied": len(outcome.log),
    }


def _score(outcome: Outcome, params: ContractEnforcerParams) -> dict[str, Any]:
    contract_columns = _contract_columns(outcome.contract)
    present = set(data_columns(outcome.frame)) | set(outcome.renames.values()) | set(outcome.mapped.values())
    typed_right = [
        name
        for name in contract_columns
        if name in present and not any(item.column == name and not item.cast for item in outcome.conversions)
    ]
    needed = len(outcome.log) + len(outcome.proposals)
    components = {
        "schema_compliance": pct(len(typed_right), len(contract_columns)) if contract_columns else 100.0,
        "value_compliance": 100.0 - pct(outcome.invalid_cells, outcome.cells_checked)
        if outcome.cells_checked
        else 100.0,
        "transformation": pct(len(outcome.log), needed) if needed else 100.0,
    }
    weights = {
        "schema_compliance": params.schema_compliance_weight,
        "value_compliance": params.value_compliance_weight,
        "transformation": params.transformation_weight,
    }
    return effectiveness(components, weights, params)


def _data(outcome: Outcome, score: dict[str, Any]) -> dict[str, Any]:
    return {
        "contract_source": outcome.source,
        "contract": outcome.contract.model_dump(exclude_defaults=True),
        "notes": outcome.notes,
        "renamed_columns": outcome.renames if any(item["action"] == "rename" for item in outcome.log) else {},
        "mapped_columns": outcome.mapped if any(item["action"] == "map_column" for item in outcome.log) else {},
        "missing_required_columns": outcome.missing,
        "extra_columns": outcome.extra,
        "type_checks": [
            {
                "column": item.column,
                "expected_type": item.target,
                "invalid_values": item.failures,
                "cast": item.cast,
                "note": item.blocked,
            }
            for item in outcome.conversions
        ],
        "violations": [
            {
                "type": item.kind,
                "column": item.column,
                "severity": item.severity,
                "count": item.count,
                "message": item.message,
            }
            for item in outcome.violations
        ],
        "rows_with_invalid_values": outcome.invalid_rows,
        "transformations": outcome.log,
        "proposals": outcome.proposals,
        "effectiveness": score,
        "quality_status": score["status"],
    }


def _findings(outcome: Outcome) -> Findings:
    findings = Findings(AGENT_ID)
    for item in outcome.violations:
        if item.kind in ("missing_required_column", "extra_column", "rename_conflict"):
            severity: Severity = (
                "critical" if item.severity == "critical" else "low" if item.kind == "extra_column" else "medium"
            )
            findings.issue(item.kind, severity, item.message, field_name=item.column)
    critical = outcome.count("critical")
    if critical:
        findings.alert(
            "data_contract",
            "critical" if outcome.missing else "high",
            f"{critical:,} critical contract violations (missing columns, values of the wrong type, repeated keys)",
            "Fix the source or the contract; the row-level issues list every failing value",
            kind="critical_violations",
            affected=len({item.column for item in outcome.violations if item.severity == "critical"}),
            recommend=True,
        )
    warnings = outcome.count("warning")
    if warnings:
        findings.alert(
            "data_contract",
            "medium",
            f"{warnings:,} contract warnings (values outside the constraints, columns outside the contract)",
            "Review the proposals: default_value_strategy and drop_extra_columns apply them",
            kind="warnings",
            affected=len({item.column for item in outcome.violations if item.severity == "warning"}),
        )
    return findings


def _cards(outcome: Outcome, summary: dict[str, Any], score: dict[str, Any]) -> list[SummaryCard]:
    if outcome.contract.is_empty:
        return [
            SummaryCard("exec_contract", "Data Contract", "none", "info", "No data contract given: nothing to enforce")
        ]
    violations = summary["violations_count"]
    return [
        SummaryCard(
            "exec_contract",
            "Data Contract",
            f"{violations:,} violations",
            "critical" if summary["critical_violations"] else "warning" if violations else "excellent",
            f"{summary['critical_violations']:,} critical, {summary['warnings_count']:,} warnings; "
            f"{summary['transformations_applied']:,} changes applied, {len(outcome.proposals):,} proposed",
        ),
        SummaryCard(
            "exec_contract_compliance",
            "Contract Compliance",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
