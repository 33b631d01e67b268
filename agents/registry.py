"""The tool catalog (PRODUCT.md "Tools and agents"): tools, their default chains, agents with credit costs
and parameter schemas, accepted inputs and outputs.

Ids, chains and credits are Agensium's (reference/agents.md §1.4–1.6) so that its front end and users'
``parameters.json`` files keep working. Only agents that exist (have a ``run``) are listed and callable;
a tool none of whose agents exist is not listed; a default chain is shown filtered to existing agents.

Content types accepted for uploads (the presigned PUT is signed with the declared one, and the file is
parsed strictly whatever it claims to be, so the list is about what real clients send):
``.csv`` — ``text/csv``, ``application/csv``, ``text/plain``, ``application/vnd.ms-excel`` (browsers on
machines with Excel installed label CSV files so) and ``application/octet-stream`` (clients that do not
know); the other formats their registered types plus the common unofficial ones and
``application/octet-stream`` (``DATA_CONTENT_TYPES``); ``parameters.json`` — ``application/json``.

The ``diagnostics`` tool (agent ``sleeper``, agents.diagnostics) exists for tests and operators: it is
neither listed nor callable unless the caller says ``diagnostics=True`` (the service's ``diagnostics``
setting: the API lists and accepts it, the worker validates it, the agent process gets it with the job).
It may run ``readiness-rater`` after the sleeper, so that a run stopped in the sleeper leaves an agent unstarted
(and uncharged).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agents.errors import InvalidParametersError, UnknownAgentError, UnknownToolError
from agents.params.inputs import INPUTS_KEY, InputOptions
from agents.profile import params as profiler

if TYPE_CHECKING:
    from agents.envelope import AgentInputs, AgentResult, Progress

AgentRun = Callable[["AgentInputs", Any, "Progress"], "AgentResult"]

_OCTET = "application/octet-stream"
DATA_CONTENT_TYPES: dict[str, frozenset[str]] = {
    ".csv": frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", _OCTET}),
    ".tsv": frozenset({"text/tab-separated-values", "text/plain", _OCTET}),
    ".txt": frozenset({"text/plain", "text/csv", _OCTET}),
    ".xlsx": frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _OCTET}),
    ".parquet": frozenset({"application/vnd.apache.parquet", "application/x-parquet", _OCTET}),
    ".json": frozenset({"application/json", "text/json", _OCTET}),
    ".ndjson": frozenset({"application/x-ndjson", "application/jsonl", "application/json", "text/plain", _OCTET}),
    ".jsonl": frozenset({"application/jsonl", "application/x-ndjson", "application/json", "text/plain", _OCTET}),
}
PARAMETERS_NAME = "parameters.json"
PARAMETERS_CONTENT_TYPES = frozenset({"application/json"})
# master-my-data: up to MAX_SOURCES more sources ``source_<label>.<ext>`` and a data contract ``schema.<ext>``.
MAX_SOURCES = 9
SOURCE_NAME = re.compile(r"source_(?P<label>(?!primary$)[a-z0-9][a-z0-9_-]{0,31})")  # "primary" is the primary's
SCHEMA_CONTENT_TYPES: dict[str, frozenset[str]] = {
    ".json": frozenset({"application/json", "text/json", _OCTET}),
    ".yaml": frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain", _OCTET}),
    ".yml": frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain", _OCTET}),
}
# The data output a chained task (``source_task_id``) takes as its primary input, per tool.
MAIN_DATA_OUTPUTS = frozenset({"cleaned_data.csv", "master_data.csv", "search_result.csv", "transformed_data.csv"})
OUTPUT_CONTENT_TYPES = {
    ".json": "application/json",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
}
# Every row-level issue of every agent (agents.reports.row_issues), written by every tool's chain: the Parquet
# file always, the CSV copy only up to ``MAX_CSV_ROW_LEVEL_ISSUES`` issues. Never a chained task's input.
ROW_LEVEL_ISSUES_PARQUET, ROW_LEVEL_ISSUES_CSV = "row_level_issues.parquet", "row_level_issues.csv"
ROW_LEVEL_ISSUE_OUTPUTS = (ROW_LEVEL_ISSUES_PARQUET, ROW_LEVEL_ISSUES_CSV)
MAX_CSV_ROW_LEVEL_ISSUES = 100_000


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    name: str
    credits: int
    description: str
    # "module:Class": a module of agents.params (pydantic only); imported on first use.
    parameters_model: type[BaseModel] | str | None = None
    # "module:function", imported on first use so that the catalog (the API) never loads Polars.
    run: AgentRun | str | None = None
    # Compares the primary with a baseline input: without one it only says it was skipped, so it leaves a
    # default chain at process time and, when the user chose it, runs uncharged (``charged_agents``).
    needs_baseline: bool = False

    @property
    def exists(self) -> bool:
        return _defined(self.run) and _defined(self.parameters_model)

    @property
    def params_model(self) -> type[BaseModel]:
        if self.parameters_model is None:
            raise UnknownAgentError(f"Agent {self.agent_id!r} is not available.", {"agent_id": self.agent_id})
        if isinstance(self.parameters_model, str):
            return cast("type[BaseModel]", _import(self.parameters_model))
        return self.parameters_model


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _defined(target: object) -> bool:
    """A callable or class given directly, or a "module:name" whose module is there."""
    if target is None:
        return False
    if not isinstance(target, str):
        return True
    try:
        return importlib.util.find_spec(target.partition(":")[0]) is not None
    except ModuleNotFoundError:
        return False


@dataclass(frozen=True)
class InputSpec:
    role: str
    pattern: str
    required: bool
    description: str


@dataclass(frozen=True)
class ToolSpec:
    tool_id: str
    name: str
    description: str
    default_chain: tuple[str, ...]
    optional_agents: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    report_basename: str
    roles: frozenset[str] = field(default_factory=frozenset)
    diagnostic: bool = False  # hidden unless a lookup says diagnostics=True

    @property
    def all_agents(self) -> tuple[str, ...]:
        return self.default_chain + self.optional_agents


AGENTS: dict[str, AgentSpec] = {
    spec.agent_id: spec
    for spec in (
        AgentSpec(
            "unified-profiler",
            profiler.AGENT_NAME,
            profiler.CREDITS,
            "Per-column types, nulls, distinct values, statistics, outliers, entropy, top values, histograms, "
            "PII, quality scores and a dataset grade",
            profiler.ProfilerParams,
            "agents.profile.profiler:run",
        ),
        AgentSpec(
            "drift-detector",
            "Drift Detector",
            40,
            "Distribution and schema drift against a baseline (joins the chain only when a baseline is uploaded)",
            "agents.params.drift_detector:DriftDetectorParams",
            "agents.drift.detector:run",
            needs_baseline=True,
        ),  # fmt: skip
        AgentSpec(
            "score-risk",
            "Risk Scorer",
            35,
            "PII and sensitive-field risk, compliance frameworks",
            "agents.params.score_risk:ScoreRiskParams",
            "agents.quality.risk:run",
        ),  # fmt: skip
        AgentSpec(
            "test-coverage-agent",
            "Test Coverage",
            30,
            "User-declared uniqueness, range and format tests",
            "agents.params.test_coverage:TestCoverageParams",
            "agents.quality.coverage:run",
        ),  # fmt: skip
        AgentSpec(
            "readiness-rater",
            "Readiness Rater",
            25,
            "Completeness, consistency and schema health",
            "agents.params.readiness_rater:ReadinessRaterParams",
            "agents.quality.readiness:run",
        ),  # fmt: skip
        AgentSpec(
            "governance-checker",
            "Governance Checker",
            45,
            "Lineage, consent and classification fields",
            "agents.params.governance_checker:GovernanceCheckerParams",
            "agents.quality.governance:run",
        ),  # fmt: skip
        AgentSpec(
            "cleanse-previewer",
            "Cleanse Previewer",
            20,
            "What-if preview of cleaning rules",
            "agents.params.cleanse_previewer:CleansePreviewerParams",
            "agents.clean.previewer:run",
        ),  # fmt: skip
        AgentSpec(
            "quarantine-agent",
            "Quarantine Agent",
            35,
            "Rows failing rules moved to quarantine",
            "agents.params.quarantine_agent:QuarantineAgentParams",
            "agents.clean.quarantine:run",
        ),  # fmt: skip
        AgentSpec(
            "type-fixer",
            "Type Fixer",
            25,
            "Numbers, dates and booleans stored as text",
            "agents.params.type_fixer:TypeFixerParams",
            "agents.clean.type_fixer:run",
        ),  # fmt: skip
        AgentSpec(
            "field-standardization",
            "Field Standardization",
            40,
            "Trim, case, synonyms, units, dates",
            "agents.params.field_standardization:FieldStandardizationParams",
            "agents.clean.standardization:run",
        ),  # fmt: skip
        AgentSpec(
            "duplicate-resolver",
            "Duplicate Resolver",
            50,
            "Exact, case/whitespace and conflicting duplicates",
            "agents.params.duplicate_resolver:DuplicateResolverParams",
            "agents.clean.duplicates:run",
        ),  # fmt: skip
        AgentSpec(
            "null-handler",
            "Null Handler",
            30,
            "Drop or impute missing values",
            "agents.params.null_handler:NullHandlerParams",
            "agents.clean.nulls:run",
        ),  # fmt: skip
        AgentSpec(
            "outlier-remover",
            "Outlier Remover",
            35,
            "IQR / z-score / percentile outliers",
            "agents.params.outlier_remover:OutlierRemoverParams",
            "agents.clean.outliers:run",
        ),  # fmt: skip
        AgentSpec(
            "cleanse-writeback",
            "Cleanse Writeback",
            30,
            "Integrity checks and the cleansing manifest",
            "agents.params.cleanse_writeback:CleanseWritebackParams",
            "agents.clean.writeback:run",
        ),  # fmt: skip
        AgentSpec(
            "sleeper",
            "Sleeper",
            5,  # a token cost, so that tests and operators see a diagnostics run charged
            "Diagnostics: takes the time it is told to, reporting progress, runaway or failing on request",
            "agents.params.diagnostics:SleeperParams",
            "agents.diagnostics:run",
        ),  # fmt: skip
        AgentSpec(
            "key-identifier",
            "Key Identifier",
            45,
            "Primary, entity, foreign and composite key candidates",
            "agents.params.key_identifier:KeyIdentifierParams",
            "agents.master.keys:run",
        ),  # fmt: skip
        AgentSpec(
            "contract-enforcer",
            "Contract Enforcer",
            75,
            "Validate and transform against a data contract",
            "agents.params.contract_enforcer:ContractEnforcerParams",
            "agents.master.contract:run",
        ),  # fmt: skip
        AgentSpec(
            "semantic-mapper",
            "Semantic Mapper",
            50,
            "Map columns and values to a standard vocabulary",
            "agents.params.semantic_mapper:SemanticMapperParams",
            "agents.master.semantic:run",
        ),  # fmt: skip
        AgentSpec(
            "survivorship-resolver",
            "Survivorship Resolver",
            100,
            "Per-field winners with provenance",
            "agents.params.survivorship_resolver:SurvivorshipResolverParams",
            "agents.master.resolver:run",
        ),  # fmt: skip
        AgentSpec(
            "golden-record-builder",
            "Golden Record Builder",
            150,
            "Blocking, fuzzy matching and clustering into golden records with trust scores and a crosswalk",
            "agents.params.golden_record_builder:GoldenRecordBuilderParams",
            "agents.master.golden:run",
        ),  # fmt: skip
        AgentSpec(
            "stewardship-flagger",
            "Stewardship Flagger",
            40,
            "Review queue for data stewards",
            "agents.params.stewardship_flagger:StewardshipFlaggerParams",
            "agents.master.stewardship:run",
        ),  # fmt: skip
        AgentSpec(
            "searcher",
            "Searcher",
            10,
            "Filters, keywords, time and numeric ranges, sort and pages; every matching row is a new dataset version",
            "agents.params.searcher:SearcherParams",
            "agents.search.searcher:run",
        ),  # fmt: skip
        AgentSpec(
            "aggregator",
            "Aggregator",
            10,
            "Groups (columns, dates by day/week/month/year) with counts, sums, means, minima, maxima and distinct "
            "counts, sorted and paged, ready for a chart",
            "agents.params.aggregator:AggregatorParams",
            "agents.search.aggregator:run",
        ),  # fmt: skip
        AgentSpec(
            "transformer",
            "Transformer",
            20,
            "Whitelisted operations as JSON or short English commands (never executed code), each reporting "
            "the rows it affected: a new dataset version",
            "agents.params.transformer:TransformerParams",
            "agents.transform.transformer:run",
        ),  # fmt: skip
    )
}

_PRIMARY = InputSpec("primary", "primary.*", True, "The dataset (CSV, TSV, TXT, XLSX, Parquet, JSON or NDJSON)")
_BASELINE = InputSpec("baseline", "baseline.*", False, "A reference dataset to compare against")
_PARAMETERS = InputSpec("parameters", PARAMETERS_NAME, False, "Parameters keyed by agent id")
_SOURCES = InputSpec(
    "source",
    "source_<label>.*",
    False,
    f"Up to {MAX_SOURCES} more sources to master with the primary (label: lowercase letters, digits, _ and -)",
)
_SCHEMA = InputSpec("schema", "schema.json | schema.yaml", False, "A data contract for contract-enforcer")

TOOLS: dict[str, ToolSpec] = {
    spec.tool_id: spec
    for spec in (
        ToolSpec(
            "profile-my-data",
            "Profile My Data",
            "Profile a dataset: statistics, quality, PII, drift, readiness",
            ("unified-profiler", "drift-detector", "score-risk", "test-coverage-agent", "readiness-rater"),
            ("governance-checker",),
            (_PRIMARY, _BASELINE, _PARAMETERS),
            ("data_profile_report.json", "data_profile_report.xlsx", *ROW_LEVEL_ISSUE_OUTPUTS),
            "data_profile_report",
            frozenset({"primary", "baseline", "parameters"}),
        ),
        ToolSpec(
            "clean-my-data",
            "Clean My Data",
            "Clean a dataset: quarantine, types, standardisation, duplicates",
            (
                "cleanse-previewer",
                "quarantine-agent",
                "type-fixer",
                "field-standardization",
                "duplicate-resolver",
                "null-handler",
                "outlier-remover",
                "cleanse-writeback",
            ),
            (),
            (_PRIMARY, _PARAMETERS),
            (
                "cleaned_data.csv",
                "quarantine.csv",
                "cleaning_report.json",
                "cleaning_report.xlsx",
                *ROW_LEVEL_ISSUE_OUTPUTS,
            ),
            "cleaning_report",
            frozenset({"primary", "parameters"}),
        ),
        ToolSpec(
            "master-my-data",
            "Master My Data",
            "Keys, contracts, semantic mapping and golden records",
            (
                "key-identifier",
                "contract-enforcer",
                "semantic-mapper",
                "survivorship-resolver",
                "golden-record-builder",
                "stewardship-flagger",
            ),
            (),
            (_PRIMARY, _SOURCES, _SCHEMA, _PARAMETERS),
            (
                "master_data.csv",
                "crosswalk.csv",
                "stewardship_queue.csv",
                "master_report.json",
                "master_report.xlsx",
                *ROW_LEVEL_ISSUE_OUTPUTS,
            ),
            "master_report",
            frozenset({"primary", "source", "schema", "parameters"}),
        ),
        ToolSpec(
            "search-my-data",
            "Search My Data",
            "Search, filter and aggregate a dataset",
            ("searcher", "aggregator"),
            (),
            (_PRIMARY, _PARAMETERS),
            (
                "search_result.json",
                "search_result.csv",
                "search_report.json",
                *ROW_LEVEL_ISSUE_OUTPUTS,
            ),
            "search_report",
            frozenset({"primary", "parameters"}),
        ),
        ToolSpec(
            "transform-my-data",
            "Transform My Data",
            "Apply ordered transformations to a dataset",
            ("transformer",),
            (),
            (_PRIMARY, _PARAMETERS),
            (
                "transformed_data.csv",
                "transformed_data.parquet",
                "recipe.json",
                "transform_report.json",
                "transform_report.xlsx",
                *ROW_LEVEL_ISSUE_OUTPUTS,
            ),
            "transform_report",
            frozenset({"primary", "parameters"}),
        ),
        ToolSpec(
            "diagnostics",
            "Diagnostics",
            "Long-running, runaway and failing tasks on purpose, for tests and operators",
            ("sleeper",),
            ("readiness-rater",),  # an agent after the sleeper: one that a stop (soft limit, cancel) never starts
            (_PRIMARY, _PARAMETERS),
            ("diagnostics.json", "diagnostics.xlsx", *ROW_LEVEL_ISSUE_OUTPUTS),
            "diagnostics",
            frozenset({"primary", "parameters"}),
            diagnostic=True,
        ),
    )
}


def load_run(spec: AgentSpec) -> AgentRun:
    """The agent's run function (imported on first call)."""
    if spec.run is None:
        raise UnknownAgentError(f"Agent {spec.agent_id!r} is not available.", {"agent_id": spec.agent_id})
    if callable(spec.run):
        return spec.run
    return cast(AgentRun, _import(spec.run))


