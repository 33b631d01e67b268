"""Golden values that read right (QA rows 3 and 8): a person's given name and surname survive together from one
record, so records with the two swapped never give "Jürgen, Jürgen" (the orientation the rest of the data uses
wins, and the choice is explained); ties go to the richer spelling (accents, proper case) rather than the
ASCII-folded or upper-case variant; a text date column written in several layouts comes out in its dominant
layout, and one that does not read unambiguously stays as written. Checked on ``survivorship.survive`` (both
of its aggregation paths) and through the real master chain."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN
from agents.master import survivorship
from agents.master.survivorship import RULES, survive

NAME_ROLES = {"first_name": "given_name", "last_name": "surname"}
GROUPED_RULES = [rule for rule in RULES if rule not in ("min", "max", "most_recent")]


def stacked(columns: dict[str, list[Any]]) -> pl.DataFrame:
    height = len(next(iter(columns.values())))
    return pl.DataFrame(
        {
            ROW_INDEX_COLUMN: list(range(1, height + 1)),
            SOURCE_COLUMN: ["primary"] * height,
            SOURCE_ROW_COLUMN: list(range(1, height + 1)),
            **columns,
        },
        schema_overrides={ROW_INDEX_COLUMN: pl.Int64, SOURCE_ROW_COLUMN: pl.Int64},
    )


def clusters_of(labels: list[int]) -> pl.DataFrame:
    frame = pl.DataFrame({ROW_INDEX_COLUMN: list(range(1, len(labels) + 1)), "label": labels})
    return frame.select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
        pl.col(ROW_INDEX_COLUMN).min().over("label").cast(pl.Int64).alias("cluster"),
    )


def swapped_people() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Four people entered twice, given name and surname swapped in the second record; the content order
    alone would put the swapped record of Ólafur and of Renée first ("S" < "Ó", "D" < "R")."""
    pairs = [("Jürgen", "Müller"), ("François", "Lefèvre"), ("Ólafur", "Sigurðsson"), ("Renée", "Dupré")]
    first, last, labels = [], [], []
    for index, (given, surname) in enumerate(pairs):
        first += [given, surname]
        last += [surname, given]
        labels += [index, index]
    # other people: the data uses Ólafur and Renée as given names, Sigurðsson and Dupré as surnames
    for index, (given, surname) in enumerate([("Ólafur", "Jónsson"), ("Anna", "Sigurðsson"), ("Renée", "Roux")]):
        first.append(given)
        last.append(surname)
        labels.append(100 + index)
    frame = stacked({"first_name": first, "last_name": last, "dob": ["1980-01-01"] * len(first)})
    return frame, clusters_of(labels)


def golden_names(golden: pl.DataFrame) -> list[tuple[str, str]]:
    return [(row["first_name"], row["last_name"]) for row in golden.filter(pl.col("record_count") > 1).to_dicts()]


@pytest.mark.parametrize("together", [True, False], ids=["one-group_by", "column-by-column"])
@pytest.mark.parametrize("rule", GROUPED_RULES)
def test_swapped_name_parts_survive_together(rule: str, together: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not together:
        monkeypatch.setattr(survivorship, "TOGETHER_ROWS", 0)
    frame, clusters = swapped_people()
    golden, provenance = survive(frame, clusters, {}, rule, {}, None, roles=NAME_ROLES)
    names = golden_names(golden)
    assert len(names) == 4
    for given, surname in names:
        assert given != surname  # the old per-column choice gave "Jürgen, Jürgen"
    if rule not in ("first", "last"):  # those follow file order; the others resolve the orientation
        # Jürgen and François by the content order, Ólafur and Renée by how the rest of the data uses them
        assert names == [("Jürgen", "Müller"), ("François", "Lefèvre"), ("Ólafur", "Sigurðsson"), ("Renée", "Dupré")]
    else:
        winners = frame.filter(pl.col(ROW_INDEX_COLUMN).is_in([1, 3, 5, 7] if rule == "first" else [2, 4, 6, 8]))
        assert names == list(zip(winners["first_name"], winners["last_name"], strict=True))
    merged = provenance.filter(pl.col("conflict"))
    by_column = {row["column"]: row["together_with"] for row in merged.to_dicts()}
    assert by_column == {"first_name": "last_name", "last_name": "first_name"}
    # both values of a golden record come from one record
    origin = merged.group_by("golden_id").agg(pl.col("source_row").n_unique().alias("rows"))
    assert origin["rows"].to_list() == [1] * origin.height


def test_the_group_is_shuffle_invariant() -> None:
    frame, clusters = swapped_people()
    golden, _ = survive(frame, clusters, {}, "most_complete", {}, None, roles=NAME_ROLES)
    order = list(range(frame.height))
    random.Random(5).shuffle(order)
    shuffled = frame[order].with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))
    relabelled = clusters_of([[0, 0, 1, 1, 2, 2, 3, 3, 100, 101, 102][index] for index in order])
    again, _ = survive(shuffled, relabelled, {}, "most_complete", {}, None, roles=NAME_ROLES)
    key = ["golden_id", "first_name", "last_name"]
    assert again.select(key).sort("golden_id").equals(golden.select(key).sort("golden_id"))


def test_columns_with_their_own_rules_are_not_grouped() -> None:
    frame, clusters = swapped_people()
    rules = {"first_name": "most_complete", "last_name": "max"}
    golden, provenance = survive(frame, clusters, rules, "most_complete", {}, None, roles=NAME_ROLES)
    assert provenance["together_with"].null_count() == provenance.height
    assert survivorship.column_groups(["first_name", "last_name"], NAME_ROLES, rules) == {}


