"""Write a mixed-type CSV for the profiler benchmark: ``python bench/gen_csv.py ROWS PATH [--seed N]``.

15 columns: integer id, ints, floats with nulls, negatives and zeros, low-cardinality strings,
e-mails, names, ISO dates and timestamps, booleans. Vectorised with NumPy and Polars (no row loops);
1,000,000 rows is about 137 MB. ``--columns 16`` adds a Poisson ``visits`` column (the earlier layout).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

FIRST_NAMES = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Chris",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
]
CATEGORIES = ["electronics", "books", "garden", "toys", "grocery", "fashion", "sports", "health"]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "ES", "IT", "NL"]
STATUSES = ["active", "pending", "closed", "suspended"]
DOMAINS = ["example.com", "mail.org", "corp.net", "inbox.io"]


def _with_nulls(rng: np.random.Generator, series: pl.Series, share: float) -> pl.Series:
    mask = pl.Series(rng.random(len(series)) < share)
    return pl.select(pl.when(mask).then(None).otherwise(series)).to_series().alias(series.name)


def generate(rows: int, seed: int = 42, columns: int = 15) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    epoch_day = np.datetime64("2014-01-01", "D")
    epoch_second = np.datetime64("2014-01-01T00:00:00", "s")
    first = pl.Series(FIRST_NAMES).gather(rng.integers(0, len(FIRST_NAMES), rows))
    last = pl.Series(LAST_NAMES).gather(rng.integers(0, len(LAST_NAMES), rows))
    user_number = pl.Series(rng.integers(0, rows // 2 + 1, rows))  # ~50 % repeated e-mails
    frame = pl.DataFrame(
        {
            "id": np.arange(1, rows + 1, dtype=np.int64),
            "age": rng.integers(18, 90, rows),
            "income": np.round(rng.lognormal(10.5, 0.6, rows), 2),
            "score": np.round(rng.normal(50, 15, rows), 3),
            "balance": np.round(rng.normal(1000, 2500, rows), 2),
            "quantity": rng.poisson(2.0, rows),
            "rating": np.round(rng.uniform(1, 5, rows), 1),
            "category": pl.Series(CATEGORIES).gather(rng.integers(0, len(CATEGORIES), rows)),
            "country": pl.Series(COUNTRIES).gather(rng.zipf(1.6, rows).clip(1, len(COUNTRIES)) - 1),
            "status": pl.Series(STATUSES).gather(rng.integers(0, len(STATUSES), rows)),
            "first_name": first,
            "last_name": last,
            "user_number": user_number,
            "signup_date": (epoch_day + rng.integers(0, 3650, rows)).astype("datetime64[ms]"),
            "last_login": (epoch_second + rng.integers(0, 3650 * 86400, rows)).astype("datetime64[ms]"),
            "is_active": rng.random(rows) < 0.7,
        }
    )
    frame = frame.with_columns(
        (
            pl.col("first_name").str.to_lowercase()
            + "."
            + pl.col("last_name").str.to_lowercase()
            + pl.col("user_number").cast(pl.String)
            + "@"
            + pl.Series(DOMAINS).gather(rng.integers(0, len(DOMAINS), rows))
        ).alias("email"),
        (pl.col("first_name") + " " + pl.col("last_name")).alias("full_name"),
    ).drop("first_name", "last_name", "user_number")
    frame = frame.with_columns(
        _with_nulls(rng, frame["income"], 0.05),
        _with_nulls(rng, frame["rating"], 0.05),
        _with_nulls(rng, frame["status"], 0.05),
        _with_nulls(rng, frame["email"], 0.02),
    )
    frame = frame.with_columns(pl.col("signup_date").dt.date())
    visits = pl.Series("visits", rng.poisson(0.4, frame.height))
    return frame.select(
        "id",
        "age",
        "income",
        "score",
        "balance",
        "quantity",
        "rating",
        "category",
        "country",
        "status",
        "email",
        "full_name",
        "signup_date",
        "last_login",
        "is_active",
        *([visits] if columns > 15 else []),
    )


def write_csv(path: Path, rows: int, seed: int = 42, columns: int = 15, chunk_rows: int = 1_000_000) -> None:
    """Write ``rows`` rows in chunks of ``chunk_rows`` (memory stays that of one chunk, so a multi-GB file
    can be written): chunk k uses seed ``seed + k`` and continues the ``id`` sequence."""
    with path.open("wb") as handle:
        for start in range(0, rows, chunk_rows):
            count = min(chunk_rows, rows - start)
            chunk = generate(count, seed + start // chunk_rows, columns).with_columns(pl.col("id") + start)
            chunk.write_csv(handle, include_header=start == 0, datetime_format="%Y-%m-%dT%H:%M:%S")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--columns", type=int, choices=(15, 16), default=15)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows generated at a time")
    args = parser.parse_args()
    started = time.perf_counter()
    write_csv(args.path, args.rows, args.seed, args.columns, args.chunk_rows)
    size_mb = args.path.stat().st_size / 1e6
    elapsed = time.perf_counter() - started
    print(f"wrote {args.rows:,} rows x {args.columns} columns to {args.path} ({size_mb:.1f} MB) in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
