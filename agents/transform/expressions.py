"""The restricted expression grammar of ``derive``: a text such as ``round(price * quantity, 2)`` becomes a tree of
whitelisted nodes, and a tree renders back to one canonical text (``parse_expression(render(n)) == n``).

Nothing is evaluated here or anywhere else: the executor turns the tree into Polars expressions node by node, so an
expression can only name columns, literals, the five arithmetic operators and the functions of ``FUNCTIONS``.

Syntax:
- columns: bare identifiers (letters of any script, digits and ``_``, not starting with a digit: ``price``,
  ``年齢``, ``größe``; as a command's condition reads a word) or in backticks (```unit price```, a backtick doubled);
  ``true``, ``false`` and ``null`` (any case) are literals, so a column of that name needs backticks;
- literals: numbers (``3``, ``2.5``, ``1e3``), text in single or double quotes (a backslash escapes the quote or a
  backslash; any other backslash is kept), ``true``/``false``/``null``;
- ``+ - * / %`` with the usual precedence, unary minus, parentheses;
- function calls ``name(arg, ...)``: names of ``FUNCTIONS`` only (any case), with their number of arguments.

Nodes are plain JSON-able dicts::

    {"col": name} | {"lit": int | float | str | bool | None}
    | {"op": "+" | "-" | "*" | "/" | "%", "args": [a, b]} | {"op": "neg", "args": [a]}
    | {"fn": name, "args": [...]}

``-3`` is ``{"op": "neg", "args": [{"lit": 3}]}``: a literal is never negative, so the canonical text is unique.
Types (which columns each function accepts, the result's dtype) are checked against the data by
``agents.transform.resolve``.

Free of Polars (the API imports it).
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from rapidfuzz import process

Node = dict[str, Any]

FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "round": (1, 2),  # round(x[, digits]): digits a whole number 0..15, default 0
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "title": (1, 1),
    "trim": (1, 1),
    "length": (1, 1),  # characters of a text
    "concat": (2, None),  # the arguments as text, joined, skipping empty ones (as TEXTJOIN): agents.transform.execute
    "coalesce": (2, None),  # the first non-empty argument
    "year": (1, 1),
    "month": (1, 1),
    "day": (1, 1),
}
"""Function name -> (least, most) arguments; ``None``: no upper bound."""

MAX_DEPTH = 64
"""Deepest nesting accepted: deeper trees are refused rather than risking the recursion limit downstream."""

MAX_ROUND_DIGITS = 15
_INT64 = (-(2**63), 2**63 - 1)
_NAME = re.compile(r"(?!\d)\w+")
_KEYWORD_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_ESCAPE = re.compile(r"\\([\\\"'])")

_GRAMMAR = r"""
?start: sum
?sum: product
    | sum PLUS product   -> binary
    | sum MINUS product  -> binary
?product: unary
    | product TIMES unary -> binary
?unary: atom
    | MINUS unary -> neg
?atom: NUMBER -> number
    | STRING -> string
    | BACKTICKED -> quoted_column
    | NAME -> name
    | NAME "(" [sum ("," sum)*] ")" -> call
    | "(" sum ")"