def preload() -> None:
    """Import every existing agent's module (an agent process does this once, not in a task's time)."""
    for spec in AGENTS.values():
        if spec.exists:
            load_run(spec)


def existing_agents(agent_ids: Iterable[str]) -> list[str]:
    return [agent_id for agent_id in agent_ids if agent_id in AGENTS and AGENTS[agent_id].exists]


def _available(spec: ToolSpec, diagnostics: bool) -> bool:
    return bool(existing_agents(spec.all_agents)) and (not spec.diagnostic or diagnostics)


def tool(tool_id: str, *, diagnostics: bool = False) -> ToolSpec:
    """The tool, if it is available (the diagnostics tool only with ``diagnostics``)."""
    spec = TOOLS.get(tool_id)
    if spec is None or not _available(spec, diagnostics):
        available = sorted(listed_tools(diagnostics=diagnostics))
        raise UnknownToolError(f"unknown tool '{tool_id}'", {"tool_id": tool_id, "available": available})
    return spec


def tool_spec(tool_id: str) -> ToolSpec:
    """A tool already chosen (a task's, a chain's), whether or not it is offered now."""
    spec = TOOLS.get(tool_id)
    if spec is None:
        raise UnknownToolError(f"unknown tool '{tool_id}'", {"tool_id": tool_id, "available": sorted(listed_tools())})
    return spec


