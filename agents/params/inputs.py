"""Options for reading the inputs, given under the reserved ``inputs`` key of ``parameters.json``:
``{"inputs": {"primary": {"sheet": "Sales"}, "baseline": {"sheet": 0}}}``. No agent is called ``inputs``."""

from __future__ import annotations

from pydantic import Field

from agents.params.common import AgentParams, NullToken

INPUTS_KEY = "inputs"
XLSX_MAX_ROWS = 1_048_576  # a worksheet's rows (Excel's limit): the highest header_row


class FileOptions(AgentParams):
    sheet: str | int | None = Field(
        None, description="XLSX only: the worksheet to read, by name or 0-based position (default: the first)"
    )
    header_row: int | None = Field(
        None,
        ge=1,
        le=XLSX_MAX_ROWS,
        description="XLSX only: the 1-based row of the sheet that holds the column names; the rows above it are"
        " skipped (default: the first row with a value, or the header found below a title, as the read report's"
        " header_row says)",
    )
    display_name: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="The user's own name of the file (e.g. flights.csv), shown in the reports instead of primary.csv"
        " (the service fills it from upload-urls' display_name)",
    )
    null_tokens: list[NullToken] | None = Field(
        None,
        max_length=1000,
        description="text values (exactly, after trimming) that are missing values, like an empty field, read as "
        "nulls (default: pandas' list, PRODUCT.md 'Missing values'; [] = only fields with nothing in them); in "
        "clean-my-data and profile-my-data it is also the null_tokens of every agent of the run that takes them and "
        "was not given its own",
    )


class InputOptions(AgentParams):
    primary: FileOptions = Field(default_factory=FileOptions)
    baseline: FileOptions = Field(default_factory=FileOptions)


OPTION_ROLES: tuple[str, ...] = tuple(InputOptions.model_fields)  # the input roles that take reading options
