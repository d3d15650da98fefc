"""The one page cursor we hand out: opaque, versioned and bound to the list it pages.

A cursor is the url-safe base64 (unpadded) of a small JSON array `[version, list, position]`:
`list` names the vendor and list (`"stripe:/v1/customers"`), `position` is where the next page
starts (a vendor's id or cursor, an offset, a sort key). A cursor of another list, another
version or none we could have made is the caller's mistake: `InvalidRequest` naming the
parameter (a 400 problem), never a 500. These position cursors travel between a port and
its route only: whatever a position decodes to must still be checked as input (a record id is
still quoted into a query).

What a caller is handed is a `CursorSeal`ed cursor: the position cursor encrypted and
authenticated (AES-GCM) with a key the app passes in, the list and the caller's client id
bound as associated data. The caller learns nothing from it (not the id of a record it may not
see, nor how far it is into the vendor's list), and a cursor of another caller or another
list, or one changed by a single bit, is refused like any cursor we did not issue.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.errors import FieldError, InvalidRequest

__all__ = [
    "CURSOR_VERSION",
    "CursorSeal",
    "Offset",
    "decode_cursor",
    "encode_cursor",
    "invalid_cursor",
]

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


_SEAL_VERSION = b"\x01"
_NONCE_BYTES = 12


class CursorSeal:
    """Seals position cursors for one caller and one list, and opens only what it sealed.

    A sealed cursor is the url-safe base64 (unpadded) of `version || nonce || AES-GCM(position
    cursor)`, with `list NUL client id` as associated data: opaque to the caller, refused for any
    other caller or list. The key comes from the app (derived from a secret it keeps), so every
    replica sharing that secret opens the cursors of the others.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a cursor seal key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, cursor: str | None, *, caller: str, list_name: str) -> str | None:
        """The cursor to hand `caller` for the position cursor `cursor` (None stays None)."""
        if cursor is None:
            return None
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, cursor.encode(), _bound(caller, list_name))
        raw = _SEAL_VERSION + nonce + sealed
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def open(
        self, cursor: str | None, *, caller: str, list_name: str, parameter: str = "cursor"
    ) -> str | None:
        """The position cursor `seal` put in `cursor` for this caller and list; None for none.

        Raises:
            InvalidRequest: naming `parameter`, for any cursor this seal did not make for them.
        """
        if not cursor:
            return None
        if not _ALPHABET.fullmatch(cursor):
            raise invalid_cursor(parameter)
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise invalid_cursor(parameter) from None
        if raw[:1] != _SEAL_VERSION or len(raw) < 1 + _NONCE_BYTES + 16:
            raise invalid_cursor(parameter)
        nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        try:
            opened = self._aead.decrypt(nonce, sealed, _bound(caller, list_name))
            return opened.decode("ascii")
        except (InvalidTag, UnicodeDecodeError):
            raise invalid_cursor(parameter) from None


def _bound(caller: str, list_name: str) -> bytes:
    """The associated data: what a sealed cursor is only good for."""
    return f"{list_name}\x00{caller}".encode()
