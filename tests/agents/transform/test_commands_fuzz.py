"""Fuzzing the commands: any text, words of the grammar in random order, and corpus commands with a word changed.
``resolve`` either refuses with InvalidParametersError or accepts; whatever it accepts is operations of the model,
naming only the data's columns, under a verb of their kind that the text contains (so nothing is accepted that the
corpus does not explain), and resolving those operations again gives them unchanged (the recipe replays)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from agents.errors import InvalidParametersError
from agents.params.transformer import Operation, TransformerParams
from agents.transform.commands import _KEYWORDS
from agents.transform.expressions import columns as expression_columns
from agents.transform.expressions import parse_expression
from agents.transform.resolve import Resolved, resolve
from tests.agents.transform.test_commands_corpus import ACCEPTED, SCHEMA

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Operation)
_SETTINGS = settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])

_REMOVE = {"remove", "delete", "drop", "exclude", "discard", "eliminate", "erase"}
_KEEP = {"keep", "keeping", "retain", "retaining", "only", "filter", "select"}
VERBS: dict[str, set[str]] = {
    "filter": _REMOVE | _KEEP,
    "drop_columns": _REMOVE,
    "keep_columns": _KEEP,
    "rename": {"rename"},
    "reorder": {"move", "put", "bring", "place", "reorder", "rearrange", "arrange", "order"},
    "cast": {"convert", "cast", "change", "turn", "transform"},
    "fill_nulls": {"fill", "impute", "replace"},
    "deduplicate": {"deduplicate", "dedupe", "dedup", "duplicate", "duplicates", "duplicated", "dupes", "dups"},
    "sort": {"sort", "order"},
    "derive": {"add", "create", "derive", "compute", "calculate", "insert", "define", "append"},
    "trim": {"trim", "strip", "whitespace", "whitespaces", "space", "spaces"},
    "case": {"lower", "lowercase", "lower-case", "lowercased", "upper", "uppercase", "upper-case", "uppercased"}
    | {"title", "titlecase", "title-case", "proper"},
    "replace": {"replace", "substitute"},
}


def outcome(command: str) -> Resolved | None:
    """The resolution of one command, or None when it is refused; anything but a refusal fails the test."""
    params = TransformerParams.model_construct(operations=[], commands=[command])
    try:
        return resolve(params, SCHEMA)
    except InvalidParametersError as error:
        assert error.details["reason"] and error.message
        position = error.details["position"]
        assert isinstance(position, int) and 0 <= position <= len(command)
        return None


def referenced(operation: dict[str, Any]) -> list[str]:
    """The input columns an operation reads (not the names it creates)."""
    kind = operation["op"]
    if kind == "filter":
        found: list[str] = []
        stack = [operation["where"]]
        while stack:
            node = stack.pop()
            stack += node.get("all", []) + node.get("any", []) + ([node["not"]] if "not" in node else [])
            found += [node[k] for k in ("column", "value_column") if node.get(k)]
        return found
    if kind == "rename":
        return list(operation["mapping"])
    if kind == "sort":
        return [key["column"] for key in operation["by"]]
    if kind == "derive":
        return expression_columns(parse_expression(operation["expression"]))
    return list(operation.get("columns") or [])


def check_accepted(command: str, resolved: Resolved) -> None:
    words = set(re.findall(r"[\w'-]+", command.casefold()))
    for operation in resolved.operations:
        assert _ADAPTER.dump_python(_ADAPTER.validate_python(operation), by_alias=True, mode="json") == operation
        assert set(referenced(operation)) <= set(SCHEMA), (command, operation)
        assert words & VERBS[operation["op"]], (command, operation)
    again = resolve(TransformerParams.model_validate({"operations": resolved.operations}), SCHEMA)
    assert again.operations == resolved.operations
    assert again.schema_after == resolved.schema_after


@_SETTINGS
@given(st.text(max_size=120))
def test_any_text_is_refused_or_explained(command: str) -> None:
    resolved = outcome(command)
    if resolved is not None:
        check_accepted(command, resolved)


_COLUMN_FORMS = [name for column in SCHEMA for name in (column, column.upper(), f"`{column}`", f"'{column}'")]
_VOCABULARY = sorted({word for words in _KEYWORDS.values() for word in words})
_PIECES = st.one_of(
    st.sampled_from(_VOCABULARY),
    st.sampled_from(_COLUMN_FORMS),
    st.sampled_from(["=", "==", "!=", "<>", "<", "<=", ">", ">=", "(", ")", "[", "]", ",", ".", "*", "+", ";", "--"]),
    st.sampled_from(["18", "-1", "2.5", "1e3", "2024-01-31", "2024-01-31 10:00", "'US'", '"x y"', "''", "US", "ñ"]),
    st.sampled_from(["'", '"', "`", "__import__('os')", "DROP TABLE users", "%d/%m/%Y", "price * quantity"]),
    st.text(min_size=1, max_size=6),
)


@_SETTINGS
@given(st.lists(_PIECES, min_size=1, max_size=14))
def test_words_of_the_grammar_in_any_order_are_refused_or_explained(pieces: list[str]) -> None:
    command = " ".join(pieces)
    resolved = outcome(command)
    if resolved is not None:
        check_accepted(command, resolved)


@_SETTINGS
@given(st.sampled_from([command for command, _ in ACCEPTED]), st.data())
def test_a_corpus_command_with_a_word_changed_is_refused_or_explained(command: str, data: st.DataObject) -> None:
    words = command.split()
    index = data.draw(st.integers(min_value=0, max_value=len(words) - 1))
    change = data.draw(st.sampled_from(["drop", "replace", "insert", "swap"]))
    piece = data.draw(_PIECES)
    if change == "drop" and len(words) > 1:
        del words[index]
    elif change == "replace":
        words[index] = piece
    elif change == "insert":
        words.insert(index, piece)
    elif index + 1 < len(words):
        words[index], words[index + 1] = words[index + 1], words[index]
    mutated = " ".join(words)
    resolved = outcome(mutated)
    if resolved is not None:
        check_accepted(mutated, resolved)
