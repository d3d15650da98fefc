"""The plumbing every Stripe client operation shares: GET/POST, lists, iteration, search."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

from contracts.v1 import Page
from system_apis.billing.stripe._client_http import VENDOR, Transport
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._wire import ListWire, SearchResultWire
from system_apis.outbound import decode_cursor, encode_cursor, paginate

__all__ = [
    "MAX_PAGE",
    "ClientBase",
    "created_range",
    "quote_search",
    "to_page",
]

MAX_PAGE = 100  # Stripe's list `limit` is at most 100.
StripeId = Annotated[str, msgspec.Meta(min_length=1)]
"""A cursor's position: the `starting_after` id of the next page."""
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
    ) -> Page[W]:
        """One page of the list at `path`, its cursor bound to that list."""
        pages = f"{VENDOR}:{path}"
        params = {
            **query,
            "limit": min(max(limit, 1), MAX_PAGE),
            "starting_after": decode_cursor(cursor, list_name=pages, position=StripeId),
        }
        content = await self.transport.call("GET", path, template=path, params=params, what=what)
        wire: ListWire[W] = Transport.decode(content, ListWire[kind], what)  # type: ignore[valid-type]
        after = _next_after(wire)
        next_cursor = None if after is None else encode_cursor(after, list_name=pages)
        return Page(data=wire.data, next_cursor=next_cursor)

    def iterate(
        self, path: str, query: FormParams, kind: type[W], what: str, *, template: str | None = None
    ) -> AsyncIterator[W]:
        async def fetch(after: str | None) -> ListWire[W]:
            params = {**query, "limit": MAX_PAGE, "starting_after": after}
            content = await self.transport.call(
                "GET", path, template=template or path, params=params, what=what
            )
            return Transport.decode(content, ListWire[kind], what)  # type: ignore[valid-type]

        return _items(paginate(fetch, _next_after, vendor=VENDOR, what=f"Stripe {what}"))

    async def search(self, path: str, query: str, kind: type[W], limit: int) -> list[W]:
        found: list[W] = []
        if limit <= 0:
            return found

        async def fetch(page: str | None) -> SearchResultWire[W]:
            params = {"query": query, "limit": min(MAX_PAGE, limit - len(found)), "page": page}
            content = await self.transport.call(
                "GET", path, template=path, params=params, what="search"
            )
            return Transport.decode(content, SearchResultWire[kind], "search")  # type: ignore[valid-type]

        pages = paginate(fetch, _next_search_page, vendor=VENDOR, what="Stripe search")
        async with aclosing(pages):
            async for result in pages:
                found.extend(result.data)
                if len(found) >= limit:
                    break
        return found[:limit]


def to_page(page: Page[W], convert: Callable[[W], C]) -> Page[C]:
    return Page(data=[convert(item) for item in page.data], next_cursor=page.next_cursor)


def _next_after(wire: ListWire[Any]) -> str | None:
    """The `starting_after` of the page after `wire`: its last id, None on the last page."""
    if not wire.has_more or not wire.data:
        return None
    last = wire.data[-1]
    identifier = last.get("id") if isinstance(last, Mapping) else getattr(last, "id", None)
    return str(identifier)


def _next_search_page(result: SearchResultWire[Any]) -> str | None:
    return result.next_page if result.has_more and result.next_page else None


async def _items(pages: AsyncIterator[ListWire[W]]) -> AsyncIterator[W]:
    async for page in pages:
        for item in page.data:
            yield item


def created_range(gte: datetime | None, lte: datetime | None) -> dict[str, int] | None:
    bounds = {"gte": gte, "lte": lte}
    chosen = {key: int(value.timestamp()) for key, value in bounds.items() if value is not None}
    return chosen or None


def quote_search(value: str) -> str:
    """Escape a value for a Stripe search string literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
