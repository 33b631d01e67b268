"""A bare ``none`` is the text none (QA8 D6: ``remove rows where allergy = none`` dropped the empty row and kept both
``none`` rows; ``in (none, peanuts)`` was refused "an empty value matches nothing here"), as ``fill missing allergy
with none`` writes it: lower-case none is no missing-value token (PRODUCT.md "Missing values" lists ``None``). The
tokens the reader reads as empty cells (``null``, ``NULL``, ``None``, ``N/A``, ``nan``...), written bare after ``=``,
``!=`` or in a list, test for an empty cell; quoted, they are text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.chain import run_tool
from agents.transform.commands import parse_command

ALLERGIES = "id,allergy\n1,none\n2,peanuts\n3,\n4,none\n5,N/A\n6,null\n"


def run(tmp_path: Path, commands: list[str], inputs: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    source = tmp_path / "primary.csv"
    source.write_text(ALLERGIES, encoding="utf-8")
    out = tmp_path / "out"
    parameters = {"transformer": {"commands": commands}, **({"inputs": inputs} if inputs else {})}
    result = run_tool("transform-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None)
    ids = [line.split(",")[0] for line in (out / "transformed_data.csv").read_text(encoding="utf-8").splitlines()[1:]]
    return ids, result["summary"]["transformations"]


@pytest.mark.parametrize(
    ("command", "ids"),
    [
        ("remove rows where allergy = none", ["2", "3", "5", "6"]),
        ("keep rows where allergy = none", ["1", "4"]),
        ("keep rows where allergy != none", ["2"]),  # an empty cell satisfies only is null
        ("keep rows where allergy is none", ["1", "4"]),
        ("keep rows where allergy in (none, peanuts)", ["1", "2", "4"]),
        ("keep rows where allergy not in (none)", ["2"]),
        ('keep rows where allergy = "none"', ["1", "4"]),
        ("remove rows where allergy = NONE ignoring case", ["2", "3", "5", "6"]),
    ],
)
def test_a_bare_none_compares_as_the_text_none(tmp_path: Path, command: str, ids: list[str]) -> None:
    kept, sentences = run(tmp_path, [command])
    assert kept == ids
    assert "null" not in sentences[0]


@pytest.mark.parametrize(
    ("command", "ids"),
    [
        ("keep rows where allergy is null", ["3", "5", "6"]),
        ("keep rows where allergy = null", ["3", "5", "6"]),
        ("keep rows where allergy = NULL", ["3", "5", "6"]),
        ("keep rows where allergy = None", ["3", "5", "6"]),  # the token, as the reader reads it
        ("keep rows where allergy = N/A", ["3", "5", "6"]),
        ("keep rows where allergy = nan", ["3", "5", "6"]),
        ("remove rows where allergy != N/A", ["3", "5", "6"]),
        ("keep rows where allergy in (N/A, peanuts)", ["2", "3", "5", "6"]),
        ("keep rows where allergy in (null, none)", ["1", "3", "4", "5", "6"]),
        ("keep rows where allergy not in (null, peanuts)", ["1", "4"]),
    ],
)
def test_a_bare_missing_value_token_tests_for_an_empty_cell(tmp_path: Path, command: str, ids: list[str]) -> None:
    assert run(tmp_path, [command])[0] == ids


def test_quoted_tokens_are_text_when_the_reader_keeps_them(tmp_path: Path) -> None:
    kept, _ = run(tmp_path, ['keep rows where allergy = "N/A"'], {"primary": {"null_tokens": []}})
    assert kept == ["5"]
    kept, _ = run(tmp_path, ['keep rows where allergy in ("null", none)'], {"primary": {"null_tokens": []}})
    assert kept == ["1", "4", "6"]


def test_fill_and_replace_write_the_text_none(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(ALLERGIES, encoding="utf-8")
    out = tmp_path / "out"
    parameters = {
        "transformer": {"commands": ["fill missing allergy with none", "replace peanuts with none in allergy"]}
    }
    run_tool("transform-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None)
    written = (out / "transformed_data.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [line.split(",")[1] for line in written] == ["none"] * 6


def test_the_reading_is_noted() -> None:
    assert parse_command("remove rows where allergy = none").notes == [
        "none read as the text 'none' (an empty cell is tested with is null)"
    ]
    parsed = parse_command("remove rows where allergy = N/A")
    assert parsed.operation["where"] == {"column": "allergy", "cmp": "is_null"}
    assert parsed.notes == ["N/A read as an empty cell (a missing-value token; quote it for the text)"]
    assert parse_command('remove rows where allergy = "N/A"').operation["where"]["value"] == "N/A"
