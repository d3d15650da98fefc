"""Record collection filters (`q`) as the emulator evaluates them.

`q` follows "Record Collection Filtering"
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1545222128.html):
conditions `field OPERATOR value`, values quoted or bare, lists in brackets, `AND` / `OR`
and parentheses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.netsuite.errors import WireError

__all__ = ["Filter", "number", "parse_filter"]

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

_UNARY = {"EMPTY", "EMPTY_NOT"}
_LIST_OPS = {"ANY_OF", "ANY_OF_NOT", "BETWEEN", "BETWEEN_NOT", "WITHIN", "WITHIN_NOT"}
_OPERATORS = _UNARY | _LIST_OPS | {
    "IS", "IS_NOT", "EQUAL", "EQUAL_NOT", "GREATER", "GREATER_NOT", "GREATER_OR_EQUAL",
    "GREATER_OR_EQUAL_NOT", "LESS", "LESS_NOT", "LESS_OR_EQUAL", "LESS_OR_EQUAL_NOT",
    "CONTAIN", "CONTAIN_NOT", "START_WITH", "START_WITH_NOT", "END_WITH", "END_WITH_NOT",
    "ENDWITH", "AFTER", "AFTER_NOT", "BEFORE", "BEFORE_NOT", "ON", "ON_NOT", "ON_OR_AFTER",
    "ON_OR_AFTER_NOT", "ON_OR_BEFORE", "ON_OR_BEFORE_NOT",
}
_Q_TOKEN = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|(\'(?:[^\'\\]|\\.)*\')|([\[\](),])|([^\s\[\](),"\']+))'
)


@dataclass(frozen=True)
class Filter:
    """A parsed `q` expression; `fields` names every field it reads (for validation)."""

    predicate: Predicate
    fields: frozenset[str]

    def __call__(self, row: Row) -> bool:
        return self.predicate(row)


def parse_filter(text: str) -> Filter:
    """Parse a `q` value; raises WireError(400) naming the query parameter on bad syntax."""
    tokens = _q_tokens(text)
    parser = _QParser(tokens)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise _q_error(f"unexpected '{tokens[parser.position][1]}'")
    return Filter(predicate, frozenset(parser.fields))


def _q_error(reason: str) -> WireError:
    return WireError(
        400, "INVALID_PARAMETER",
        f"Invalid search query. Detailed unprocessed description follows. {reason}.",
        query_param="q",
    )


def _q_tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _Q_TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _q_error(f"cannot read '{text[position:]}'")
        position = match.end()
        double, single, punct, bare = match.groups()
        if double is not None or single is not None:
            raw = (double or single)[1:-1]
            tokens.append(("value", re.sub(r"\\(.)", r"\1", raw)))
        elif punct is not None:
            tokens.append(("punct", punct))
        else:
            tokens.append(("word", bare))
    return tokens


class _QParser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.fields: set[str] = set()

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise _q_error("the expression ends too early")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and str(token[1]).upper() == word:
            self.position += 1
            return True
        return False

    def expression(self) -> Predicate:
        terms = [self.conjunction()]
        while self.keyword("OR"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else _any(terms)

    def conjunction(self) -> Predicate:
        factors = [self.factor()]
        while self.keyword("AND"):
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else _all(factors)

    def factor(self) -> Predicate:
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.expression()
            if self.take() != ("punct", ")"):
                raise _q_error("a parenthesis is not closed")
            return inner
        return self.condition()

    def condition(self) -> Predicate:
        kind, field = self.take()
        if kind != "word":
            raise _q_error(f"expected a field name, found '{field}'")
        kind, operator = self.take()
        operator = str(operator).upper()
        if kind != "word" or operator not in _OPERATORS:
            raise _q_error(f"unknown operator '{operator}'")
        self.fields.add(field.lower())
        values: list[Any] = []
        if operator not in _UNARY:
            values = self.values()
        return _condition(field.lower(), operator, values)

    def values(self) -> list[Any]:
        if self.peek() != ("punct", "["):
            return [self.value()]
        self.take()
        values = [self.value()]
        while self.peek() == ("punct", ","):
            self.take()
            values.append(self.value())
        if self.take() != ("punct", "]"):
            raise _q_error("a list is not closed")
        return values

    def value(self) -> Any:
        kind, raw = self.take()
        if kind == "value":
            return raw
        if kind != "word":
            raise _q_error(f"expected a value, found '{raw}'")
        lowered = str(raw).lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return raw


def _any(predicates: Sequence[Predicate]) -> Predicate:
    return lambda row: any(predicate(row) for predicate in predicates)


def _all(predicates: Sequence[Predicate]) -> Predicate:
    return lambda row: all(predicate(row) for predicate in predicates)


def _condition(field: str, operator: str, values: list[Any]) -> Predicate:
    negate = operator.endswith("_NOT") and operator != "EMPTY_NOT"
    base = operator[: -len("_NOT")] if negate else operator
    if base == "ENDWITH":
        base = "END_WITH"
    test = _TESTS[base]
    _check_arity(base, values)

    def predicate(row: Row) -> bool:
        outcome = test(_scalar(row.get(field)), values)
        return not outcome if negate else outcome

    return predicate


def _check_arity(base: str, values: list[Any]) -> None:
    if base in ("BETWEEN", "WITHIN") and len(values) != 2:
        raise _q_error(f"{base} takes two values")
    if base not in _UNARY and base not in _LIST_OPS and len(values) != 1:
        raise _q_error(f"{base} takes one value")


def _scalar(value: Any) -> Any:
    """A field as `q` compares it: references and select fields by their id."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    for layout in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text[:10] if "-" in text else text, layout).date()
        except ValueError:
            continue
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).lower()