def agent(agent_id: str) -> AgentSpec:
    spec = AGENTS.get(agent_id)
    if spec is None or not spec.exists:
        raise UnknownAgentError(f"unknown agent '{agent_id}'", {"agent_id": agent_id})
    return spec


def listed_tools(*, diagnostics: bool = False) -> list[str]:
    """The tools offered (the catalog's), in catalog order."""
    return [tool_id for tool_id, spec in TOOLS.items() if _available(spec, diagnostics)]


def _role_content_types(role: str) -> dict[str, frozenset[str]]:
    """The formats (extensions without the dot) an input of ``role`` may have, with their content types."""
    if role == "parameters":
        return {"json": PARAMETERS_CONTENT_TYPES}
    types = SCHEMA_CONTENT_TYPES if role == "schema" else DATA_CONTENT_TYPES
    return {extension[1:]: content_types for extension, content_types in types.items()}


def catalog(*, diagnostics: bool = False) -> dict[str, Any]:
    """The JSON-serialisable catalog served by ``GET /api/v1/tools``."""
    tools = []
    for tool_id in listed_tools(diagnostics=diagnostics):
        spec = TOOLS[tool_id]
        default_chain = existing_agents(spec.default_chain)
        without_baseline = charged_agents(default_chain, has_baseline=False)
        agents = [
            {
                "agent_id": agent_id,
                "name": AGENTS[agent_id].name,
                "description": AGENTS[agent_id].description,
                "credits": AGENTS[agent_id].credits,
                "parameters_schema": AGENTS[agent_id].params_model.model_json_schema(),
                "in_default_chain": agent_id in default_chain,
                "needs_baseline": AGENTS[agent_id].needs_baseline,
            }
            for agent_id in existing_agents(spec.all_agents)
        ]
        tools.append(
            {
                "tool_id": spec.tool_id,
                "name": spec.name,
                "description": spec.description,
                "default_chain": default_chain,
                "default_chain_credits": chain_cost(default_chain),
                # Without a baseline input the agents that need one leave the default chain (and its cost).
                "default_chain_without_baseline": without_baseline,
                "default_chain_without_baseline_credits": chain_cost(without_baseline),
                "agents": agents,
                "inputs": [
                    {
                        "role": item.role,
                        "name": item.pattern,
                        "required": item.required,
                        "description": item.description,
                        "formats": sorted(_role_content_types(item.role)),
                        "content_types": {fmt: sorted(types) for fmt, types in _role_content_types(item.role).items()},
                    }
                    for item in spec.inputs
                ],
                "outputs": [{"name": name, "content_type": output_content_type(name)} for name in spec.outputs],
            }
        )
    return {"tools": tools}


