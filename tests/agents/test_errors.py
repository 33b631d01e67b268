from __future__ import annotations

import pickle

import polars as pl
import pytest

from agents.columns import require_columns
from agents.errors import (
    AgentError,
    InvalidFileError,
    InvalidParametersError,
    UnknownAgentError,
    UnknownToolError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidFileError("primary.csv: line 7 has 5 fields, the header has 4", {"line": 7}), "INVALID_FILE"),
        (UnknownToolError("unknown tool 'x'", {"tool_id": "x"}), "UNKNOWN_TOOL"),
        (UnknownAgentError("unknown agent 'y'"), "UNKNOWN_AGENT"),
        (AgentError("boom"), "AGENT_FAILED"),
    ],
)
def test_errors_survive_a_pickle_round_trip(error: AgentError, code: str) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.code == code
    assert copy.message == error.message
    assert copy.details == error.details
    assert str(copy) == error.message


def test_invalid_parameters_names_agent_and_field_after_pickling() -> None:
    error = InvalidParametersError("bad", agent_id="unified-profiler", field="top_n_values")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, InvalidParametersError)
    assert copy.code == "INVALID_PARAMETERS"
    assert copy.details == {"agent_id": "unified-profiler", "field": "top_n_values"}
    assert (copy.agent_id, copy.field) == ("unified-profiler", "top_n_values")
    assert copy.to_dict()["code"] == "INVALID_PARAMETERS"


def test_unknown_columns_are_named_at_most_twenty_at_a_time() -> None:
    """The message names the first 20 unknown and available columns and how many more; the details keep all."""
    frame = pl.DataFrame({f"have{i}": [1] for i in range(30)})
    wanted = [f"c{i}" for i in range(200_000)]
    with pytest.raises(InvalidParametersError) as refused:
        require_columns(frame, ["have3", *wanted, "c1"], agent_id="outlier-remover", field="columns")
    message = str(refused.value)
    assert len(message) < 1_000
    assert "'c0', 'c1'" in message and "'c19' and 199,980 more" in message
    assert "'have19' and 10 more" in message
    assert refused.value.details["unknown_columns"] == wanted
