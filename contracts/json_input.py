"""Decoding JSON that a caller sent: the one decoder of request bodies and webhook payloads.

It refuses, as 400 problems, what a plain decode would get wrong: an object naming a key twice
(every decoder keeps one of the two silently, so a check and the code after it could read
different values; repeated query parameters are refused for the same reason) and nesting deep
enough to exhaust the interpreter's stack (a `RecursionError`, which would be a 500).

Repeated keys are found without a second parse on almost every body: outside strings a colon
only ever separates a key from its value, so re-encoding the decoded value (which kept one of
each repeated key) gives fewer colons than the body exactly when a key was repeated. A string
can hide a colon only as `\\u003a`, so such a body, and any whose counts differ, is checked by
a parse that sees every key and names the repeated one. Measured on a 1.2 KB body (one
process, a loaded 2-core machine): decode 3.3 us, with this check 8.4 us, the exact parse 17 us
more; a 70-byte body: 0.16 us and 1.1 us.

`decode_signed_json` decodes a body whose signature was verified into a msgspec type (so parts
of it can stay `msgspec.Raw`), without the repeated-key check: only the holder of the signing
secret (the vendor) can produce such a body, so no caller can smuggle a second value into it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec

from contracts.errors import FieldError, InvalidRequest

__all__ = ["decode_json_input", "decode_signed_json"]

T = TypeVar("T")

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


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
        raise _not_json(what, exc) from None
    if _may_repeat_a_key(body, value):
        _refuse_repeated_keys(body, what)
    return value


def decode_signed_json(body: bytes | msgspec.Raw, shape: type[T], *, what: str) -> T:
    """`body` (verified as its signer's) decoded as `shape`.

    Raises:
        InvalidRequest: `body` is not JSON or is nested too deeply.
        msgspec.ValidationError: it is JSON of another shape (the caller names where).
    """
    try:
        return msgspec.json.decode(body, type=shape)
    except RecursionError:
        raise _too_deep(what) from None
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError as exc:
        raise _not_json(what, exc) from None


def _not_json(what: str, exc: msgspec.DecodeError) -> InvalidRequest:
    return InvalidRequest(
        f"the {what} is not valid JSON: {exc}",
        errors=[FieldError(pointer="/", detail=str(exc))],
        code="invalid_json",
    )


def _may_repeat_a_key(body: bytes, value: Any) -> bool:
    """False when no object in `body` names a key twice (exact; True may be a false alarm)."""
    if b"\\u003a" in body or b"\\u003A" in body:
        return True  # an escaped colon: the counts below would not see it
    try:
        canonical = _ENCODER.encode(value)
    except RecursionError:
        return True
    # Outside strings a colon only separates a key from its value, and strings keep theirs
    # when re-encoded: fewer colons after the round trip means a key (and its value) was lost.
    return body.count(b":") != canonical.count(b":")


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
