"""A blank command (spaces only) is refused by the parameter model, as an empty one is (QA8 re-check N5: it was
accepted at create and at process and failed only in the worker)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.params.transformer import TransformerParams


@pytest.mark.parametrize("command", ["", "  ", "\t\n"])
def test_a_blank_command_is_refused(command: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TransformerParams.model_validate({"commands": [command]})
    assert caught.value.errors()[0]["loc"] == ("commands", 0)
    assert command == "" or "the command is empty" in str(caught.value)
