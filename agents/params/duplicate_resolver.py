"""The duplicate-resolver's parameters (Agensium's names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from agents.params.common import EffectivenessParams

DetectionType = Literal["exact", "case_variations", "email_case", "missing_values", "conflicting"]
SAFE_DETECTION_TYPES: tuple[DetectionType, ...] = ("exact",)  # the default: identical rows only
ALL_DETECTION_TYPES: list[DetectionType] = ["exact", "case_variations", "email_case", "missing_values", "conflicting"]


class DuplicateResolverParams(EffectivenessParams):
    """How duplicates are found and resolved. The detection types run in a fixed order on the rows still
    present (exact, email_case, case_variations, conflicting, missing_values), whatever order the list has;
    a row removed by one type is not looked at by the next."""

    model_config = ConfigDict(extra="forbid", strict=True, title="duplicate-resolver parameters")

    detection_types: list[DetectionType] = Field(
        default_factory=lambda: list(SAFE_DETECTION_TYPES),
        description=(
            "Kinds of duplicates to remove (ours: the default is exact only; Agensium's is all five, which removes "
            "rows that differ; the other kinds are still looked for on what is left and proposed with their "
            "counts). exact: every data column equal (an empty cell equals an empty cell). "
            "case_variations: equal once text key columns are trimmed, inner whitespace collapsed and lowercased "
            "(other columns equal as they are). email_case: equal once e-mail columns are lowercased with all "
            "whitespace removed. conflicting: the same key_columns value (text normalised as above) with "
            "different values elsewhere; needs key_columns. missing_values: a row whose every filled cell equals "
            "the same cell of a more complete row (it only lacks values) is a duplicate of that row."
        ),
    )
    merge_strategy: Literal["remove_duplicates", "merge_smart"] = Field(
        "remove_duplicates",
        description=(
            "For missing_values duplicates: remove_duplicates keeps the most complete row of the group; "
            "merge_smart keeps the group's first row (file order) and gives it the most complete row's values. "
            "Exact, e-mail and case duplicates keep their first row either way (merging them changes nothing)."
        ),
    )
    email_columns: list[str] = Field(
        default_factory=list,
        description="E-mail columns for email_case; [] = text columns where more than half of the first "
        "1,000 non-empty values look like e-mail addresses",
    )
    key_columns: list[str] = Field(
        default_factory=list,
        description="Columns that identify a record: normalised by case_variations and grouped by conflicting; "
        "[] = all data columns (then conflicting finds nothing: rows equal on every column are exact or case "
        "duplicates)",
    )
    null_handling: Literal["ignore_nulls", "match_nulls"] = Field(
        "ignore_nulls",
        description=(
            "For conflicting. ignore_nulls: rows with an empty key column are not grouped, and an empty cell "
            "against a value is not a conflict. match_nulls: empty key values match each other, and an empty "
            "cell against a value counts as a difference."
        ),
    )
    conflict_resolution: Literal["keep_first", "keep_last", "merge_smart"] = Field(
        "keep_first",
        description="Which row of a conflicting group survives: the first or last in file order, or "
        "merge_smart: the first row, each column taking the group's first non-empty value in file order",
    )
    dedup_reduction_weight: float = Field(0.5, ge=0, le=1, description="Weight of duplicates resolved / detected")
    data_retention_weight: float = Field(0.3, ge=0, le=1, description="Weight of the share of rows kept")
    column_retention_weight: float = Field(0.2, ge=0, le=1, description="Weight of the share of columns kept")
    max_null_patterns: int = Field(
        32,
        ge=1,
        le=1024,
        description="Ours: missing_values examines the rows whose pattern of empty cells is among this many "
        "most frequent patterns (each pattern costs one join); rows with rarer patterns are counted as not "
        "examined",
    )

    @field_validator("email_columns")
    @classmethod
    def _each_once(cls, columns: list[str]) -> list[str]:
        """An e-mail column named twice is normalised once (it would otherwise be two outputs of one name)."""
        return list(dict.fromkeys(columns))
