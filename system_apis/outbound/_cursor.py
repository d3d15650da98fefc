"""The one page cursor we hand out: opaque, versioned and bound to the list it pages.

A cursor is the url-safe base64 (unpadded) of a small JSON array `[version, list, position]`:
`list` names the vendor and list (`"stripe:/v1/customers"`), `position` is where the next page
starts (a vendor's id or cursor, an offset, a sort key). A cursor of another list, another
version or none we could have made is the caller's mistake: `InvalidRequest` naming the
parameter (a 400 problem), never a 500. Cursors are not signed: whatever a position decodes
to must still be checked as input (a record id is still quoted into a query).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from contracts.errors import FieldError, InvalidRequest

__all__ = ["CURSOR_VERSION", "Offset", "decode_cursor", "encode_cursor", "invalid_cursor"]

CURSOR_VERSION = 1
Offset = Annotated[int, msgspec.Meta(ge=0)]
"""The position of a list paged by offset."""
T = TypeVar("T")
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


class _Cursor(msgspec.Struct, Generic[T], array_like=True, frozen=True):
    version: int
    list: str
    position: T


def encode_cursor(position: Any, *, list_name: str) -> str:
    """The cursor of the page starting at `position` of the list `list_name`."""
    raw = msgspec.json.encode(_Cursor(CURSOR_VERSION, list_name, position))
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(
    cursor: str | None, *, list_name: str, position: type[T], parameter: str = "cursor"
) -> T | None:
    """The position in a cursor `encode_cursor` made for `list_name`; None for no cursor.

    Raises:
        InvalidRequest: naming `parameter`, for anything else.
    """
    if not cursor:
        return None
    if not _ALPHABET.fullmatch(cursor):
        raise invalid_cursor(parameter)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor[position])  # type: ignore[valid-type]
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise invalid_cursor(parameter) from None
    if decoded.version != CURSOR_VERSION or decoded.list != list_name:
        raise invalid_cursor(parameter)
    result: T = decoded.position
    return result


def invalid_cursor(parameter: str = "cursor") -> InvalidRequest:
    """The refusal of a cursor we did not issue for this list."""
    return InvalidRequest(
        f"invalid {parameter}: not one this list handed out",
        errors=[FieldError(pointer=parameter, detail="not a cursor this list handed out")],
    )
