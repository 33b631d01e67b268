"""Options for reading the inputs, given under the reserved ``inputs`` key of ``parameters.json``:
``{"inputs": {"primary": {"sheet": "Sales"}, "baseline": {"sheet": 0}}}``. No agent is called ``inputs``."""

from __future__ import annotations

from pydantic import Field

from agents.params.common import AgentParams

INPUTS_KEY = "inputs"


class FileOptions(AgentParams):
    sheet: str | int | None = Field(
        None, description="XLSX only: the worksheet to read, by name or 0-based position (default: the first)"
    )
    display_name: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="The user's own name of the file (e.g. flights.csv), shown in the reports instead of primary.csv"
        " (the service fills it from upload-urls' display_name)",
    )


class InputOptions(AgentParams):
    primary: FileOptions = Field(default_factory=FileOptions)
    baseline: FileOptions = Field(default_factory=FileOptions)


OPTION_ROLES: tuple[str, ...] = tuple(InputOptions.model_fields)  # the input roles that take reading options
