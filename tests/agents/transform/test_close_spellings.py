"""A column name is read by a close spelling only when it is a typing slip, never another word, and never in a command
that removes rows or columns (QA8 D14: ``remove rows where name is null`` on a file with ``game`` removed rows by
``game``; likewise ``state``/``stage``, ``date``/``data``, ``page``/``age``, ``post``/``cost``). Such a command is
refused with "did you mean ...?"; a command that removes nothing (a sort, a fill, a rename) reads ``emial`` as
``email`` (two letters swapped) or ``adress`` as ``address`` (a letter missing), and says so. A plural is the same
word everywhere (``years`` is ``year``), unless another column is as close."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.params.transformer import TransformerParams
from agents.transform.resolve import resolve


def resolved(commands: list[str], schema: dict[str, str]) -> tuple[list[dict[str, object]], list[list[str]]]:
    result = resolve(TransformerParams.model_validate({"commands": commands}), schema)
    return result.operations, result.notes


@pytest.mark.parametrize(
    ("command", "column", "other"),
    [
        ("remove rows where name is null", "name", "game"),
        ("remove rows where state = A", "state", "stage"),
        ("remove rows where date is null", "date", "data"),
        ("remove rows where page > 2", "page", "age"),
        ("remove rows where post > 2", "post", "cost"),
        ("keep rows where name = chess", "name", "game"),
        ("drop column name", "name", "game"),
        ("keep columns name", "name", "game"),
        ("remove duplicates of name", "name", "game"),
        ("remove rows where emial is null", "emial", "email"),  # a typo, but rows are removed: the exact name
        ("drop column adress", "adress", "address"),
        ("keep rows where v > column nmae", "nmae", "name"),
    ],
)
def test_a_command_that_removes_rows_or_columns_reads_no_close_spelling(command: str, column: str, other: str) -> None:
    with pytest.raises(InvalidParametersError) as refused:
        resolved([command], {other: "String", "v": "Int64"})
    assert refused.value.details["reason"] == "unknown_column"
    assert refused.value.details["suggestions"][0] == other
    assert refused.value.message.startswith(f"no column '{column}'; did you mean '{other}'")
    assert refused.value.details["position"] == command.index(column)


@pytest.mark.parametrize(
    ("command", "column", "other"),
    [
        ("sort by name", "name", "game"),
        ("fill missing state with X", "state", "stage"),
        ("sort by date", "date", "data"),
        ("rename page to p", "page", "age"),
        ("sort by post", "post", "cost"),
        ("lowercase nome", "nome", "name"),
        ("sort by customer_game", "customer_game", "customer_name"),  # a letter replaced, in a long name too
    ],
)
def test_another_word_is_never_read_as_a_typo(command: str, column: str, other: str) -> None:
    with pytest.raises(InvalidParametersError) as refused:
        resolved([command], {other: "String", "v": "Int64"})
    assert refused.value.details["reason"] == "unknown_column"
    assert refused.value.details["suggestions"][0] == other
    assert f"no column '{column}'; did you mean '{other}'" in refused.value.message


@pytest.mark.parametrize(
    ("command", "column", "written"),
    [
        ("sort by emial", "email", "emial"),
        ("fill missing adress with unknown", "address", "adress"),
        ("rename quantiy to qty", "quantity", "quantiy"),
        ("lowercase nmae", "name", "nmae"),
        ("sort by custmer_nmae", "customer_name", "custmer_nmae"),  # two slips in a long name
        ("trim addresss", "address", "addresss"),
    ],
)
def test_a_typing_slip_is_read_where_nothing_is_removed_and_noted(command: str, column: str, written: str) -> None:
    schema = {"email": "String", "address": "String", "quantity": "Int64", "name": "String", "customer_name": "String"}
    operations, notes = resolved([command], schema)
    assert column in str(operations[0])
    assert notes == [[f"column '{written}' read as '{column}' (closest spelling)"]]


def test_case_and_separators_still_resolve_in_a_removing_command() -> None:
    operations, notes = resolved(
        ["remove rows where Signup Date is null", "drop column UNIT-PRICE"],
        {"signup_date": "Date", "unit_price": "Int64"},
    )
    assert operations[0]["where"]["column"] == "signup_date"  # type: ignore[index]
    assert operations[1]["columns"] == ["unit_price"]
    assert notes[0] == ["column 'Signup Date' read as 'signup_date' (ignoring case and separators)"]


def test_typo_edits() -> None:
    from agents.transform.resolve import typo_edits  # noqa: PLC0415 - new with the rule

    assert typo_edits("emial", "email") == 1
    assert typo_edits("adress", "address") == 1
    assert typo_edits("name", "game") == float("inf")
    assert typo_edits("years", "year") == float("inf")
    assert typo_edits("page", "age") == float("inf")


def test_the_service_file_is_refused_end_to_end(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text("game,v\nchess,1\n,2\n", encoding="utf-8")
    parameters = {"transformer": {"commands": ["remove rows where name is null"]}}
    with pytest.raises(InvalidParametersError, match="did you mean 'game'"):
        run_tool("transform-my-data", [], {"primary.csv": source}, parameters, tmp_path / "out", lambda *_: None)
    assert not (tmp_path / "out" / "transformed_data.csv").exists()


@pytest.mark.parametrize(
    ("command", "written", "column"),
    [("remove rows where years < 2022", "years", "year"), ("remove duplicate emails", "emails", "email"),
     ("drop column addresses", "addresses", "address"), ("sort by prices", "prices", "price")],
)  # fmt: skip
def test_a_plural_is_the_same_column_even_where_rows_are_removed(command: str, written: str, column: str) -> None:
    schema = {"year": "Int64", "email": "String", "address": "String", "price": "Float64"}
    operations, notes = resolved([command], schema)
    assert column in str(operations[0])
    assert notes == [[f"column '{written}' read as '{column}' (ignoring a plural ending)"]]


def test_a_plural_beside_another_close_column_is_refused() -> None:
    with pytest.raises(InvalidParametersError) as caught:
        resolved(["remove rows where emails is null"], {"email": "String", "emails_2": "String", "mails": "String"})
    assert "emails" in str(caught.value)


@pytest.mark.parametrize(
    ("command", "schema"),
    [
        ("remove rows where bu = A", {"bus": "String"}),
        ("remove rows where new = A", {"news": "String"}),
        ("drop column statu", {"status": "String"}),
    ],
)
def test_a_name_is_never_read_as_the_plural_a_column_is(command: str, schema: dict[str, str]) -> None:
    with pytest.raises(InvalidParametersError):
        resolved([command], schema)
