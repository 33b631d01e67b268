"""Arithmetic and casts on a column of integers past Int64 (QA pass 8, D17: 20-digit ids read as Int128): ``id + 1``,
``abs``, ``-``, ``*`` and ``cast id to number`` crashed the transformer with Polars' strict-cast error, and the task
completed with no new version. A derived whole number is Int64 (resolution promises it): one that Int64 cannot hold is
refused naming the column, as any overflow is, and a cast names the values that do not convert; a division still
gives decimals, and a comparison reads the ids exactly."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError

BASE = 12345678901234567890  # past Int64 (9,223,372,036,854,775,807): read as Int128


def quiet(*_: object) -> None:
    return None


@pytest.fixture
def primary(tmp_path: Path) -> Path:
    path = tmp_path / "primary.csv"
    path.write_text("id,v\n" + "".join(f"{BASE + i},{i}\n" for i in range(5)), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "command", ["add column y = id + 1", "add column y = abs(id)", "add column y = id * 2", "add column y = id - v",
                "add column y = -id", "add column y = id"],
)  # fmt: skip
def test_a_whole_result_past_int64_is_refused_naming_the_column(primary: Path, tmp_path: Path, command: str) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        run_tool("transform-my-data", [], {"primary.csv": primary}, {"transformer": {"commands": [command]}},
                 tmp_path / "out", quiet)  # fmt: skip
    assert "of 'y'" in str(caught.value) and "do not fit a whole number" in str(caught.value)


def test_division_and_comparisons_of_such_ids_still_run(primary: Path, tmp_path: Path) -> None:
    commands = [f"keep rows where id >= {BASE + 3}", "add column half = id / 2"]
    result = run_tool("transform-my-data", [], {"primary.csv": primary}, {"transformer": {"commands": commands}},
                      tmp_path / "out", quiet)  # fmt: skip
    assert result["agents"]["transformer"]["status"] == "success"
    out = pl.read_csv(tmp_path / "out" / "transformed_data.csv", schema_overrides={"id": pl.String})
    assert out["id"].to_list() == [str(BASE + 3), str(BASE + 4)]
    assert out["half"].to_list() == pytest.approx([(BASE + 3) / 2, (BASE + 4) / 2])


@pytest.mark.parametrize("target", ["number", "integer"])
def test_a_cast_of_such_ids_to_a_number_names_the_values_that_do_not_convert(
    primary: Path, tmp_path: Path, target: str
) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        parameters = {"transformer": {"commands": [f"cast id to {target}"]}}
        run_tool("transform-my-data", [], {"primary.csv": primary}, parameters, tmp_path / "out", quiet)
    assert f"5 values of 'id' cannot be converted to {target}" in str(caught.value)
    assert str(BASE) in str(caught.value)