def resolve_chain(tool_id: str, agents: list[str] | None, *, diagnostics: bool = False) -> list[str]:
    """The agents to run, in order: the tool's default chain (existing agents) when ``agents`` is None."""
    spec = tool(tool_id, diagnostics=diagnostics)
    if agents is None:
        return existing_agents(spec.default_chain)
    if not agents:
        raise UnknownAgentError("no agents selected", {"tool_id": tool_id})
    chain: list[str] = []
    for agent_id in agents:
        agent(agent_id)
        if agent_id not in spec.all_agents:
            raise UnknownAgentError(
                f"agent '{agent_id}' is not part of tool '{tool_id}'", {"agent_id": agent_id, "tool_id": tool_id}
            )
        if agent_id not in chain:
            chain.append(agent_id)
    return chain


def chain_cost(agent_ids: Iterable[str]) -> int:
    return sum(AGENTS[agent_id].credits for agent_id in agent_ids if agent_id in AGENTS)


def _needs_baseline(agent_id: str) -> bool:
    return agent_id in AGENTS and AGENTS[agent_id].needs_baseline


def chain_for_inputs(tool_id: str, agent_ids: list[str], has_baseline: bool) -> list[str]:
    """The chain a task is queued with, once its inputs are known: the tool's default chain (the user named
    no agents, or exactly those) without the agents that need a baseline when there is none: they would
    only say they were skipped. A chain the user chose otherwise is kept as it is."""
    default = existing_agents(tool_spec(tool_id).default_chain)
    if has_baseline or list(agent_ids) != default:
        return list(agent_ids)
    return [agent_id for agent_id in agent_ids if not _needs_baseline(agent_id)]


