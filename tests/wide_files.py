"""Inputs at the edges of what the service takes: files of thousands of columns, JSON nested deeply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

KINDS = ("int", "float", "text", "date", "email")
WORDS = np.array(["alpha", "beta", "gamma", "delta", "Ann Lee", "x y"])


def wide_frame(columns: int, rows: int, seed: int = 0) -> pl.DataFrame:
    """``columns`` columns of five kinds in turn (integers, decimals, words, ISO dates as text, e-mail
    addresses), named ``<kind>_<position>``, about 5 % of the cells null."""
    rng = np.random.default_rng(seed)
    series = []
    for index in range(columns):
        kind = KINDS[index % len(KINDS)]
        if kind == "int":
            values: list[object] = rng.integers(-100, 1000, rows).tolist()
        elif kind == "float":
            values = rng.uniform(-1000, 1000, rows).round(3).tolist()
        elif kind == "text":
            values = rng.choice(WORDS, rows).tolist()
        elif kind == "date":
            values = [
                f"2023-{month:02d}-{day:02d}"
                for month, day in zip(rng.integers(1, 13, rows), rng.integers(1, 29, rows), strict=True)
            ]
        else:
            values = [f"user{number}@example.com" for number in rng.integers(1, 1000, rows)]
        missing = rng.random(rows) < 0.05
        series.append(
            pl.Series(f"{kind}_{index}", [None if gone else value for value, gone in zip(values, missing, strict=True)])
        )
    return pl.DataFrame(series)


def write_wide_csv(path: Path, columns: int, rows: int, seed: int = 0) -> pl.DataFrame:
    """Write ``wide_frame(columns, rows, seed)`` as CSV to ``path``; returns the frame."""
    frame = wide_frame(columns, rows, seed)
    frame.write_csv(path)
    return frame


def deep_json(depth: int, *, ndjson: bool = False, records: int = 2) -> str:
    """Records whose field ``a`` nests ``depth`` objects (``{"b": {"b": ... 1}}``), as a JSON array or NDJSON."""
    value = '{"b": ' * depth + "1" + "}" * depth
    record = '{"a": ' + value + ', "x": 1}'
    if ndjson:
        return "".join(record + "\n" for _ in range(records))
    return "[" + ",".join([record] * records) + "]"
