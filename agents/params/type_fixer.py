"""Parameters of ``type-fixer`` (Agensium names and defaults, reference/agents.md §1.5; additions documented)."""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from agents.params.common import EffectivenessParams, NullToken, null_tokens_field


class TypeFixerParams(EffectivenessParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="type-fixer parameters")

    auto_convert_numeric: bool = Field(
        True,
        description="Convert text columns whose values are numbers (thousands separators allowed; currency "
        "symbols, '%', accounting negatives '(12)', codes and commas that may be decimal marks with their "
        "convert_* parameters) to Int64 or Float64, and Float columns holding only whole numbers to Int64",
    )
    auto_convert_datetime: bool = Field(
        True, description="Convert text columns whose values are dates to Date/Datetime"
    )
    auto_convert_category: bool = Field(
        True,
        description="Convert low-cardinality text columns left as text to Categorical (see category_max_distinct "
        "and category_max_distinct_ratio)",
    )
    preserve_mixed_types: bool = Field(
        True,
        description="Leave a text column as text unless every non-blank value converts (no cell is emptied). Ours: "
        "true by default (Agensium: false); a column that reads at conversion_threshold but not entirely is "
        "proposed, with the cells the conversion would empty",
    )
    null_tokens: list[NullToken] = null_tokens_field()
    convert_ambiguous_dates: bool = Field(
        False,
        description="Ours: convert a date column whose day/month order only a tie decides (every value reads both "
        "ways); month/day is then assumed. false leaves it as text and proposes the conversion",
    )
    auto_convert_boolean: bool = Field(
        True,
        description="Ours: convert text columns of true/false/yes/no/y/n/1/0 (with at least one word) to Boolean "
        "(yes/no/y/n only with convert_yes_no)",
    )
    convert_yes_no: bool = Field(
        False,
        description="Ours: also convert boolean columns written yes/no/y/n (which may be codes or answers); false "
        "leaves them as text and proposes the conversion",
    )
    convert_currency: bool = Field(
        False,
        description="Ours: convert number columns written with a currency symbol ('$1,200.50' -> 1200.5: the unit "
        "is lost); false leaves them as text and proposes the conversion",
    )
    convert_percentages: bool = Field(
        False,
        description="Ours: convert number columns written with '%' to the number as written ('5%' -> 5, not "
        "0.05); false leaves them as text and proposes the conversion",
    )
    convert_accounting_negatives: bool = Field(
        False,
        description="Ours: convert number columns written with accounting negatives in parentheses ('(12)' -> "
        "-12; '(212)' may as well be an area code or a footnote mark); false leaves them as text and proposes the "
        "conversion",
    )
    convert_codes: bool = Field(
        False,
        description="Ours: convert number columns written as codes (a leading zero '007' or '007.5', a '+' sign, "
        "'-0': the file reader keeps them as text); false leaves them as text and proposes the conversion",
    )
    convert_ambiguous_thousands: bool = Field(
        False,
        description="Ours: convert number columns whose commas could be decimal marks, reading the comma as a "
        "thousands separator ('1,500' -> 1500). Without it, '1,500' converts only when its column also holds "
        "'1,234,567', '1,500.25' or a decimal point, or another column '1,234,567' or '1,500.25', and no column "
        "writes a decimal comma ('12,99'); otherwise the column stays text and the conversion is proposed",
    )
    convert_decimal_commas: bool = Field(
        False,
        description="Ours: convert number columns whose commas may group thousands reading them as decimal marks "
        "('1,500' -> 1.5, '1.234' -> 1234), and columns written with a decimal comma ('39,81') in a file that also "
        "groups thousands with commas. Without it, a column of decimal commas ('39,81', '1.234,56', with '1,500' "
        "or '7' among them) converts when no column of the file groups thousands with commas ('1,234,567', "
        "'1,500.25'); otherwise the column stays text and the conversion is proposed. Not with "
        "convert_ambiguous_thousands",
    )
    conversion_threshold: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Ours (Agensium hard-codes 70 %): share of a text column's non-blank values that must convert "
        "for the column to be converted; the others become null and are reported as unparseable_value",
    )
    category_max_distinct: int = Field(
        50, ge=1, description="Ours: at most this many distinct values for a Categorical conversion"
    )
    category_max_distinct_ratio: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Ours: and at most this share of distinct values among the non-null values "
        "(0.05 = each value repeats 20 times on average)",
    )
    type_reduction_weight: float = Field(0.5, ge=0, le=1, description="Weight of type issues fixed in the score")
    data_retention_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of values kept (not emptied by a failed conversion) in the score"
    )
    column_retention_weight: float = Field(0.2, ge=0, le=1, description="Weight of columns kept in the score")

    @model_validator(mode="after")
    def _one_reading_of_commas(self) -> Self:
        if self.convert_ambiguous_thousands and self.convert_decimal_commas:
            raise ValueError(
                "convert_ambiguous_thousands and convert_decimal_commas read '1,500' in opposite ways: set one"
            )
        return self