def charged_agents(agent_ids: Iterable[str], has_baseline: bool) -> list[str]:
    """The agents of a chain that are charged when they start: not one that needs a baseline the inputs
    lack (it runs only to say it was skipped)."""
    return [agent_id for agent_id in agent_ids if has_baseline or not _needs_baseline(agent_id)]


def whole_numbers(value: Any) -> Any:
    """JSON numbers without a fraction (``7.0``) as integers, throughout ``value``: JSON Schema's "integer"
    admits them, and the strict parameter models would refuse them otherwise (a float field takes an int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def parse_parameters(agent_id: str, raw: Any) -> BaseModel:
    """This agent's validated parameters (its defaults where ``raw`` is silent)."""
    model = agent(agent_id).params_model
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParametersError(
            f"parameters for '{agent_id}' must be a JSON object", agent_id=agent_id, field=None
        )
    try:
        return model.model_validate(whole_numbers(raw))
    except ValidationError as error:
        errors = [(".".join(map(str, e["loc"])), _error_message(e)) for e in error.errors()]
        field_name, message = errors[0]
        # A check on the whole model has no field: "outlier-remover: ...", not "outlier-remover.None: ...".
        where = f"{agent_id}.{field_name}" if field_name else agent_id
        raise InvalidParametersError(
            f"{where}: {message}",
            {"errors": [{"field": path, "message": text} for path, text in errors]},
            agent_id=agent_id,
            field=field_name or None,
        ) from None


