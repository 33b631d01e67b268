"""A text column of numbers written with a decimal comma (a European CSV's ``1.234,56``) is profiled as numbers, read
with the comma as the decimal mark and the point as the thousands separator, as pandas reads it with
``decimal=",", thousands="."`` (QA pass 8, D4): it had string lengths only. Its type stays ``numeric_string`` (the file
holds text). The drift detector compares two such files as numbers."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.chain import run_tool
from agents.options import RunOptions

EUROPEAN = (
    "Kunde;Betrag;Datum;Menge\nMüller;1.234,56;15.01.2024;3\nSchmidt;99,90;16.01.2024;1\n"
    "Özil;12,00;17.01.2024;10\nWeiß;;18.01.2024;\n"
).encode("cp1252")
MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def ignore(*_: object) -> None:
    return None


def profile(tmp_path: Path, data: bytes, mode: str = "in_memory") -> dict[str, Any]:
    path = tmp_path / "primary.csv"
    path.write_bytes(data)
    result = run_tool(
        "profile-my-data", [], {"primary.csv": path}, {}, tmp_path / "out", ignore, run_options=MODES[mode]
    )
    envelope: dict[str, Any] = result["agents"]["unified-profiler"]
    return envelope


def field(envelope: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [item for item in envelope["data"]["fields"] if item["field_name"] == name]
    return found


@pytest.mark.parametrize("mode", list(MODES))
def test_decimal_comma_numbers_get_numeric_statistics(tmp_path: Path, mode: str) -> None:
    betrag = field(profile(tmp_path, EUROPEAN, mode), "Betrag")
    assert betrag["semantic_type"] == "numeric_string" and betrag["data_type"] == "string"
    assert betrag["properties"]["decimal_mark"] == ","
    expected = pd.read_csv(io.BytesIO(EUROPEAN), sep=";", decimal=",", thousands=".", encoding="cp1252")["Betrag"]
    statistics = betrag["statistics"]
    assert statistics["min"] == 12.0 and statistics["max"] == 1234.56
    assert math.isclose(statistics["mean"], 448.82) and math.isclose(statistics["mean"], expected.mean())
    assert math.isclose(statistics["median"], expected.median())
    assert math.isclose(statistics["std"], expected.std())
    assert math.isclose(statistics["p25"], expected.quantile(0.25)) and math.isclose(
        statistics["p75"], expected.quantile(0.75)
    )
    assert statistics["outlier_count"] == 0 and statistics["outlier_upper_bound"] is not None
    assert statistics["min_length"] == 5 and statistics["max_length"] == 8  # the text's lengths stay
    assert statistics["read_from_text"] == {
        "decimal_mark": ",",
        "thousands_separator": ".",
        "values_read": 3,
        "values_not_read": 0,
    }
    histogram = betrag["distribution"]["histogram"]
    counts, edges = np.histogram(expected.dropna(), bins=len(histogram["counts"]))
    assert histogram["counts"] == counts.tolist() and np.allclose(histogram["bin_edges"], edges)


def test_outliers_are_counted_and_alerted(tmp_path: Path) -> None:
    values = [f"{10 + n % 7},{n % 100:02d}" for n in range(60)] + ["9.999,99"] * 5
    data = ("id;amount\n" + "".join(f"{n};{value}\n" for n, value in enumerate(values, 1))).encode()
    envelope = profile(tmp_path, data)
    statistics = field(envelope, "amount")["statistics"]
    assert statistics["max"] == 9999.99 and statistics["outlier_count"] == 5
    assert any(alert["alert_id"] == "outliers:amount" for alert in envelope["alerts"]), envelope["alerts"]


def written(values: np.ndarray) -> list[str]:
    """Numbers as a German file writes them: ``1.234,56``."""
    return [f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for value in values]


def test_drift_compares_them_as_numbers(tmp_path: Path) -> None:
    generator = np.random.default_rng(5)
    before, after = generator.uniform(10, 2000, 300), generator.uniform(10, 2000, 300) * 3
    colours = ["rot", "grün", "blau", "1,5", "2,25"]  # words with a few decimal commas: no column of numbers
    for name, values in (("baseline.csv", before), ("primary.csv", after)):
        text = "Kunde;Betrag;Farbe\n" + "".join(
            f"K{n};{value};{colours[n % 5]}\n" for n, value in enumerate(written(values))
        )
        (tmp_path / name).write_bytes(text.encode("cp1252"))
    inputs = {name: tmp_path / name for name in ("primary.csv", "baseline.csv")}
    result = run_tool("profile-my-data", ["drift-detector"], inputs, {}, tmp_path / "out", ignore)
    envelope = result["agents"]["drift-detector"]
    [betrag] = [item for item in envelope["data"]["fields"] if item["field_name"] == "Betrag"]
    assert betrag["column_type"] == "numeric" and betrag["drift_analysis"]["drift_detected"]
    assert betrag["read_from_text"] == {"decimal_mark": ",", "thousands_separator": "."}
    assert betrag["baseline_type"] == betrag["current_type"] == "String"
    assert math.isclose(betrag["current_statistics"]["mean"], float(np.round(after, 2).mean()))
    assert envelope["data"]["schema_drift"]["retyped_columns"] == []
    [farbe] = [item for item in envelope["data"]["fields"] if item["field_name"] == "Farbe"]
    assert farbe["column_type"] == "categorical" and "read_from_text" not in farbe
