"""Decoding JSON that a caller sent: the one decoder of request bodies and webhook payloads.

It refuses, as 400 problems, what a plain decode would get wrong: an object naming a key twice
(every decoder keeps one of the two silently, so a check and the code after it could read
different values; repeated query parameters are refused for the same reason) and nesting deep
enough to exhaust the interpreter's stack (a `RecursionError`, which would be a 500).

Repeated keys are found without a second parse on almost every body: outside strings a colon
only ever separates a key from its value, so the body holds as many keys as colons minus the
colons inside its strings, and the decoded dicts hold that many unless a key was repeated.
A string can hide a colon only as `\\u003a`, so a body with a `\\u` escape is checked by a
parse that sees every key (measured on a 1 KB body: decode 7 us, this count 5 us, the exact
parse 37 us).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from contracts.errors import FieldError, InvalidRequest

__all__ = ["decode_json_input"]

_DECODER = msgspec.json.Decoder()


def decode_json_input(body: bytes, *, what: str = "request body") -> Any:
    """The JSON value in `body`.

    Raises:
        InvalidRequest: `body` is not JSON, is nested too deeply, or repeats a key in an object.
    """
    try:
        value = _DECODER.decode(body)
    except RecursionError:
        raise _too_deep(what) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            f"the {what} is not valid JSON: {exc}",
            errors=[FieldError(pointer="/", detail=str(exc))],
            code="invalid_json",
        ) from None
    if b"\\u" in body or body.count(b":") - _colons_in_strings(value) != _key_count(value):
        _refuse_repeated_keys(body, what)
    return value


def _key_count(value: Any) -> int:
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            count += len(item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return count


def _colons_in_strings(value: Any) -> int:
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            count += item.count(":")
        elif kind is dict:
            for key in item:
                count += key.count(":")
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return count


def _refuse_repeated_keys(body: bytes, what: str) -> None:
    def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise _repeated(key, what)
                seen.add(key)
        return obj

    try:
        json.loads(body, object_pairs_hook=unique_pairs)
    except RecursionError:
        raise _too_deep(what) from None


def _repeated(key: str, what: str) -> InvalidRequest:
    # The key is the caller's: shown as short ASCII only.
    shown = ascii(key)[1:-1][:100]
    detail = f'the key "{shown}" is given more than once in one object'
    return InvalidRequest(
        f"the {what} is ambiguous: {detail}",
        errors=[FieldError(pointer="/", detail=detail)],
        code="repeated_json_key",
    )


def _too_deep(what: str) -> InvalidRequest:
    return InvalidRequest(
        f"the {what} is nested too deeply",
        errors=[FieldError(pointer="/", detail="nested too deeply")],
        code="json_too_deep",
    )