def _error_message(error: ErrorDetails) -> str:
    """Pydantic's message of one error, without the "Value error, " it puts before a validator's own sentence."""
    message = error["msg"]
    return message.removeprefix("Value error, ") if error["type"] == "value_error" else message


def validate_parameters(
    tool_id: str, agent_ids: list[str], parameters: dict[str, Any], *, diagnostics: bool = False
) -> None:
    """``parameters`` is keyed by agent id. Keys naming agents of the tool that do not exist yet are
    accepted (Agensium users' files carry them); anything else must validate."""
    spec = tool(tool_id, diagnostics=diagnostics)
    if not isinstance(parameters, dict):
        raise InvalidParametersError("parameters must be a JSON object keyed by agent id")
    for agent_id, raw in parameters.items():
        if agent_id == INPUTS_KEY:
            input_options(parameters)
            continue
        if agent_id == CACHE_KEY:
            cache_option(parameters)
            continue
        if agent_id not in spec.all_agents:
            raise InvalidParametersError(
                f"'{agent_id}' is not an agent of tool '{tool_id}'", agent_id=agent_id, field=None
            )
        if AGENTS[agent_id].exists:
            parse_parameters(agent_id, raw)
    for agent_id in agent_ids:
        if agent_id not in parameters:
            parse_parameters(agent_id, {})


