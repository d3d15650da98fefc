"""What the canonical routes share about their inputs: the list routes' cursor, page size and
legal entity, the refusal of a repeated query parameter, and the OpenAPI schema of a body.

Parameters are declared once with their bounds so that the OpenAPI states them and Litestar
refuses a value outside them (400 with the field named) before a route runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from litestar.di import NamedDependency
from litestar.params import BodyKwarg, QueryParameter, SkipValidation

from contracts.errors import FieldError, InvalidRequest

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Instant",
    "LegalEntityFilter",
    "PageCursor",
    "PageLimit",
    "Provided",
    "exact_body",
    "instant",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

T = TypeVar("T")

Provided = NamedDependency[SkipValidation[T]]
"""A port the app provides, taken as given: Litestar would otherwise check it against its
runtime-checkable Protocol on every request (a `hasattr` per operation, ~2 % of a read's
CPU in `bench/system_read.py --profile`)."""
_SHAPE = ("type", "properties", "required", "additionalProperties")
_PYTHON_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""What `\\s` matches in a Python (msgspec) pattern: more than in ECMA-262, OpenAPI's dialect."""

PageLimit = Annotated[
    int,
    QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}"),
]
PageCursor = Annotated[
    str | None,
    QueryParameter(
        name="cursor",
        min_length=1,
        max_length=512,
        description="The `next_cursor` of the previous page",
    ),
]
LegalEntityFilter = Annotated[
    str | None,
    QueryParameter(
        name="legal_entity",
        pattern=r"^[A-Z0-9_-]{2,16}$",
        description="Only records of this legal entity (ERP subsidiary code, e.g. US01)",
    ),
]

RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
Instant = Annotated[
    str | None,
    QueryParameter(
        pattern=RFC3339,
        schema_extra={"format": "date-time"},
        description="An RFC 3339 time with its offset, e.g. 2026-11-27T09:00:00Z",
    ),
]
"""A time bound in a query. The pattern is the contract (a date alone, or a time without its
offset, is refused with 400 before the route runs); `instant` turns the value into a time."""


def instant(name: str, value: str | None) -> datetime | None:
    """The aware time an `Instant` parameter names (its pattern already checked by Litestar).

    Raises:
        InvalidRequest: a time the pattern lets through that does not exist (month 13).
    """
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} is not an RFC 3339 time",
            errors=[FieldError(pointer=name, detail="expected e.g. 2026-11-27T09:00:00Z")],
        ) from exc


def exact_body(struct: type[msgspec.Struct]) -> BodyKwarg:
    """A JSON body documented exactly as msgspec decodes it: `Annotated[T, exact_body(T)]`.

    Litestar's generated schema for a Struct leaves out what msgspec enforces: that unknown
    fields are refused (`forbid_unknown_fields`, nested structs included) and bounds equal to
    zero (`ge=0`). A client trusting that schema sends bodies the route refuses with 400, so
    the body's schema is msgspec's own, nested definitions inlined, each `\\s` in a pattern
    spelled out as the characters Python matches with it.
    """
    document = msgspec.json.schema(struct)
    definitions: dict[str, Any] = document.get("$defs", {})
    schema = _inline(definitions[struct.__name__], definitions)
    return BodyKwarg(schema_extra={key: schema[key] for key in _SHAPE if key in schema})


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """`node` with each `#/$defs/...` reference replaced by the definition it names."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
    return {
        key: _portable(value)
        if key == "pattern" and isinstance(value, str)
        else _inline(value, definitions)
        for key, value in node.items()
    }


def _portable(pattern: str) -> str:
    """`pattern` with `\\s` replaced by the class Python gives it, so that an ECMA-262 reader
    of the OpenAPI accepts exactly the strings msgspec accepts."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            escape = pattern[index : index + 2]
            if escape == r"\s":
                out.append(_PYTHON_SPACE if in_class else f"[{_PYTHON_SPACE}]")
            else:
                out.append(escape)
            index += 2
            continue
        if pattern[index] == "[" and not in_class:
            in_class = True
        elif pattern[index] == "]" and in_class:
            in_class = False
        out.append(pattern[index])
        index += 1
    return "".join(out)
