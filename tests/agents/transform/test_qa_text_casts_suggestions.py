"""QA pass on transform-my-data: ``contains`` ignores case as search's keywords do (``case-sensitive`` asks for the
case as written), ``concat`` skips empty parts as Excel's TEXTJOIN does, a misspelled keyword gets a "did you mean",
and a cast to date that meets another layout says which format to give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import AgentInputs
from agents.errors import InvalidParametersError
from agents.params.transformer import TransformerParams
from agents.transform import transformer
from agents.transform.resolve import resolve

TOOL = "transform-my-data"
PEOPLE = """\
id,name,first,middle,last,signed
1,John Smith,John,,Smith,05/01/2024
2,jane smith,Jane,Q,Doe,13/01/2024
3,SMITHERS,,,Smithers,2024-01-03
4,Bob Jones,,,,14/02/2024
"""


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def transform(tmp_path: Path, **parameters: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    primary = tmp_path / "primary.csv"
    primary.write_text(PEOPLE, encoding="utf-8")
    result = run_tool(TOOL, [], {"primary.csv": primary}, {"transformer": parameters}, tmp_path / "out", ignore)
    json.dumps(result, allow_nan=False)
    written = pl.read_csv(tmp_path / "out" / "transformed_data.csv", infer_schema_length=0)
    return result, written.to_dicts()


# ---------------------------------------------------------------------------------------------------- contains


def test_contains_ignores_case_unless_the_command_asks_for_it(tmp_path: Path) -> None:
    """QA: ``name contains "smith"`` missed "John Smith" (search's keywords ignore case; the command did not)."""
    result, rows = transform(tmp_path, commands=['keep rows where name contains "smith"'])
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    assert result["summary"]["transformations"] == ["Kept 3 rows where name contains smith (ignoring case) (dropped 1)"]

    _, rows = transform(tmp_path, commands=["keep rows where name contains smith case-sensitive"])
    assert [row["id"] for row in rows] == ["2"]
    _, rows = transform(tmp_path, commands=["remove rows where name starts with SMITH"])
    assert [row["id"] for row in rows] == ["1", "2", "4"]
    _, rows = transform(tmp_path, commands=["keep rows where name ends with SMITH, case sensitive"])
    assert rows == []


def test_equality_and_json_operations_keep_the_case_as_written(tmp_path: Path) -> None:
    """Whole values compare exactly unless ``ignoring case`` (as search's filters); a JSON operation's
    ``case_sensitive`` keeps its documented default, true."""
    _, rows = transform(tmp_path, commands=["keep rows where last = smith"])
    assert rows == []
    operation = {"op": "filter", "action": "keep", "where": {"column": "name", "cmp": "contains", "value": "smith"}}
    _, rows = transform(tmp_path, operations=[operation])
    assert [row["id"] for row in rows] == ["2"]


# ---------------------------------------------------------------------------------------------------- concat


def derived(frame: pl.DataFrame, expression: str) -> list[str | None]:
    params = TransformerParams.model_validate(
        {"operations": [{"op": "derive", "column": "out", "expression": expression}]}
    )
    result = transformer.run(AgentInputs(frame, "primary.csv"), params, lambda fraction, message: None)
    assert result.frame is not None
    return list(result.frame["out"].to_list())


NAMES = pl.DataFrame(
    {
        "first": ["John", "Jane", None, None, "Ann", "  "],
        "middle": ["Q", None, None, None, "", None],
        "last": ["Smith", "Doe", "Smithers", None, None, "Lee"],
        "id": [1, 2, None, None, 5, 6],
    }
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (  # an empty part leaves no doubled, leading or trailing separator; every part empty: missing
            "concat(first, ' ', middle, ' ', last)",
            ["John Q Smith", "Jane Doe", "Smithers", None, "Ann", "   Lee"],
        ),
        ("concat(last, ', ', first)", ["Smith, John", "Doe, Jane", "Smithers", None, "Ann", "Lee,   "]),
        ("concat(first, last)", ["JohnSmith", "JaneDoe", "Smithers", None, "Ann", "  Lee"]),
        # text before the first and after the last part is written whenever a part is
        ("concat('ID-', id)", ["ID-1", "ID-2", None, None, "ID-5", "ID-6"]),
        (
            "concat(last, concat(' (', id, ')'))",  # nested: the parenthesised id goes with the id
            ["Smith (1)", "Doe (2)", "Smithers", None, " (5)", "Lee (6)"],
        ),
        ("concat(trim(first), '-', middle)", ["John-Q", "Jane", None, None, "Ann", None]),
    ],
)
def test_concat_skips_empty_parts(expression: str, expected: list[str | None]) -> None:
    """QA: a missing part made the whole row missing (``John`` + missing middle + ``Smith`` gave nothing); skipping it
    naively would give ``John  Smith``. As TEXTJOIN(" ", TRUE, ...): the empty parts (missing, or empty text) and
    their separators are skipped."""
    assert derived(NAMES, expression) == expected


