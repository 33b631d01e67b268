"""`agensium submit --sheet NAME` (QA: the CLI had no way to read another sheet than an XLSX's first): sent as the
reading option `inputs.primary.sheet` (API.md), merged into the --params file's parameters, sent inline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from service.client import UsageError, plan_submit
from tests.service import test_client_unit
from tests.service.test_client_unit import FakeApi, build_parser, run_fake_submit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def args(tmp_path: Path, *extra: str, name: str = "book.xlsx", params: str | None = None) -> argparse.Namespace:
    (tmp_path / name).write_bytes(b"PK\x03\x04 not read by the client")
    argv = ["submit", str(tmp_path / name), *extra]
    if params is not None:
        (tmp_path / "params.json").write_text(params, encoding="utf-8")
        argv += ["--params", str(tmp_path / "params.json")]
    return build_parser().parse_args(argv)


def test_sheet_becomes_the_primary_reading_option(tmp_path: Path) -> None:
    plan = plan_submit(args(tmp_path, "--sheet", "Data"))
    assert plan.parameters == {"inputs": {"primary": {"sheet": "Data"}}}
    assert plan.parameters_file is None


def test_sheet_is_merged_into_the_params_file(tmp_path: Path) -> None:
    given = {"unified-profiler": {"top_n": 5}, "inputs": {"primary": {"sheet": "Old", "null_tokens": []}}}
    plan = plan_submit(args(tmp_path, "--sheet", "2024", params=json.dumps(given)))
    assert plan.parameters == {
        "unified-profiler": {"top_n": 5},
        "inputs": {"primary": {"sheet": "2024", "null_tokens": []}},
    }


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("data.csv", None, "an .xlsx workbook only"),
        ("book.xlsx", "[1, 2]", "a JSON object"),
        ("book.xlsx", "{not json", "not valid JSON"),
        ("book.xlsx", '{"inputs": {"primary": "Data"}}', "a JSON object"),
    ],
)
def test_sheet_usage_errors(tmp_path: Path, name: str, params: str | None, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        plan_submit(args(tmp_path, "--sheet", "Data", name=name, params=params))


async def test_submit_sends_the_sheet_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = json.loads(json.dumps(test_client_unit.TOOLS))
    catalog["tools"][0]["inputs"][0]["content_types"] = {"xlsx": [XLSX, "application/octet-stream"]}
    monkeypatch.setattr(test_client_unit, "TOOLS", catalog)
    fake = FakeApi("COMPLETED")
    assert await run_fake_submit(fake, args(tmp_path, "--sheet", "Data", params='{"unified-profiler": {}}')) == 0
    create, upload_urls = fake.requests[1], fake.requests[2]
    assert create[2]["parameters"] == {"unified-profiler": {}, "inputs": {"primary": {"sheet": "Data"}}}
    assert upload_urls[2]["has_parameters"] is False
    assert set(fake.stored) == {"primary.xlsx"}


def test_baseline_sheet_becomes_the_baselines_reading_option(tmp_path: Path) -> None:
    (tmp_path / "before.xlsx").write_bytes(b"PK\x03\x04 not read by the client")
    given = {"inputs": {"primary": {"null_tokens": []}}}
    extra = ["--baseline", str(tmp_path / "before.xlsx"), "--sheet", "Sales", "--baseline-sheet", "Sales 2023"]
    plan = plan_submit(args(tmp_path, *extra, params=json.dumps(given)))
    assert plan.parameters == {
        "inputs": {"primary": {"null_tokens": [], "sheet": "Sales"}, "baseline": {"sheet": "Sales 2023"}}
    }
    only_baseline = plan_submit(args(tmp_path, "--baseline", str(tmp_path / "before.xlsx"), "--baseline-sheet", "B"))
    assert only_baseline.parameters == {"inputs": {"baseline": {"sheet": "B"}}}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--baseline-sheet", "B"], "no --baseline file"),
        (["--baseline", "BASE/before.csv", "--baseline-sheet", "B"], "an .xlsx workbook only"),
    ],
)
def test_baseline_sheet_usage_errors(tmp_path: Path, extra: list[str], problem: str) -> None:
    (tmp_path / "before.csv").write_text("a\n1\n")
    with pytest.raises(UsageError, match=problem):
        plan_submit(args(tmp_path, *[e.replace("BASE", str(tmp_path)) for e in extra]))
