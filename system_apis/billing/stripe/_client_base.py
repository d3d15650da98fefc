"""The plumbing every Stripe client operation shares: GET/POST, lists, iteration, search."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from contracts.v1 import Page
from system_apis.billing.stripe._client_http import (
    Transport,
    decode_cursor,
    encode_cursor,
)
from system_apis.billing.stripe._client_http import iterate as iterate_pages
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._wire import ListWire, SearchResultWire

__all__ = [
    "MAX_PAGE",
    "ClientBase",
    "created_range",
    "next_cursor",
    "quote_search",
    "to_page",
]

MAX_PAGE = 100  # Stripe's list `limit` is at most 100.
W = TypeVar("W")
C = TypeVar("C")


class ClientBase:
    """Holds the transport and the typed calls every operation group builds on."""

    def __init__(self, transport: Transport, *, api_version: str) -> None:
        self.transport = transport
        self.api_version = api_version

    async def get_json(
        self, path: str, kind: type[W], what: str, *, template: str, expand: Sequence[str] = ()
    ) -> W:
        params = {"expand": list(expand)} if expand else None
        content = await self.transport.call(
            "GET", path, template=template, params=params, what=what
        )
        return Transport.decode(content, kind, what)

    async def post_json(
        self,
        path: str,
        params: FormParams,
        kind: type[W],
        idempotency_key: str | None,
        what: str,
        *,
        template: str | None = None,
    ) -> W:
        content = await self.transport.call(
            "POST",
            path,
            template=template or path,
            params=params,
            idempotency_key=idempotency_key,
            what=what,
        )
        return Transport.decode(content, kind, what)

    async def list_page(
        self,
        path: str,
        query: FormParams,
        kind: type[W],
        cursor: str | None,
        limit: int,
        what: str,
    ) -> ListWire[W]:
        params = {
            **query,
            "limit": min(max(limit, 1), MAX_PAGE),
            "starting_after": decode_cursor(cursor),
        }
        content = await self.transport.call("GET", path, template=path, params=params, what=what)
        return Transport.decode(content, ListWire[kind], what)  # type: ignore[valid-type]

    def iterate(
        self, path: str, query: FormParams, kind: type[W], what: str, *, template: str | None = None
    ) -> AsyncIterator[W]:
        async def fetch(after: str | None) -> ListWire[W]:
            params = {**query, "limit": MAX_PAGE, "starting_after": after}
            content = await self.transport.call(
                "GET", path, template=template or path, params=params, what=what
            )
            return Transport.decode(content, ListWire[kind], what)  # type: ignore[valid-type]

        return iterate_pages(fetch, what=what)

    async def search(self, path: str, query: str, kind: type[W], limit: int) -> list[W]:
        found: list[W] = []
        page: str | None = None
        seen: set[str] = set()
        while len(found) < limit:
            params = {"query": query, "limit": min(MAX_PAGE, limit - len(found)), "page": page}
            content = await self.transport.call(
                "GET", path, template=path, params=params, what="search"
            )
            result = Transport.decode(content, SearchResultWire[kind], "search")  # type: ignore[valid-type]
            found.extend(result.data)
            if not result.has_more or not result.next_page or result.next_page in seen:
                break
            page = result.next_page
            seen.add(page)
        return found[:limit]


def to_page(wire: ListWire[W], convert: Callable[[W], C]) -> Page[C]:
    return Page(data=[convert(item) for item in wire.data], next_cursor=next_cursor(wire))


def next_cursor(wire: ListWire[Any]) -> str | None:
    if not wire.has_more or not wire.data:
        return None
    return encode_cursor(wire.data[-1].id)


def created_range(gte: datetime | None, lte: datetime | None) -> dict[str, int] | None:
    bounds = {"gte": gte, "lte": lte}
    chosen = {key: int(value.timestamp()) for key, value in bounds.items() if value is not None}
    return chosen or None


def quote_search(value: str) -> str:
    """Escape a value for a Stripe search string literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