def test_concat_of_a_csv_with_missing_parts(tmp_path: Path) -> None:
    _, rows = transform(tmp_path, commands=["add column full = concat(first, ' ', middle, ' ', last)"])
    assert [row["full"] for row in rows] == ["John Smith", "Jane Q Doe", "Smithers", None]


# ---------------------------------------------------------------------------------------------------- suggestions

SCHEMA = {"id": "Int64", "name": "String", "amount": "Float64", "signup": "Date"}


def refused(command: str) -> InvalidParametersError:
    with pytest.raises(InvalidParametersError) as caught:
        resolve(TransformerParams(commands=[command]), SCHEMA)
    return caught.value


@pytest.mark.parametrize(
    ("command", "reason", "word", "suggestion"),
    [
        ("cast amount to integr", "syntax", "integr", "'integer'"),
        ("convert amount to strng", "syntax", "strng", "'string'"),
        ("cast amount to txt", "syntax", "txt", "'text'"),
        ("remove rows wher id > 1", "syntax", "wher", "'where'"),
        ("deduplicate on id keeping lst", "syntax", "lst", "'last'"),
        ("keep rows where name contans x", "syntax", "contans", "'contains'"),
        ("keep rows where name startswith x", "syntax", "startswith", "'starts with'"),
        ("keep rows where id greter than 1", "syntax", "greter", "'greater'"),
        ("sort by id descnding", "unknown_column", "descnding", "descending"),
        ("remove colum name", "unknown_column", "colum", "column"),
        ("fill missing amount with medain", "type_mismatch", "medain", "median"),
    ],
)
def test_a_misspelled_keyword_gets_a_did_you_mean(command: str, reason: str, word: str, suggestion: str) -> None:
    """QA: ``cast x to integr`` listed six expected words (not the one meant), ``name contans x`` said the command
    ended too early, ``sort by id descnding`` looked for a column 'id descnding': each now says which keyword was
    meant, at the misspelled word."""
    error = refused(command)
    details = error.details
    assert details["reason"] == reason
    assert details["position"] == command.index(word)
    assert details["suggestions"][0] == suggestion
    assert f"did you mean {suggestion if suggestion.startswith(chr(39)) else repr(suggestion)}" in error.message


@pytest.mark.parametrize(
    ("command", "reason", "suggestions"),
    [  # what was already suggested stays so
        ("delte rows where id > 1", "unknown_operation", ["delete"]),
        ("keep rows where nme = x", "unknown_column", ["name"]),
        ("add column x = uper(name)", "unknown_function", ["upper"]),
        ("cast amount to money", "syntax", ["'a'"]),  # no keyword near: what fits, and no "did you mean"
    ],
)
def test_other_suggestions_are_kept(command: str, reason: str, suggestions: list[str]) -> None:
    error = refused(command)
    assert error.details["reason"] == reason
    assert error.details["suggestions"][: len(suggestions)] == suggestions
    if reason == "syntax":
        assert "did you mean" not in error.message


# ---------------------------------------------------------------------------------------------------- cast to date


def failed_cast(tmp_path: Path, **parameters: Any) -> InvalidParametersError:
    primary = tmp_path / "primary.csv"
    primary.write_text(PEOPLE, encoding="utf-8")
    with pytest.raises(InvalidParametersError) as caught:
        run_tool(TOOL, [], {"primary.csv": primary}, {"transformer": parameters}, tmp_path / "out", ignore)
    return caught.value


def test_a_cast_to_date_says_which_format_to_give(tmp_path: Path) -> None:
    """QA: "3 values of 'signed' cannot be converted to date" said nothing of the layout expected nor of the format
    that reads them."""
    error = failed_cast(tmp_path, commands=["cast signed to date"])
    assert error.message.startswith(
        "3 values of 'signed' do not read as dates in the layout YYYY-MM-DD "
        '(for example "05/01/2024", "13/01/2024", "14/02/2024"); they read in the layout "%d/%m/%Y": give it as the '
        'format (cast signed to date format "%d/%m/%Y")'
    )
    assert error.details["reason"] == "invalid_values"
    assert error.details["suggestions"] == ["%d/%m/%Y"]


def test_a_json_cast_gets_the_json_format_and_a_wrong_format_is_named(tmp_path: Path) -> None:
    operation = {"op": "cast", "columns": ["signed"], "to": "date", "format": "%m/%d/%Y"}
    error = failed_cast(tmp_path, operations=[operation])
    assert 'do not read as dates in the layout "%m/%d/%Y"' in error.message
    assert '"format": "%d/%m/%Y"' in error.message
    assert error.details["field"] == "operations[0]"
