"""Ordering a text column against a number (QA8 D1: ``keep rows where n > 9`` on a column that is text because one
value is ``unknown`` kept only ``unknown`` and dropped 10 and 100, the texts ordered "10" < "9" < "unknown"; the
same after ``cast n to text``, with ``between``, and on decimal-comma text ``10,5``) is refused, as a text column of
dates is and as search's ranges refuse a text column, saying how many values are no number, with one, and the
conversion that makes the comparison work."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.options import RunOptions
from agents.params.transformer import TransformerParams
from agents.transform.resolve import resolve

NUMBERS = "id,n\n1,1\n2,2\n3,10\n4,9\n5,100\n6,unknown\n"
WHOLE = "id,n\n1,1\n2,2\n3,10\n4,9\n5,100\n"
EUROPEAN = "a;b\n1,5;x\n2,25;y\n10,5;z\n"
OPTIONS = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def run(tmp_path: Path, rows: str, commands: list[str], mode: str = "in_memory") -> list[str]:
    source = tmp_path / "primary.csv"
    source.write_text(rows, encoding="utf-8")
    out = tmp_path / "out"
    parameters = {"transformer": {"commands": commands}}
    run_tool(
        "transform-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None, run_options=OPTIONS[mode]
    )
    return (out / "transformed_data.csv").read_text(encoding="utf-8").splitlines()[1:]


@pytest.mark.parametrize("mode", list(OPTIONS))
@pytest.mark.parametrize(
    "command", ["keep rows where n > 9", "remove rows where n <= 9", "keep rows where n between 5 and 50"]
)
def test_a_text_column_ordered_against_a_number_is_refused_with_its_non_numbers(
    tmp_path: Path, command: str, mode: str
) -> None:
    with pytest.raises(InvalidParametersError) as refused:
        run(tmp_path, NUMBERS, [command], mode)
    message = refused.value.message
    assert "compare its values as text, not as numbers" in message
    assert "1 of its 6 values is no number, e.g. 'unknown'" in message
    assert "cast n to number and set invalid values to empty" in message
    assert refused.value.details["reason"] == "text_numbers"
    assert refused.value.details["position"] == command.index("n ")


def test_after_a_cast_to_text_the_number_comparison_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParametersError, match="compare its values as text, not as numbers") as refused:
        run(tmp_path, WHOLE, ["cast n to text", "keep rows where n > 9"])
    assert refused.value.details["field"] == "commands[1]"


def test_decimal_commas_are_named_with_the_conversion_that_reads_them(tmp_path: Path) -> None:
    with pytest.raises(InvalidParametersError) as refused:
        run(tmp_path, EUROPEAN, ["keep rows where a > 2"])
    message = refused.value.message
    assert "3 of its 3 values are no number, e.g. '1,5'" in message
    assert "decimal comma" in message and 'replace text "," with "." in a' in message
    assert "set invalid values to empty" not in message  # that conversion would empty every value


def test_the_conversion_it_names_makes_the_comparison_numeric(tmp_path: Path) -> None:
    kept = run(tmp_path, NUMBERS, ["cast n to number and set invalid values to empty", "keep rows where n > 9"])
    assert kept == ["3,10", "5,100"]
    kept = run(tmp_path, EUROPEAN, ['replace text "," with "." in a', "cast a to number", "keep rows where a > 2"])
    assert kept == ["2.25,y", "10.5,z"]


def test_text_against_text_and_equality_still_compare_text(tmp_path: Path) -> None:
    assert run(tmp_path, NUMBERS, ["keep rows where n > m"]) == ["6,unknown"]
    assert run(tmp_path, NUMBERS, ["keep rows where n = 10"]) == ["3,10"]
    assert run(tmp_path, NUMBERS, ["keep rows where n in (1, 100)"]) == ["1,1", "5,100"]
    assert run(tmp_path, WHOLE, ["cast n to text", "sort by n"]) == ["1,1", "3,10", "5,100", "2,2", "4,9"]


def test_a_json_operation_is_refused_before_any_data_is_read() -> None:
    params = TransformerParams.model_validate(
        {"operations": [{"op": "filter", "action": "keep", "where": {"column": "n", "cmp": ">=", "value": 9}}]}
    )
    with pytest.raises(InvalidParametersError, match="not as numbers") as refused:
        resolve(params, {"id": "Int64", "n": "String"})
    assert refused.value.details["field"] == "operations[0].where.column"
    assert resolve(params, {"id": "Int64", "n": "Int64"}).operations[0]["where"]["value"] == 9
