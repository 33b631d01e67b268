"""Ordering a text column against a date (QA: ``keep rows where date > 2008-01-01`` on "Jan 1 2000", "Mar 1 2010"
kept every row: the texts were ordered, silently) is refused with the conversion that makes it work."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError

ROWS = "id,date\n1,Jan 1 2000\n2,Mar 1 2010\n3,Sep 1 2009\n4,Feb 1 2005\n"


def run(tmp_path: Path, commands: list[str]) -> list[str]:
    source = tmp_path / "primary.csv"
    source.write_text(ROWS, encoding="utf-8")
    out = tmp_path / "out"
    parameters = {"transformer": {"commands": commands}}
    run_tool("transform-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None)
    return (out / "transformed_data.csv").read_text(encoding="utf-8").splitlines()[1:]


@pytest.mark.parametrize(
    "command", ["keep rows where date > 2008-01-01", "keep rows where date between 2001-01-01 and 2009-12-31"]
)
def test_a_text_column_ordered_against_a_date_is_refused(tmp_path: Path, command: str) -> None:
    with pytest.raises(InvalidParametersError, match="compare its values as text, not as dates") as refused:
        run(tmp_path, [command])
    assert refused.value.details.get("reason") == "type_mismatch"


def test_the_conversion_it_names_makes_the_comparison_work(tmp_path: Path) -> None:
    kept = run(tmp_path, ['convert date to date using format "%b %d %Y"', "keep rows where date > 2008-01-01"])
    assert [line.split(",")[0] for line in kept] == ["2", "3"]


def test_text_still_compares_with_text(tmp_path: Path) -> None:
    assert [line.split(",")[0] for line in run(tmp_path, ["keep rows where date > M"])] == ["2", "3"]