CACHE_KEY = "cache"  # reserved top-level parameter: false forces a run past the result cache (service/cache.py)


def cache_option(parameters: dict[str, Any]) -> bool:
    """The reserved top-level ``cache`` parameter (true when absent): false asks for a run even when the result
    cache holds the same work. No agent is called ``cache``."""
    value = parameters.get(CACHE_KEY, True)
    if not isinstance(value, bool):
        raise InvalidParametersError(f"{CACHE_KEY}: must be true or false", field=CACHE_KEY)
    return value


def input_options(parameters: dict[str, Any]) -> InputOptions:
    """The reserved ``inputs`` key of the parameters: how to read each input (e.g. an XLSX sheet)."""
    raw = parameters.get(INPUTS_KEY)
    if raw is None:
        raw = {}
    try:
        return InputOptions.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field_name = ".".join([INPUTS_KEY, *(str(part) for part in first["loc"])])
        raise InvalidParametersError(f"{field_name}: {_error_message(first)}", field=field_name) from None


def input_role(name: str, tool_id: str | None = None) -> str | None:
    """ "primary" / "baseline" / "source" / "schema" / "parameters" from the upload name, or None when it is
    not accepted (by the given tool, when ``tool_id`` is given)."""
    role: str | None = None
    suffix = PurePath(name).suffix.lower()
    stem = name.split(".", 1)[0]
    if name == PARAMETERS_NAME:
        role = "parameters"
    elif name.count(".") != 1:
        role = None
    elif stem in {"primary", "baseline"} and suffix in DATA_CONTENT_TYPES:
        role = stem
    elif SOURCE_NAME.fullmatch(stem) and suffix in DATA_CONTENT_TYPES:
        role = "source"
    elif stem == "schema" and suffix in SCHEMA_CONTENT_TYPES:
        role = "schema"
    if role is not None and tool_id is not None and role not in tool_spec(tool_id).roles:
        return None
    return role


def accepted_content_types(name: str) -> set[str]:
    if name == PARAMETERS_NAME:
        return set(PARAMETERS_CONTENT_TYPES)
    if input_role(name) == "schema":
        return set(SCHEMA_CONTENT_TYPES[PurePath(name).suffix.lower()])
    return set(DATA_CONTENT_TYPES.get(PurePath(name).suffix.lower(), frozenset()))


def input_set_problem(names: Iterable[str]) -> str | None:
    """Why a set of input names cannot go together (None when it can): one file per role, except sources,
    of which at most :data:`MAX_SOURCES` with distinct labels."""
    seen: dict[str, str] = {}
    labels: dict[str, str] = {}
    for name in names:
        role = input_role(name)
        if role == "source":
            label = source_label(name) or ""
            if label in labels:
                return f"{labels[label]} and {name} are both source '{label}': give each source its own label"
            labels[label] = name
        elif role is not None:
            if role in seen:
                return f"{seen[role]} and {name} are both the {role} input: upload one"
            seen[role] = name
    if len(labels) > MAX_SOURCES:
        return f"{len(labels)} source_<label> files; at most {MAX_SOURCES} sources besides the primary"
    return None


def input_patterns(tool_id: str) -> str:
    """The tool's input names as a user reads them: "primary.<ext>, baseline.<ext>"."""
    patterns = [spec.pattern.replace(".*", ".<ext>") for spec in tool_spec(tool_id).inputs if spec.role != "parameters"]
    return ", ".join(patterns[:-1]) + f" or {patterns[-1]}" if len(patterns) > 1 else patterns[0]


def source_label(name: str) -> str | None:
    """The label of a ``source_<label>.<ext>`` upload name (``crm`` for ``source_crm.csv``)."""
    match = SOURCE_NAME.fullmatch(name.split(".", 1)[0])
    return match["label"] if match else None


def output_content_type(name: str) -> str:
    return OUTPUT_CONTENT_TYPES.get(PurePath(name).suffix.lower(), "application/octet-stream")
