"""QA pass 7, #5, the command line side: `agensium search TASK --filter grp=` sends the empty value (which the
searcher reads as the empty cells, tests/agents/search/test_search_empty_filter_value.py), its help says how to ask
for the empty cells, and a search that matches nothing prints "no rows match", not "rows 0 of 0, page 1 of 0"."""

from __future__ import annotations

import argparse

import pytest

from service.cli import _sort_values_joined, build_parser
from service.search_client import aggregator_parameters, position, print_groups, print_page, searcher_parameters


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(_sort_values_joined(argv))


def test_an_empty_filter_value_is_sent_as_the_empty_value() -> None:
    args = parsed("search", "T", "--filter", "grp=", "--filter", "grp=A")
    assert searcher_parameters(args) == {"filters": {"grp": ["", "A"]}}
    args = parsed("aggregate", "T", "--by", "city", "--filter", "grp=")
    assert aggregator_parameters(args)["filters"] == {"grp": [""]}


@pytest.mark.parametrize("command", ["search", "aggregate"])
def test_the_help_says_how_to_ask_for_the_empty_cells(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parsed(command, "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "an empty VALUE (COL=) keeps the rows whose COL is empty (a missing value)" in text


def test_no_match_prints_no_rows_match(capsys: pytest.CaptureFixture[str]) -> None:
    empty = {"total_rows": 0, "page": 1, "pages": 0, "page_size": 50, "rows": [], "columns": ["id", "grp"]}
    print_page(empty, cached=False)
    assert capsys.readouterr().out.strip() == "no rows match"
    print_page(empty, cached=True)
    assert capsys.readouterr().out.strip() == "no rows match (cached)"
    groups = {"total_groups": 0, "page": 1, "pages": 0, "page_size": 50, "groups": [], "group_keys": ["grp"]}
    print_groups(groups, cached=False)
    assert capsys.readouterr().out.strip() == "no groups match"


def test_the_position_of_a_page_is_unchanged() -> None:
    assert position("rows", 1234, 2, 25, 50, 50) == "rows 51–100 of 1,234, page 2 of 25"
    assert position("rows", 23, 9, 5, 0, 5) == "rows 0 of 23, page 9 of 5"  # a page beyond the last
