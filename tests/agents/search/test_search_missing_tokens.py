"""search-my-data reads missing-value tokens as nulls (PRODUCT.md "Missing values"), in memory and streamed
(``streaming_threshold_bytes=0``), from the file and from the dataset kept as Parquet: a filter on null, a numeric
range, a sort and an aggregate see the numbers pandas sees (``pd.read_csv``'s default ``na_values``), search_result.csv
writes a null as an empty field, the read report says per column how many tokens became nulls, a code column with a
token stays text, and ``inputs.primary.null_tokens`` [] reads the tokens as text (the earlier behaviour)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agents.chain import run_tool
from agents.options import RunOptions
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.search import kept

TOOL = "search-my-data"
TOKENS = ["NA", "N/A", "null", "NaN", "", "#N/A"]


def flights(rows: int = 1500) -> str:
    """An id, a carrier, a delay and a distance with tokens among the numbers, a code with leading zeros and a token
    (text: a code), and a timestamp written without seconds with tokens."""
    lines = ["id,carrier,delay,distance,code,day"]
    for i in range(rows):
        delay = TOKENS[i % len(TOKENS)] if i % 7 == 0 else str((i * 37) % 200 - 20)
        distance = "N/A" if i % 13 == 0 else f"{(i * 53) % 900 + 100}.5"
        code = "NA" if i % 17 == 0 else f"{i % 40:03d}"
        day = "NULL" if i % 11 == 0 else f"2024-03-{i % 28 + 1:02d} {i % 24:02d}:{i % 60:02d}"
        lines.append(f"{i},{'ABC'[i % 3]},{delay},{distance},{code},{day}")
    return "\n".join(lines) + "\n"


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "primary.csv"
    path.write_text(flights(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def expected(csv: Path) -> pd.DataFrame:
    """The file as pandas reads it (its default na_values: the product's tokens among them), codes as text."""
    return pd.read_csv(csv, dtype={"code": str})


def search(
    directory: Path, csv: Path | None, parameters: dict[str, Any], options: RunOptions, agents: list[str] | None = None
) -> tuple[dict[str, Any], Path]:
    out = directory / "out"
    inputs = {"primary.csv": csv} if csv is not None else {}
    result = run_tool(TOOL, agents or [], inputs, parameters, out, ignore, run_options=options)
    json.dumps(result, allow_nan=False)
    assert result["status"] == "success", result["agents"]
    return result, out


def document(out: Path) -> dict[str, Any]:
    return json.loads((out / "search_result.json").read_text(encoding="utf-8"))


def ids(out: Path) -> list[int]:
    return pd.read_csv(out / "search_result.csv", dtype=str, keep_default_na=False)["id"].astype(int).tolist()


OPTIONS = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_filters_ranges_sorts_and_aggregates_see_numbers(
    tmp_path: Path, csv: Path, expected: pd.DataFrame, mode: str
) -> None:
    options = OPTIONS[mode]
    page = {"page_size": 1000}
    result, out = search(tmp_path / "null", csv, {"searcher": {"filters": {"delay": [None]}, **page}}, options)
    assert result["summary"]["rows_matched"] == int(expected["delay"].isna().sum()) > 0
    assert ids(out) == expected.loc[expected["delay"].isna(), "id"].tolist()
    by_column = result["summary"]["inputs"]["primary"]["missing_tokens"]["by_column"]
    as_written = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert (
        by_column["delay"]
        == as_written["delay"][as_written["delay"] != ""].value_counts().loc[TOKENS[:4] + TOKENS[5:]].to_dict()
    )
    assert by_column["distance"] == {"N/A": int(expected["distance"].isna().sum())}

    ranged = {"ranges": [{"column": "delay", "min": 60}], "sort": [{"column": "delay", "descending": True}], **page}
    result, out = search(tmp_path / "range", csv, {"searcher": ranged}, options, ["searcher"])
    chosen = expected[expected["delay"] >= 60].sort_values("delay", ascending=False, kind="stable")
    assert result["summary"]["rows_matched"] == len(chosen)
    assert ids(out) == chosen["id"].tolist()

    everything = {"searcher": {"sort": [{"column": "distance"}], **page}}
    result, out = search(tmp_path / "sorted", csv, everything, options, ["searcher"])
    assert ids(out) == expected.sort_values("distance", kind="stable", na_position="last")["id"].tolist()
    written = pd.read_csv(out / "search_result.csv", dtype=str, keep_default_na=False)
    truth = expected.set_index("id")["delay"].loc[written["id"].astype(int)].isna().to_numpy()
    assert truth.any() and (written["delay"][truth] == "").all()  # every token written back as an empty field
    assert set(written["code"]) - {""} == set(expected["code"].dropna())  # codes keep their zeros
    assert written["day"].str.fullmatch(r"(2024-03-\d\d \d\d:\d\d)?").all()  # in their layout

    aggregator = {
        "group_by": ["carrier"],
        "metrics": [{"fn": "count"}, {"fn": "sum", "column": "delay"}, {"fn": "mean", "column": "distance"}],
    }
    result, out = search(tmp_path / "grouped", csv, {"searcher": page, "aggregator": aggregator}, options)
    groups = {group["carrier"]: group for group in document(out)["aggregate"]["groups"]}
    for carrier, rows in expected.groupby("carrier"):
        assert groups[carrier]["count"] == len(rows)
        assert groups[carrier]["sum_delay"] == pytest.approx(rows["delay"].sum())
        assert groups[carrier]["mean_distance"] == pytest.approx(rows["distance"].mean())


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_the_kept_dataset_is_read_with_the_tokens(tmp_path: Path, csv: Path, expected: pd.DataFrame, mode: str) -> None:
    """A later search reads the kept dataset (no file given) as the first read the file; a dataset kept before the
    tokens were read (its read report without ``missing_tokens``: the values as written) gets them as it is read; one
    kept with other tokens is not read (the file is read again)."""
    keep = tmp_path / "keep"
    keep.mkdir()
    options = RunOptions(keep_dir=keep, streaming_threshold_bytes=OPTIONS[mode].streaming_threshold_bytes)
    parameters = {"searcher": {"ranges": [{"column": "delay", "min": 60}], "page_size": 1000}}
    first, first_out = search(tmp_path / "first", csv, parameters, options, ["searcher"])
    assert (keep / kept.DATASET_NAME).is_file()
    shutil.rmtree(keep / kept.MATCHES_DIR, ignore_errors=True)  # the dataset answers, not the matches
    later, later_out = search(tmp_path / "later", None, parameters, options, ["searcher"])
    assert later["summary"]["inputs"]["primary"]["kept"] == "dataset"
    assert later["summary"]["rows_matched"] == first["summary"]["rows_matched"] == int((expected["delay"] >= 60).sum())
    assert (later_out / "search_result.csv").read_bytes() == (first_out / "search_result.csv").read_bytes()

    as_written = tmp_path / "as_written"
    as_written.mkdir()
    old = RunOptions(keep_dir=as_written, streaming_threshold_bytes=options.streaming_threshold_bytes)
    raw = {"inputs": {"primary": {"null_tokens": []}}, "searcher": {"page_size": 1000}}
    search(tmp_path / "raw", csv, raw, old, ["searcher"])
    dataset = kept.read_dataset(as_written)
    assert dataset is not None  # the values as written: a spill always, else read with no tokens
    assert kept.tokens_applied(dataset.read_report) == (None if dataset.streamed else ())
    assert dataset.reads_with(DEFAULT_NULL_TOKENS) == dataset.streamed
    if not dataset.streamed:  # rewrite it as one kept before the tokens were read: no missing_tokens
        report = {key: value for key, value in dataset.read_report.items() if key != kept.MISSING_KEY}
        frame = dataset.read()
        (as_written / kept.DATASET_NAME).unlink()
        kept.write_dataset(frame, report, dataset.source_name, as_written)
    shutil.rmtree(as_written / kept.MATCHES_DIR, ignore_errors=True)
    again, again_out = search(tmp_path / "again", None, parameters, old, ["searcher"])
    assert again["summary"]["rows_matched"] == first["summary"]["rows_matched"]
    assert (again_out / "search_result.csv").read_bytes() == (first_out / "search_result.csv").read_bytes()

    if not dataset.streamed:  # kept with the tokens read as text: not read with the default tokens
        other = tmp_path / "other"
        other.mkdir()
        raw_options = RunOptions(keep_dir=other)
        search(tmp_path / "raw_kept", csv, raw, raw_options, ["searcher"])
        reread, reread_out = search(tmp_path / "reread", csv, parameters, raw_options, ["searcher"])
        assert reread["summary"]["inputs"]["primary"].get("kept") is None
        assert (reread_out / "search_result.csv").read_bytes() == (first_out / "search_result.csv").read_bytes()


def test_a_later_page_kept_with_other_tokens_is_not_reused(tmp_path: Path, csv: Path, expected: pd.DataFrame) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    options = RunOptions(keep_dir=keep)
    selection = {"filters": {"delay": [None]}, "page_size": 10}
    first, out = search(tmp_path / "first", csv, {"searcher": selection}, options, ["searcher"])
    directory = keep / first["kept"]["matches"]
    meta = json.loads((directory / kept.META_NAME).read_text())
    meta["csv"] = {"size": (out / "search_result.csv").stat().st_size, "sha256": "0" * 64}
    del meta["inputs"]["primary"][kept.MISSING_KEY]  # as kept before search read the tokens
    (directory / kept.META_NAME).write_text(json.dumps(meta))
    later, _ = search(tmp_path / "later", csv, {"searcher": {**selection, "page": 2}}, options, ["searcher"])
    assert later["summary"]["inputs"]["primary"].get("kept") != "matches"
    assert later["summary"]["rows_matched"] == int(expected["delay"].isna().sum())


def test_null_tokens_empty_reads_the_tokens_as_text(tmp_path: Path) -> None:
    primary = tmp_path / "primary.csv"
    primary.write_text("name,amount\nA,10.5\nB,NA\nC,20\nD,-5\n", encoding="utf-8")
    parameters: dict[str, Any] = {"searcher": {"filters": {"amount": [None]}}}
    result, out = search(tmp_path / "default", primary, parameters, RunOptions())
    assert result["summary"]["rows_matched"] == 1
    assert (out / "search_result.csv").read_text(encoding="utf-8") == "name,amount\nB,\n"
    assert result["summary"]["inputs"]["primary"]["missing_tokens"]["retyped_columns"] == {"amount": "Float64"}
    parameters["inputs"] = {"primary": {"null_tokens": []}}
    result, out = search(tmp_path / "as_text", primary, parameters, RunOptions())
    assert result["summary"]["rows_matched"] == 0


def test_a_file_without_tokens_is_read_as_before(tmp_path: Path) -> None:
    """A cleaned dataset (no tokens left, nulls as empty fields) reads and writes back the same."""
    text = "id,code,amount,day\n1,007,1.5,2024-01-02\n2,,,\n3,100,2.25,2024-02-03\n"
    primary = tmp_path / "primary.csv"
    primary.write_text(text, encoding="utf-8")
    result, out = search(tmp_path, primary, {}, RunOptions())
    assert (out / "search_result.csv").read_text(encoding="utf-8") == text
    assert result["summary"]["inputs"]["primary"]["missing_tokens"]["values_nulled"] == 0
    assert [c["dtype"] for c in result["summary"]["dataset"]["columns"]] == ["Int64", "String", "Float64", "Date"]
