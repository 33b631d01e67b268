from __future__ import annotations

import json

import pytest

from agents import registry
from agents.errors import InvalidParametersError, UnknownAgentError, UnknownToolError


def test_catalog_lists_only_tools_and_agents_that_exist() -> None:
    catalog = registry.catalog()
    json.dumps(catalog)  # JSON-serialisable
    assert [tool["tool_id"] for tool in catalog["tools"]] == ["profile-my-data"]
    tool = catalog["tools"][0]
    assert tool["default_chain"] == ["unified-profiler"]
    assert tool["default_chain_credits"] == 30
    [agent] = tool["agents"]
    assert agent["agent_id"] == "unified-profiler" and agent["credits"] == 30 and agent["in_default_chain"]
    schema = agent["parameters_schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["null_alert_threshold"]["default"] == 50.0
    assert schema["properties"]["top_n_values"]["default"] == 10
    assert {item["role"] for item in tool["inputs"]} == {"primary", "baseline", "parameters"}
    assert [output["name"] for output in tool["outputs"]] == ["data_profile_report.json", "data_profile_report.xlsx"]


def test_resolve_chain() -> None:
    assert registry.resolve_chain("profile-my-data", None) == ["unified-profiler"]
    assert registry.resolve_chain("profile-my-data", ["unified-profiler", "unified-profiler"]) == ["unified-profiler"]
    with pytest.raises(UnknownToolError):
        registry.resolve_chain("no-such-tool", None)
    with pytest.raises(UnknownToolError):
        registry.resolve_chain("clean-my-data", None)  # no agent of it exists yet
    with pytest.raises(UnknownAgentError):
        registry.resolve_chain("profile-my-data", ["drift-detector"])  # known, not built yet
    with pytest.raises(UnknownAgentError):
        registry.resolve_chain("profile-my-data", ["nope"])
    with pytest.raises(UnknownAgentError):
        registry.resolve_chain("profile-my-data", [])


def test_chain_cost_uses_agensium_credits() -> None:
    assert registry.chain_cost(["unified-profiler"]) == 30
    assert registry.chain_cost(["unified-profiler", "drift-detector", "score-risk"]) == 105


def test_parameter_validation_names_agent_and_field() -> None:
    registry.validate_parameters("profile-my-data", ["unified-profiler"], {})
    registry.validate_parameters("profile-my-data", ["unified-profiler"], {"unified-profiler": {"top_n_values": 5}})
    # Agensium parameters.json files carry keys of agents we have not built yet: accepted.
    registry.validate_parameters("profile-my-data", ["unified-profiler"], {"drift-detector": {"anything": 1}})
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("profile-my-data", ["unified-profiler"], {"unified-profiler": {"top_n_values": 0}})
    assert raised.value.details["agent_id"] == "unified-profiler"
    assert raised.value.details["field"] == "top_n_values"
    assert "top_n_values" in raised.value.message
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("profile-my-data", ["unified-profiler"], {"unified-profiler": {"bogus": 1}})
    assert raised.value.details["field"] == "bogus"
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("profile-my-data", ["unified-profiler"], {"cleanse-previewer": {}})
    assert raised.value.details["agent_id"] == "cleanse-previewer"
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("profile-my-data", ["unified-profiler"], {"unified-profiler": [1, 2]})
    assert raised.value.details["agent_id"] == "unified-profiler"


def test_input_roles_and_content_types() -> None:
    assert registry.input_role("primary.csv") == "primary"
    assert registry.input_role("baseline.TSV") == "baseline"
    assert registry.input_role("parameters.json") == "parameters"
    for extension in ("xlsx", "parquet", "json", "ndjson", "jsonl", "txt"):
        assert registry.input_role(f"primary.{extension}") == "primary"
    assert registry.input_role("primary.xls") is None
    assert registry.input_role("primary.exe") is None
    assert registry.input_role("notes.csv") is None
    assert registry.input_role("primary.tar.csv") is None
    assert registry.input_role("baseline.csv", "profile-my-data") == "baseline"
    assert "text/csv" in registry.accepted_content_types("primary.csv")
    assert "application/vnd.ms-excel" in registry.accepted_content_types("primary.csv")
    assert registry.accepted_content_types("baseline.tsv") >= {"text/tab-separated-values"}
    assert registry.accepted_content_types("parameters.json") == {"application/json"}
    assert "application/json" in registry.accepted_content_types("primary.json")
    assert "application/vnd.apache.parquet" in registry.accepted_content_types("baseline.parquet")
    assert registry.accepted_content_types("primary.exe") == set()
    assert registry.output_content_type("data_profile_report.xlsx").endswith("spreadsheetml.sheet")
    assert registry.output_content_type("data_profile_report.json") == "application/json"
