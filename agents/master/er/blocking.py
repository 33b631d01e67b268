"""Candidate pairs: several blocking keys, unioned, so that no pair outside them is ever compared.

A blocking key is an expression over the normalised frame (``agents.master.er.normalise``); a row whose
key is null is in no block of it. Two kinds:
- *exact*: rows with the same key value form a block, and every pair within it is a candidate (a
  self-join on the key, left < right). A block larger than ``max_block_size`` rows is skipped whole and
  reported (key, value, size, reason "max_block_size"): its pairs would cost the square of its size and
  tell little (a key shared by that many rows is a common value, not an identity). Each exact key also
  has a pair budget (``pair_budget``, e.g. 20 pairs per row): when its blocks hold more pairs, the
  smallest blocks are kept first (ties by value) up to the budget and the others are skipped and reported
  (reason "pair_budget"): 450 companies over 200,000 rows are blocks of ~450 rows, each under the block
  cap, yet 45 million pairs together;
- *sorted neighbourhood*: rows sorted by the key (ties by content hash, so the order does not depend on
  the input's), each paired with the next ``window - 1`` rows.
Pairs found by several keys are kept once, under the first key in ``default_keys`` order (the ``rule``).
The cost is at most the pair budget per key plus n·window, never n².

Rows identical in every data column, and rows equal on every compared (normalised) value, are paired
separately (:func:`identical_pairs`): each with the first of its group (the caller may cap the groups'
size, see ``max_group_size``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from agents.master.er.normalise import (
    CONTENT_HASH,
    GIVEN,
    GIVEN_METAPHONE,
    SURNAME,
    SURNAME_METAPHONE,
)

LinkType = Literal["dedupe_and_link", "link_only", "dedupe_only"]
POSITION = "__position__"
KEY = "__key__"
PAIR_SCHEMA = {"left": pl.Int64, "right": pl.Int64, "rule": pl.String}
MAX_REPORTED_BLOCKS = 20
SKIPPED_SCHEMA = {"value": pl.String, "size": pl.Int64, "reason": pl.String}


@dataclass(frozen=True)
class BlockingKey:
    """``name`` (the pairs' ``rule``), the key expression, ``window`` (0 for an exact key, else the
    sorted-neighbourhood window: each row with the next ``window - 1``) and the key's own block cap (None:
    the caller's ``max_block_size``)."""

    name: str
    expr: pl.Expr
    window: int = 0
    max_block_size: int | None = None


def default_keys(by_role: Mapping[str, str], window: int, name_block_size: int | None = None) -> list[BlockingKey]:
    """The keys the roles allow (``by_role``: role → normalised column), strongest first. Name keys use the
    derived name parts, so they work from a full-name column too; "names phonetic" sorts the two codes, so
    swapped given name and surname block together. ``name_block_size`` caps the blocks of the key on names
    alone: a name shared by more rows identifies nobody (pairs among them need a second field, which the
    other keys bring), and the pairs of common names grow with the square of the file."""
    has = set(by_role) | {"names"} if {"given_name", "surname", "full_name"} & set(by_role) else set(by_role)
    given, surname = pl.col(GIVEN), pl.col(SURNAME)
    keys: list[BlockingKey] = []

    def add(name: str, needs: Sequence[str], expr: pl.Expr, key_window: int = 0, cap: int | None = None) -> None:
        if all(role in has for role in needs):
            keys.append(BlockingKey(name, expr, key_window, cap))

    def column(role: str) -> pl.Expr:
        return pl.col(by_role[role]) if role in by_role else pl.lit(None, dtype=pl.String)

    add("email", ["email"], column("email"))
    add("phone", ["phone"], column("phone"))
    add("national_id", ["national_id"], column("national_id"))
    add("id", ["id"], column("id"))
    add(
        "names_phonetic",
        ["names"],
        _sorted_pair(pl.col(GIVEN_METAPHONE), pl.col(SURNAME_METAPHONE)),
        cap=name_block_size,
    )
    add(
        "date_of_birth+given_initial", ["date_of_birth", "names"], _with(column("date_of_birth"), given.str.slice(0, 1))
    )
    add(
        "date_of_birth+surname_initial",
        ["date_of_birth", "names"],
        _with(column("date_of_birth"), surname.str.slice(0, 1)),
    )
    add("date_of_birth+postcode", ["date_of_birth", "postcode"], _with(column("date_of_birth"), column("postcode")))
    prefixes = _sorted_pair(given.str.slice(0, 2), surname.str.slice(0, 2))
    add("postcode+name_prefixes", ["postcode", "names"], _with(column("postcode"), prefixes))
    add("postcode+street_number", ["postcode", "street_number"], _with(column("postcode"), column("street_number")))
    # a company names the entity only when no person's name does; with names, it blocks with their prefixes.
    # Its name is normalised without its legal form ("Acme Corp" and "ACME CORPORATION" block as "acme");
    # at one postcode its first letters block too (a misspelt name in the same place)
    company = column("company")
    if "names" in has:
        add("company+name_prefixes", ["company"], _with(company, prefixes))
    else:
        add("company", ["company"], company)
        add("postcode+company_prefix", ["company", "postcode"], _with(column("postcode"), company.str.slice(0, 3)))
    if window > 1:
        add("sorted_surname_given", ["names"], pl.concat_str(surname, given, separator=" "), window)
        add("sorted_given_surname", ["names"], pl.concat_str(given, surname, separator=" "), window)
        add(
            "sorted_address",
            ["address"],
            pl.concat_str(column("address"), column("street_number"), ignore_nulls=True),
            window,
        )
        add("sorted_email", ["email"], column("email"), window)
    return keys


