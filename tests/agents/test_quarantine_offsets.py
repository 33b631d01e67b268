"""quarantine-agent's ``datetime`` type rule reads RFC 3339 timestamps with a UTC offset, as the rest of the product
does (agents.values.OFFSET_FORMATS, READ_FORMATS): ``2024-03-01T10:00:00+02:00``, ``...Z``, mixed offsets and
``+0530`` were quarantined as "not a datetime", in memory and streamed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from agents.clean import quarantine
from agents.envelope import ROW_INDEX_COLUMN
from agents.params.quarantine_agent import QuarantineAgentParams
from tests.agents.clean_support import framed
from tests.agents.streamed_support import assert_same_streamed_run, run_in_memory

OFFSETS = [
    "2024-03-01T10:00:00+02:00",
    "2024-03-01T10:00:00Z",
    "2024-03-01T10:00:00.250-05:00",
    "2024-03-01 10:00:00+0530",
    "2024-03-01T10:00+01:00",
    " 2024-03-02T23:59:59-08:00 ",
    "2024-03-01T10:00:00",  # no offset: read before too
    "2024-03-01",  # a date reads as a datetime
]
NOT_DATETIMES = ["2024-03-01T10:00:00+2", "2024-13-01T10:00:00+02:00", "yesterday", "2024-03-01T25:00:00Z"]


def _frame() -> pl.DataFrame:
    values = [*OFFSETS, *NOT_DATETIMES, None]
    return framed({"ts": values, "n": list(range(len(values)))})


PARAMS = QuarantineAgentParams.model_validate({"expected_schema": {"ts": "datetime"}})


def _quarantined(result: object) -> dict[int, str]:
    removed = result.removed  # type: ignore[attr-defined]
    assert removed is not None
    return dict(zip(removed[ROW_INDEX_COLUMN].to_list(), removed["reason"].to_list(), strict=True))


def test_offset_timestamps_are_datetimes() -> None:
    frame = _frame()
    result = run_in_memory(quarantine.run, frame, PARAMS)
    rows = frame[ROW_INDEX_COLUMN].to_list()
    bad = {rows[len(OFFSETS) + index]: value for index, value in enumerate(NOT_DATETIMES)}
    quarantined = _quarantined(result)
    assert set(quarantined) == set(bad)
    for row, value in bad.items():
        assert f"'{value}'" in quarantined[row] and "is not a datetime" in quarantined[row]
    assert result.frame is not None
    assert result.frame["ts"].to_list() == [*OFFSETS, None]


def test_a_date_is_still_no_offset_timestamp() -> None:
    """The ``date`` rule is unchanged: a timestamp, with an offset or not, is no date."""
    frame = framed({"d": ["2024-03-01", "2024-03-01T10:00:00+02:00", "2024-03-01T10:00:00Z"]})
    params = QuarantineAgentParams.model_validate({"expected_schema": {"d": "date"}})
    result = run_in_memory(quarantine.run, frame, params)
    assert sorted(_quarantined(result)) == frame[ROW_INDEX_COLUMN].to_list()[1:]


@pytest.mark.parametrize("spills", [True, False])
def test_the_streamed_run_reads_them_alike(tmp_path: Path, spills: bool) -> None:
    result = assert_same_streamed_run(quarantine.run, _frame(), PARAMS, tmp_path, 2, spills=spills)
    assert len(_quarantined(result)) == len(NOT_DATETIMES)
