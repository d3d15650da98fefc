"""What a request must be before anything routes or reads it: a method the gateway implements
(any other is a 501, counted in metrics as `other`, so invented methods cannot mint label
values) and header values that are UTF-8 (a value that is not would reach the code reading it
as text it cannot compare or decode: a 400 here instead of a 500 there)."""

from __future__ import annotations

from typing import Any

from litestar.exceptions import HTTPException

from contracts.errors import FieldError, InvalidRequest

__all__ = ["IMPLEMENTED_METHODS", "refusal_of"]

IMPLEMENTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RECOGNISED_METHODS = IMPLEMENTED_METHODS | {"TRACE", "CONNECT", "QUERY"}
"""RFC 9110's methods and the IETF draft's QUERY: one the gateway recognises but no route takes
is routed on to its 405 (with `Allow`), as clients and contract tests expect; only an invented
method is a 501 here."""


def refusal_of(scope: Any) -> Exception | None:
    """Why the request in `scope` is refused before routing, or None. Costs a set lookup and
    one `isascii` per header value (a UTF-8 decode only for a value that is not ASCII)."""
    if scope["method"] not in RECOGNISED_METHODS:
        return HTTPException(
            status_code=501, detail="the gateway does not implement this request method"
        )
    for name, value in scope["headers"]:
        if not value.isascii():
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return _undecodable(name)
    return None


def _undecodable(name: bytes) -> InvalidRequest:
    # Header names are tokens (the server refuses any other), so this decode cannot fail.
    shown = name.decode("latin-1")
    return InvalidRequest(
        f"the {shown} header is not valid UTF-8",
        errors=[FieldError(pointer=f"header.{shown}", detail="not valid UTF-8")],
        code="invalid_header_encoding",
    )
