"""The null-handler's parameters (Agensium's names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from agents.params.common import EffectivenessParams

NullStrategy = Literal[
    "mean",
    "median",
    "mode",
    "forward_fill",
    "backward_fill",
    "constant",
    "knn_imputation",
    "drop_column",
    "drop_rows",
]


class NullHandlerParams(EffectivenessParams):
    """Drop rows, or treat each column's missing values by a strategy (given, or suggested as in Agensium)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="null-handler parameters")

    global_strategy: Literal["column_specific", "drop_rows"] = Field(
        "column_specific",
        description="drop_rows: remove every row with a missing value in any column (column_strategies are "
        "then moot); column_specific: treat each column by its strategy",
    )
    column_strategies: dict[str, NullStrategy] = Field(
        default_factory=dict,
        description=(
            "Strategy per column: mean, median (numeric, filled unrounded: a fraction makes an integer column "
            "decimal, a whole statistic keeps it integer, as in pandas), mode (most frequent value, ties to the "
            "smallest), forward_fill / "
            "backward_fill (from the previous / next row in file order; a leading / trailing gap stays empty), "
            "constant (fill_values), knn_imputation (numeric; scikit-learn KNNImputer over the numeric columns), "
            "drop_column, drop_rows (ours: remove the rows where this column is empty). Only columns with "
            "missing values are touched. mean, median and knn_imputation on a non-numeric column use mode "
            "instead, and say so."
        ),
    )
    fill_values: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Value per column for the constant strategy; it must convert to the column's type "
        "(dates as ISO text)",
    )
    knn_neighbors: int = Field(5, ge=1, le=100, description="Neighbours averaged by knn_imputation")
    apply_suggested_strategies: bool = Field(
        False,
        description=(
            "Ours (Agensium applies its suggestions): with column_specific, give a column with missing values and "
            "no strategy Agensium's suggested one: > 70 % missing drop_column; > 50 % knn_imputation (numeric) or "
            "mode; numeric median when |mean - median| / std > 0.5, else mean; text and boolean mode; date "
            "forward_fill. false (the default) fills nothing that column_strategies does not name: each "
            "suggestion is reported and proposed (imputing invents values)"
        ),
    )
    knn_max_rows: int = Field(
        50_000,
        ge=100,
        le=1_000_000,
        description="Ours: the most rows KNN is fitted on; the cap is lowered so that rows to impute x rows "
        "fitted stays within 2e7 (at least 1,000 rows). A larger frame is fitted on a random sample (seed 0) "
        "of complete rows and imputed in chunks",
    )
    knn_max_imputed_rows: int = Field(
        50_000,
        ge=1,
        le=10_000_000,
        description="Ours: with more rows to impute than this, knn_imputation falls back to the median "
        "and says so (the neighbour search would take too long)",
    )
    null_reduction_weight: float = Field(0.5, ge=0, le=1, description="Weight of nulls handled / nulls found")
    data_retention_weight: float = Field(0.3, ge=0, le=1, description="Weight of the share of rows kept")
    column_retention_weight: float = Field(0.2, ge=0, le=1, description="Weight of the share of columns kept")