def column_keys(columns: Sequence[str], window: int) -> list[BlockingKey]:
    """Keys for explicit match columns of no known role: each column exactly, and sorted neighbourhood."""
    keys = [BlockingKey(name, pl.col(name)) for name in columns]
    if window > 1:
        keys += [BlockingKey(f"sorted_{name}", pl.col(name), window) for name in columns]
    return keys


def candidate_pairs(
    normalised: pl.DataFrame,
    keys: Sequence[BlockingKey],
    *,
    max_block_size: int,
    sources: pl.Series | None = None,
    link_type: LinkType = "dedupe_and_link",
    first: Mapping[str, pl.DataFrame] | None = None,
    pair_budget: int | None = None,
    rows: int | None = None,
    workers: int = 1,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Candidate pairs of row positions (0-based in ``normalised``): ``left`` < ``right``, ``rule`` (an
    Enum of the rule names) = the first key that found the pair, after the pairs of ``first`` ({rule: frame
    of ``left``, ``right``}, taken as they are); and stats ``{"keys": [{"name", "pairs", "new_pairs",
    "blocks", "skipped_blocks", "skipped_rows"}], "skipped_blocks": [{"key", "value", "size", "reason"}]
    (largest first, at most 20), "skipped_block_count", "pair_budget", "candidate_pairs"}``. With
    ``sources`` (each row's source label), ``link_only`` keeps pairs across sources and ``dedupe_only``
    pairs within one. ``pair_budget``: the most pairs one exact key may give (None: no budget). ``rows``:
    how many rows the positions index (default ``normalised.height``); ``workers``: threads running the keys
    side by side. Pairs travel as one int64 each (left · rows + right), so the union of the keys costs one
    sort of integers."""
    size = max(normalised.height if rows is None else rows, 1)
    base = normalised.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(POSITION),
        *(
            [pl.col(CONTENT_HASH)]
            if CONTENT_HASH in normalised.columns
            else [pl.lit(0, dtype=pl.UInt64).alias(CONTENT_HASH)]
        ),
    )
    rules: list[str] = []
    codes: list[np.ndarray] = []
    origins: list[int] = []  # the rule of each array of codes
    key_stats: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []

    def collect(pairs: pl.DataFrame, rule: str) -> None:
        if rule not in rules:
            rules.append(rule)
        codes.append(pairs["left"].to_numpy() * size + pairs["right"].to_numpy())
        origins.append(rules.index(rule))

    for rule, given in (first or {}).items():
        collect(given, rule)

    def key_pairs(key: BlockingKey) -> tuple[np.ndarray, int, pl.DataFrame]:
        keyed = base.with_columns(normalised.select(key.expr.alias(KEY)).to_series()).drop_nulls(KEY)
        if key.window > 1:
            pairs, blocks = _sorted_neighbourhood(keyed, key.window), keyed.height
            giants = pl.DataFrame(schema=SKIPPED_SCHEMA)
        else:
            cap = max_block_size if key.max_block_size is None else min(max_block_size, key.max_block_size)
            pairs, blocks, giants = _block_pairs(keyed, cap, pair_budget)
        pairs = filter_sources(pairs, sources, link_type)
        return pairs["left"].to_numpy() * size + pairs["right"].to_numpy(), blocks, giants

    # the keys side by side (Polars and numpy release the GIL), each handed back as its pair codes
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        found = list(pool.map(key_pairs, keys))
    for key, (key_codes, blocks, giants) in zip(keys, found, strict=True):
        if key.name not in rules:
            rules.append(key.name)
        codes.append(key_codes)
        origins.append(rules.index(key.name))
        key_stats.append(
            {
                "name": key.name,
                "pairs": len(key_codes),
                "blocks": blocks,
                "skipped_blocks": giants.height,
                "skipped_rows": int(giants["size"].sum()) if giants.height else 0,
            }
        )
        skipped += [{"key": key.name, **row} for row in giants.rows(named=True)]
    del found
    distinct, rule_index = _first_seen(codes, origins)
    names = pl.Series("rule", rules or ["none"], dtype=pl.Enum(rules or ["none"]))
    pairs = pl.DataFrame(
        [
            pl.Series("left", distinct // size, dtype=pl.Int64),
            pl.Series("right", distinct % size, dtype=pl.Int64),
            names.gather(rule_index.astype(np.int64)),
        ]
    )
    new_pairs = np.bincount(rule_index, minlength=len(rules))
    for item in key_stats:
        item["new_pairs"] = int(new_pairs[rules.index(item["name"])])
    skipped.sort(key=lambda item: -int(item["size"]))
    stats: dict[str, Any] = {
        "keys": key_stats,
        "skipped_blocks": skipped[:MAX_REPORTED_BLOCKS],
        "skipped_block_count": len(skipped),
        "pair_budget": pair_budget,
        "candidate_pairs": pairs.height,
    }
    return pairs, stats


def _first_seen(codes: list[np.ndarray], origins: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pair codes, sorted, and for each the rule (``origins``: one per array) of the first array
    of ``codes`` that holds it. Each code is tagged with its array's number in its low bits, so one sort of
    integers (much faster than the stable argsort a "first occurrence" needs) puts each code's first array
    first."""
    if not codes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)
    bits = max(len(codes) - 1, 1).bit_length()
    largest = max((int(part.max()) for part in codes if part.size), default=0)
    if largest >= 1 << (62 - bits):  # no room for the tag: the slower, exact way
        distinct, first = np.unique(np.concatenate(codes), return_index=True)
        return distinct, np.repeat(np.array(origins, dtype=np.int16), [len(part) for part in codes])[first]
    tagged = np.concatenate([(part << bits) | number for number, part in enumerate(codes)])
    tagged.sort()
    code = tagged >> bits
    first = np.ones(len(code), dtype=bool)
    first[1:] = code[1:] != code[:-1]
    return code[first], np.array(origins, dtype=np.int16)[tagged[first] & ((1 << bits) - 1)]


def identical_pairs(
    frame: pl.DataFrame,
    columns: Sequence[str],
    rule: str,
    eligible: pl.Expr | None = None,
    max_group_size: int | None = None,
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Pairs (``left`` < ``right`` positions) joining each row to the first row with the very same values in
    ``columns`` (nulls equal): a star per group of identical rows, with ``rule``. Only rows where
    ``eligible`` holds take part. Groups of more than ``max_group_size`` rows (None: no cap) give no pairs
    and are returned as skipped blocks ``{"key": rule, "value" (the shared values, " | " between them),
    "size", "reason": "max_block_size"}``, largest first."""
    if not columns or frame.height < 2:
        return pl.DataFrame(schema=PAIR_SCHEMA), []
    keyed = frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias(POSITION),
        pl.struct(list(columns)).hash(seed=7).alias(KEY),
        (pl.lit(True) if eligible is None else eligible).alias("eligible"),
    ).filter(pl.col("eligible"))
    grouped = keyed.with_columns(
        pl.col(POSITION).min().over(KEY).alias("left"), pl.len().over(KEY).cast(pl.Int64).alias("size")
    )
    too_large = pl.col("size") > (max_group_size if max_group_size is not None else grouped.height)
    shared = pl.concat_str([pl.col(name).cast(pl.String) for name in columns], separator=" | ", ignore_nulls=True)
    giants = (
        grouped.filter(too_large & (pl.col(POSITION) == pl.col("left")))
        .sort("size", "left", descending=[True, False])
        .select(
            pl.lit(rule).alias("key"),
            pl.lit(None, dtype=pl.String).alias("value"),
            "size",
            pl.lit("max_block_size").alias("reason"),
            "left",
        )
    )
    if giants.height:
        values = frame.select(shared.alias("value")).to_series().gather(giants["left"])
        giants = giants.with_columns(values)
    giants = giants.drop("left")
    pairs = grouped.filter((pl.col(POSITION) != pl.col("left")) & ~too_large).select(
        "left", pl.col(POSITION).alias("right"), pl.lit(rule).alias("rule")
    )
    return pairs, giants.rows(named=True)


def _block_pairs(
    keyed: pl.DataFrame, max_block_size: int, pair_budget: int | None
) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """The pairs within the blocks of ``keyed`` that are kept, how many blocks were kept, and the skipped
    blocks (``value``, ``size``, ``reason``, largest first): over ``max_block_size`` rows, or beyond the
    ``pair_budget`` (blocks kept smallest first, ties by value)."""
    sizes = keyed.group_by(KEY).agg(pl.len().cast(pl.Int64).alias("size")).filter(pl.col("size") >= 2)
    fitting = (
        sizes.filter(pl.col("size") <= max_block_size)
        .sort("size", KEY)
        .with_columns((pl.col("size") * (pl.col("size") - 1) // 2).cum_sum().alias("cumulative_pairs"))
    )
    within_budget = pl.col("cumulative_pairs") <= pair_budget if pair_budget is not None else pl.lit(True)
    usable = fitting.filter(within_budget).select(KEY)
    giants = pl.concat(
        [
            sizes.filter(pl.col("size") > max_block_size).with_columns(pl.lit("max_block_size").alias("reason")),
            fitting.filter(~within_budget).select(KEY, "size", pl.lit("pair_budget").alias("reason")),
        ]
    ).sort("size", KEY, descending=[True, False])
    members = keyed.join(usable, on=KEY, how="semi").select(POSITION, KEY)
    pairs = (
        members.join(members, on=KEY, suffix="_r")
        .filter(pl.col(POSITION) < pl.col(f"{POSITION}_r"))
        .select(pl.col(POSITION).alias("left"), pl.col(f"{POSITION}_r").alias("right"))
    )
    return pairs, usable.height, giants.select(pl.col(KEY).cast(pl.String).alias("value"), "size", "reason")


def _sorted_neighbourhood(keyed: pl.DataFrame, window: int) -> pl.DataFrame:
    order = keyed.sort(KEY, CONTENT_HASH)[POSITION].to_numpy()
    lefts, rights = [], []
    for offset in range(1, min(window, len(order))):
        lefts.append(order[:-offset])
        rights.append(order[offset:])
    if not lefts:
        return pl.DataFrame(schema={"left": pl.Int64, "right": pl.Int64})
    first, second = np.concatenate(lefts), np.concatenate(rights)
    # each (position, offset) is another pair of distinct rows: no pair comes twice
    return pl.DataFrame(
        {"left": np.minimum(first, second), "right": np.maximum(first, second)},
        schema={"left": pl.Int64, "right": pl.Int64},
    )


def filter_sources(pairs: pl.DataFrame, sources: pl.Series | None, link_type: LinkType) -> pl.DataFrame:
    """The pairs the link type allows, given each row's source label (all of them without labels)."""
    if sources is None or link_type == "dedupe_and_link":
        return pairs
    labels = sources.to_numpy()
    same = labels[pairs["left"].to_numpy()] == labels[pairs["right"].to_numpy()]
    keep = ~same if link_type == "link_only" else same
    return pairs.filter(pl.Series(keep))


def _with(first: pl.Expr, second: pl.Expr) -> pl.Expr:
    return pl.concat_str(first, second, separator="|")


def _sorted_pair(first: pl.Expr, second: pl.Expr) -> pl.Expr:
    return (
        pl.when(first <= second)
        .then(pl.concat_str(first, second, separator="|"))
        .otherwise(pl.concat_str(second, first, separator="|"))
    )