def test_ties_go_to_the_richer_spelling() -> None:
    """QA row 8: "Jurgen"/"Jürgen", "WEISS"/"Weiß", "EMILIE.DUBOIS@MAIL.FR"/"emilie.dubois@mail.fr",
    "Maria Jose"/"María José", "GARCÍA"/"García", "AEroskobing"/"Ærøskøbing": equally long (as folded text),
    the accented / properly cased one survives whichever record sorts first."""
    pairs = {
        "first_name": [("Jurgen", "Jürgen"), ("Maria Jose", "María José"), ("AEroskobing", "Ærøskøbing")],
        "last_name": [("WEISS", "Weiß"), ("GARCÍA", "García"), ("JENSEN", "Jensen")],
        "email": [("EMILIE.DUBOIS@MAIL.FR", "emilie.dubois@mail.fr"), ("A@B.DE", "a@b.de"), ("X@Y.ES", "x@y.es")],
    }
    columns = {name: [value for pair in values for value in pair] for name, values in pairs.items()}
    frame = stacked(columns)
    roles = {**NAME_ROLES, "email": "email"}
    for rule in ("most_complete", "most_frequent", "quality_score"):
        golden, _ = survive(frame, clusters_of([0, 0, 1, 1, 2, 2]), {}, rule, {}, None, roles=roles)
        for name, values in pairs.items():
            assert golden[name].to_list() == [rich for _, rich in values], (rule, name)


@pytest.mark.parametrize("together", [True, False], ids=["one-group_by", "column-by-column"])
def test_a_date_column_in_several_layouts_comes_out_in_its_dominant_layout(
    together: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not together:
        monkeypatch.setattr(survivorship, "TOGETHER_ROWS", 0)
    born = ["1985-03-14", "14/03/1985", "19850314", "1992-07-30", "1970-11-02", "02/11/1970", "1988-01-09"]
    frame = stacked({"email": [f"p{i}@x.org" for i in (1, 1, 1, 2, 3, 3, 4)], "birth_date": born})
    clusters = clusters_of([1, 1, 1, 2, 3, 3, 4])
    golden, provenance = survive(
        frame,
        clusters,
        {},
        "most_complete",
        {},
        None,
        roles={"birth_date": "date_of_birth"},
        singleton_provenance=False,
    )
    assert golden["birth_date"].to_list() == ["1985-03-14", "1992-07-30", "1970-11-02", "1988-01-09"]
    assert golden.schema["birth_date"] == pl.String
    # the same date in three layouts is no conflict
    dates = provenance.filter(pl.col("column") == "birth_date")
    assert not dates["conflict"].any() and dates["value"].to_list() == ["1985-03-14", "1970-11-02"]
    assert golden["trust_score"].to_list() == [1.0] * 4
    # the dominant layout is the one most values are written in
    day_first = stacked(
        {"email": ["a", "a", "b", "c"], "birth_date": ["1985-03-14", "14/03/1985", "30/07/1992", "02/11/1970"]}
    )
    golden, _ = survive(day_first, clusters_of([1, 1, 2, 3]), {}, "most_complete", {}, None)
    assert golden["birth_date"].to_list() == ["14/03/1985", "30/07/1992", "02/11/1970"]


def test_a_date_column_that_does_not_read_unambiguously_stays_as_written() -> None:
    cases = {
        "a day/month tie": ["1985-03-14", "01/02/1985", "03/04/1999"],
        "a value that is no date": ["1985-03-14", "14/03/1985", "unknown"],
        "eight digits read two ways": ["1985-03-14", "14/03/1985", "01021985"],
        "one layout": ["1985-03-14", "1985-03-15", "1999-01-01"],
        "one layout, a day/month swap of it reading some values too": ["14/03/1985", "01/02/1985", "1/2/1990"],
        "a two-digit year (its century a guess)": ["1985-03-14", "14/03/85", "20/01/85"],
    }
    for case, values in cases.items():
        frame = stacked({"email": ["a", "a", "b"], "birth_date": values})
        golden, _ = survive(frame, clusters_of([1, 1, 2]), {}, "first", {}, None)
        assert golden["birth_date"].to_list() == [values[0], values[2]], case
        assert survivorship.date_layouts(frame, ["birth_date"]) == {}, case


def test_the_master_chain_keeps_name_parts_together_and_explains_it(tmp_path: Path) -> None:
    """QA row 3 end to end (swapped_names.csv): defaults, one file."""
    data = pl.DataFrame(
        {
            "first_name": ["Jürgen", "Müller", "François", "Lefèvre", "Anna"],
            "last_name": ["Müller", "Jürgen", "Lefèvre", "François", "Schmidt"],
            "dob": ["1982-10-07", "1982-10-07", "1978-05-05", "1978-05-05", "1990-01-01"],
            "postcode": ["34203", "34203", "21884", "21884", "10115"],
        }
    )
    data.write_csv(tmp_path / "primary.csv")
    result = run_tool(
        "master-my-data", [], {"primary.csv": tmp_path / "primary.csv"}, {}, tmp_path / "out", lambda *_: None
    )
    assert result["status"] == "success"
    master = pl.read_csv(tmp_path / "out" / "master_data.csv", infer_schema=False)
    assert master.select("first_name", "last_name").rows() == [
        ("Jürgen", "Müller"),
        ("François", "Lefèvre"),
        ("Anna", "Schmidt"),
    ]
    envelope = result["agents"]["golden-record-builder"]
    [group] = envelope["data"]["survivorship"]["column_groups"]
    assert group["group"] == "person_name" and group["columns"] == ["first_name", "last_name"]
    assert group["swapped_name_clusters"] == 2 and "swapped" in group["reason"]
    [issue] = [item for item in envelope["issues"] if item["issue_type"] == "swapped_name_parts"]
    assert issue["details"]["golden_records"] == 2
