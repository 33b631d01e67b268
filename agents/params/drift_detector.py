"""The drift-detector's parameters: Agensium's three (``statistical_test``, ``significance_level``,
``min_sample_size``, same names and defaults) plus ours, each documented in its description.

One deviation from Agensium: the default ``statistical_test`` is ``"auto"`` (Agensium's is
``kolmogorov_smirnov``), which picks the test per column as Evidently does, by reference size, column type
and number of distinct values. A p-value test alone flags trivial shifts on large files (reference/agents.md
§3: 1M vs 1M rows, a 0.05-sigma shift gives KS p≈0 but PSI 0.006), which is why Evidently switches to
distances on large references. A ``parameters.json`` that names ``kolmogorov_smirnov`` (or any test) gets
exactly that test. Every column also reports PSI, Jensen–Shannon and the normed Wasserstein distance
whatever the test.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from agents.params.common import AgentParams

AGENT_ID = "drift-detector"
AGENT_NAME = "Drift Detector"
CREDITS = 40

StatisticalTest = Literal["kolmogorov_smirnov", "chi2", "wasserstein", "auto", "psi", "jensen_shannon"]


class DriftDetectorParams(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="drift-detector parameters")

    statistical_test: StatisticalTest = Field(
        "auto",
        description=(
            "Test that decides drift_detected per column. Default auto (Agensium's default was "
            "kolmogorov_smirnov, which over-flags on large files). Agensium's: kolmogorov_smirnov (numeric columns; "
            "categorical ones fall back to chi2 when the baseline has <= reference_size_threshold values, "
            "else jensen_shannon), chi2 (chi-square contingency test of category counts, numeric columns "
            "on baseline-quantile bins), wasserstein (normed by the baseline std, drift when >= "
            "method_threshold; categorical ones fall back as for kolmogorov_smirnov). Ours: auto "
            "(Evidently's choice per column: small baseline -> KS / chi2 / z-test for proportions, large "
            "baseline -> normed Wasserstein / Jensen-Shannon), psi (drift when PSI >= method_threshold), "
            "jensen_shannon (JS distance >= method_threshold). PSI, JS and normed Wasserstein are always "
            "reported as well."
        ),
    )
    significance_level: float = Field(
        0.05, gt=0, lt=1, description="p-value below which a p-value test (KS, chi2, z) reports drift"
    )
    min_sample_size: int = Field(
        100, ge=1, description="Columns with fewer non-null values than this on either side are skipped"
    )
    method_threshold: float = Field(
        0.1,
        gt=0,
        le=10,
        description="Ours: distance at or above which a distance test (normed Wasserstein, JS distance, PSI) "
        "reports drift (Evidently's 0.1)",
    )
    psi_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Ours: PSI/JS/chi2 bins for numeric columns, cut at baseline quantiles (duplicate edges "
        "merged, outer bins open-ended); numeric columns with at most this many distinct values use one bin "
        "per value",
    )
    psi_floor: float = Field(
        1e-4, gt=0, lt=0.01, description="Ours: bin shares below this are raised to it in PSI (Agensium's 0.0001)"
    )
    drift_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Ours: the dataset drifts when at least this share of the tested columns drift (Evidently)",
    )
    reference_size_threshold: int = Field(
        1000,
        ge=1,
        description="Ours: baseline non-null values at or below which p-value tests are chosen (auto and the "
        "categorical fallback), above which distance tests",
    )
    max_new_category_issues: int = Field(
        50, ge=0, le=100_000, description="Ours: row-level issues for values absent from the baseline, per column"
    )
    zscore_threshold: float = Field(
        2.0,
        gt=0,
        le=100,
        description="Ours: for drifted numeric columns, current values with |z| (against the baseline mean and "
        "std) above this are row-level issues (Agensium's 2)",
    )
    max_stored_row_level_issues: int = Field(
        1_000_000,
        ge=0,
        le=10_000_000,
        description="Ours: row-level issues kept for the stored report (the totals always count them all)",
    )
