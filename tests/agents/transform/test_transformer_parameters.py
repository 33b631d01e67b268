"""A transformer task's parameter errors name the field they are about (``transformer.commands: ...``), as every
other agent's do: a check on the whole model has no field, and the message used to begin ``transformer.None``."""

from __future__ import annotations

from typing import Any

import pytest

from agents.errors import InvalidParametersError
from agents.params.transformer import MAX_OPERATIONS
from agents.registry import parse_parameters

DERIVE = {"op": "derive", "column": "x", "expression": "a + 1"}


@pytest.mark.parametrize("raw", [None, {}, {"commands": []}, {"operations": []}, {"operations": [], "commands": []}])
def test_nothing_to_do_names_the_commands_field(raw: Any) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        parse_parameters("transformer", raw)
    error = caught.value
    assert error.message.startswith("transformer.commands: ") and "None" not in error.message
    assert "give operations or commands" in error.message
    assert error.field == "commands" and error.agent_id == "transformer"
    assert error.details["errors"][0]["field"] == "commands"


def test_too_many_steps_together_names_the_commands_field() -> None:
    raw = {"operations": [DERIVE] * (MAX_OPERATIONS - 1), "commands": ["sort by a", "sort by b"]}
    with pytest.raises(InvalidParametersError) as caught:
        parse_parameters("transformer", raw)
    assert caught.value.message.startswith("transformer.commands: ")
    assert f"at most {MAX_OPERATIONS} operations and commands together" in caught.value.message


def test_invalid_operations_report_only_their_own_error() -> None:
    with pytest.raises(InvalidParametersError) as caught:
        parse_parameters("transformer", {"operations": [{"op": "explode"}]})
    assert caught.value.message.startswith("transformer.operations.0: ")
    assert [error["field"] for error in caught.value.details["errors"]] == ["operations.0"]


@pytest.mark.parametrize("raw", [{"operations": [DERIVE]}, {"commands": ["sort by a"]}])
def test_either_list_alone_is_enough(raw: dict[str, Any]) -> None:
    assert parse_parameters("transformer", raw) is not None
