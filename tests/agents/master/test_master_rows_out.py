"""A master-my-data run's dataset version is master_data.csv: its summary's rows_out (what /lineage shows of the
version) and columns_out are those of the golden records, not of the input rows. (The other data tools' rows_out:
tests/agents/transform/test_transform_chain.py.)"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from agents.chain import run_tool

PEOPLE = (
    "given_name,surname,email,date_of_birth\n"
    "Ann,Lee,ann.lee@x.com,1980-01-02\nAnn,Lee,ann.lee@x.com,1980-01-02\n"
    "Bob,Stone,bob.stone@y.org,1975-05-06\nBob,Stone,bob.stone@y.org,1975-05-06\n"
    "Cy,Ng,cy.ng@z.net,1990-09-10\nCy,Ng,cy.ng@z.net,1990-09-10\n"
)


def test_master_rows_out_are_the_golden_records(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    path.write_text(PEOPLE)
    out = tmp_path / "out"
    result = run_tool("master-my-data", [], {"primary.csv": path}, {}, out, lambda *_: None)
    assert all(agent["status"] == "success" for agent in result["agents"].values())
    golden = pl.read_csv(out / "master_data.csv", infer_schema=False)
    summary = result["summary"]
    assert golden.height == 3 and summary["rows"] == 6
    assert summary["dataset"]["name"] == "master_data.csv" and summary["dataset"]["rows"] == 3
    assert summary["rows_out"] == 3  # was 6: the input rows
    assert summary["columns_out"] == len(summary["dataset"]["columns"]) == golden.width
    assert summary["retention_percentage"] == 50.0
