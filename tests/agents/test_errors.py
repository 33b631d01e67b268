from __future__ import annotations

import pickle

import pytest

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
