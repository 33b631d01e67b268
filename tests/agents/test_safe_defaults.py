"""PRODUCT.md "Defaults that never destroy data": the clean chain with no parameters fixes only the
unambiguous (whitespace, numbers stored as text, missing-value tokens, exact duplicates) and proposes every
judgment call; Agensium's parameters still apply those calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import registry
from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs
from agents.options import RunOptions

ROWS = 600
DUPLICATES = [5, 77, 300, 301, 599]  # rows repeated at the end of the file
OUTLIER_ROWS = {10: 9_000.0, 250: -7_500.0}


def ignore_progress(percent: int, agent: str | None, message: str) -> None:
    pass


def planted_rows() -> list[dict[str, Any]]:
    """A file with known problems: text numbers, tokens, stray spaces, case variants, outliers, exact
    duplicates and gaps that an imputation would fill."""
    carriers = ["UA", "JFK", "McDonald's", "dl"]
    rows = []
    for i in range(ROWS):
        rows.append(
            {
                "id": str(i),
                "carrier": carriers[i % 4] if i % 9 else f"  {carriers[i % 4]} ",
                "amount": "NA" if i % 13 == 0 else f"${1000 + i:,}.50" if i % 2 else f"{i}.25",
                "score": "N/A" if i % 17 == 0 else str(OUTLIER_ROWS.get(i, 50.0 + (i % 21) / 2)),
                "city": "Boston" if i % 3 == 0 else "boston" if i % 3 == 1 else "NULL",
                "note": "" if i % 5 == 0 else f"Note {i}",
            }
        )
    return rows + [dict(rows[row]) for row in DUPLICATES]


def write_planted(tmp_path: Path) -> Path:
    path = tmp_path / "primary.csv"
    pl.DataFrame(planted_rows()).write_csv(path)
    return path


def clean(tmp_path: Path, parameters: dict[str, Any]) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame]:
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.csv": write_planted(tmp_path)}, parameters, out, ignore_progress)
    cleaned = pl.read_csv(out / "cleaned_data.csv", infer_schema=False)
    quarantine = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    return result, cleaned, quarantine


def test_the_default_clean_chain_fixes_only_the_unambiguous(tmp_path: Path) -> None:
    result, cleaned, quarantine = clean(tmp_path, {})
    summary = result["summary"]
    assert result["status"] == "success"
    # Only the exact duplicates are removed, each naming the row it repeats.
    assert cleaned.height == ROWS and summary["rows_out"] == ROWS
    assert quarantine["row_index"].cast(pl.Int64).to_list() == list(range(ROWS + 1, ROWS + 1 + len(DUPLICATES)))
    # Equal once read; the agent sees values, not the file's text, and earlier steps rewrote cells of every column
    # these rows fill (tokens, spaces), so it does not call them exact (test_duplicate_reasons.py).
    assert quarantine["reason"].str.contains("(equal after reading values)", literal=True).all()
    assert cleaned["id"].to_list() == [str(i) for i in range(ROWS)]
    # Nothing invented: every gap stays a gap, and tokens became gaps.
    assert summary["values_invented"] == 0
    assert cleaned["amount"].null_count() == len(range(0, ROWS, 13))
    assert cleaned["score"].null_count() == len(range(0, ROWS, 17))
    assert cleaned["city"].null_count() == ROWS // 3
    # Numbers stored as text are numbers; outliers are kept, values as written. Amounts with a currency
    # symbol are a judgement call (the unit would be lost): kept as written, the conversion proposed.
    assert cleaned["amount"].to_list()[1] == "$1,001.50" and cleaned["amount"].to_list()[2] == "2.25"
    assert cleaned["score"].to_list()[10] == "9000.0" and cleaned["score"].to_list()[250] == "-7500.0"
    # Case kept, stray spaces gone.
    assert set(cleaned["carrier"].to_list()) == {"UA", "JFK", "McDonald's", "dl"}
    assert set(cleaned["city"].drop_nulls().to_list()) == {"Boston", "boston"}
    missing = result["agents"]["type-fixer"]["data"]["missing_tokens"]["by_column"]
    rows = planted_rows()  # the type fixer runs before the duplicates go
    assert missing == {
        "amount": {"NA": sum(row["amount"] == "NA" for row in rows)},
        "score": {"N/A": sum(row["score"] == "N/A" for row in rows)},
        "city": {"NULL": sum(row["city"] == "NULL" for row in rows)},
        "note": {"": sum(row["note"] == "" for row in rows)},  # quoted empty fields
    }
    # Every judgment call is proposed with the parameters that apply it.
    proposed = {item["proposal_id"]: item for item in summary["proposals"]}
    assert proposed["outlier-remover:remove_outlier_rows"]["rows_affected"] >= len(OUTLIER_ROWS)
    assert proposed["field-standardization:lowercase_text"]["apply"] == {
        "field-standardization": {"case_strategy": "lowercase"}
    }
    assert "null-handler:apply_suggested_strategies" in proposed
    assert proposed["type-fixer:convert_currency"]["apply"] == {"type-fixer": {"convert_currency": True}}
    assert proposed["type-fixer:convert_currency"]["columns"] == ["amount"]
    summary_sheet = openpyxl.load_workbook(tmp_path / "out" / "cleaning_report.xlsx", read_only=True)["Summary"]
    texts = {cell for row in summary_sheet.iter_rows(values_only=True) for cell in row if isinstance(cell, str)}
    assert "Proposed changes" in texts  # the Excel Summary lists them (README)
    assert any('"removal_strategy": "remove"' in text for text in texts)
    changed = summary["cells_changed_by_agent"]
    assert changed["null-handler"] == changed["outlier-remover"] == changed["duplicate-resolver"] == 0


def test_agensium_parameters_still_remove_outliers_and_lowercase(tmp_path: Path) -> None:
    parameters = {
        "outlier-remover": {"removal_strategy": "remove"},
        "field-standardization": {"case_strategy": "lowercase"},
        "null-handler": {"apply_suggested_strategies": True},
        "type-fixer": {"convert_currency": True},
    }
    result, cleaned, quarantine = clean(tmp_path, parameters)
    removed = dict(zip(quarantine["row_index"].to_list(), quarantine["agent_id"].to_list(), strict=True))
    assert removed[str(10 + 1)] == removed[str(250 + 1)] == "outlier-remover"
    assert "9000.0" not in cleaned["score"].to_list()
    assert set(cleaned["carrier"].to_list()) == {"ua", "jfk", "mcdonald's", "dl"}
    assert cleaned["amount"].null_count() == 0 and result["summary"]["values_invented"] > 0
    assert cleaned["amount"].to_list()[1] == "1001.50"  # the currency symbol dropped, as asked; the cents kept
    assert not [item for item in result["summary"]["proposals"] if item["agent_id"] == "outlier-remover"]


# QA D3: a European file (";" separated, decimal commas in "prix"): "1,500" may be 1.5.
EURO = "p;poids;prix\nA;1,500;12,99\nB;2,250;5,49\nC;3,000;7,00\n"
# QA D8: percentages, amounts, yes/no, numbers the reader keeps as codes, and plain numbers as text.
CALLS = (
    "k,pct,amount,yn,w,plain,qty,flag\n"
    '1,5%,"$1,200.50",Y,+5, 3.5 ,"1,234",true\n'
    '2,10%,$3.00,N,-0,12,"2,000",false\n'
    "3,15%,$4,Y,007.5,7,9,true\n"
)
JUDGEMENT_CALLS = ["convert_ambiguous_thousands", "convert_currency", "convert_percentages", "convert_codes"]


@pytest.mark.parametrize("threshold", [None, 0], ids=["in_memory", "streamed"])
def test_the_default_clean_chain_proposes_the_type_fixer_judgement_calls(tmp_path: Path, threshold: int | None) -> None:
    options = RunOptions(streaming_threshold_bytes=threshold)
    outputs: dict[str, str] = {}
    for name, text, parameters in [
        ("euro", EURO, {}),
        ("calls", CALLS, {}),
        ("euro_applied", EURO, {"type-fixer": dict.fromkeys(JUDGEMENT_CALLS, True)}),
        ("euro_decimal", EURO, {"type-fixer": {"convert_decimal_commas": True}}),
        ("calls_applied", CALLS, {"type-fixer": dict.fromkeys([*JUDGEMENT_CALLS, "convert_yes_no"], True)}),
    ]:
        source = tmp_path / f"{name}.csv"
        source.write_text(text, encoding="utf-8")
        out = tmp_path / name
        result = run_tool(
            "clean-my-data", [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=options
        )
        assert result["status"] == "success"
        assert bool(result["summary"]["inputs"]["primary"].get("streamed")) is (threshold == 0)
        outputs[name] = (out / "cleaned_data.csv").read_text(encoding="utf-8")
        proposed = {
            item["action"]: item["apply"] for item in result["summary"]["proposals"] if item["agent_id"] == "type-fixer"
        }
        if name == "euro":
            assert proposed == {"convert_decimal_commas": {"type-fixer": {"convert_decimal_commas": True}}}
        if name == "calls":
            assert list(proposed) == ["convert_currency", "convert_percentages", "convert_codes", "convert_yes_no"]
        if name.endswith(("applied", "decimal")):
            assert proposed == {}
    # Nothing read as a judgement call is changed by default: "1,500" stays as written, not 1500 (1000 times
    # 1.5 when the comma is a decimal mark); plain numbers as text are numbers, written as they were ("12", not
    # "12.0"); "1,234" groups thousands as "$1,200.50" in the same file shows; "12,99" (QA D4) can only be 12.99.
    assert outputs["euro"] == 'p,poids,prix\nA,"1,500",12.99\nB,"2,250",5.49\nC,"3,000",7.00\n'
    assert outputs["calls"] == (
        "k,pct,amount,yn,w,plain,qty,flag\n"
        '1,5%,"$1,200.50",Y,+5,3.5,1234,true\n'
        "2,10%,$3.00,N,-0,12,2000,false\n"
        "3,15%,$4,Y,007.5,7,9,true\n"
    )
    # The parameters apply them.
    assert outputs["euro_applied"] == "p,poids,prix\nA,1500,12.99\nB,2250,5.49\nC,3000,7.00\n"
    assert outputs["euro_decimal"] == "p,poids,prix\nA,1.500,12.99\nB,2.250,5.49\nC,3.000,7.00\n"
    assert outputs["calls_applied"] == (
        "k,pct,amount,yn,w,plain,qty,flag\n"
        "1,5,1200.50,true,5,3.5,1234,true\n"  # amounts keep their cents, as most of them were written
        "2,10,3.00,false,-0,12,2000,false\n"
        "3,15,4.00,true,7.5,7,9,true\n"
    )


# ---------------------------------------------------------------------------------------------------------
# property: no default run removes a row that is not an exact duplicate, or invents a value

CLEAN_AGENTS = list(registry.tool("clean-my-data").default_chain)
cells = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "NA", "n/a", "NULL", "x", "X", " x ", "1", "1.5", "$2", "2024-01-05", "01/02/2024"]),
    st.integers(-5, 5).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda value: f"{value:.3f}"),
    st.sampled_from(["a@b.com", "A@B.com", "yes", "no", "Boston", "boston"]),
)


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    width = draw(st.integers(1, 4))
    height = draw(st.integers(1, 30))
    columns: dict[str, list[Any]] = {
        f"c{index}": draw(st.lists(cells, min_size=height, max_size=height)) for index in range(width)
    }
    schema: dict[str, pl.DataType] = dict.fromkeys(columns, pl.String())
    for index in range(draw(st.integers(0, 2))):  # typed numbers, with gaps and extremes
        numbers = st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([1e9, -1e9]))
        columns[f"n{index}"] = draw(st.lists(numbers, min_size=height, max_size=height))
        schema[f"n{index}"] = pl.Float64()
    if draw(st.booleans()):  # repeat some rows: exact duplicates
        picks = draw(st.lists(st.integers(0, height - 1), max_size=5))
        columns = {name: values + [values[pick] for pick in picks] for name, values in columns.items()}
    frame = pl.DataFrame(columns, schema=schema)
    return frame.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), agent_id=st.sampled_from(CLEAN_AGENTS))
def test_no_default_run_removes_a_distinct_row_or_invents_a_value(frame: pl.DataFrame, agent_id: str) -> None:
    spec = registry.agent(agent_id)
    run = registry.load_run(spec)
    result = run(AgentInputs(frame, "primary.csv"), registry.parse_parameters(agent_id, None), lambda f, m: None)
    after = frame if result.frame is None else result.frame
    data = [name for name in frame.columns if name != ROW_INDEX_COLUMN]
    kept = after.select(ROW_INDEX_COLUMN)
    gone = frame.join(kept, on=ROW_INDEX_COLUMN, how="anti")
    if gone.height:  # every removed row equals a kept row on every column, as read
        survivors = frame.join(kept, on=ROW_INDEX_COLUMN, how="semi").select(data)
        unmatched = gone.select(data).join(survivors.unique(), on=data, how="anti", nulls_equal=True)
        assert unmatched.height == 0, f"{agent_id} removed rows that are not exact duplicates"
    both = frame.join(after, on=ROW_INDEX_COLUMN, how="inner", suffix="__after")
    for name in data:
        if name not in after.columns:
            continue
        invented = both.filter(pl.col(name).is_null() & pl.col(f"{name}__after").is_not_null())
        assert invented.height == 0, f"{agent_id} filled the empty cells of '{name}'"


@pytest.mark.parametrize("agent_id", CLEAN_AGENTS)
def test_every_clean_agent_default_is_listed(agent_id: str) -> None:
    assert registry.parse_parameters(agent_id, None) is not None


AREA_CODES = "name,area,ext\nAnn,(212),(12)\nBob,(415),(7)\nCid,(312),(45)\nDee,(646),(3)\n"


@pytest.mark.parametrize("threshold", [None, 0], ids=["in_memory", "streamed"])
def test_the_default_clean_chain_keeps_parentheses_as_written(tmp_path: Path, threshold: int | None) -> None:
    """QA5 D1: "(212)" may be an area code: kept as written, the accounting reading proposed (applied with
    convert_accounting_negatives)."""
    options = RunOptions(streaming_threshold_bytes=threshold)
    written: dict[str, tuple[dict[str, Any], Path]] = {}
    for name, text, parameters in [
        ("codes", AREA_CODES, {}),
        ("negatives", AREA_CODES, {"type-fixer": {"convert_accounting_negatives": True}}),
    ]:
        source = tmp_path / f"{name}.csv"
        source.write_text(text, encoding="utf-8")
        out = tmp_path / name
        result = run_tool(
            "clean-my-data", [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=options
        )
        assert result["status"] == "success"
        written[name] = (result, out)
    result, out = written["codes"]
    assert (out / "cleaned_data.csv").read_text(encoding="utf-8") == AREA_CODES
    (proposed,) = [item for item in result["summary"]["proposals"] if item["agent_id"] == "type-fixer"]
    assert proposed["apply"] == {"type-fixer": {"convert_accounting_negatives": True}}
    assert "area: '(212)' would become -212" in proposed["description"]
    _, out = written["negatives"]
    assert (out / "cleaned_data.csv").read_text(encoding="utf-8").splitlines()[1] == "Ann,-212,-12"
