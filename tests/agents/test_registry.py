from __future__ import annotations

import json
from typing import Any

import pytest

from agents import registry
from agents.errors import InvalidParametersError, UnknownAgentError, UnknownToolError

PROFILE_CHAIN = ["unified-profiler", "drift-detector", "score-risk", "test-coverage-agent", "readiness-rater"]
CLEAN_CHAIN = [
    "cleanse-previewer", "quarantine-agent", "type-fixer", "field-standardization",
    "duplicate-resolver", "null-handler", "outlier-remover", "cleanse-writeback",
]  # fmt: skip
MASTER_CHAIN = [
    "key-identifier", "contract-enforcer", "semantic-mapper",
    "survivorship-resolver", "golden-record-builder", "stewardship-flagger",
]  # fmt: skip


def test_catalog_lists_only_tools_and_agents_that_exist() -> None:
    catalog = registry.catalog()
    json.dumps(catalog)  # JSON-serialisable
    assert [tool["tool_id"] for tool in catalog["tools"]] == [
        "profile-my-data",
        "clean-my-data",
        "master-my-data",
        "search-my-data",
        "transform-my-data",
    ]
    profile, clean, master, search, transform = catalog["tools"]
    assert search["default_chain"] == ["searcher", "aggregator"] and search["default_chain_credits"] == 20
    assert transform["default_chain"] == ["transformer"] and transform["default_chain_credits"] == 20
    assert profile["default_chain"] == PROFILE_CHAIN
    assert profile["default_chain_credits"] == 30 + 40 + 35 + 30 + 25
    assert [a["agent_id"] for a in profile["agents"]] == [*PROFILE_CHAIN, "governance-checker"]
    governance = profile["agents"][-1]
    assert governance["credits"] == 45 and not governance["in_default_chain"]
    assert clean["default_chain"] == CLEAN_CHAIN
    assert clean["default_chain_credits"] == 20 + 35 + 25 + 40 + 50 + 30 + 35 + 30
    profiler = profile["agents"][0]
    assert profiler["agent_id"] == "unified-profiler" and profiler["credits"] == 30 and profiler["in_default_chain"]
    schema = profiler["parameters_schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["null_alert_threshold"]["default"] == 50.0
    assert schema["properties"]["top_n_values"]["default"] == 10
    assert master["default_chain"] == MASTER_CHAIN
    assert master["default_chain_credits"] == 45 + 75 + 50 + 100 + 150 + 40  # Agensium's credits
    assert {item["role"] for item in master["inputs"]} == {"primary", "source", "schema", "parameters"}
    assert [output["name"] for output in master["outputs"]] == [
        "master_data.csv", "crosswalk.csv", "stewardship_queue.csv", "master_report.json", "master_report.xlsx",
        "row_level_issues.parquet", "row_level_issues.csv",
    ]  # fmt: skip
    for agent in profile["agents"] + clean["agents"] + master["agents"]:
        assert agent["parameters_schema"]["additionalProperties"] is False, agent["agent_id"]
        assert agent["parameters_schema"]["type"] == "object"
    # Agensium's defaults, so its parameters.json files keep working.
    drift = next(a for a in profile["agents"] if a["agent_id"] == "drift-detector")["parameters_schema"]
    assert drift["properties"]["statistical_test"]["default"] == "auto"  # the one deviation (see its module)
    assert drift["properties"]["significance_level"]["default"] == 0.05
    assert drift["properties"]["min_sample_size"]["default"] == 100
    outliers = next(a for a in clean["agents"] if a["agent_id"] == "outlier-remover")["parameters_schema"]
    assert outliers["properties"]["detection_method"]["default"] == "iqr"
    assert outliers["properties"]["iqr_multiplier"]["default"] == 1.5
    assert {item["role"] for item in profile["inputs"]} == {"primary", "baseline", "parameters"}
    assert {item["role"] for item in clean["inputs"]} == {"primary", "parameters"}
    issue_files = ["row_level_issues.parquet", "row_level_issues.csv"]
    assert [output["name"] for output in profile["outputs"]] == [
        "data_profile_report.json", "data_profile_report.xlsx", *issue_files,
    ]  # fmt: skip
    assert [output["name"] for output in clean["outputs"]] == [
        "cleaned_data.csv", "quarantine.csv", "cleaning_report.json", "cleaning_report.xlsx", *issue_files,
    ]  # fmt: skip
    primary = profile["inputs"][0]
    assert set(primary["formats"]) == {"csv", "tsv", "txt", "xlsx", "parquet", "json", "ndjson", "jsonl"}
    formats = {item["role"]: item["formats"] for item in master["inputs"]}
    assert formats["schema"] == ["json", "yaml", "yml"]  # a data contract, not a dataset
    assert formats["source"] == primary["formats"] and formats["parameters"] == ["json"]
    schema = next(item for item in master["inputs"] if item["role"] == "schema")
    assert "application/yaml" in schema["content_types"]["yaml"]


def test_resolve_chain() -> None:
    assert registry.resolve_chain("profile-my-data", None) == PROFILE_CHAIN
    assert registry.resolve_chain("clean-my-data", None) == CLEAN_CHAIN
    assert registry.resolve_chain("profile-my-data", ["unified-profiler", "unified-profiler"]) == ["unified-profiler"]
    with pytest.raises(UnknownToolError):
        registry.resolve_chain("no-such-tool", None)
    assert registry.resolve_chain("master-my-data", None) == MASTER_CHAIN
    assert registry.resolve_chain("search-my-data", None) == ["searcher", "aggregator"]
    assert registry.resolve_chain("search-my-data", ["aggregator"]) == ["aggregator"]
    with pytest.raises(UnknownAgentError):
        registry.resolve_chain("profile-my-data", ["type-fixer"])  # exists, but in another tool
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
    # Every agent of the tool is validated, including those not in the chain.
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("profile-my-data", ["unified-profiler"], {"drift-detector": {"anything": 1}})
    assert raised.value.details["agent_id"] == "drift-detector"
    # The reserved "inputs" key holds reading options.
    registry.validate_parameters("profile-my-data", ["unified-profiler"], {"inputs": {"primary": {"sheet": "Sales"}}})
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("profile-my-data", ["unified-profiler"], {"inputs": {"primary": {"tab": 1}}})
    assert raised.value.details["field"] == "inputs.primary.tab"
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


@pytest.mark.parametrize("agent_id", ["searcher", "aggregator"])
def test_a_page_whose_rows_polars_cannot_reach_is_refused(agent_id: str) -> None:
    """Before, page 2**63 - 1 passed validation and failed the agent (OverflowError on the rows' offset)."""
    import polars as pl

    from agents.envelope import AgentInputs
    from agents.params.searcher import MAX_PAGE, MAX_PAGE_SIZE

    last = {"page": MAX_PAGE, "page_size": MAX_PAGE_SIZE, **({"group_by": ["a"]} if agent_id == "aggregator" else {})}
    registry.validate_parameters("search-my-data", [agent_id], {agent_id: last})
    inputs = AgentInputs(pl.DataFrame({"a": [1, 2, 3]}), "primary.csv")
    result = registry.load_run(registry.agent(agent_id))(inputs, registry.parse_parameters(agent_id, last), _silent)
    assert result.envelope.status == "success"  # an empty page
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("search-my-data", [agent_id], {agent_id: {"page": 2**63 - 1}})
    assert raised.value.details["agent_id"] == agent_id
    assert raised.value.details["field"] == "page"


def _silent(fraction: float, message: str) -> None:
    """No one follows the progress."""


@pytest.mark.parametrize(
    ("agent_id", "raw", "expected"),
    [
        (
            "outlier-remover",
            {"lower_percentile": 0.9, "upper_percentile": 0.1},
            "outlier-remover: lower_percentile must be below upper_percentile",
        ),
        (
            "score-risk",
            {"medium_risk_threshold": 90, "high_risk_threshold": 10},
            "score-risk: medium_risk_threshold must not exceed high_risk_threshold",
        ),
    ],
)
def test_a_model_check_names_the_agent_alone(agent_id: str, raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidParametersError) as raised:
        registry.parse_parameters(agent_id, raw)
    assert raised.value.message == expected  # was "<agent>.None: Value error, ..."
    assert raised.value.field is None and raised.value.agent_id == agent_id


def test_a_check_on_a_nested_model_names_its_path() -> None:
    with pytest.raises(InvalidParametersError) as raised:
        registry.parse_parameters("quarantine-agent", {"range_constraints": {"amount": {"min": 5.0, "max": 1.0}}})
    assert raised.value.message == "quarantine-agent.range_constraints.amount: min must not exceed max"
    assert raised.value.field == "range_constraints.amount"
