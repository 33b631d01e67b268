"""English commands -> the transformer's operations, by a grammar (lark, LALR): ``remove rows where email is null``
becomes ``{"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}}``.

The output is only ever an operation dict of agents.params.transformer with column names and literals as written;
agents.transform.resolve then reads the names against the data and types the literals. Nothing is executed: a text
that is not in the grammar is refused with the position of the first word that does not fit.

How words are read. A hand-written lexer splits the text into quoted text ('..', "..", “..”), backticked names
(`..`), ISO dates (2024-01-31, optionally with a time), numbers, words (letters, digits, ``_``, inner ``-`` and
``'``) and the symbols ``= == != <> < <= > >= ( ) [ ] , .``. A word is a keyword (case-insensitive, see
``_KEYWORDS``) only where the grammar can take that keyword next; anywhere else it is an ordinary word. So
``sort by date`` sorts on a column named date, while ``convert x to date`` casts.

Where the grammar takes a value (and only there: never a column name, never an expression), a bare value may also
hold ``@ . & / + : # % $ - '`` and balanced parentheses, with no space: ``john.smith@acme.com``, ``acme.com``,
``Jones & Co``, ``(02) 9876-5432``, ``N/A``, ``10:30``, ``3.5kg`` (a ``BARE`` token, see ``_bare_end``: read only
when it is longer than the word, number or date it starts with). A value's pieces are joined as written where they
touch and by one space where spaces part them. A period that ends the command is the sentence's, not the
value's; ``( ) [ ] ,`` keep their meaning (``in (a.b, c)`` is a list of two values). Anything else (``; ? = ! *``,
quotes) needs the value quoted, and a column name with such characters needs backticks (`address.city`): a syntax
error inside such a word says so. A refused command whose misspelled keyword (one or two edits from one, see
``corrections``) would, corrected, be in the grammar says which keyword was meant, at the misspelled word:
``cast price to integr`` (did you mean 'integer'?), ``name contans x``; agents.transform.resolve does the same for
a command whose misspelled keyword was read as a column name or a value (``sort by id descnding``).

Syntax decisions (each unambiguous by construction; the grammar has no conflicts):
- columns: one or more plain words (``signup date``; resolution also matches ``signup_date``), or quoted
  ('Unit Price', "Unit Price"), or backticked (`Unit Price`). A name holding a keyword of that position (``first``
  in ``move ... first``) needs quotes or backticks;
- in a condition the left side is a column and the right side a literal: a number, a date, quoted text or plain
  words (``country = united states``). A column on the right is written ``column start_date`` or backticked:
  ``end_date > column start_date``, ``end_date > `start_date```; a plain word there is always a literal;
- ``contains``/``starts with``/``ends with`` look for a piece of text whatever its case (``case_sensitive: false``,
  as search's keywords do: ``name contains smith`` finds ``Smith``); ``case-sensitive`` (or ``case sensitive``) after
  the value asks for the case as written. ``=``, ``!=`` and ``in`` compare whole values exactly unless ``ignoring
  case`` (or ``case-insensitive``) follows the value;
- ``is null``/``is empty``/``is missing``/``is blank`` (and ``= null``, ``= ''``) test for an empty cell, as does a
  bare missing-value token after ``=``, ``!=`` or in a list (``= N/A``, ``in (nan, x)``: the reader read those
  cells as empty; quoted, it is text); a bare ``none`` is the text none (lower-case none is no missing-value token:
  ``= none``, ``in (none, x)``, ``replace x with none`` and ``fill ... with none`` all mean that text), with a note;
  an empty cell in an ``in`` list is an ``is null`` beside it (``in (null, x)``: empty or x);
  ``in`` and ``not in`` take a list in parentheses or brackets: ``country in (US, CA)``;
- ``replace A with B in col`` replaces whole cells equal to A; ``replace text A with B in col`` (or ``replace
  substring``, ``replace all occurrences of``) replaces every occurrence of the piece of text A inside cells;
  ``with empty``/``with null``/``with nothing`` makes the cells empty, ``with ''`` writes empty text;
- ``fill missing x with constant Unknown`` (or ``with value``, ``with the constant``, ``with a value of``) fills
  ``Unknown``: those words name the kind of fill, not part of the value (a text that starts with them is quoted:
  ``with "value pack"``);
- ``add column total = <expression>``: everything after ``=`` (or ``as``) is an expression of
  agents.transform.expressions;
- ``convert x to date using format "%d/%m/%Y" and set invalid values to empty`` (``on_invalid: null``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, LexerState
from lark.parsers.lalr_analysis import Shift
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from agents.params.common import DEFAULT_NULL_TOKENS
from agents.transform.expressions import LocatedError

MAX_CONDITION_DEPTH = 20
"""Deepest nesting of parentheses and ``not`` in a command's condition."""

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "REMOVE": ("remove", "delete", "drop", "exclude", "discard", "eliminate", "erase"),
    "KEEP": ("keep", "keeping", "retain", "retaining"),
    "ONLY": ("only",),
    "FILTER": ("filter",),
    "SELECT": ("select",),
    "OUT": ("out",),
    "ROWS": ("row", "rows", "record", "records", "entry", "entries", "line", "lines"),
    "WHERE": ("where", "when", "if", "whose"),
    "WITH": ("with",),
    "WITHOUT": ("without",),
    "NO": ("no",),
    "COLUMNS": ("column", "columns", "field", "fields", "col", "cols"),
    "ALL": ("all", "every", "each"),
    "THE": ("the", "those", "these"),
    "A": ("a", "an"),
    "RENAME": ("rename",),
    "TO": ("to",),
    "AS": ("as",),
    "INTO": ("into",),
    "MOVE": ("move", "put", "bring", "place"),
    "REORDER": ("reorder", "rearrange", "arrange"),
    "ORDER": ("order",),
    "SORT": ("sort",),
    "FIRST": ("first",),
    "LAST": ("last",),
    "FRONT": ("front", "start", "beginning", "left", "top"),
    "CONVERT": ("convert", "cast", "change", "turn", "transform"),
    "MAKE": ("make", "set"),
    "TYPE": ("type",),
    "NUMBER_T": ("number", "numbers", "numeric"),
    "INTEGER_T": ("integer", "integers", "int"),
    "FLOAT_T": ("float", "floats", "decimal", "decimals", "double"),
    "TEXT_T": ("text", "string", "strings", "str"),
    "DATE_T": ("date", "dates"),
    "DATETIME_T": ("datetime", "datetimes", "timestamp", "timestamps"),
    "BOOLEAN_T": ("boolean", "booleans", "bool"),
    "USING": ("using",),
    "FORMAT": ("format", "pattern"),
    "INVALID": ("invalid", "bad", "unparseable", "unparsable"),
    "ERRORS": ("errors", "error"),
    "VALUES": ("value", "values", "cell", "cells"),
    "NULL": ("null", "nulls", "empty", "missing", "blank", "blanks", "none", "nothing"),
    "FILL": ("fill", "impute"),
    "CONSTANT": ("constant", "value"),
    "IN": ("in",),
    "OF": ("of",),
    "FOR": ("for",),
    "FROM": ("from",),
    "ON": ("on",),
    "BY": ("by",),
    "BASED": ("based",),
    "ACROSS": ("across",),
    "MEDIAN": ("median",),
    "MEAN": ("mean", "average", "avg"),
    "MODE": ("mode",),
    "MOST": ("most",),
    "FREQUENT": ("frequent", "common"),
    "PREVIOUS": ("previous", "preceding", "prior", "forward"),
    "NEXT": ("next", "following", "backward", "backwards"),
    "DEDUPLICATE": ("deduplicate", "dedupe", "dedup"),
    "DUPLICATES": ("duplicate", "duplicates", "duplicated", "dupes", "dups"),
    "ONE": ("one", "instance", "copy"),
    "OCCURRENCES": ("occurrence", "occurrences"),
    "ASC": ("asc", "ascending", "increasing"),
    "DESC": ("desc", "descending", "decreasing"),
    "THEN": ("then",),
    "DATA": ("data", "table", "dataset"),
    "AND": ("and",),
    "OR": ("or",),
    "NOT": ("not",),
    "ISNT": ("isn't", "isnt", "aren't", "arent"),
    "DOESNT": ("doesn't", "doesnt", "don't", "dont"),
    "IS": ("is", "are", "was", "were"),
    "EQUALS": ("equals", "equal"),
    "GREATER": ("greater", "more", "higher", "larger", "bigger"),
    "LESS": ("less", "fewer", "smaller"),
    "THAN": ("than",),
    "AT": ("at",),
    "LEAST": ("least",),
    "ABOVE": ("above", "over", "after", "exceeds", "exceeding"),
    "BELOW": ("below", "under", "before"),
    "BETWEEN": ("between",),
    "CONTAINS": ("contains", "contain", "containing", "includes", "include"),
    "STARTS": ("starts", "start", "begins", "begin", "starting", "beginning"),
    "ENDS": ("ends", "end", "ending"),
    "DOES": ("does", "do"),
    "IGNORING": ("ignoring", "ignore"),
    "CASE": ("case",),
    "INSENSITIVE": ("insensitive", "insensitively", "case-insensitive", "case-insensitively"),
    "SENSITIVE": ("sensitive", "sensitively"),
    "CASE_SENSITIVE": ("case-sensitive", "case-sensitively"),
    "ANY": ("any",),
    "LOWER": ("lower", "lowercase", "lower-case", "lowercased"),
    "UPPER": ("upper", "uppercase", "upper-case", "uppercased"),
    "TITLE": ("title", "titlecase", "title-case", "proper"),
    "TRIM": ("trim", "strip"),
    "WHITESPACE": ("whitespace", "whitespaces", "space", "spaces"),
    "LEADING": ("leading", "trailing", "surrounding", "extra", "excess", "outer"),
    "EVERYTHING": ("everything",),
    "REPLACE": ("replace", "substitute"),
    "SUBSTRING": ("substring", "substrings"),
    "ADD": ("add", "create", "derive", "compute", "calculate", "insert", "define", "append"),
    "NEW": ("new",),
    "CALLED": ("called", "named"),
    "PLEASE": ("please",),
}
"""Terminal -> the words that are it (where the grammar takes it). A word may belong to several terminals."""

