"""A small SOQL parser (tokenizer + recursive descent) and the matcher the emulator runs.

Grammar (the subset the gateway and a person at a workbench use):

    query      := SELECT field ("," field)* FROM name [WHERE or] [ORDER BY order ("," order)*]
                  [LIMIT integer] [OFFSET integer]
    field      := name ("." name)*                 parent relationships: Account.Name
    or         := and (OR and)*
    and        := not (AND not)*
    not        := NOT not | "(" or ")" | comparison
    comparison := field op literal | field [NOT] IN "(" literal ("," literal)* ")"
                | field [NOT] LIKE string
    op         := = | != | <> | < | <= | > | >=
    literal    := 'string' | number | 2026-11-01 | 2026-11-01T00:00:00Z | TRUE | FALSE | NULL
    order      := field [ASC | DESC] [NULLS (FIRST | LAST)]

Keywords are case-insensitive. Anything else is a `SoqlSyntaxError` (MALFORMED_QUERY).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from typing import Literal as TypingLiteral

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "ExactText",
    "FieldPath",
    "Literal",
    "LiteralKind",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "SoqlSyntaxError",
    "like_pattern",
    "matches",
    "parse",
]

LiteralKind = TypingLiteral["string", "number", "date", "datetime", "boolean", "null"]
Operator = TypingLiteral["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE", "NOT LIKE"]

_KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC",
        "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL",
    }
)

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w])
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
    """,
    re.VERBOSE,
)

_OPERATORS: dict[str, Operator] = {
    "=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
}

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


class SoqlSyntaxError(ValueError):
    """The query is not valid SOQL; `column` is 1-based, as Salesforce reports it."""

    def __init__(self, message: str, *, query: str, column: int) -> None:
        self.query = query
        self.column = column
        self.detail = message
        pointer = " " * (column - 1) + "^"
        super().__init__(f"\n{query}\n{pointer}\nERROR at Row:1:Column:{column}\n{message}")


class ExactText(str):
    """Text compared and sorted case-sensitively (record ids), unlike SOQL's other text."""

    __slots__ = ()


@dataclass(frozen=True)
class FieldPath:
    """A field, possibly through parent relationships (`Account.Name` -> ("Account", "Name"))."""

    parts: tuple[str, ...]
    column: int = 0

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    kind: LiteralKind
    value: str | Decimal | date | datetime | bool | None
    raw: str


@dataclass(frozen=True)
class Comparison:
    field: FieldPath
    op: Operator
    values: tuple[Literal, ...]
    """One literal, or several for IN / NOT IN."""


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    operand: Condition


Condition = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath
    descending: bool = False
    nulls_last: bool = False


@dataclass(frozen=True)
class Query:
    fields: tuple[FieldPath, ...]
    sobject: str
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def parse(text: str) -> Query:
    """Parse one SOQL query; raises SoqlSyntaxError."""
    return _Parser(text).query()


def matches(condition: Condition, resolve: Callable[[FieldPath], object]) -> bool:
    """Evaluate a condition whose literals were already bound to the fields' value types."""
    if isinstance(condition, And):
        return all(matches(item, resolve) for item in condition.operands)
    if isinstance(condition, Or):
        return any(matches(item, resolve) for item in condition.operands)
    if isinstance(condition, Not):
        return not matches(condition.operand, resolve)
    return _compare(condition, resolve(condition.field))


def like_pattern(raw: str) -> re.Pattern[str]:
    """A LIKE pattern ('%' any run, '_' one character, backslash escapes) as a regex."""
    out: list[str] = []
    chars = iter(raw)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _compare(condition: Comparison, value: object) -> bool:
    op = condition.op
    if op in ("IN", "NOT IN"):
        found = any(_equal(value, literal.value) for literal in condition.values)
        return found if op == "IN" else not found
    literal = condition.values[0]
    if op in ("LIKE", "NOT LIKE"):
        hit = isinstance(value, str) and bool(like_pattern(str(literal.raw)).fullmatch(value))
        return hit if op == "LIKE" else not hit
    if op == "=":
        return _equal(value, literal.value)
    if op == "!=":
        return not _equal(value, literal.value)
    if value is None or literal.value is None:
        return False
    try:
        return bool(_ORDERING[op](_comparable(value), _comparable(literal.value)))
    except TypeError:
        return False


def _equal(value: object, literal: object) -> bool:
    # SOQL compares text case-insensitively.
    if isinstance(value, ExactText) or isinstance(literal, ExactText):
        return str(value) == str(literal)
    if isinstance(value, str) and isinstance(literal, str):
        return value.casefold() == literal.casefold()
    return value == literal


