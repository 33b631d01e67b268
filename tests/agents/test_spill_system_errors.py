"""A spill that cannot be written (the disk full, a quota, an I/O error) fails with the OSError it is, never with an
InvalidFileError blaming the user's file ("could not be read as Parquet", "could not be parsed as CSV"): the worker
retries such a fault later (worker.runner.is_transient) instead of telling the user that the file is bad."""

from __future__ import annotations

import errno
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents import spill
from agents.chain import run_tool
from agents.options import RunOptions
from agents.spill import spill_file, system_error

DISK_FULL = "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
FILES: dict[str, Callable[[Path], object]] = {
    "primary.csv": lambda path: path.write_bytes(b"a,b\n1,x\n2,y\n"),
    "primary.parquet": lambda path: pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(path),
    "primary.ndjson": lambda path: path.write_bytes(b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'),
    "primary.jsonl": lambda path: path.write_bytes(b'{"a": 1}\n{"a": [1, 2]}\n'),  # read through a text copy
}


def _failing_sink(failure: BaseException, only: str | None = None) -> Callable[..., None]:
    real = pl.LazyFrame.sink_parquet

    def sink_parquet(self: pl.LazyFrame, path: Any, *args: Any, **kwargs: Any) -> Any:
        if only is None or Path(path).name == only:
            raise failure
        return real(self, path, *args, **kwargs)

    return sink_parquet


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, "No space left on device"), pl.exceptions.ComputeError(DISK_FULL)],
    ids=["OSError", "Polars error"],
)
@pytest.mark.parametrize("only", [None, "spill.parquet"], ids=["every write", "the spill's write"])
def test_a_full_disk_is_an_os_error_not_a_bad_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, failure: BaseException, only: str | None
) -> None:
    source = tmp_path / name
    FILES[name](source)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", _failing_sink(failure, only))
    with pytest.raises(OSError) as raised:
        spill_file(source, name, tmp_path / "spill.parquet")
    assert raised.value.errno == errno.ENOSPC
    assert "No space left on device" in str(raised.value)
    assert pickle.loads(pickle.dumps(raised.value)).errno == errno.ENOSPC  # crosses the process pool as it is
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # intermediates removed


def test_a_full_disk_while_writing_the_text_copy_of_an_ndjson_is_an_os_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "primary.ndjson"
    source.write_bytes(b'{"a": 1}\n{"a": [1, 2]}\n')

    def write_ndjson_as_text(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spill, "write_ndjson_as_text", write_ndjson_as_text)
    with pytest.raises(OSError) as raised:
        spill_file(source, "primary.ndjson", tmp_path / "spill.parquet")
    assert raised.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["primary.ndjson"]


def test_only_errors_of_the_system_are_os_errors() -> None:
    found = system_error(pl.exceptions.ComputeError(DISK_FULL))
    assert isinstance(found, OSError) and found.errno == errno.ENOSPC and found.strerror == "No space left on device"
    assert system_error(pl.exceptions.ComputeError("parquet: File out of specification: bad page header")) is None
    assert system_error(OSError("unexpected end of file")) is None  # no errno: a reader's complaint about a file
    quota = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert system_error(quota) is quota


@pytest.mark.parametrize("name", ["primary.csv", "primary.ndjson"])
def test_a_streamed_run_on_a_full_disk_fails_with_the_os_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """run_tool lets the OSError out as it is (no INVALID_FILE envelope, no "could not be read"): the worker retries
    it as a transient fault (worker.runner.is_transient), then reports it as an internal error."""
    source = tmp_path / name
    FILES[name](source)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", _failing_sink(pl.exceptions.ComputeError(DISK_FULL)))
    out = tmp_path / "out"
    out.mkdir()
    options = RunOptions(streaming_threshold_bytes=0)
    with pytest.raises(OSError) as raised:
        run_tool("clean-my-data", ["quarantine-agent"], {name: source}, {}, out, lambda *_: None, run_options=options)
    assert raised.value.errno == errno.ENOSPC
