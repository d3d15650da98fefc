"""What a caller may see through the canonical routes: only records of its legal entities.

A record of another legal entity answers exactly as a missing one does (404), and so does an
id that is not in the vendor's id format (it is never sent to the vendor), so a caller cannot
learn that a record exists. A list is filtered before it is paged: a page holds up to `limit`
records the caller may see, and its cursor is sealed for the caller and the list, so it names
nothing the caller may not see.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request

from contracts.errors import NotFound, Unauthenticated, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import Page
from system_apis.outbound import CursorSeal
from system_apis.params import MAX_LIMIT

__all__ = ["VENDOR_CALLS_PER_PAGE", "caller", "known_id", "visible_one", "visible_page"]

VENDOR_CALLS_PER_PAGE = 5
"""The most vendor pages one list request reads to fill a page for a limited caller: a caller
whose records are rare gets a shorter page (with a cursor) rather than unbounded vendor work."""

T = TypeVar("T")


def caller(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated caller the gateway put on the request."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("an access token is required", error="")
    return user


def known_id(value: str, pattern: re.Pattern[str], what: str) -> str:
    """`value` when it has the vendor's id format; else NotFound, as for a missing record
    (the vendor never sees it, so neither its query nor its refusal can reach the caller)."""
    if not pattern.fullmatch(value):
        raise NotFound(f"{what} not found")
    return value


async def visible_page(
    principal: Principal,
    *,
    seal: CursorSeal,
    list_name: str,
    cursor: str | None,
    limit: int,
    fetch: Callable[[str | None, int], Awaitable[Page[T]]],
    entity: Callable[[T], str | None] | None = None,
) -> Page[T]:
    """Up to `limit` records the caller may see, from `fetch(position, size)` vendor pages.

    The caller's cursor is opened (refused unless sealed for this caller and list). A caller
    who sees every record (or a list without entities, `entity=None`) costs one vendor page of
    `limit`. Otherwise vendor pages of `MAX_LIMIT` are read and filtered until the page is
    full, the vendor has no more, or `VENDOR_CALLS_PER_PAGE` calls were spent; when a vendor
    page holds more visible records than are missing, it is read again cut just after the
    last one taken, so the next cursor resumes exactly there. A next cursor is only handed out
    when the vendor may hold more; it goes back sealed.
    """
    position = seal.open(cursor, caller=principal.client_id, list_name=list_name)
    if entity is None or principal.entities is None:
        page = await fetch(position, limit)
        whole = page.data if entity is None else [
            item for item in page.data if principal.may_see_entity(entity(item))
        ]
        return _sealed(whole, page.next_cursor, seal, principal, list_name)
    data: list[T] = []
    # One call is kept back for the cut re-read.
    for _ in range(VENDOR_CALLS_PER_PAGE - 1):
        wanted = limit - len(data)
        page = await fetch(position, MAX_LIMIT)
        shown = [i for i, item in enumerate(page.data) if principal.may_see_entity(entity(item))]
        data.extend(page.data[i] for i in shown[:wanted])
        if len(shown) > wanted:
            cut = await fetch(position, shown[wanted - 1] + 1)
            return _sealed(data, cut.next_cursor, seal, principal, list_name)
        position = page.next_cursor
        if position is None or len(data) >= limit:
            break
    return _sealed(data, position, seal, principal, list_name)


def _sealed(
    data: list[T], position: str | None, seal: CursorSeal, principal: Principal, list_name: str
) -> Page[T]:
    return Page(
        data=data,
        next_cursor=seal.seal(position, caller=principal.client_id, list_name=list_name),
    )


async def visible_one(
    principal: Principal, what: str, fetch: Awaitable[T], entity: Callable[[T], str | None]
) -> T:
    """One record, or NotFound when it is missing or of an entity the caller may not see."""
    try:
        record = await fetch
    except UpstreamNotFound as exc:
        raise NotFound(f"{what} not found") from exc
    if not principal.may_see_entity(entity(record)):
        raise NotFound(f"{what} not found")
    return record
