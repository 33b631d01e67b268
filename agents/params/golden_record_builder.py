"""The golden-record-builder's parameters (Agensium's names and defaults, reference/agents.md §1.6, except
``enable_fuzzy_matching``: ours is on by default)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from agents.params.common import EffectivenessParams
from agents.params.survivorship_resolver import RULES_DESCRIPTION, ColumnName, SurvivorshipRule, check_rule_needs

Weight = Annotated[float, Field(ge=0, le=100)]


class GoldenRecordBuilderParams(EffectivenessParams):
    """Rows that describe the same entity form a cluster; each cluster becomes one golden record whose every
    value is chosen by a survivorship rule, with its source and confidence. The golden records
    (master_data.csv) and the crosswalk from every input row to its golden record (crosswalk.csv) are
    outputs; the data goes on unchanged to the next agent."""

    model_config = ConfigDict(extra="forbid", strict=True, title="golden-record-builder parameters")

    match_key_columns: list[ColumnName] = Field(
        default_factory=list,
        description="Columns compared to match rows; [] = the columns whose detected role says who the entity "
        "is (names, e-mail, phone, address, postcode, date of birth, national id). Without fuzzy matching: "
        "rows equal on all of them (normalised) match; [] = the detected entity key (e-mail, else phone, else "
        "national id, else given name + surname + date of birth)",
    )
    match_key_weights: dict[ColumnName, Weight] = Field(
        default_factory=dict,
        description="Column -> weight 0-100 of that column's agreement in the fuzzy match score (Agensium's "
        "weighted similarity); columns not listed keep the matcher's own weights",
    )
    survivorship_rules: dict[ColumnName, SurvivorshipRule] = Field(
        default_factory=dict, description=f"Column -> rule. Rules: {RULES_DESCRIPTION}"
    )
    source_priority: dict[str, int] = Field(
        default_factory=dict,
        description="Source label -> rank for the source_priority rule; the lower rank wins, unranked sources "
        "come last. Labels are those of source_column, else the upload's (primary, or crm for source_crm.csv)",
    )
    source_column: ColumnName | None = Field(
        None, description="A data column naming each row's source; null = the upload the row came from"
    )
    timestamp_column: ColumnName | None = Field(
        None, description="The column most_recent reads (dates, datetimes, numbers or date text)"
    )
    default_survivorship_rule: SurvivorshipRule = Field(
        "most_complete", description="The rule of columns without one in survivorship_rules"
    )
    min_trust_score: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Golden records whose trust score (mean confidence of their values) is below it are "
        "reported for review",
    )
    enable_fuzzy_matching: bool = Field(
        True,
        description="Ours: true (Agensium's default is false, which merges only rows with equal match keys and "
        "so leaves typos, formatting and missing values unmatched). True: blocking, field similarities and a "
        "match probability per candidate pair, clusters as connected components of the pairs above the "
        "threshold. False: rows with equal normalised match keys form a cluster",
    )
    fuzzy_threshold: float = Field(
        80.0,
        ge=0,
        le=100,
        description="Agensium's 0-100 match threshold. A value given is the match probability in percent a "
        "pair needs to be linked (80 = 0.8); left out, the matcher's calibrated threshold applies",
    )
    sample_clusters: int = Field(
        20, ge=0, le=200, description="Ours: merged clusters shown side by side in the report (largest first)"
    )

    @model_validator(mode="after")
    def _rules_can_work(self) -> Any:
        check_rule_needs(
            [self.default_survivorship_rule, *self.survivorship_rules.values()],
            self.timestamp_column,
            self.source_priority,
            "survivorship_rules/default_survivorship_rule",
        )
        return self