def _comparable(value: object) -> Any:
    if isinstance(value, ExactText):
        return str(value)
    return value.casefold() if isinstance(value, str) else value


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0

    # -- token stream -------------------------------------------------------------------------

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("unexpected token: <EOF>", len(self.text) + 1)
        self.position += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "name" and token.upper in words

    def at_punct(self, char: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "punct" and token.text == char

    def expect_keyword(self, word: str) -> _Token:
        token = self.take()
        if token.kind != "name" or token.upper != word:
            raise self.error(f"unexpected token: '{token.text}' (expecting {word})", token.column)
        return token

    def expect_punct(self, char: str) -> None:
        token = self.take()
        if token.text != char:
            raise self.error(f"unexpected token: '{token.text}' (expecting '{char}')", token.column)

    def error(self, message: str, column: int) -> SoqlSyntaxError:
        return SoqlSyntaxError(message, query=self.text, column=column)

    # -- grammar ------------------------------------------------------------------------------

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields = [self.field()]
        while self.at_punct(","):
            self.take()
            fields.append(self.field())
        self.expect_keyword("FROM")
        sobject = self.name()
        where = None
        if self.at_keyword("WHERE"):
            self.take()
            where = self.or_()
        order_by: list[OrderItem] = []
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            order_by.append(self.order_item())
            while self.at_punct(","):
                self.take()
                order_by.append(self.order_item())
        limit = self.integer_clause("LIMIT")
        offset = self.integer_clause("OFFSET")
        trailing = self.peek()
        if trailing is not None:
            raise self.error(f"unexpected token: '{trailing.text}'", trailing.column)
        return Query(
            fields=tuple(fields), sobject=sobject, where=where, order_by=tuple(order_by),
            limit=limit, offset=offset,
        )

    def name(self) -> str:
        token = self.take()
        if token.kind != "name" or token.upper in _KEYWORDS:
            raise self.error(f"unexpected token: '{token.text}'", token.column)
        return token.text

    def field(self) -> FieldPath:
        token = self.peek()
        column = token.column if token is not None else len(self.text) + 1
        parts = [self.name()]
        while self.at_punct("."):
            self.take()
            parts.append(self.name())
        return FieldPath(tuple(parts), column)

    def order_item(self) -> OrderItem:
        field = self.field()
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.take().upper == "DESC"
        nulls_last = descending
        if self.at_keyword("NULLS"):
            self.take()
            token = self.take()
            if token.upper not in ("FIRST", "LAST"):
                raise self.error(f"unexpected token: '{token.text}'", token.column)
            nulls_last = token.upper == "LAST"
        return OrderItem(field, descending, nulls_last)

    def integer_clause(self, keyword: str) -> int | None:
        if not self.at_keyword(keyword):
            return None
        self.take()
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise self.error(f"unexpected token: '{token.text}'", token.column)
        return int(token.text)

    def or_(self) -> Condition:
        operands = [self.and_()]
        while self.at_keyword("OR"):
            self.take()
            operands.append(self.and_())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_(self) -> Condition:
        operands = [self.not_()]
        while self.at_keyword("AND"):
            self.take()
            operands.append(self.not_())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_(self) -> Condition:
        if self.at_keyword("NOT"):
            self.take()
            return Not(self.not_())
        if self.at_punct("("):
            self.take()
            inner = self.or_()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        field = self.field()
        negated = False
        if self.at_keyword("NOT"):
            self.take()
            negated = True
        token = self.take()
        if token.kind == "name" and token.upper == "IN":
            return Comparison(field, "NOT IN" if negated else "IN", self.literal_list())
        if token.kind == "name" and token.upper == "LIKE":
            literal = self.literal()
            if literal.kind != "string":
                raise self.error("LIKE needs a string pattern", token.column)
            return Comparison(field, "NOT LIKE" if negated else "LIKE", (literal,))
        if negated or token.kind != "op":
            raise self.error(f"unexpected token: '{token.text}'", token.column)
        return Comparison(field, _OPERATORS[token.text], (self.literal(),))

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.literal()]
        while self.at_punct(","):
            self.take()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            inner = token.text[1:-1]
            return Literal("string", _unescape(inner), inner)
        if token.kind == "number":
            return Literal("number", Decimal(token.text), token.text)
        if token.kind == "date":
            return Literal("date", self.parse_date(token), token.text)
        if token.kind == "datetime":
            return Literal("datetime", self.parse_datetime(token), token.text)
        if token.kind == "name" and token.upper in ("TRUE", "FALSE"):
            return Literal("boolean", token.upper == "TRUE", token.text)
        if token.kind == "name" and token.upper == "NULL":
            return Literal("null", None, token.text)
        raise self.error(f"unexpected token: '{token.text}'", token.column)

    def parse_date(self, token: _Token) -> date:
        try:
            return date.fromisoformat(token.text)
        except ValueError as exc:
            raise self.error(f"invalid date: {token.text}", token.column) from exc

    def parse_datetime(self, token: _Token) -> datetime:
        text = token.text
        try:
            if text.endswith("Z"):
                return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
            stamp, sign, zone = text[:-5], text[-5], text[-4:].replace(":", "")
            if text[-3] == ":":
                stamp, sign, zone = text[:-6], text[-6], text[-5:].replace(":", "")
            offset = timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
            tz = timezone(offset if sign == "+" else -offset)
            return datetime.fromisoformat(stamp).replace(tzinfo=tz)
        except ValueError as exc:
            raise self.error(f"invalid datetime: {text}", token.column) from exc


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            snippet = text[position : position + 10]
            raise SoqlSyntaxError(
                f"unexpected token: '{snippet}'", query=text, column=position + 1
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    return tokens


def _unescape(inner: str) -> str:
    out: list[str] = []
    chars = iter(inner)
    for char in chars:
        if char == "\\":
            following = next(chars, "\\")
            # \% and \_ stay escaped: only LIKE gives them meaning, and = compares them literally.
            out.append(_ESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)
