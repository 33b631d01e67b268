"""A failure while agents.chain.run_tool writes a data output ends as a clear error naming the output, never as a raw
exception (the worker would end the task INTERNAL_ERROR): a Polars error about the data is the run's failure
(OutputNotWrittenError, AGENT_FAILED); an OSError (a full disk) stays an OSError, naming the output, which the worker
retries as a transient fault; a fault in the writer itself is reported the same way as a Polars error, and logged."""

from __future__ import annotations

import errno
import logging
import pickle
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import agents.chain
import agents.streamed
from agents.chain import OutputNotWrittenError, run_tool
from agents.errors import AgentError
from agents.options import RunOptions

RUNS = [  # tool, chain, parameters, the output whose writer fails
    ("clean-my-data", ["type-fixer", "duplicate-resolver"], {}, "cleaned_data.csv"),
    (
        "transform-my-data",
        ["transformer"],
        {"transformer": {"operations": [{"op": "rename", "mapping": {"name": "full_name"}}]}},
        "transformed_data.csv",
    ),
]
FAULTS = {
    "polars": pl.exceptions.ComputeError("cannot write this value"),
    "disk": OSError(errno.ENOSPC, "No space left on device"),
    # how Polars' own writers report a full disk
    "polars_disk": pl.exceptions.ComputeError("underlying IO error: No space left on device (os error 28)"),
    "bug": KeyError("oops"),
}


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "primary.csv"
    lines = ["id,name,amount,day", *(f"{i},n{i % 7},${i}.50,2024-01-{i % 28 + 1:02d}" for i in range(40))]
    path.write_text("\n".join([*lines, *lines[1:5]]) + "\n", encoding="utf-8")
    return path


def _run(tool: str, chain: list[str], parameters: dict[str, Any], csv: Path, out: Path, streamed: bool) -> Any:
    options = RunOptions(streaming_threshold_bytes=0 if streamed else None)
    return run_tool(tool, chain, {"primary.csv": csv}, parameters, out, lambda *_: None, run_options=options)


def _failing(fault: BaseException) -> Any:
    def write(*args: Any, **kwargs: Any) -> None:
        raise fault

    return write


def _break_writer(monkeypatch: pytest.MonkeyPatch, streamed: bool, fault: BaseException) -> None:
    if streamed:  # StreamFlow.write_data sinks the last spill to the CSV
        monkeypatch.setattr(agents.streamed, "sink_csv", _failing(fault))
    else:
        monkeypatch.setattr(agents.chain, "_write_frame_csv", _failing(fault))


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
@pytest.mark.parametrize(("tool", "chain", "parameters", "output"), RUNS, ids=[run[0] for run in RUNS])
def test_a_polars_error_while_writing_fails_the_run_naming_the_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, csv: Path, streamed: bool, tool: str, chain: list[str],
    parameters: dict[str, Any], output: str,
) -> None:  # fmt: skip
    _break_writer(monkeypatch, streamed, FAULTS["polars"])
    with pytest.raises(OutputNotWrittenError) as raised:
        _run(tool, chain, parameters, csv, tmp_path / "out", streamed)
    error = raised.value
    assert error.code == "AGENT_FAILED"
    assert error.message == f"{output} could not be written: ComputeError: cannot write this value"
    assert error.details == {"output": output}
    again = pickle.loads(pickle.dumps(error))  # it crosses the process pool
    assert (type(again), again.code, again.message) == (OutputNotWrittenError, "AGENT_FAILED", error.message)


@pytest.mark.parametrize("fault", ["disk", "polars_disk"])
@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
@pytest.mark.parametrize(("tool", "chain", "parameters", "output"), RUNS, ids=[run[0] for run in RUNS])
def test_a_full_disk_is_an_os_error_naming_the_output_not_the_inputs_fault(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, csv: Path, streamed: bool, tool: str, chain: list[str],
    parameters: dict[str, Any], output: str, fault: str,
) -> None:  # fmt: skip
    _break_writer(monkeypatch, streamed, FAULTS[fault])
    with pytest.raises(OSError) as raised:
        _run(tool, chain, parameters, csv, tmp_path / "out", streamed)
    error = raised.value
    assert not isinstance(error, AgentError)  # not INVALID_FILE nor any input error: the worker retries it
    assert error.errno == errno.ENOSPC
    assert str(error) == f"[Errno 28] {output} could not be written: No space left on device"
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.errno, str(again)) == (OSError, errno.ENOSPC, str(error))


@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "streamed"])
def test_a_fault_in_a_writer_is_reported_and_logged_not_raised_raw(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path, csv: Path, streamed: bool
) -> None:
    _break_writer(monkeypatch, streamed, FAULTS["bug"])
    with caplog.at_level(logging.ERROR, logger="agensium.agents"), pytest.raises(OutputNotWrittenError) as raised:
        _run("clean-my-data", ["type-fixer"], {}, csv, tmp_path / "out", streamed)
    assert raised.value.message == "cleaned_data.csv could not be written: an internal fault (KeyError: 'oops')"
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [KeyError]


def test_a_failing_quarantine_writer_names_quarantine_csv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, csv: Path
) -> None:
    monkeypatch.setattr(agents.streamed.StreamFlow, "write_quarantine", _failing(FAULTS["polars"]))
    with pytest.raises(OutputNotWrittenError, match=r"^quarantine\.csv could not be written: ComputeError"):
        _run("clean-my-data", ["duplicate-resolver"], {}, csv, tmp_path / "out", streamed=True)