PLUS: "+"
MINUS: "-"
TIMES: "*" | "/" | "%"
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
STRING: /"(?:[^"\\]|\\.)*"/ | /'(?:[^'\\]|\\.)*'/
BACKTICKED: /`(?:[^`]|``)+`/
NAME: /(?!\d)\w+/
%ignore /\s+/
"""


class LocatedError(ValueError):
    """A text refused at a place: ``reason`` a short code, ``position`` the 0-based offset of the offending token,
    ``suggestions`` what would fit there."""

    def __init__(self, message: str, *, reason: str, position: int, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.position = position
        self.suggestions = list(suggestions or [])


class ExpressionError(LocatedError):
    """An expression that is not in the grammar: ``reason`` ``syntax``, ``unknown_function``, ``wrong_arguments``,
    ``invalid_value`` or ``too_deep``; ``position`` in the expression text. ``located``: the message without the
    "at position N" that ends it, if it has one (a command puts its own position there, counted in the whole
    command)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        position: int,
        suggestions: list[str] | None = None,
        located: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, position=position, suggestions=suggestions)
        self.located = located


def _at_position(what: str, position: int) -> ExpressionError:
    """A syntax error whose message ends with its position in the expression."""
    return ExpressionError(f"{what} at position {position}", reason="syntax", position=position, located=what)


class _Build:
    """The callbacks that turn each rule of the parse tree into a node, recording each node's position and
    nesting depth in side tables keyed by the node's identity."""

    def __init__(self) -> None:
        self.positions: dict[int, int] = {}
        self.depths: dict[int, int] = {}

    def _node(self, node: Node, position: int, children: list[Node]) -> Node:
        depth = 1 + max((self.depths[id(c)] for c in children), default=0)
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression nests deeper than {MAX_DEPTH} levels", reason="too_deep", position=position
            )
        self.positions[id(node)] = position
        self.depths[id(node)] = depth
        return node

    def number(self, children: list[Token]) -> Node:
        token = children[0]
        text = str(token)
        value: int | float
        if re.fullmatch(r"\d+", text):
            value = int(text)
            if value > _INT64[1]:
                raise ExpressionError(f"the number {text} is too large", reason="invalid_value", position=_at(token))
        else:
            value = float(text)
            if not math.isfinite(value):
                raise ExpressionError(f"the number {text} is too large", reason="invalid_value", position=_at(token))
        return self._node({"lit": value}, _at(token), [])

    def string(self, children: list[Token]) -> Node:
        token = children[0]
        return self._node({"lit": _unquote(str(token))}, _at(token), [])

    def quoted_column(self, children: list[Token]) -> Node:
        token = children[0]
        return self._node({"col": str(token)[1:-1].replace("``", "`")}, _at(token), [])

    def name(self, children: list[Token]) -> Node:
        token = children[0]
        lowered = str(token).lower()
        if lowered in _KEYWORD_LITERALS:
            return self._node({"lit": _KEYWORD_LITERALS[lowered]}, _at(token), [])
        return self._node({"col": str(token)}, _at(token), [])

    def call(self, children: list[Any]) -> Node:
        token, *args = children
        args = [a for a in args if a is not None]
        name = str(token).lower()
        if name not in FUNCTIONS:
            close = [m[0] for m in process.extract(name, list(FUNCTIONS), limit=3, score_cutoff=60)]
            raise ExpressionError(
                f"'{token}' is not a function of the expression grammar"
                + (f"; did you mean {_quoted_list(close)}?" if close else f"; known: {', '.join(FUNCTIONS)}"),
                reason="unknown_function",
                position=_at(token),
                suggestions=close,
            )
        _check_arguments(name, args, _at(token))
        return self._node({"fn": name, "args": args}, _at(token), args)

    def binary(self, children: list[Any]) -> Node:
        left, operator, right = children
        return self._node({"op": str(operator), "args": [left, right]}, _at(operator), [left, right])

    def neg(self, children: list[Any]) -> Node:
        operator, operand = children
        return self._node({"op": "neg", "args": [operand]}, _at(operator), [operand])


def _at(token: Token) -> int:
    return token.start_pos or 0


def _check_arguments(name: str, args: list[Node], position: int) -> None:
    least, most = FUNCTIONS[name]
    if len(args) < least or (most is not None and len(args) > most):
        expected = f"{least}" if least == most else f"{least} or more" if most is None else f"{least} to {most}"
        raise ExpressionError(
            f"{name}() takes {expected} argument{'s' if expected != '1' else ''}, not {len(args)}",
            reason="wrong_arguments",
            position=position,
        )
    if name == "round" and len(args) == 2:
        digits = args[1].get("lit")
        if "lit" not in args[1] or type(digits) is not int or not 0 <= digits <= MAX_ROUND_DIGITS:
            raise ExpressionError(
                f"round()'s digits must be a whole number from 0 to {MAX_ROUND_DIGITS}",
                reason="wrong_arguments",
                position=position,
            )


def _unquote(text: str) -> str:
    return _ESCAPE.sub(r"\1", text[1:-1])


