"""The derive expression grammar: exact trees, the canonical text round trip, and refusals with reason and position."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.transform.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    ExpressionError,
    columns,
    parse_expression,
    parse_expression_located,
    render,
)


def col(name: str) -> dict[str, Any]:
    return {"col": name}


def lit(value: Any) -> dict[str, Any]:
    return {"lit": value}


def op(name: str, *args: dict[str, Any]) -> dict[str, Any]:
    return {"op": name, "args": list(args)}


def fn(name: str, *args: dict[str, Any]) -> dict[str, Any]:
    return {"fn": name, "args": list(args)}


@pytest.mark.parametrize(
    ("text", "tree", "canonical"),
    [
        ("price * quantity", op("*", col("price"), col("quantity")), "price * quantity"),
        ("a + b * c", op("+", col("a"), op("*", col("b"), col("c"))), "a + b * c"),
        ("(a + b) * c", op("*", op("+", col("a"), col("b")), col("c")), "(a + b) * c"),
        ("a - (b - c)", op("-", col("a"), op("-", col("b"), col("c"))), "a - (b - c)"),
        ("a - b - c", op("-", op("-", col("a"), col("b")), col("c")), "a - b - c"),
        ("a / b % 3", op("%", op("/", col("a"), col("b")), lit(3)), "a / b % 3"),
        ("-3", op("neg", lit(3)), "-3"),
        ("-(a+b)", op("neg", op("+", col("a"), col("b"))), "-(a + b)"),
        ("a - -b", op("-", col("a"), op("neg", col("b"))), "a - -b"),
        ("2.5e3 + .5", op("+", lit(2500.0), lit(0.5)), "2500.0 + 0.5"),
        ("`unit price` * 2", op("*", col("unit price"), lit(2)), "`unit price` * 2"),
        ("`a``b`", col("a`b"), "`a``b`"),
        ("'it''s'", None, None),  # two adjacent strings: refused below, not here
        ('"say \\"hi\\""', lit('say "hi"'), '"say \\"hi\\""'),
        ("'C:\\dir'", lit("C:\\dir"), '"C:\\\\dir"'),
        ("TRUE", lit(True), "true"),
        ("null", lit(None), "null"),
        ("`true`", col("true"), "`true`"),
        ("ROUND(price * 1.2, 2)", fn("round", op("*", col("price"), lit(1.2)), lit(2)), "round(price * 1.2, 2)"),
        ("concat(first, ' ', last)", fn("concat", col("first"), lit(" "), col("last")), 'concat(first, " ", last)'),
        ("coalesce(a, b, 0)", fn("coalesce", col("a"), col("b"), lit(0)), "coalesce(a, b, 0)"),
        ("year(signup) - 2000", op("-", fn("year", col("signup")), lit(2000)), "year(signup) - 2000"),
        ("round", col("round"), "round"),
        ("  (((a)))  ", col("a"), "a"),
        # bare names in any script, as a command's condition reads them (QA #18: '年' was an unexpected character)
        ("年齢 * 2", op("*", col("年齢"), lit(2)), "年齢 * 2"),
        ("größe + _x1", op("+", col("größe"), col("_x1")), "größe + _x1"),
        ("round(café_prix, 1)", fn("round", col("café_prix"), lit(1)), "round(café_prix, 1)"),
        ("`年齢`", col("年齢"), "年齢"),
        ("`naïve café`", col("naïve café"), "`naïve café`"),
    ],
)
def test_parse_gives_the_tree_and_render_the_canonical_text(text: str, tree: Any, canonical: Any) -> None:
    if tree is None:
        with pytest.raises(ExpressionError):
            parse_expression(text)
        return
    assert parse_expression(text) == tree
    assert render(tree) == canonical
    assert parse_expression(canonical) == tree


@pytest.mark.parametrize(
    ("text", "reason", "position", "suggestions"),
    [
        ("__import__('os').system('x')", "unknown_function", 0, []),
        ("lenght(name)", "unknown_function", 0, ["length"]),
        ("a + os.system(1)", "syntax", 6, []),
        ("abs(1, 2)", "wrong_arguments", 0, []),
        ("concat(a)", "wrong_arguments", 0, []),
        ("round(a, b)", "wrong_arguments", 0, []),
        ("round(a, 16)", "wrong_arguments", 0, []),
        ("round(a, -1)", "wrong_arguments", 0, []),
        ("a +", "syntax", 3, []),
        ("a b", "syntax", 2, []),
        ("'abc", "syntax", 0, []),
        ("a ; b", "syntax", 2, []),
        ("2x", "syntax", 1, []),  # a name does not start with a digit
        ("年齢 € 2", "syntax", 3, []),
        ("", "syntax", 0, []),
        ("1e999", "invalid_value", 0, []),
        ("99999999999999999999", "invalid_value", 0, []),
        ("-" * MAX_DEPTH + "a", "too_deep", 0, []),
    ],
)
def test_refusals_carry_reason_and_position(text: str, reason: str, position: int, suggestions: list[str]) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert caught.value.reason == reason
    assert caught.value.position == position
    assert caught.value.suggestions == suggestions


def test_deep_parentheses_alone_are_fine_and_positions_point_at_tokens() -> None:
    assert parse_expression("(" * 300 + "a" + ")" * 300) == col("a")
    node, positions = parse_expression_located("price + lower(`unit name`)")
    assert positions[id(node)] == 6
    assert positions[id(node["args"][0])] == 0
    assert positions[id(node["args"][1])] == 8
    assert positions[id(node["args"][1]["args"][0])] == 14


def test_columns_lists_the_names_read_left_to_right() -> None:
    assert columns(parse_expression("concat(b, a) + coalesce(c, b)")) == ["b", "a", "c", "b"]


_NAMES = st.text(min_size=1, max_size=8)
_LEAVES = st.one_of(
    _NAMES.map(col),
    st.integers(min_value=0, max_value=2**63 - 1).map(lit),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lit),
    st.text(max_size=8).map(lit),
    st.sampled_from([True, False, None]).map(lit),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    binary = st.builds(lambda o, a, b: op(o, a, b), st.sampled_from("+-*/%"), children, children)
    negation = children.map(lambda a: op("neg", a))
    calls = st.sampled_from(sorted(FUNCTIONS)).flatmap(
        lambda name: st.lists(
            children,
            min_size=FUNCTIONS[name][0],
            max_size=FUNCTIONS[name][1] or FUNCTIONS[name][0] + 2,
        ).map(lambda args: fn(name, *_round_digits(name, args)))
    )
    return st.one_of(binary, negation, calls)


def _round_digits(name: str, args: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [args[0], lit(2)] if name == "round" and len(args) == 2 else args


@settings(deadline=None, max_examples=150)
@given(st.recursive(_LEAVES, _extend, max_leaves=12))
def test_render_then_parse_gives_the_same_tree(tree: dict[str, Any]) -> None:
    assert parse_expression(render(tree)) == tree


def test_a_syntax_error_names_its_position_and_keeps_the_message_without_it() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("年齢 € 2")
    assert caught.value.message == "unexpected character '€' at position 3"
    assert caught.value.located == "unexpected character '€'"
