"""The clean agents' speed paths against their general paths, on seeded generated frames: each agent runs
once with the fast path forced (its row threshold at 0, or its shortcut's condition true) and once without
it (the threshold out of reach, or the condition false), and the two results must be identical: envelope
(all but the timing), frame with its dtypes, removed rows and row-level issues.

Covered: ``nulls.BY_HASH_ROWS`` (distinct counts by hash), ``previewer.TEXT_MODE_ROWS`` (``_text_mode``),
``type_fixer.DISTINCT_FIRST_ROWS``, ``standardization.REPLACE_SHARE`` (the changed values mapped, or the
rules run on every row), ``common.has_identifier`` in duplicates, writeback and the previewer, and the
quarantine's empty-row shortcut, ``common.repeat_candidates`` (rows whose row hash another row shares) in the
previewer, duplicates and writeback. The hash-first paths also run with ``pl.Expr.hash`` and
``pl.DataFrame.hash_rows`` folded into a few buckets, so that different values share a hash and the exact check
and fallback are taken."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from pydantic import BaseModel

from agents.clean import common, duplicates, nulls, previewer, quarantine, standardization, type_fixer, writeback
from agents.envelope import AgentInputs, AgentResult
from agents.params.cleanse_previewer import CleansePreviewerParams
from agents.params.cleanse_writeback import CleanseWritebackParams
from agents.params.duplicate_resolver import ALL_DETECTION_TYPES, DuplicateResolverParams
from agents.params.field_standardization import FieldStandardizationParams
from agents.params.null_handler import NullHandlerParams
from agents.params.quarantine_agent import QuarantineAgentParams
from agents.params.type_fixer import TypeFixerParams
from tests.agents.clean_support import ROW

HUGE = 10**12
ORIGINAL_HASH = pl.Expr.hash
ORIGINAL_HASH_ROWS = pl.DataFrame.hash_rows
ID_KINDS = ["unique", "repeat", "null", "none"]
NAMES = ["Ann", "ann", " ann ", "ANN", "Bob", "bob  ", "B  ob", "Carol", "", "   ", None]
CODES = ["007", "7", "0012", "12", "1", "001", "abc", None, ""]
DATES = [
    "2024-01-05",
    "01/31/2024",
    "03/04/2024",
    "Jan 5, 2024",
    "2024-13-40",
    "not a date",
    None,
    " 2024-02-01 ",
    "2024-02-01",
]
LEVELS = ["red", "green", "blue", "Red", " green"]


def speed_frame(seed: int, id_kind: str, n: int = 600) -> pl.DataFrame:
    """Awkward columns: an id of ``id_kind`` (unique, with a repeat, with a null, or none), text with case and
    whitespace variants, blanks and nulls, a mode tie, mostly distinct text, numbers and dates as text,
    Categorical and Enum text, a float; some rows copied onto others (equal rows, their ids aside)."""
    rng = np.random.default_rng(seed)

    def pick(pool: list[Any], size: int = n) -> list[Any]:
        return [pool[i] for i in rng.integers(0, len(pool), size)]

    tie = ["b"] * (n // 4) + ["a"] * (n // 4) + ["c"] * (n // 8) + [None] * (n - n // 4 * 2 - n // 8)
    rng.shuffle(tie)  # type: ignore[arg-type]
    emails = [f"user{int(v)}@x.org" if v % 17 else None for v in rng.permutation(n)]
    emails[: n // 20] = emails[n // 20 : n // 10]  # a few repeats among mostly distinct values
    data: dict[str, Any] = {
        "name": pick(NAMES),
        "tie": tie,
        "email": emails,
        "code": pick(CODES),
        "when": pick(DATES),
        "level": pl.Series(pick(LEVELS), dtype=pl.Categorical),
        "grade": pl.Series(pick(["low", "mid", "high", None]), dtype=pl.Enum(["low", "mid", "high"])),
        "amount": [None if v < 0.1 else round(float(v) * 100, 2) for v in rng.random(n)],
    }
    frame = pl.DataFrame(data)
    copies = rng.choice(n, size=(n // 10, 2), replace=False)  # row b becomes a copy of row a
    rows = frame.rows()
    for a, b in copies:
        rows[b] = rows[a]
    frame = pl.DataFrame(rows, schema=frame.schema, orient="row")
    if id_kind != "none":
        ids = (rng.permutation(n) * 3 + 1).tolist()
        if id_kind == "repeat":  # two rows equal in every column, their id included
            a, b = copies[0]
            ids[b] = ids[a]
        elif id_kind == "null":
            ids[int(copies[0][1])] = None
        frame = frame.insert_column(0, pl.Series("id", ids, dtype=pl.Int64))
    gaps = rng.integers(1, 4, n)
    return frame.insert_column(0, pl.Series(ROW, np.cumsum(gaps) + 5, dtype=pl.Int64))


FRAMES = [(seed, kind) for seed, kind in enumerate(ID_KINDS)]


def run_once(module: Any, frame: pl.DataFrame, params: BaseModel) -> AgentResult:
    result: AgentResult = module.run(AgentInputs(frame, "primary.csv"), params, lambda _f, _m: None)
    assert result.envelope.status == "success", result.envelope.error
    return result


def assert_same(fast: AgentResult, general: AgentResult) -> None:
    """Identical results but for the timing."""
    envelopes = [_untimed(result.envelope.to_dict()) for result in (fast, general)]
    assert envelopes[0] == envelopes[1]
    for name in ("frame", "removed", "row_level_issues"):
        found, expected = getattr(fast, name), getattr(general, name)
        if expected is None:
            assert found is None, name
        else:
            assert_frame_equal(found, expected, check_exact=True, categorical_as_str=True)
            assert found.schema == expected.schema, name


TIMES = {"execution_time_ms", "generated_at"}  # when and how long: writeback's manifest has a time stamp


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _untimed(item) for key, item in value.items() if key not in TIMES}
    if isinstance(value, list):
        return [_untimed(item) for item in value]
    return value


def folded_hash(buckets: int) -> Callable[..., pl.Expr]:
    """``pl.Expr.hash`` folded into ``buckets`` values: equal values still hash equally, and many different
    ones collide."""

    def hash_(self: pl.Expr, seed: int = 0) -> pl.Expr:
        return ORIGINAL_HASH(self, seed) % buckets

    return hash_


def folded_hash_rows(buckets: int) -> Callable[..., pl.Series]:
    """``pl.DataFrame.hash_rows`` folded the same way."""

    def hash_rows(self: pl.DataFrame, seed: int = 0) -> pl.Series:
        return ORIGINAL_HASH_ROWS(self, seed) % buckets

    return hash_rows


HASHES = [None, 3, 4096]  # the real hash; three buckets (every bucket shared); many (some collisions)


@pytest.fixture
def hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int | None]:
    buckets = request.param
    if buckets is not None:
        monkeypatch.setattr(pl.Expr, "hash", folded_hash(buckets))
        monkeypatch.setattr(pl.DataFrame, "hash_rows", folded_hash_rows(buckets))
    yield buckets


def compare(
    monkeypatch: pytest.MonkeyPatch, module: Any, frame: pl.DataFrame, params: BaseModel, fast: dict[str, Any]
) -> AgentResult:
    """``module.run`` with each ``fast`` attribute of its module set (a threshold, ``has_identifier`` or
    ``repeat_candidates``) against the general run: each threshold out of reach, ``has_identifier`` always
    false, every row a repeat candidate and the real hashes; the fast result."""
    with monkeypatch.context() as patch:
        for name, value in fast.items():
            patch.setattr(module, name, value)
        quick = run_once(module, frame, params)
    with monkeypatch.context() as patch, pytest.MonkeyPatch.context() as unhashed:
        unhashed.setattr(pl.Expr, "hash", ORIGINAL_HASH)  # the general path never relies on a hash
        unhashed.setattr(pl.DataFrame, "hash_rows", ORIGINAL_HASH_ROWS)
        for name, value in fast.items():
            general_value = {"repeat_candidates": _every_row_may_repeat}.get(name, _never_identifier)
            patch.setattr(module, name, HUGE if isinstance(value, int) else general_value)
        general = run_once(module, frame, params)
    assert_same(quick, general)
    return quick


def with_real_hash(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run with the real ``pl.Expr.hash`` whatever it is outside."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pl.Expr, "hash", ORIGINAL_HASH)
            return function(*args, **kwargs)

    return wrapped


def counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[None]:
    """A list that grows by one at each call of ``module.name`` (left working as it is)."""
    calls: list[None] = []
    function = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(None)
        return function(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def _never_identifier(*_args: Any, **_kwargs: Any) -> bool:
    return False


def _every_row_may_repeat(frame: pl.DataFrame, _keys: Any) -> pl.Series:
    return pl.Series([True] * frame.height, dtype=pl.Boolean)


# null-handler: distinct counts by hash


@pytest.mark.parametrize("hashing", HASHES, indirect=True)
@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_null_handler_distinct_counts_by_hash(
    monkeypatch: pytest.MonkeyPatch, hashing: int | None, seed: int, id_kind: str
) -> None:
    frame = speed_frame(seed, id_kind)
    counted = nulls._distinct_counts
    calls: list[dict[str, int]] = []

    def spy(frame: pl.DataFrame, names: list[str]) -> dict[str, int]:
        found = counted(frame, names)
        assert found == {name: frame[name].n_unique() for name in names}  # the plain count, every time
        calls.append(found)
        return found

    monkeypatch.setattr(nulls, "_distinct_counts", spy)
    for params in (NullHandlerParams(apply_suggested_strategies=True), NullHandlerParams()):
        compare(monkeypatch, nulls, frame, params, {"BY_HASH_ROWS": 0})
    assert calls and any(len(found) >= 3 for found in calls)


@pytest.mark.parametrize("hashing", HASHES, indirect=True)
def test_distinct_counts_by_hash_take_each_branch(hashing: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nulls, "BY_HASH_ROWS", 0)
    columns = {
        "distinct": [f"v{i}" for i in range(500)] + [None],  # every value alone: no shared hash
        "mostly": [f"v{i % 450}" for i in range(500)] + [None],  # a few shared hashes, compared by value
        "repeated": [f"v{i % 7}" for i in range(501)],  # grouped after all
        "blank": ["", " ", "  ", None] * 125 + [""],
        "empty": pl.Series([None] * 501, dtype=pl.String),
    }
    frame = pl.DataFrame(columns)
    assert nulls._distinct_counts(frame, frame.columns) == {name: frame[name].n_unique() for name in frame.columns}


# cleanse-previewer: the text mode by hash, and drop_duplicates settled by an identifier

PREVIEW_RULES: list[dict[str, Any]] = [
    {"type": "impute_nulls", "strategy": "mode", "target_columns": ["name", "tie", "email", "code", "when"]},
    {"type": "impute_nulls", "strategy": "mode"},
    {"type": "drop_duplicates"},
    {"type": "drop_duplicates", "target_columns": ["id", "name"]},
    {"type": "drop_duplicates", "target_columns": ["name", "tie"]},
    {"type": "drop_nulls", "target_columns": ["tie"]},
]


def previewer_params(frame: pl.DataFrame, correlations: bool) -> CleansePreviewerParams:
    rules = [rule for rule in PREVIEW_RULES if "id" not in rule.get("target_columns", []) or "id" in frame.columns]
    return CleansePreviewerParams.model_validate({"preview_rules": rules, "analyze_correlations": correlations})


@pytest.mark.parametrize("hashing", HASHES, indirect=True)
@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_previewer_text_mode_and_identifier(
    monkeypatch: pytest.MonkeyPatch, hashing: int | None, seed: int, id_kind: str
) -> None:
    frame = speed_frame(seed, id_kind)
    modes = counting(monkeypatch, previewer, "_text_mode")
    for correlations in (False, True):
        params = previewer_params(frame, correlations)
        fast = {"TEXT_MODE_ROWS": 0, "repeat_candidates": common.repeat_candidates}
        compare(monkeypatch, previewer, frame, params, fast)
    compare(monkeypatch, previewer, frame, CleansePreviewerParams(), {"TEXT_MODE_ROWS": 0})  # the default rules
    assert modes  # the fast runs found text modes by hash


@pytest.mark.parametrize("hashing", HASHES, indirect=True)
@pytest.mark.parametrize(
    "values",
    [
        ["b", "a", "b", "a", None, "c"],  # a tie: the smallest
        ["x", None, "y", "z"],  # every value once
        [None, None],
        [],
        ["", " ", "", " ", "a"],
        [f"v{i % 40}" for i in range(300)] + ["v3", "v17"],  # two modes among many values
        [f"v{i}" for i in range(300)] + ["v150"],  # one mode among mostly distinct values
    ],
)
def test_text_mode_is_the_smallest_most_frequent_value(hashing: int | None, values: list[str | None]) -> None:
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    expected = frame.select(pl.col("t").drop_nulls().mode().sort().first()).item()
    assert frame.select(previewer._text_mode(frame, "t")).item() == expected


texts = st.lists(st.one_of(st.none(), st.sampled_from(["a", "A", " a", "", " ", "b", "007", "7"]), st.text(max_size=3)))


@settings(max_examples=60, deadline=None)
@given(values=texts, buckets=st.sampled_from([None, 1, 2, 5]))
def test_hash_first_counts_and_modes_on_any_text(values: list[str | None], buckets: int | None) -> None:
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nulls, "BY_HASH_ROWS", 0)
        if buckets is not None:
            patch.setattr(pl.Expr, "hash", folded_hash(buckets))
        distinct = nulls._distinct_counts(frame, ["t"])
        mode = frame.select(previewer._text_mode(frame, "t")).item()
    assert distinct == {"t": frame["t"].n_unique()}
    assert mode == frame.select(pl.col("t").drop_nulls().mode().sort().first()).item()


# type-fixer: text columns read through their distinct values


@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
@pytest.mark.parametrize(
    "params",
    [
        TypeFixerParams(),
        TypeFixerParams(preserve_mixed_types=False, convert_ambiguous_dates=True),
        TypeFixerParams.model_validate({"null_tokens": []}),
    ],
)
def test_type_fixer_distinct_values_first(
    monkeypatch: pytest.MonkeyPatch, seed: int, id_kind: str, params: TypeFixerParams
) -> None:
    frame = speed_frame(seed, id_kind).with_columns(
        pl.col("amount").cast(pl.String).alias("amount_text"),
        pl.col("tie").replace({"a": "yes", "b": "no", "c": "N/A"}).alias("flag"),
        pl.col("code").str.pad_start(5).alias("padded"),  # values equal once trimmed
    )
    written = counting(monkeypatch, type_fixer, "_written_values")
    compare(monkeypatch, type_fixer, frame, params, {"DISTINCT_FIRST_ROWS": 0})
    assert len(written) == 1  # the fast run only


# field-standardization: changed values mapped, or the rules run on every row


def standardization_settings() -> list[FieldStandardizationParams]:
    synonyms = {"name": {"ann": "Anne", "B ob": "Robert"}, "level": {"red": "Red"}, "grade": {"low": "Low"}}
    return [
        FieldStandardizationParams.model_validate(
            {
                "case_strategy": case,
                "synonym_mappings": synonyms,
                "target_date_format": date_format,
                "unit_standardization": True,
                "unit_mappings": {"code": {"kg": {"factor": 2.0, "target_unit": "lbs"}}},
            }
        )
        for case, date_format in [("lowercase", "%Y-%m-%d"), ("none", "%d/%m/%Y"), ("titlecase", "%m/%d/%Y")]
    ] + [
        FieldStandardizationParams.model_validate({"trim_whitespace": False, "case_strategy": "uppercase"}),
        FieldStandardizationParams.model_validate({"normalize_internal_spacing": False, "case_strategy": "preserve"}),
    ]


@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_standardization_replace_or_rules_per_row(monkeypatch: pytest.MonkeyPatch, seed: int, id_kind: str) -> None:
    frame = speed_frame(seed, id_kind)
    for params in standardization_settings():
        result = compare(monkeypatch, standardization, frame, params, {"REPLACE_SHARE": 0})
        # The counts taken per distinct value against the rows: each changed cell is counted and reported.
        assert result.frame is not None
        issues = result.row_level_issues.filter(pl.col("issue_type") == "value_standardized")
        for report in result.envelope.data["columns"]:
            name = report["field_name"]
            before, after = frame[name].cast(pl.String), result.frame[name].cast(pl.String)
            changed = frame.filter(before.ne_missing(after))[ROW]
            assert report["values_changed"] == changed.len()
            assert issues.filter(pl.col("column") == name)["row_index"].to_list() == changed.to_list()


# duplicate-resolver and writeback: hash pre-filters and has_identifier

DUPLICATE_PARAMS = [
    DuplicateResolverParams(),
    DuplicateResolverParams(detection_types=ALL_DETECTION_TYPES),
    DuplicateResolverParams(detection_types=ALL_DETECTION_TYPES, key_columns=["name"], conflict_resolution="keep_last"),
]


@pytest.mark.parametrize("hashing", HASHES, indirect=True)
@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_duplicates_identifier_and_shared_hashes(
    monkeypatch: pytest.MonkeyPatch, hashing: int | None, seed: int, id_kind: str
) -> None:
    frame = speed_frame(seed, id_kind, n=300)
    # A pattern of empty cells is named by its hash (not a pre-filter: a shared hash would merge two
    # patterns, in either path), so that hash stays real.
    monkeypatch.setattr(duplicates, "_gap_patterns", with_real_hash(duplicates._gap_patterns))
    fired: list[bool] = []
    monkeypatch.setattr(common, "has_identifier", spy_identifier(fired))  # as repeat_candidates asks it
    for params in DUPLICATE_PARAMS:
        fast = {"has_identifier": common.has_identifier, "repeat_candidates": common.repeat_candidates}
        compare(monkeypatch, duplicates, frame, params, fast)
    # With a repeated id, the id is unique once the exact stage has removed the repeat.
    assert any(fired) == (id_kind != "none")


@pytest.mark.parametrize("hashing", HASHES, indirect=True)
@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_writeback_duplicate_check(
    monkeypatch: pytest.MonkeyPatch, hashing: int | None, seed: int, id_kind: str
) -> None:
    frame = speed_frame(seed, id_kind, n=300)
    fired: list[bool] = []
    monkeypatch.setattr(common, "has_identifier", spy_identifier(fired))  # as repeat_candidates asks it
    fast = {"repeat_candidates": common.repeat_candidates}
    result = compare(monkeypatch, writeback, frame, CleanseWritebackParams(), fast)
    rows = frame.drop(ROW).rows()
    check = next(check for check in result.envelope.data["integrity_checks"] if check["check"] == "no_duplicates")
    assert check["details"]["duplicate_count"] == len(rows) - len(set(rows))
    assert any(fired) == (id_kind in ("unique", "null"))


def spy_identifier(fired: list[bool]) -> Callable[..., bool]:
    original = common.has_identifier

    def spy(*args: Any, **kwargs: Any) -> bool:
        found = original(*args, **kwargs)
        fired.append(found)
        return found

    return spy


@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_has_identifier_means_no_equal_rows(seed: int, id_kind: str) -> None:
    frame = speed_frame(seed, id_kind, n=200)
    columns = [name for name in frame.columns if name != ROW]
    for nulls_allowed in (True, False):
        found = common.has_identifier(frame, columns, nulls_allowed=nulls_allowed)
        assert found == (id_kind == "unique" or (id_kind == "null" and nulls_allowed))
        if found:
            assert not frame.select(columns).is_duplicated().any()
    assert not common.has_identifier(frame, [name for name in columns if name != "id"])


def test_repeat_candidates_hold_every_repeat_and_its_first() -> None:
    """Rows equal as Polars compares them (nulls alike, -0.0 and 0.0, NaNs, categories, lists) hash equally: a
    later repeat and the row it repeats are both candidates; None when no two rows can be equal."""
    nan = float("nan")
    frame = pl.DataFrame(
        {
            "x": [0.0, -0.0, nan, -nan, None, 1.0, None, 2.0],
            "c": pl.Series(["p", "p", "q", "q", None, "r", None, "s"], dtype=pl.Categorical),
            "l": [[1], [1], [2], [2], None, [3], None, [4]],
        }
    )
    candidates = common.repeat_candidates(frame, frame.columns)
    assert candidates is not None
    repeats = ~frame.select(pl.struct(frame.columns).is_first_distinct()).to_series()
    first_of_repeat = frame.select(pl.struct(frame.columns).is_duplicated()).to_series()
    assert repeats.to_list() == [False, True, False, True, False, False, True, False]
    assert (candidates | ~first_of_repeat).all()
    assert common.repeat_candidates(frame.slice(5, 3).with_row_index("n"), ["n", "x"]) is None  # n: an identifier
    assert common.repeat_candidates(frame.slice(0, 1), frame.columns) is None
    assert common.repeat_candidates(pl.DataFrame({"x": [1.0, 2.0, None]}), ["x"]) is None


# quarantine: no empty row when a typed column has no null


def _proposals_without_shortcut() -> Callable[[pl.DataFrame, QuarantineAgentParams], list[dict[str, Any]]]:
    """``quarantine._proposals`` with its shortcut taken out: the general path, every row checked."""
    source = textwrap.dedent(inspect.getsource(quarantine._proposals))
    shortcut = "    if plain and not all(frame.select(pl.col(plain).null_count()).row(0)):\n        return []\n"
    assert shortcut in source, "the quarantine shortcut changed: update this test"
    namespace = dict(vars(quarantine))
    exec(source.replace(shortcut, ""), namespace)  # noqa: S102 - the module's own source, one branch removed
    general: Callable[[pl.DataFrame, QuarantineAgentParams], list[dict[str, Any]]] = namespace["_proposals"]
    return general


@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
@pytest.mark.parametrize("empty_rows", [0, 3])
def test_quarantine_empty_row_shortcut(
    monkeypatch: pytest.MonkeyPatch, seed: int, id_kind: str, empty_rows: int
) -> None:
    frame = speed_frame(seed, id_kind, n=200)
    if empty_rows:
        blank = {name: None for name in frame.columns if name != ROW}
        frame = frame.with_columns(  # whole rows empty: nulls, or blanks in the text columns
            pl.when(pl.col(ROW).is_in(frame[ROW].head(empty_rows).implode()))
            .then(pl.lit("  ") if frame.schema[name] == pl.String else pl.lit(value))
            .otherwise(pl.col(name))
            .cast(frame.schema[name])
            .alias(name)
            for name, value in blank.items()
        )
    variants = [frame, frame.drop("amount"), frame.select(ROW, "name", "tie"), frame.select(ROW, "amount")]
    general = _proposals_without_shortcut()
    for variant in variants:
        for detect in (False, True):
            params = QuarantineAgentParams(detect_broken_records=detect)
            quick = run_once(quarantine, variant, params)
            assert quarantine._proposals(variant, params) == general(variant, params)
            with monkeypatch.context() as patch:
                patch.setattr(quarantine, "_proposals", general)
                assert_same(quick, run_once(quarantine, variant, params))