def _same(left: Any, right: Any) -> bool:
    left_number, right_number = number(left), number(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    return _text(left) == _text(right)


def _is(value: Any, values: list[Any]) -> bool:
    target = values[0]
    if isinstance(target, bool):
        return (value in (True, "T", "true")) == target
    return _text(value) == _text(target)


def _ordered(compare: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, list[Any]], bool]:
    def test(value: Any, values: list[Any]) -> bool:
        left, right = number(value), number(values[0])
        if left is None or right is None:
            raise _q_error(f"'{values[0]}' is not a number")
        return compare(left, right)

    return test


def _dated(compare: Callable[[dt.date, dt.date], bool]) -> Callable[[Any, list[Any]], bool]:
    def test(value: Any, values: list[Any]) -> bool:
        target = _date(values[0])
        if target is None:
            raise _q_error(f"'{values[0]}' is not a date")
        current = _date(value)
        return current is not None and compare(current, target)

    return test


def _between(value: Any, values: list[Any]) -> bool:
    low, high, current = number(values[0]), number(values[1]), number(value)
    if low is None or high is None:
        raise _q_error("BETWEEN takes two numbers")
    return current is not None and low <= current <= high


_TESTS: dict[str, Callable[[Any, list[Any]], bool]] = {
    "EMPTY": lambda value, _: value is None or value == "",
    "EMPTY_NOT": lambda value, _: not (value is None or value == ""),
    "IS": _is,
    "ANY_OF": lambda value, values: any(_same(value, option) for option in values),
    "EQUAL": _ordered(lambda a, b: a == b),
    "GREATER": _ordered(lambda a, b: a > b),
    "GREATER_OR_EQUAL": _ordered(lambda a, b: a >= b),
    "LESS": _ordered(lambda a, b: a < b),
    "LESS_OR_EQUAL": _ordered(lambda a, b: a <= b),
    "BETWEEN": _between,
    "WITHIN": _between,
    "CONTAIN": lambda value, values: _text(values[0]) in _text(value),
    "START_WITH": lambda value, values: _text(value).startswith(_text(values[0])),
    "END_WITH": lambda value, values: _text(value).endswith(_text(values[0])),
    "AFTER": _dated(lambda a, b: a > b),
    "BEFORE": _dated(lambda a, b: a < b),
    "ON": _dated(lambda a, b: a == b),
    "ON_OR_AFTER": _dated(lambda a, b: a >= b),
    "ON_OR_BEFORE": _dated(lambda a, b: a <= b),
}
