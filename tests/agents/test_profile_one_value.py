"""QA pass on profile-my-data: a column with a single non-missing value (or a one-row file) is constant, not also
unique (the properties said both; the alerts already called it constant only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.chain import run_tool


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def properties(tmp_path: Path, text: str) -> dict[str, dict[str, Any]]:
    primary = tmp_path / "primary.csv"
    primary.write_text(text, encoding="utf-8")
    result = run_tool("profile-my-data", [], {"primary.csv": primary}, {}, tmp_path / "out", ignore)
    fields = result["agents"]["unified-profiler"]["data"]["fields"]
    return {field["field_name"]: field["properties"] for field in fields}


def flags(found: dict[str, Any]) -> tuple[bool, bool]:
    return found["is_constant"], found["is_unique"]


def test_a_one_row_file_is_constant_not_unique(tmp_path: Path) -> None:
    found = properties(tmp_path, "id,name\n1,Ann\n")
    assert flags(found["id"]) == flags(found["name"]) == (True, False)


def test_one_value_among_missing_ones_is_constant_and_two_distinct_values_are_unique(tmp_path: Path) -> None:
    found = properties(tmp_path, "id,name,note\n1,Ann,\n2,Bob,hello\n3,Cy,\n")
    assert flags(found["note"]) == (True, False)
    assert flags(found["id"]) == flags(found["name"]) == (False, True)
