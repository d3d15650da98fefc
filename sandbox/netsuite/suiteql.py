"""The SuiteQL subset the emulator answers: one table, the predicates a client needs.

`SELECT cols FROM table [alias] WHERE ... ORDER BY ...` with =, <>, !=, <, >, <=, >=, IN,
LIKE, IS [NOT] NULL, AND, OR, NOT and parentheses, with SQL's three-valued logic for NULL.
`TO_DATE('2026-12-07 16:50:00', 'YYYY-MM-DD HH24:MI:SS')` is a timestamp literal (the
emulated account's time zone is UTC); timestamps such as `lastmodifieddate` compare to the
second, though a row answers only their date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox.netsuite.errors import WireError
from sandbox.netsuite.query import number

__all__ = ["SuiteQL", "parse_suiteql"]

Row = Mapping[str, Any]

_SQL_TOKEN = re.compile(
    r"\s*(?:('(?:[^']|'')*')|(\d+(?:\.\d+)?)|(<>|!=|<=|>=|=|<|>|,|\(|\)|\*)"
    r"|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?))"
)


@dataclass(frozen=True)
class SuiteQL:
    """One parsed SELECT over one table."""

    table: str
    columns: tuple[tuple[str, str], ...]
    """(source column, output name); empty for `SELECT *`."""
    where: Callable[[Row], bool | None] | None
    order_by: tuple[tuple[str, bool], ...]
    """(column, descending)."""
    referenced: frozenset[str]
    types: frozenset[str] | None = None
    """The `type` values the query can match when its WHERE requires `type = '...'`."""

    def run(self, rows: Sequence[Row], known: Sequence[str]) -> list[dict[str, Any]]:
        """Filter, sort and project `rows` (whose columns are `known`)."""
        missing = sorted(self.referenced - set(known))
        if missing:
            raise _sql_error(f"Field '{missing[0]}' for record '{self.table}' was not found")
        selected = [row for row in rows if self.where is None or self.where(row) is True]
        for column, descending in reversed(self.order_by):
            selected.sort(key=_column_key(column), reverse=descending)
        columns = self.columns or tuple((name, name) for name in known)
        return [{out: row.get(src) for src, out in columns} for row in selected]


def parse_suiteql(text: str) -> SuiteQL:
    """Parse the SuiteQL subset; raises WireError(400) on anything outside it."""
    return _SqlParser(_sql_tokens(text)).statement()


def _sql_error(reason: str) -> WireError:
    return WireError(
        400, "INVALID_PARAMETER",
        f"Invalid search query. Detailed unprocessed description follows. {reason}.",
        path="q",
    )


def _sql_tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    text = text.strip().rstrip(";").rstrip()
    while position < len(text):
        match = _SQL_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _sql_error(f"Syntax error near '{text[position:position + 20]}'")
        position = match.end()
        string, number, punct, name = match.groups()
        if string is not None:
            tokens.append(("lit", string[1:-1].replace("''", "'")))
        elif number is not None:
            tokens.append(("lit", Decimal(number)))
        elif punct is not None:
            tokens.append(("punct", punct))
        else:
            tokens.append(("name", name))
    return tokens


_KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "IS", "NULL",
             "ORDER", "BY", "ASC", "DESC", "AS"}


class _SqlParser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.referenced: set[str] = set()
        self.depth = 0
        """How deep in parentheses or NOT the parser is."""
        self.types: frozenset[str] | None = None

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise _sql_error("Unexpected end of query")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "name" and str(token[1]).upper() == word:
            self.position += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            raise _sql_error(f"Expected {word}")

    def punct(self, symbol: str) -> bool:
        if self.peek() == ("punct", symbol):
            self.position += 1
            return True
        return False

    def column_name(self) -> str:
        kind, name = self.take()
        if kind != "name" or str(name).upper() in _KEYWORDS:
            raise _sql_error(f"Expected a column, found '{name}'")
        column = str(name).split(".")[-1].lower()
        self.referenced.add(column)
        return column

    def statement(self) -> SuiteQL:
        self.expect("SELECT")
        columns = self.select_list()
        self.expect("FROM")
        kind, table = self.take()
        if kind != "name":
            raise _sql_error("Expected a table")
        token = self.peek()
        if token is not None and token[0] == "name" and str(token[1]).upper() not in _KEYWORDS:
            self.take()  # a table alias; qualified columns drop it
        where = self.expression() if self.keyword("WHERE") else None
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDER"):
            self.expect("BY")
            order.append(self.ordering())
            while self.punct(","):
                order.append(self.ordering())
        if self.peek() is not None:
            raise _sql_error(f"Unexpected '{self.peek()[1]}'")  # type: ignore[index]
        return SuiteQL(str(table).lower(), columns, where, tuple(order),
                       frozenset(self.referenced), self.types)

    def select_list(self) -> tuple[tuple[str, str], ...]:
        if self.punct("*"):
            return ()
        columns = [self.select_item()]
        while self.punct(","):
            columns.append(self.select_item())
        return tuple(columns)

    def select_item(self) -> tuple[str, str]:
        column = self.column_name()
        alias = column
        if self.keyword("AS"):
            alias = str(self.take()[1]).lower()
        return column, alias

    def ordering(self) -> tuple[str, bool]:
        column = self.column_name()
        if self.keyword("DESC"):
            return column, True
        self.keyword("ASC")
        return column, False

    def expression(self) -> Callable[[Row], bool | None]:
        top = self.depth == 0
        types: set[str] = set()
        terms = [self.conjunction(types if top else None)]
        while self.keyword("OR"):
            terms.append(self.conjunction(None))
        if len(terms) == 1:
            if types:
                self.types = frozenset(types)
            return terms[0]
        return lambda row: _sql_or([term(row) for term in terms])

    def conjunction(self, types: set[str] | None) -> Callable[[Row], bool | None]:
        """`types` collects the values of top-level `type = '...'` factors, any of which a
        matching row must have (a superset is safe: the rows are still filtered)."""
        factors = [self.factor(types)]
        while self.keyword("AND"):
            factors.append(self.factor(types))
        if len(factors) == 1:
            return factors[0]
        return lambda row: _sql_and([factor(row) for factor in factors])

    def factor(self, types: set[str] | None) -> Callable[[Row], bool | None]:
        start = self.position
        factor = self.negation()
        tokens = self.tokens[start:self.position]
        if (types is not None and len(tokens) == 3 and tokens[1] == ("punct", "=")
                and tokens[0][0] == "name" and str(tokens[0][1]).split(".")[-1].lower() == "type"
                and tokens[2][0] == "lit"):
            types.add(str(tokens[2][1]))
        return factor

    def negation(self) -> Callable[[Row], bool | None]:
        if self.keyword("NOT"):
            self.depth += 1
            inner = self.negation()
            self.depth -= 1
            return lambda row: None if (value := inner(row)) is None else not value
        if self.punct("("):
            self.depth += 1
            inner = self.expression()
            self.depth -= 1
            if not self.punct(")"):
                raise _sql_error("Missing ')'")
            return inner
        return self.predicate()

    def operand(self) -> Callable[[Row], Any]:
        token = self.peek()
        if token is not None and token[0] == "lit":
            self.take()
            literal = token[1]
            return lambda row: literal
        if token is not None and token[0] == "name" and str(token[1]).upper() == "TO_DATE":
            stamp = self.to_date()
            return lambda row: stamp
        column = self.column_name()
        return lambda row: row.get(column)

    def predicate(self) -> Callable[[Row], bool | None]:
        left = self.operand()
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            self.expect("NULL")
            return lambda row: (left(row) is None) != negated
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            options = self.literal_list()
            return _negated(lambda row: _sql_in(left(row), options), negated)
        if self.keyword("LIKE"):
            kind, pattern = self.take()
            if kind != "lit":
                raise _sql_error("LIKE takes a string")
            regex = _like(str(pattern))
            return _negated(
                lambda row: None if (v := left(row)) is None else bool(regex.match(_str(v))),
                negated,
            )
        if negated:
            raise _sql_error("NOT must precede IN or LIKE here")
        kind, symbol = self.take()
        if kind != "punct" or symbol not in _COMPARE:
            raise _sql_error(f"Expected a comparison, found '{symbol}'")
        right = self.operand()
        compare = _COMPARE[symbol]
        return lambda row: _sql_compare(left(row), right(row), compare)

    def to_date(self) -> dt.datetime:
        """`TO_DATE('text', 'format')` with the Oracle formats a client sends."""
        self.take()
        if not self.punct("("):
            raise _sql_error("TO_DATE takes a parenthesised text and format")
        kind, text = self.take()
        if kind != "lit" or not self.punct(","):
            raise _sql_error("TO_DATE takes a text and a format")
        kind, oracle = self.take()
        if kind != "lit" or not self.punct(")"):
            raise _sql_error("TO_DATE takes a text and a format")
        python = _DATE_FORMATS.get(str(oracle).upper())
        if python is None:
            raise _sql_error(f"Unsupported date format '{oracle}'")
        try:
            return dt.datetime.strptime(str(text), python).replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise _sql_error(f"Invalid date '{text}' for format '{oracle}'") from exc

    def literal_list(self) -> list[Any]:
        if not self.punct("("):
            raise _sql_error("IN takes a parenthesised list")
        values: list[Any] = []
        while True:
            kind, value = self.take()
            if kind != "lit":
                raise _sql_error("IN takes literals")
            values.append(value)
            if self.punct(")"):
                return values
            if not self.punct(","):
                raise _sql_error("Missing ',' in IN list")


_DATE_FORMATS = {
    "YYYY-MM-DD HH24:MI:SS": "%Y-%m-%d %H:%M:%S",
    "YYYY-MM-DD": "%Y-%m-%d",
    "MM/DD/YYYY": "%m/%d/%Y",
}
"""Oracle date formats TO_DATE takes here, as strptime formats."""

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _negated(
    predicate: Callable[[Row], bool | None], negated: bool
) -> Callable[[Row], bool | None]:
    if not negated:
        return predicate
    return lambda row: None if (value := predicate(row)) is None else not value


def _sql_or(values: list[bool | None]) -> bool | None:
    if any(value is True for value in values):
        return True
    return None if any(value is None for value in values) else False


def _sql_and(values: list[bool | None]) -> bool | None:
    if any(value is False for value in values):
        return False
    return None if any(value is None for value in values) else True


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, dt.date) and isinstance(right, dt.date):
        return _instant(left), _instant(right)
    left_number, right_number = number(left), number(right)
    if left_number is not None and right_number is not None:
        return left_number, right_number
    return _str(left), _str(right)


def _sql_compare(left: Any, right: Any, compare: Callable[[Any, Any], bool]) -> bool | None:
    if left is None or right is None:
        return None
    a, b = _comparable(left, right)
    return compare(a, b)


def _instant(value: dt.date) -> dt.datetime:
    """A date or timestamp as a UTC timestamp (a date is its midnight)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _sql_in(value: Any, options: list[Any]) -> bool | None:
    if value is None:
        return None
    return any(_sql_compare(value, option, lambda a, b: a == b) for option in options)


def _like(pattern: str) -> re.Pattern[str]:
    parts = ("." if char == "_" else ".*" if char == "%" else re.escape(char) for char in pattern)
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def _column_key(column: str) -> Callable[[Row], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(column))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    numeric = number(value)
    if numeric is not None:
        return (0, numeric)
    return (1, _str(value).lower())
