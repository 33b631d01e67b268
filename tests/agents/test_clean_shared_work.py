"""Work the clean agents share or skip (issue 15), each against the agent doing it itself:

- the cleanse-previewer's quartiles (``QUARTILES_ARTIFACT``) taken by the outlier-remover for a column it gets
  unchanged (``common.known_quartiles``): the same bounds, bit for bit, as ranking its values again; refused for
  a changed column, one with an infinity, or a zero quartile;
- the duplicate-resolver, null-handler and outlier-remover handing their input on as it came when they changed
  nothing (the chain then compares no cell), the same values as the frame they built before;
- the chain's primary in one chunk per column for clean-my-data."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from agents.chain import run_tool
from agents.clean import duplicates, nulls, outliers, previewer
from agents.clean.common import QUARTILES_ARTIFACT, Quartiles, known_quartiles
from agents.envelope import AgentInputs
from agents.params.cleanse_previewer import CleansePreviewerParams
from agents.params.duplicate_resolver import DuplicateResolverParams
from agents.params.null_handler import NullHandlerParams
from agents.params.outlier_remover import OutlierRemoverParams
from tests.agents.clean_support import ROW
from tests.agents.test_clean_quantile_paths import awkward_frame
from tests.agents.test_clean_speed_paths import assert_same


def bits(value: float | None) -> bytes | None:
    return None if value is None else struct.pack("<d", value)


def measured_frame(seed: int, n: int = 500) -> pl.DataFrame:
    """Integers and floats with nulls, NaN, signed zeros and infinities (awkward_frame), an integer measurement
    and a row index, in one chunk per column as the chain hands it on."""
    rng = np.random.default_rng(seed)
    frame = awkward_frame(seed, n).with_columns(pl.Series("m", rng.integers(0, 1000, n)))
    return frame.with_columns(pl.int_range(1, n + 1, dtype=pl.Int64).alias(ROW)).rechunk()


def run(module: Any, frame: pl.DataFrame, params: Any, artifacts: dict[str, Any] | None = None) -> Any:
    return module.run(AgentInputs(frame, "primary.csv", artifacts=artifacts or {}), params, lambda _f, _m: None)


@pytest.mark.parametrize("seed", range(16))
def test_outlier_remover_with_the_previewers_quartiles_is_the_same(seed: int) -> None:
    frame = measured_frame(seed)
    preview = run(previewer, frame, CleansePreviewerParams())
    shared = preview.artifacts.get(QUARTILES_ARTIFACT)
    assert shared and set(shared) <= set(frame.columns)
    for strategy in ("flag", "remove", "impute_median"):
        params = OutlierRemoverParams(removal_strategy=strategy)  # type: ignore[arg-type]
        alone = run(outliers, frame, params)
        given = run(outliers, frame, params, {QUARTILES_ARTIFACT: shared})
        assert_same(given, alone)


@pytest.mark.parametrize("seed", range(16))
def test_known_quartiles_are_the_outlier_removers_own(seed: int) -> None:
    frame = measured_frame(seed)
    columns = [name for name in frame.columns if name != ROW]
    shared = run(previewer, frame, CleansePreviewerParams()).artifacts[QUARTILES_ARTIFACT]
    known = known_quartiles(frame, columns, shared)
    for name in ("i", "m"):  # integers are taken, unless a quartile is zero
        assert (name in known) == (shared[name].low != 0 and shared[name].high != 0)
    assert "c2" not in known  # it holds infinities: the previewer ranked them, the outlier-remover does not
    params = OutlierRemoverParams()
    expected = outliers.compute_bounds(frame, columns, params)
    for item in expected:
        if item.column in known:
            q1, q3 = known[item.column]
            assert (bits(q1), bits(q3)) == (bits(item.statistics["q1"]), bits(item.statistics["q3"]))


def test_known_quartiles_refused_where_not_certain() -> None:
    frame = pl.DataFrame({"a": [1, 2, 3, 4, 50], "z": [0, 0, 0, 1, 2], "f": [1.0, 2.0, float("inf"), 3.0, 4.0]})
    shared = {name: Quartiles(frame[name], 2.0, 4.0) for name in frame.columns}
    shared["z"] = Quartiles(frame["z"], 0.0, 1.0)  # a zero quartile: its sign could differ
    assert known_quartiles(frame, frame.columns, shared) == {"a": (2.0, 4.0)}
    changed = frame.with_columns(pl.col("a").replace(50, 51))
    assert known_quartiles(changed, ["a"], shared) == {}
    assert known_quartiles(frame.with_columns(pl.col("a").cast(pl.Int32)), ["a"], shared) == {}
    assert known_quartiles(frame.head(4), ["a"], shared) == {}
    assert known_quartiles(frame, ["a"], None) == {}
    assert known_quartiles(frame, ["a"], {"a": (2.0, 4.0)}) == {}


def test_agents_that_change_nothing_hand_their_input_on() -> None:
    frame = measured_frame(3).with_columns(pl.int_range(0, 500).alias("id"))  # no repeated row
    result = run(duplicates, frame, DuplicateResolverParams())
    assert result.frame is frame
    result = run(outliers, frame, OutlierRemoverParams())
    assert result.frame is frame
    result = run(nulls, frame, NullHandlerParams())  # proposes, fills nothing
    assert result.frame is frame
    # in two chunks (not the chain's frame): the duplicate-resolver rechunks as before
    two = pl.concat([frame.head(200), frame.tail(300)], rechunk=False)
    result = run(duplicates, two, DuplicateResolverParams())
    assert result.frame is not two and all(column.n_chunks() == 1 for column in result.frame.iter_columns())


def test_clean_chain_hands_its_agents_one_chunk_per_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.csv"
    rows = 20_000
    pl.DataFrame(
        {"a": range(rows), "b": [f"t{i % 97}" for i in range(rows)], "c": [i * 0.5 for i in range(rows)]}
    ).write_csv(path)
    seen: list[list[int]] = []
    original = previewer.run

    def spy(inputs: AgentInputs, params: Any, progress: Any) -> Any:
        seen.append([column.n_chunks() for column in inputs.primary.iter_columns()])
        return original(inputs, params, progress)

    monkeypatch.setattr(previewer, "run", spy)  # the registry looks the run function up when it runs
    result = run_tool(
        "clean-my-data", ["cleanse-previewer"], {"primary.csv": path}, {}, tmp_path / "out", lambda *_: None
    )
    assert result["status"] == "success"
    assert seen and all(count == 1 for count in seen[0])
