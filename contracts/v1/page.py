"""A page of a cursor-paginated list."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

__all__ = ["Page"]

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of results; pass `next_cursor` back as `cursor` for the next page.

    `next_cursor` is None on the last page. Cursors are opaque: do not build or parse them.
    """

    data: list[T]
    next_cursor: str | None = None