_WORD_TERMINALS: dict[str, tuple[str, ...]] = {}
for _terminal, _words in _KEYWORDS.items():
    for _word in _words:
        _WORD_TERMINALS[_word] = (*_WORD_TERMINALS.get(_word, ()), _terminal)

_SYMBOLS = {
    ">=": "GE",
    "<=": "LE",
    "!=": "NE",
    "<>": "NE",
    "==": "EQ",
    "=": "EQ",
    "<": "LT",
    ">": "GT",
    "(": "LPAR",
    ")": "RPAR",
    "[": "LSQB",
    "]": "RSQB",
    ",": "COMMA",
    ".": "DOT",
}

_GRAMMAR = r"""
start: PLEASE? command DOT?

?command: remove_cmd | keep_cmd | rename_cmd | reorder_cmd | cast_cmd | case_cmd | fill_cmd | dedupe_cmd
        | sort_cmd | derive_cmd | trim_cmd | replace_cmd

// ---- remove: rows, columns, duplicates, whitespace
remove_cmd: remove_verb remove_body
remove_verb: REMOVE | FILTER OUT
remove_body: _rows where_clause                       -> remove_rows
    | where_clause                                    -> remove_rows
    | _column_group                                   -> remove_columns
    | ALL? THE? DUPLICATES ROWS? dedupe_tail          -> remove_duplicates
    | DUPLICATES col_list keep_clause?                -> remove_duplicates_of
    | leading? WHITESPACE targets?                    -> remove_whitespace

// ---- keep: rows or columns
keep_cmd: keep_verb keep_body
keep_verb: KEEP | KEEP ONLY | ONLY KEEP | ONLY | FILTER | FILTER TO | FILTER FOR | SELECT | SELECT ONLY
keep_body: _rows where_clause                         -> keep_rows
    | where_clause                                    -> keep_rows
    | _column_group                                   -> keep_columns

_rows: ALL? THE? ROWS
where_clause: WHERE condition
    | WITH condition
    | WITH NULL col_ref                               -> with_null
    | WITH NO col_ref                                 -> with_null
    | WITHOUT A? col_ref                              -> with_null

// ---- conditions
?condition: or_cond
?or_cond: and_cond (OR and_cond)*
?and_cond: not_cond (AND not_cond)*
?not_cond: NOT not_cond                               -> negation
    | LPAR condition RPAR
    | comparison

comparison: _subject _eq value_ref case_flag?         -> cmp_eq
    | _subject _ne value_ref case_flag?               -> cmp_ne
    | _subject _gt value_ref                          -> cmp_gt
    | _subject _ge value_ref                          -> cmp_ge
    | _subject _lt value_ref                          -> cmp_lt
    | _subject _le value_ref                          -> cmp_le
    | _subject _in value_list case_flag?              -> cmp_in
    | _subject _not_in value_list case_flag?          -> cmp_not_in
    | _subject _between literal AND literal           -> cmp_between
    | _subject _not_between literal AND literal       -> cmp_not_between
    | _subject text_op literal case_flag?             -> cmp_text
    | _subject _not text_op literal case_flag?        -> cmp_not_text
_subject: THE? col_ref

_eq: EQ | IS | EQUALS | EQUALS TO | IS EQUALS TO
_ne: NE | IS NOT | ISNT | IS NOT EQUALS TO? | ISNT EQUALS TO? | _not EQUALS TO?
_gt: GT | IS? GREATER THAN | IS? ABOVE
_ge: GE | IS? AT LEAST | IS? GREATER THAN OR EQUALS TO | IS? NO LESS THAN | IS? ON OR ABOVE
_lt: LT | IS? LESS THAN | IS? BELOW
_le: LE | IS? AT MOST | IS? LESS THAN OR EQUALS TO | IS? NO GREATER THAN | IS? ON OR BELOW
_in: IN | IS IN | IS ONE OF | IS ANY OF
_not_in: NOT IN | IS NOT IN | ISNT IN | IS NOT ONE OF | ISNT ONE OF
_between: BETWEEN | IS BETWEEN
_not_between: NOT BETWEEN | IS NOT BETWEEN | ISNT BETWEEN
_not: NOT | DOES NOT | DOESNT
text_op: CONTAINS                                     -> op_contains
    | STARTS WITH                                     -> op_starts_with
    | ENDS WITH                                       -> op_ends_with

case_flag: COMMA? IGNORING CASE | COMMA? CASE? INSENSITIVE
    | COMMA? CASE SENSITIVE                           -> case_matched
    | COMMA? CASE_SENSITIVE                           -> case_matched

value_ref: literal
    | COLUMNS col_ref                                 -> column_value
    | BACKTICK                                        -> column_value

value_list: LPAR list_items RPAR | LSQB list_items RSQB
list_items: literal ((COMMA | OR | AND | COMMA OR | COMMA AND) literal)* COMMA?

literal: NUMBER | QUOTED | DATE | value_words | NULL

// ---- columns
col_ref: words | QUOTED | BACKTICK
words: WORD (WORD | NUMBER)*
value_words: (WORD | BARE) (WORD | NUMBER | BARE)*
col_list: col_ref ((COMMA | AND | COMMA AND) col_ref)* COMMA?
_column_group: THE? COLUMNS? col_list | THE? COLUMNS? col_list COLUMNS COMMA?
_in_columns: _prep _column_group

targets: _prep? _column_group
    | _prep? ALL THE? TEXT_T? COLUMNS?                -> all_columns
    | _prep? EVERYTHING                               -> all_columns
_prep: FROM | IN | OF | ON | FOR

// ---- rename, reorder
rename_cmd: RENAME rename_pair ((COMMA | AND | COMMA AND) rename_pair)*
rename_pair: THE? COLUMNS? col_ref COLUMNS? (TO | AS | INTO) col_ref

reorder_cmd: MOVE _column_group position
    | REORDER THE? COLUMNS? (AS | TO | INTO)? col_list position?
    | ORDER THE? COLUMNS (AS | TO | INTO)? col_list position?
position: FIRST | TO THE? FRONT | IN FRONT

// ---- cast and case
cast_cmd: CONVERT _column_group (TO | INTO | AS) A? type_name TYPE? cast_option*
type_name: NUMBER_T | INTEGER_T | FLOAT_T | TEXT_T | DATE_T | DATETIME_T | BOOLEAN_T
cast_option: COMMA? (USING | WITH | IN) THE? FORMAT? QUOTED          -> format_option
    | COMMA? FORMAT QUOTED                                             -> format_option
    | COMMA? AND? MAKE (ALL | ANY | THE)? _invalid (TO | INTO | AS)? NULL -> invalid_null
    | COMMA? AND? IGNORING (_invalid | ERRORS)                          -> invalid_null
    | COMMA? (WITH | AND)? _invalid (AS | TO) NULL                     -> invalid_null
_invalid: INVALID VALUES?

case_cmd: case_word targets?
    | MAKE _column_group case_word
    | CONVERT _column_group (TO | INTO) case_word
case_word: LOWER CASE?                                -> to_lower
    | UPPER CASE?                                     -> to_upper
    | TITLE CASE?                                     -> to_title

// ---- fill
fill_cmd: FILL fill_columns (WITH | USING | BY) fill_value
    | PREVIOUS FILL fill_columns                      -> fill_previous
    | NEXT FILL fill_columns                          -> fill_next
fill_columns: _prep? THE? NULL VALUES? _prep? _column_group
    | _prep? _column_group (NULL VALUES?)?
fill_value: THE? MEDIAN VALUES?                       -> fill_median
    | THE? MEAN VALUES?                               -> fill_mean
    | THE? MODE VALUES?                               -> fill_mode
    | THE? MOST FREQUENT VALUES?                      -> fill_mode
    | THE? PREVIOUS (VALUES | ONE)?                   -> fill_previous_value
    | THE? NEXT (VALUES | ONE)?                       -> fill_next_value
    | _constant_word? NUMBER                          -> fill_constant
    | _constant_word? QUOTED                          -> fill_constant
    | _constant_word? DATE                            -> fill_constant
    | _constant_word? value_words                     -> fill_constant
_constant_word: (A | THE)? CONSTANT VALUES? OF?

// ---- deduplicate
dedupe_cmd: DEDUPLICATE THE? (ROWS | DATA)? dedupe_tail
dedupe_tail: dedupe_on? keep_clause? | COMMA keep_clause
dedupe_on: (ON | BY | USING | FOR | IN | OF | ACROSS | BASED ON) _column_group
keep_clause: KEEP THE? (FIRST | LAST) (ONE | OCCURRENCES | ROWS)?

// ---- sort
sort_cmd: (SORT | ORDER) THE? (ROWS | DATA)? (BY | ON | USING)? sort_key (_sort_sep sort_key)* nulls_clause?
sort_key: col_ref direction?
direction: ASC | DESC | IN ASC ORDER | IN DESC ORDER | ASC ORDER | DESC ORDER
_sort_sep: COMMA | COMMA THEN BY? | THEN BY? | AND | COMMA AND
nulls_clause: COMMA? WITH? (NULL | NO) VALUES? (FIRST | LAST)

// ---- derive
derive_cmd: ADD A? NEW? COLUMNS? CALLED? col_ref (EQ | AS | EQUALS | EQUALS TO) EXPR

// ---- trim
trim_cmd: TRIM WHITESPACE? targets?
leading: LEADING (AND LEADING)?

// ---- replace
replace_cmd: REPLACE ALL? VALUES? literal_value (WITH | BY | TO) new_value _in_columns         -> replace_whole
    | REPLACE _substring literal_value (WITH | BY) new_value _in_columns                     -> replace_text
    | REPLACE ALL? THE? NULL VALUES? _in_columns (WITH | BY) fill_value                      -> replace_nulls
_substring: TEXT_T | SUBSTRING | ALL? OCCURRENCES OF
literal_value: NUMBER | QUOTED | DATE | value_words
new_value: NUMBER | QUOTED | DATE | value_words | NULL

%declare WORD BARE NUMBER QUOTED BACKTICK DATE EXPR GE LE NE EQ LT GT LPAR RPAR LSQB RSQB COMMA DOT
"""
_GRAMMAR += "%declare " + " ".join(_KEYWORDS) + "\n"