def _quoted_list(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@cache
def _parser() -> Lark:
    # Built once, on first use: the grammar is a constant, and the parser is read-only once built.
    return Lark(_GRAMMAR, parser="lalr", lexer="contextual")


def parse_expression(text: str) -> Node:
    """The tree of ``text``; raises ExpressionError with the reason and position."""
    return parse_expression_located(text)[0]


def parse_expression_located(text: str) -> tuple[Node, dict[int, int]]:
    """The tree of ``text`` and, for each of its nodes (keyed by ``id(node)``), the 0-based offset of the token
    that made it (a column or literal's first character, a function's name, an operator)."""
    if not text.strip():
        raise ExpressionError("the expression is empty", reason="syntax", position=0)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise _unknown_function(text) or _syntax_error(error, text) from None
    build = _Build()
    return _build_flat(tree, build), build.positions


def _build_flat(tree: Tree | Token, build: _Build) -> Node:
    """Applies ``build``'s callbacks bottom-up without recursion (a deep tree must not reach Python's recursion
    limit before the depth check refuses it)."""
    if isinstance(tree, Token):  # a lone atom: the grammar's ?rules inline a single child
        rule = {"NUMBER": "number", "STRING": "string", "BACKTICKED": "quoted_column"}.get(tree.type, "name")
        tree = Tree(rule, [tree])
    results: dict[int, Node] = {}
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    while stack:
        item, expanded = stack.pop()
        if not expanded:
            stack.append((item, True))
            stack.extend((child, False) for child in reversed(item.children) if isinstance(child, Tree))
            continue
        children = [results.pop(id(c)) if isinstance(c, Tree) else c for c in item.children]
        results[id(item)] = getattr(build, str(item.data))(children)
    return results[id(tree)]


def _unknown_function(text: str) -> ExpressionError | None:
    """The first call of a name outside the whitelist, if any: a clearer reason than the syntax error it causes
    later (``__import__('os').system('x')`` is refused for ``__import__``, not for the dot)."""
    previous: Token | None = None
    try:
        for token in _parser().lex(text):
            if token.type == "LPAR" and previous is not None and previous.type == "NAME":
                if str(previous).lower() not in FUNCTIONS:
                    try:
                        _Build().call([previous])
                    except ExpressionError as error:
                        return error
            previous = token
    except UnexpectedInput:
        pass
    return None


def _syntax_error(error: UnexpectedInput, text: str) -> ExpressionError:
    if isinstance(error, UnexpectedEOF):
        return ExpressionError("the expression ends too early", reason="syntax", position=len(text))
    position = error.pos_in_stream if error.pos_in_stream is not None else len(text)
    if isinstance(error, UnexpectedCharacters):
        char = text[position : position + 1]
        if char in "'\"`":
            return _at_position(f"unclosed {char}", position)
        return _at_position(f"unexpected character {char!r}", position)
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            return ExpressionError("the expression ends too early", reason="syntax", position=len(text))
        return _at_position(f"unexpected '{token}'", position)
    return ExpressionError("the expression is not in the grammar", reason="syntax", position=position)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2, "neg": 3}
_ATOM = 4


def _precedence(node: Node) -> int:
    return _PRECEDENCE[node["op"]] if "op" in node else _ATOM


def render(node: Node) -> str:
    """The canonical text of a tree: minimal parentheses, double-quoted text, bare column names where the grammar
    reads them as columns (backticks otherwise), lower-case function names."""
    if "col" in node:
        return render_column(node["col"])
    if "lit" in node:
        return render_literal(node["lit"])
    if "fn" in node:
        return f"{node['fn']}({', '.join(render(a) for a in node['args'])})"
    op, args = node["op"], node["args"]
    if op == "neg":
        inner = render(args[0])
        return f"-{inner}" if _precedence(args[0]) >= _PRECEDENCE["neg"] else f"-({inner})"
    left, right = render(args[0]), render(args[1])
    if _precedence(args[0]) < _PRECEDENCE[op]:
        left = f"({left})"
    if _precedence(args[1]) <= _PRECEDENCE[op]:
        right = f"({right})"
    return f"{left} {op} {right}"


def render_column(name: str) -> str:
    if _NAME.fullmatch(name) and name.lower() not in _KEYWORD_LITERALS:
        return name
    return "`" + name.replace("`", "``") + "`"


def render_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value >= 0 else f"({value})"
    if isinstance(value, float):
        return repr(value) if value >= 0 else f"({value!r})"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def columns(node: Node) -> list[str]:
    """The column names a tree reads, left to right (repeats included)."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if "col" in current:
            found.append(current["col"])
        stack.extend(reversed(current.get("args", [])))
    return found
