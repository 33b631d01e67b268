"""The master chain's inputs: every source stacked into one frame, and the data contract.

Sources are the primary (label ``primary``) and each ``source_<label>.<ext>`` upload, in that order (the
others by label). Their columns are the union (a column a source lacks is null there; one spelled in
another case than in an earlier source takes the earlier spelling: :func:`align_columns`); a column typed
differently in two sources is numbers if both are numbers, else its text as written in every source
(:func:`_common_types`: a date never becomes a day number), so no value changes. Three bookkeeping
columns follow every row through the chain (agents.envelope): ``ROW_INDEX_COLUMN`` (1-based in the
stacked frame), ``SOURCE_COLUMN`` (the label) and ``SOURCE_ROW_COLUMN`` (1-based data row in its own file).

The contract (``schema.json`` or ``schema.yaml``) is a mapping with Agensium's keys (contract-enforcer);
YAML is read with ``yaml.safe_load`` (no object construction), and anything that is not a mapping is
refused with a sentence saying why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN
from agents.errors import InvalidFileError
from agents.layouts import text_of

PRIMARY_LABEL = "primary"
MAX_CONTRACT_BYTES = 1024 * 1024


def stack_sources(sources: Sequence[tuple[str, pl.DataFrame]]) -> pl.DataFrame:
    """``sources`` as (label, frame), stacked with the bookkeeping columns (module docstring)."""
    sources = _common_types(sources)
    numbered = [
        frame.with_columns(
            pl.lit(label, pl.String).alias(SOURCE_COLUMN),
            pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(SOURCE_ROW_COLUMN),
        )
        for label, frame in sources
    ]
    stacked = pl.concat(numbered, how="diagonal_relaxed") if len(numbered) > 1 else numbered[0]
    stacked = stacked.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
    data = [name for name in stacked.columns if name not in {ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN}]
    return stacked.select(ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, *data)


def _common_types(sources: Sequence[tuple[str, pl.DataFrame]]) -> list[tuple[str, pl.DataFrame]]:
    """A column typed differently in two sources, unless all are numbers (which widen losslessly enough: an
    integer and a float column are floats), becomes its text as written (``agents.layouts.text_of``) in every
    source: a date never turns into a day number, and no pair of types fails to stack."""
    dtypes: dict[str, set[pl.DataType]] = {}
    for _, frame in sources:
        for name, dtype in frame.schema.items():
            dtypes.setdefault(name, set()).add(dtype)
    mixed = {
        name for name, found in dtypes.items() if len(found) > 1 and not all(dtype.is_numeric() for dtype in found)
    }
    if not mixed:
        return list(sources)
    return [
        (
            label,
            frame.with_columns(
                text_of(pl.col(name), frame.schema[name]).alias(name) for name in mixed if name in frame.columns
            ),
        )
        for label, frame in sources
    ]


def align_columns(
    sources: Sequence[tuple[str, pl.DataFrame]],
) -> tuple[list[tuple[str, pl.DataFrame]], list[dict[str, str]]]:
    """Sources whose column names differ from an earlier source's only in case (``Name`` and ``name``,
    ``EMAIL`` and ``email``) renamed to the earlier spelling, so that they stack as one column; only where
    that is unambiguous (one earlier spelling, and no column of that spelling in the source already).
    Returns the sources and the renames (``{"source", "column", "renamed_to"}``)."""
    spelling: dict[str, str] = {}
    aligned: list[tuple[str, pl.DataFrame]] = []
    renames: list[dict[str, str]] = []
    for label, frame in sources:
        folded: dict[str, list[str]] = {}
        for name in frame.columns:
            folded.setdefault(name.casefold(), []).append(name)
        mapping = {}
        for key, names in folded.items():
            target = spelling.get(key)
            if target is not None and len(names) == 1 and names[0] != target and target not in frame.columns:
                mapping[names[0]] = target
        if mapping:
            frame = frame.rename(mapping)
            renames += [{"source": label, "column": old, "renamed_to": new} for old, new in mapping.items()]
        for key, names in folded.items():
            spelling.setdefault(key, mapping.get(names[0], names[0]))
        aligned.append((label, frame))
    return aligned, renames


def read_contract(path: Path, name: str) -> dict[str, Any]:
    """The data contract in ``path`` (upload name ``name``: ``schema.json`` or ``schema.yaml``)."""
    size = path.stat().st_size
    if size > MAX_CONTRACT_BYTES:
        raise InvalidFileError(
            f"{name}: {size:,} bytes; a data contract may be at most {MAX_CONTRACT_BYTES:,}", {"file": name}
        )
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="strict") if size else ""
        contract = json.loads(text) if name.lower().endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InvalidFileError(
            f"{name}: not a readable data contract ({_first_line(error)})", {"file": name}
        ) from error
    except UnicodeDecodeError as error:
        raise InvalidFileError(f"{name}: not UTF-8 text", {"file": name}) from error
    if not isinstance(contract, dict):
        raise InvalidFileError(
            f"{name}: a data contract is a mapping of required_columns, column_types, value_constraints, ...",
            {"file": name},
        )
    return contract


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