_TOKEN = re.compile(
    r"""(?P<QUOTED>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|“[^”]*”|‘[^’]*’)
    |(?P<BACKTICK>`(?:[^`]|``)+`)
    |(?P<DATE>\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?(?![\w-]))
    |(?P<NUMBER>[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
    |(?P<WORD>\w+(?:[-'’]\w+)*)
    |(?P<SYMBOL>>=|<=|!=|<>|==|[=<>()\[\],.])""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\([\\\"'])")
_BARE_CHARACTER = re.compile(r"[\w@.&/+\-:#%$'’]")
"""What a bare value holds besides balanced parentheses (module docstring)."""
_QUOTES = "'\"“”‘’`"
# A value that reads as a statement of SQL or Python (``'; DROP TABLE users'``, ``__import__('os')``,
# ``system('x')``). Nothing is ever executed, so such a value would be harmless; it is refused all the same
# because no data set holds it and a person who typed it meant something else than a comparison. The same
# value given in a JSON operation is taken as it is.
_CODE_LIKE = re.compile(
    r";\s*(?:drop|delete|insert|update|select|alter|create|truncate|exec|grant|shutdown)\b"
    r"|__\w+__|\b(?:eval|exec|system|popen)\s*\(",
    re.IGNORECASE,
)
_LAST_FIELD = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")


class CommandError(LocatedError):
    """A command outside the grammar: ``reason`` (``empty_command``, ``unknown_operation``, ``syntax``,
    ``too_deep``), ``position`` the 0-based offset of the offending token, ``suggestions`` what would fit."""


@dataclass(frozen=True)
class ParsedCommand:
    operation: dict[str, Any]
    """The operation as the model's JSON, with column names and literals as written."""
    spans: dict[str, int]
    """Field path inside the operation (``where.all[1].column``, ``columns[0]``) -> offset in the command."""
    notes: list[str] = field(default_factory=list)

    def position_of(self, path: str) -> int:
        """The offset of ``path``, or of its nearest enclosing field that has one; 0 when none has."""
        while path not in self.spans:
            parent = _LAST_FIELD.sub("", path, count=1)
            if parent == path:
                return 0
            path = parent
        return self.spans[path]


class _ContextualLexer(Lexer):
    """Splits the text into tokens; a word becomes a keyword only when the parser, in its current state, can take
    that keyword (``EXPR``, the rest of the text, only where an expression is expected)."""

    __future_interface__ = 2  # lark passes the parser state, which tells what the grammar can take next

    def __init__(self, lexer_conf: Any) -> None:
        pass

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        text = str(lexer_state.text.text)
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return
            match = _TOKEN.match(text, position)
            if _takes(parser_state, "EXPR") and not (match and _keyword(match, parser_state)):
                yield Token("EXPR", text[position:], start_pos=position, end_pos=len(text))
                return
            bare = _bare_end(text, position, parser_state)
            if bare > (match.end() if match else position) and (match is None or match.lastgroup != "QUOTED"):
                yield Token("BARE", text[position:bare], start_pos=position, end_pos=bare)
                position = bare
                continue
            if match is None:
                raise CommandError(
                    f"unexpected character {text[position]!r} at position {position}"
                    + (": a quote is not closed" if text[position] in _QUOTES else _quote_hint(text, position)),
                    reason="syntax",
                    position=position,
                )
            kind, end = match.lastgroup or "", match.end()
            if kind == "SYMBOL":
                kind = _SYMBOLS[match.group()]
            elif kind == "WORD":
                kind = _keyword(match, parser_state) or "WORD"
                if kind == "NULL":  # "null or empty" is one test, not two conditions
                    alternative = _NULL_ALTERNATIVE.match(text, end)
                    end = alternative.end() if alternative else end
            yield Token(kind, text[position:end], start_pos=position, end_pos=end)
            position = end


# A period and a word that goes on with the command ("Main St. and age > 30", "replace text St. with Street"): the
# period is the value's; before any other word, or at the end, it closes the sentence.
_CONTINUED = re.compile(r"\.\s+(?:and|or|with|in|to|into|as|by)\b", re.IGNORECASE)


def _bare_end(text: str, start: int, parser_state: Any) -> int:
    """Where a bare value starting at ``start`` ends (``start``: none here). Only where the grammar takes one; it
    holds ``_BARE_CHARACTER`` and balanced parentheses (``(02)``, never the ``)`` that closes a condition, nor a
    ``(`` where a list may open), and not a period that ends a sentence (at the end, or before a space and a word that
    does not go on with the command: ``= Paris. sort by price`` is refused as two sentences, not read as the value
    ``Paris. sort by price``)."""
    if text[start] in _QUOTES or not _takes(parser_state, "BARE"):
        return start
    if text[start] == "(" and _takes(parser_state, "LPAR"):
        return start
    opened: list[int] = []
    end = start
    while end < len(text):
        character = text[end]
        if character == "(":
            opened.append(end)
        elif character == ")":
            if not opened:
                break
            opened.pop()
        elif not _BARE_CHARACTER.match(character) or (
            character == "." and text[end + 1 : end + 2].strip() == "" and not _CONTINUED.match(text, end)
        ):
            break  # a period before a space or the end closes the sentence ("… = Paris. sort by price")
        end += 1
    if opened:
        end = opened[0]
    return end


def _quote_hint(text: str, position: int, *, in_value: bool = False) -> str:
    """Advice for a character or word that does not fit: the word around ``position`` quoted (a value) or
    backticked (a column name) when it sits inside a word (``address.city``, ``a;b``); else, after a value
    (``in_value``), that a value of several pieces is quoted whole; else nothing."""
    start = position
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = position
    while end < len(text) and not text[end].isspace():
        end += 1
    word = text[start:end]
    inside = any(c.isalnum() for c in text[start:position]) and any(c.isalnum() for c in text[position + 1 : end])
    if inside and not any(c in _QUOTES for c in word) and len(word) <= 60:  # noqa: PLR2004 - a word to show
        return f'; if {word} is a value, put it in quotes ("{word}"); if it is a column name, in backticks (`{word}`)'
    if in_value:
        return '; a value of several pieces with other characters goes in quotes ("...")'
    return ""


_NULL_ALTERNATIVE = re.compile(r"(?:\s+or\s+(?:null|empty|missing|blank))+\b", re.IGNORECASE)


def _keyword(match: re.Match[str], parser_state: Any) -> str | None:
    """The keyword a matched word is here, if the parser can take one of its keywords."""
    if match.lastgroup != "WORD":
        return None
    return next((t for t in _WORD_TERMINALS.get(match.group().casefold(), ()) if _takes(parser_state, t)), None)


def _takes(parser_state: Any, terminal: str) -> bool:
    """Whether the parser, in its current state, can shift ``terminal`` after the reductions it implies. The LALR
    table alone over-approximates (merged states accept a keyword that no reduction path can shift), which would
    turn an ordinary word into a keyword."""
    states = parser_state.parse_conf.states
    stack = list(parser_state.state_stack)
    while True:
        entry = states[stack[-1]].get(terminal)
        if entry is None:
            return False
        action, argument = entry
        if action is Shift:
            return True
        size = len(argument.expansion)
        if size:
            del stack[-size:]
        stack.append(states[stack[-1]][argument.origin.name][1])


@cache
def _parser() -> Lark:
    # Built once, on first use: LALR tables for this grammar take a few tens of milliseconds.
    return Lark(_GRAMMAR, parser="lalr", lexer=_ContextualLexer, strict=True)


_VERB_TERMINALS = (
    "REMOVE", "FILTER", "KEEP", "ONLY", "SELECT", "RENAME", "MOVE", "REORDER", "ORDER", "SORT", "CONVERT", "MAKE",
    "LOWER", "UPPER", "TITLE", "FILL", "PREVIOUS", "NEXT", "DEDUPLICATE", "ADD", "TRIM", "REPLACE",
)  # fmt: skip


def parse_command(text: str) -> ParsedCommand:
    """The operation of one English command; raises CommandError."""
    if not text.strip():
        raise CommandError("the command is empty", reason="empty_command", position=0)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise _corrected(_syntax_error(error, text), text) from None
    except CommandError as error:
        raise _unknown_verb(text, error.position) or error from None
    return _Builder().build(tree)


_PHRASES = ("starts with", "ends with", "is null", "is not null", "is not", "greater than", "less than", "one of")
"""Keywords written as one word by mistake (``startswith``, ``isnull``): corrections may split a word into them."""


@cache
def _vocabulary() -> tuple[str, ...]:
    return tuple(sorted({*_WORD_TERMINALS, *_PHRASES}))


@dataclass(frozen=True)
class Correction:
    """A misspelled keyword: the ``word`` at ``position`` of the command, the ``keyword`` it is close to, and the
    command with the keyword in its place (``text``)."""

    position: int
    word: str
    keyword: str
    text: str

    def advice(self, refused: str, *, at_refusal: bool) -> str:
        """``refused`` (the refusal's message) with the correction: after it when the refusal is at the word, else
        before it (the command, as written, fails elsewhere: ``name contans x`` reads as a column name)."""
        if at_refusal:
            where = f"(position {self.position}); "
            if where in refused:  # before what the refusal goes on to say fits there
                return refused.replace(where, f"{where}did you mean '{self.keyword}'? ", 1)
            return f"{refused}; did you mean '{self.keyword}'?"
        return (
            f"did you mean '{self.keyword}' for '{self.word}' (position {self.position})? As written: "
            f"{refused[:1].lower()}{refused[1:]}"
        )


def corrections(text: str, at: int | None = None) -> list[Correction]:
    """Words of ``text`` close to a keyword (Damerau-Levenshtein: one edit in words of 3 to 5 characters, two from 6;
    ``isnull`` is one edit from ``is null``), each with the keywords near it, the closest first: the candidates to
    try when a command is refused. A word that is a keyword itself is a candidate only at ``at`` (where the parser
    refused it: ``were`` for ``where``). Quoted text, backticked names, numbers and dates are never changed."""
    found: list[tuple[int, float, Correction]] = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        folded = word.casefold()
        if match.lastgroup != "WORD" or len(folded) < 3 or (folded in _WORD_TERMINALS and match.start() != at):  # noqa: PLR2004
            continue
        allowed = 1 if len(folded) <= 5 else 2  # noqa: PLR2004 - as column names' typos
        near = process.extract(folded, _vocabulary(), scorer=DamerauLevenshtein.distance, score_cutoff=allowed, limit=4)
        for keyword, distance, _ in near:
            if keyword == folded or len(keyword) < 2:  # noqa: PLR2004 - "a" is one edit from any short word
                continue
            changed = text[: match.start()] + keyword + text[match.end() :]
            found.append((distance, -fuzz.ratio(folded, keyword), Correction(match.start(), word, keyword, changed)))
    return [correction for *_, correction in sorted(found, key=lambda item: (item[0], item[1], item[2].position))]


def _corrected(error: CommandError, text: str) -> CommandError:
    """A syntax error with the misspelled keyword that, corrected, makes the command one of the grammar."""
    if error.reason != "syntax":
        return error
    for correction in corrections(text, at=error.position):
        try:
            _parser().parse(correction.text)
        except (UnexpectedInput, CommandError):
            continue
        at_refusal = correction.position == error.position
        quoted = f"'{correction.keyword}'"
        suggestions = [quoted, *(s for s in error.suggestions if s != quoted)] if at_refusal else [quoted]
        return CommandError(
            correction.advice(error.message, at_refusal=at_refusal),
            reason=error.reason,
            position=correction.position,
            suggestions=suggestions,
        )
    return error


def _unknown_verb(text: str, position: int) -> CommandError | None:
    """An ``unknown_operation`` error when the text fails before any word that starts a command."""
    match = re.match(r"\s*(?:please\s+)?", text, re.IGNORECASE)
    start = match.end() if match else 0
    if position > start:
        return None
    first = re.match(r"[\w'-]+|\S+", text[start:])
    word = first.group() if first else ""
    verbs = sorted({w for t in _VERB_TERMINALS for w in _KEYWORDS[t]})
    close = [m[0] for m in process.extract(word.casefold(), verbs, limit=3, score_cutoff=70)]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return CommandError(
        f"'{word[:40]}' is not an operation: start with remove, keep, rename, drop, convert, fill, deduplicate, "
        f"sort, add, lowercase, trim or replace{hint}",
        reason="unknown_operation",
        position=start,
        suggestions=close,
    )


def _syntax_error(error: UnexpectedInput, text: str) -> CommandError:
    if isinstance(error, UnexpectedToken):
        parser = getattr(error, "interactive_parser", None)
        fits = error.expected
        if parser is not None:  # what really fits, not the over-approximation of the LALR state
            fits = {t for t in fits if _takes(parser.parser_state, t)}
        expected = _expected_words(fits)
        token = error.token
        if token.type == "$END":
            position = len(text.rstrip())
            return CommandError(
                f"the command ends too early; it could go on with {', '.join(expected[:8])}",
                reason="syntax",
                position=position,
                suggestions=expected[:6],
            )
        position = token.start_pos or 0
        unknown = _unknown_verb(text, position)
        if unknown is not None:
            return unknown
        shown = f"; expected {', '.join(expected[:8])}" if expected else ""
        in_value = parser is not None and token.type in _VALUE_PIECES and _after_value(parser.parser_state)
        shown += _quote_hint(text, position, in_value=in_value)
        return CommandError(
            f"'{str(token)[:40]}' does not fit here (position {position}){shown}",
            reason="syntax",
            position=position,
            suggestions=expected[:6],
        )
    position = getattr(error, "pos_in_stream", None) or 0
    return CommandError(f"the command is not in the grammar (position {position})", reason="syntax", position=position)


_VALUE_PIECES = frozenset({"WORD", "BARE", "NUMBER", "DATE", "QUOTED"})


def _after_value(parser_state: Any) -> bool:
    """Whether the parser has just read a value (its last piece is on top of the stack)."""
    stack = getattr(parser_state, "value_stack", None) or []
    last = stack[-1] if stack else None
    if isinstance(last, Tree):
        return last.data in ("value_words", "literal")
    return isinstance(last, Token) and last.type in _VALUE_PIECES


_TERMINAL_HINTS = {
    "WORD": "a word",
    "BARE": "a value",
    "QUOTED": "quoted text",
    "BACKTICK": "a `column`",
    "NUMBER": "a number",
    "DATE": "a date",
    "EXPR": "an expression",
    **{name: f"'{symbol}'" for symbol, name in _SYMBOLS.items() if symbol not in ("<>", "==")},
}


def _expected_words(expected: set[str] | frozenset[str]) -> list[str]:
    words = {_TERMINAL_HINTS.get(t) or (f"'{_KEYWORDS[t][0]}'" if t in _KEYWORDS else "") for t in expected}
    return sorted(w for w in words if w and w != "$END")


# ---------------------------------------------------------------------------------------------------- building


def _code_checked(value: str, position: int) -> str:
    """``value``, unless it reads as code (``_CODE_LIKE``): then the command is refused, saying why."""
    if _CODE_LIKE.search(value):
        raise CommandError(
            f"the value {value!r} reads as a SQL or Python statement; commands only compare, never run code. "
            "If the data really holds this text, give the step as a JSON operation",
            reason="looks_like_code",
            position=position,
        )
    return value


def _unquote(text: str) -> str:
    if text[0] in "“‘":
        return text[1:-1]
    return _ESCAPE.sub(r"\1", text[1:-1])


@dataclass
class _Value:
    """A column name or literal as written, with the offset where it starts."""

    value: Any
    position: int


_NESTING = ("or_cond", "and_cond", "negation", "not_cond")
_TEXT_OPS = {"op_contains": "contains", "op_starts_with": "starts_with", "op_ends_with": "ends_with"}
_SCALAR_CMPS = {"cmp_eq": "==", "cmp_ne": "!=", "cmp_gt": ">", "cmp_ge": ">=", "cmp_lt": "<", "cmp_le": "<="}


class _Builder:
    """Turns the parse tree of one command into the operation dict and the table of positions."""

    def __init__(self) -> None:
        self.spans: dict[str, int] = {}
        self.notes: list[str] = []

    def build(self, tree: Tree) -> ParsedCommand:
        command = next(c for c in tree.children if isinstance(c, Tree))
        method = getattr(self, f"_{command.data}")
        operation = method(command)
        return ParsedCommand(operation=operation, spans=self.spans, notes=self.notes)

    # -- helpers

    def _at(self, path: str, item: _Value) -> Any:
        self.spans[path] = item.position
        return item.value

    @staticmethod
    def _trees(tree: Tree, name: str | None = None) -> list[Tree]:
        return [c for c in tree.children if isinstance(c, Tree) and (name is None or c.data == name)]

    @staticmethod
    def _tokens(tree: Tree) -> list[Token]:
        return [c for c in tree.children if isinstance(c, Token)]

    def _has(self, tree: Tree, terminal: str) -> bool:
        return any(t.type == terminal for t in self._tokens(tree))

    def _column(self, tree: Tree) -> _Value:
        """A col_ref (or a words tree): the name as written."""
        if tree.data == "words":
            words = self._tokens(tree)
            return _Value(" ".join(str(w) for w in words), words[0].start_pos or 0)
        child = tree.children[0]
        if isinstance(child, Tree):
            return self._column(child)
        if child.type == "BACKTICK":
            return _Value(str(child)[1:-1].replace("``", "`"), child.start_pos or 0)
        return _Value(_unquote(str(child)), child.start_pos or 0)

    def _columns(self, tree: Tree) -> list[str]:
        names: list[str] = []
        for col_list in self._trees(tree, "col_list"):
            for ref in self._trees(col_list, "col_ref"):
                names.append(self._at(f"columns[{len(names)}]", self._column(ref)))
        return names

    def _literal(self, tree: Tree) -> _Value:
        """A literal, literal_value, new_value or fill value: text as written (typed later by its column), or
        None for the null words."""
        child = tree.children[0]
        if isinstance(child, Tree):
            return self._value_words(child)
        if child.type == "QUOTED":
            return _Value(_code_checked(_unquote(str(child)), child.start_pos or 0), child.start_pos or 0)
        if child.type == "NULL":
            if str(child).casefold() == "none" and str(child) != "None":  # a word, not the missing-value token
                self.notes.append(f"{child} read as the text '{child}' (an empty cell is tested with is null)")
                return _Value(str(child), child.start_pos or 0)
            return _Value(None, child.start_pos or 0)
        return _Value(str(child), child.start_pos or 0)

    def _compared(self, literal: Tree) -> _Value:
        """A literal compared with ``=``, ``!=`` or ``in``: a bare missing-value token (``N/A``, ``nan``; PRODUCT.md
        "Missing values") is an empty cell, as the reader read the cells that held it (quoted, it is text)."""
        item = self._literal(literal)
        if isinstance(item.value, str) and not self._quoted(literal) and item.value in DEFAULT_NULL_TOKENS:
            self.notes.append(f"{item.value} read as an empty cell (a missing-value token; quote it for the text)")
            return _Value(None, item.position)
        return item

    @staticmethod
    def _value_words(tree: Tree) -> _Value:
        """A value of bare pieces: one space where spaces part them, none where they touch (``(02) 9876-5432``,
        ``Jones & Co``); refused when it reads as code, as a quoted value is."""
        pieces = [token for token in tree.children if isinstance(token, Token)]
        text = str(pieces[0])
        for before, piece in zip(pieces, pieces[1:], strict=False):
            text += ("" if before.end_pos == piece.start_pos else " ") + str(piece)
        position = pieces[0].start_pos or 0
        return _Value(_code_checked(text, position), position)

    def _targets(self, tree: Tree) -> list[str] | None:
        """The columns of trim/case: None (every text column) when absent or ``all columns``."""
        targets = self._trees(tree, "targets")
        return self._columns(targets[0]) if targets else None

    # -- rows

    def _remove_cmd(self, tree: Tree) -> dict[str, Any]:
        return self._body(self._trees(tree)[-1], "remove")

    def _keep_cmd(self, tree: Tree) -> dict[str, Any]:
        return self._body(self._trees(tree)[-1], "keep")

    def _body(self, body: Tree, action: str) -> dict[str, Any]:
        kind = str(body.data)
        if kind in ("remove_rows", "keep_rows"):
            where = self._where(self._trees(body)[-1])
            return {"op": "filter", "action": action, "where": where}
        if kind in ("remove_columns", "keep_columns"):
            return {"op": "drop_columns" if action == "remove" else "keep_columns", "columns": self._columns(body)}
        if kind == "remove_duplicates":
            return self._dedupe(body)
        if kind == "remove_duplicates_of":
            return {"op": "deduplicate", "columns": self._columns(body), "keep": self._keep_clause(body)}
        return {"op": "trim", "columns": self._targets(body)}

    def _where(self, clause: Tree) -> dict[str, Any]:
        if clause.data == "with_null":
            ref = self._trees(clause, "col_ref")[0]
            return {"column": self._at("where.column", self._column(ref)), "cmp": "is_null"}
        condition = self._trees(clause)[0]
        self._check_depth(condition)
        return self._condition(condition, "where")

    def _check_depth(self, condition: Tree) -> None:
        """Refuses deep nesting before the recursive walks below (and the model's validation) meet it."""
        stack = [(condition, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_CONDITION_DEPTH:
                raise CommandError(
                    f"the condition nests deeper than {MAX_CONDITION_DEPTH} levels",
                    reason="too_deep",
                    position=self._first_position(node),
                )
            stack.extend((c, depth + (c.data in _NESTING)) for c in self._trees(node))

    @staticmethod
    def _first_position(tree: Tree) -> int:
        for token in tree.scan_values(lambda v: isinstance(v, Token)):
            return token.start_pos or 0
        return 0

    def _condition(self, tree: Tree, path: str) -> dict[str, Any]:
        kind = str(tree.data)
        if kind in ("or_cond", "and_cond"):
            key = "any" if kind == "or_cond" else "all"
            parts = self._trees(tree)
            return {key: [self._condition(p, f"{path}.{key}[{i}]") for i, p in enumerate(parts)]}
        if kind == "negation":
            return {"not": self._condition(self._trees(tree)[0], f"{path}.not")}
        if kind == "not_cond":  # a parenthesised condition
            return self._condition(self._trees(tree)[0], path)
        if kind in ("cmp_not_between", "cmp_not_text"):
            inner = self._comparison(tree, f"{path}.not")
            return {"not": inner}
        return self._comparison(tree, path)

    def _comparison(self, tree: Tree, path: str) -> dict[str, Any]:
        kind = str(tree.data)
        column = self._at(f"{path}.column", self._column(self._trees(tree, "col_ref")[0]))
        comparison: dict[str, Any] = {"column": column}
        if self._trees(tree, "case_flag"):
            comparison["case_sensitive"] = False
        elif self._trees(tree, "case_matched"):
            comparison["case_sensitive"] = True
        elif kind in ("cmp_text", "cmp_not_text"):  # a piece of text is looked for whatever its case, as search does
            comparison["case_sensitive"] = False
        if kind in _SCALAR_CMPS:
            return self._scalar(tree, path, comparison, _SCALAR_CMPS[kind])
        if kind in ("cmp_in", "cmp_not_in"):
            items = self._trees(self._trees(tree, "value_list")[0], "list_items")[0]
            values = [self._at(f"{path}.value[{i}]", self._compared(t)) for i, t in enumerate(self._trees(items))]
            return self._in_list(comparison, values, negated=kind == "cmp_not_in")
        if kind in ("cmp_between", "cmp_not_between"):
            ends = self._trees(tree, "literal")
            values = [self._at(f"{path}.value[{i}]", self._literal(t)) for i, t in enumerate(ends)]
            return comparison | {"cmp": "between", "value": values}
        op = next(t for t in self._trees(tree) if t.data in _TEXT_OPS)
        value = self._at(f"{path}.value", self._literal(self._trees(tree, "literal")[0]))
        return comparison | {"cmp": _TEXT_OPS[str(op.data)], "value": value}

    @staticmethod
    def _in_list(comparison: dict[str, Any], values: list[Any], *, negated: bool) -> dict[str, Any]:
        """``in``/``not in`` a list; an empty cell in it (``in (null, peanuts)``) is an ``is null`` beside it."""
        cmp = "not_in" if negated else "in"
        present = [v for v in values if v is not None]
        if len(present) == len(values):
            return comparison | {"cmp": cmp, "value": values}
        empty = {"column": comparison["column"], "cmp": "is_not_null" if negated else "is_null"}
        if not present:
            return empty
        listed = comparison | {"cmp": cmp, "value": present}
        return {"all": [listed, empty]} if negated else {"any": [listed, empty]}

    def _scalar(self, tree: Tree, path: str, comparison: dict[str, Any], cmp: str) -> dict[str, Any]:
        ref = next(t for t in self._trees(tree) if t.data in ("value_ref", "column_value"))
        target = ref.children[0] if ref.data == "value_ref" else None
        if ref.data == "column_value":
            column_tree = self._trees(ref, "col_ref")
            item = self._column(column_tree[0]) if column_tree else self._column(Tree("col_ref", ref.children))
            return comparison | {"cmp": cmp, "value_column": self._at(f"{path}.value_column", item)}
        assert isinstance(target, Tree)
        item = self._compared(target) if cmp in ("==", "!=") else self._literal(target)
        empty = item.value is None or (item.value == "" and self._quoted(target))
        if empty and cmp in ("==", "!="):
            if item.value == "":
                self.notes.append("'' read as an empty cell (the reader keeps no empty text)")
            self.spans[f"{path}.value"] = item.position
            return comparison | {"cmp": "is_null" if cmp == "==" else "is_not_null"}
        return comparison | {"cmp": cmp, "value": self._at(f"{path}.value", item)}

    @staticmethod
    def _quoted(literal: Tree) -> bool:
        child = literal.children[0]
        return isinstance(child, Token) and child.type == "QUOTED"

    # -- columns

    def _rename_cmd(self, tree: Tree) -> dict[str, Any]:
        mapping: dict[str, str] = {}
        for pair in self._trees(tree, "rename_pair"):
            old_ref, new_ref = self._trees(pair, "col_ref")
            old, new = self._column(old_ref), self._column(new_ref)
            self.spans[f"mapping.{old.value}.key"] = old.position
            self.spans[f"mapping.{old.value}"] = new.position
            if old.value in mapping:
                raise CommandError(
                    f"column '{old.value}' is renamed twice", reason="duplicate_column", position=old.position
                )
            mapping[old.value] = new.value
        return {"op": "rename", "mapping": mapping}

    def _reorder_cmd(self, tree: Tree) -> dict[str, Any]:
        return {"op": "reorder", "columns": self._columns(tree)}

    # -- types and text

    def _cast_cmd(self, tree: Tree) -> dict[str, Any]:
        target = self._tokens(self._trees(tree, "type_name")[0])[0].type
        to = {
            "NUMBER_T": "number",
            "INTEGER_T": "integer",
            "FLOAT_T": "float",
            "TEXT_T": "text",
            "DATE_T": "date",
            "DATETIME_T": "datetime",
            "BOOLEAN_T": "boolean",
        }[target]
        operation: dict[str, Any] = {"op": "cast", "columns": self._columns(tree), "to": to}
        for option in self._trees(tree):
            if option.data == "format_option":
                quoted = next(t for t in self._tokens(option) if t.type == "QUOTED")
                operation["format"] = self._at("format", _Value(_unquote(str(quoted)), quoted.start_pos or 0))
            elif option.data == "invalid_null":
                operation["on_invalid"] = "null"
        return operation

    def _case_cmd(self, tree: Tree) -> dict[str, Any]:
        word = self._trees(tree)[0] if self._trees(tree)[0].data.startswith("to_") else self._trees(tree)[-1]
        to = str(word.data)[3:]
        columns = self._columns(tree) if self._trees(tree, "col_list") else self._targets(tree)
        return {"op": "case", "columns": columns, "to": to}

    def _trim_cmd(self, tree: Tree) -> dict[str, Any]:
        return {"op": "trim", "columns": self._targets(tree)}

    # -- fill

    def _fill_columns(self, tree: Tree) -> list[str]:
        return self._columns(self._trees(tree, "fill_columns")[0])

    def _fill_cmd(self, tree: Tree) -> dict[str, Any]:
        columns = self._fill_columns(tree)
        return {"op": "fill_nulls", "columns": columns, **self._fill_value(self._trees(tree)[-1])}

    def _fill_previous(self, tree: Tree) -> dict[str, Any]:
        return {"op": "fill_nulls", "columns": self._fill_columns(tree), "strategy": "previous"}

    def _fill_next(self, tree: Tree) -> dict[str, Any]:
        return {"op": "fill_nulls", "columns": self._fill_columns(tree), "strategy": "next"}

    def _fill_value(self, value: Tree) -> dict[str, Any]:
        kind = str(value.data)
        if kind == "fill_constant":  # the value is the last piece: "with constant Unknown" fills Unknown
            written = Tree("literal", [value.children[-1]])
            item = self._literal(written)
            bare_token = isinstance(item.value, str) and not self._quoted(written) and item.value in DEFAULT_NULL_TOKENS
            if item.value is None or bare_token:  # a missing-value token: every later read takes it for missing
                token = item.value if item.value is not None else str(value.children[-1])
                raise CommandError(
                    f"'{token}' is a missing-value token: cells filled with it would still read as missing; give a "
                    "value to fill with (or remove the rows: remove rows where … is null)",
                    reason="invalid_value",
                    position=item.position,
                )
            return {"strategy": "constant", "value": self._at("value", item)}
        strategy = {"fill_previous_value": "previous", "fill_next_value": "next"}.get(kind, kind[len("fill_") :])
        return {"strategy": strategy}

    # -- rows again

    def _dedupe_cmd(self, tree: Tree) -> dict[str, Any]:
        return self._dedupe(tree)

    def _dedupe(self, tree: Tree) -> dict[str, Any]:
        tail = self._trees(tree, "dedupe_tail")[0]
        on = self._trees(tail, "dedupe_on")
        return {
            "op": "deduplicate",
            "columns": self._columns(on[0]) if on else None,
            "keep": self._keep_clause(tail),
        }

    def _keep_clause(self, tree: Tree) -> str:
        clauses = self._trees(tree, "keep_clause")
        return "last" if clauses and self._has(clauses[0], "LAST") else "first"

    def _sort_cmd(self, tree: Tree) -> dict[str, Any]:
        keys = []
        for i, key in enumerate(self._trees(tree, "sort_key")):
            column = self._at(f"by[{i}].column", self._column(self._trees(key, "col_ref")[0]))
            direction = self._trees(key, "direction")
            keys.append({"column": column, "descending": bool(direction) and self._has(direction[0], "DESC")})
        operation: dict[str, Any] = {"op": "sort", "by": keys}
        nulls = self._trees(tree, "nulls_clause")
        if nulls:
            operation["nulls_last"] = self._has(nulls[0], "LAST")
        return operation

    # -- derive and replace

    def _derive_cmd(self, tree: Tree) -> dict[str, Any]:
        column = self._at("column", self._column(self._trees(tree, "col_ref")[0]))
        expression = next(t for t in self._tokens(tree) if t.type == "EXPR")
        text = str(expression).rstrip()
        self.spans["expression"] = expression.start_pos or 0
        return {"op": "derive", "column": column, "expression": text}

    def _replace_whole(self, tree: Tree) -> dict[str, Any]:
        return self._replace(tree, whole_value=True)

    def _replace_text(self, tree: Tree) -> dict[str, Any]:
        return self._replace(tree, whole_value=False)

    def _replace(self, tree: Tree, *, whole_value: bool) -> dict[str, Any]:
        old = self._at("old", self._literal(self._trees(tree, "literal_value")[0]))
        new = self._at("new", self._literal(self._trees(tree, "new_value")[0]))
        columns = self._columns(tree)
        return {"op": "replace", "columns": columns, "old": old, "new": new, "whole_value": whole_value}

    def _replace_nulls(self, tree: Tree) -> dict[str, Any]:
        return {"op": "fill_nulls", "columns": self._columns(tree), **self._fill_value(self._trees(tree)[-1])}
