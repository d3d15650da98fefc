"""What a caller may see: only records of its legal entities, through every door.

A record of another legal entity answers exactly as a missing one does (the canonical routes'
404, a process route's 404 or 422 for an unknown reference), and so does an id that is not in
the vendor's id format (it is never sent to the vendor), so a caller cannot learn that a record
exists. The canonical routes use `visible_page` and `visible_one`; the process routes, webhook
callouts and operator actions read a record and pass it through `seen`, then answer for None as
they answer for a missing record. A list is filtered before it is paged: a page holds up to
`limit` records the caller may see, and its cursor is sealed for the caller and the list, so it
names nothing the caller may not see.
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

__all__ = [
    "VENDOR_CALLS_PER_PAGE",
    "caller",
    "known_id",
    "may_see",
    "seen",
    "visible",
    "visible_one",
    "visible_page",
]

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


def may_see(principal: Principal | None, entity: str | None) -> bool:
    """Whether `principal` may see a record of legal entity `entity`. None is the gateway
    itself (a scheduled poll), never a request: it sees every entity."""
    return principal is None or principal.may_see_entity(entity)


def seen(
    principal: Principal | None, record: T | None, entity: Callable[[T], str | None]
) -> T | None:
    """`record` as `principal` sees it: None when it is missing or of a legal entity the
    caller may not see, so the caller's answer is the answer for a missing record."""
    if record is None or not may_see(principal, entity(record)):
        return None
    return record


def visible(page: Page[T], principal: Principal, entity: Callable[[T], str | None]) -> Page[T]:
    """The page without the records of legal entities the caller may not see."""
    data = [item for item in page.data if principal.may_see_entity(entity(item))]
    return Page(data=data, next_cursor=page.next_cursor)


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
    filtered: bool = False,
) -> Page[T]:
    """Up to `limit` records the caller may see, from `fetch(position, size)` vendor pages.

    The caller's cursor is opened (refused unless sealed for this caller and list). A caller
    who sees every record (or a list without entities) costs one vendor page of `limit`.
    Otherwise the vendor is read until the page is full, the vendor has no more, or
    `VENDOR_CALLS_PER_PAGE` calls were spent: with `entity`, vendor pages of `MAX_LIMIT` are
    filtered here, and one holding more visible records than are missing is read again cut
    just after the last one taken, so the next cursor resumes exactly there; with `filtered`
    (the port keeps only the caller's records of each vendor page it reads, so it may answer
    short), pages of what is still missing. A next cursor is only handed out when the vendor
    may hold more for this caller; it goes back sealed.
    """
    position = seal.open(cursor, caller=principal.client_id, list_name=list_name)
    if principal.entities is None or (entity is None and not filtered):
        page = await fetch(position, limit)
        return _sealed(page.data, page.next_cursor, seal, principal, list_name)
    if entity is not None:
        data, position = await _fill_filtering(principal, position, limit, fetch, entity)
    else:
        data, position = await _fill_filtered(position, limit, fetch)
    return _sealed(data, position, seal, principal, list_name)


async def _fill_filtering(
    principal: Principal,
    position: str | None,
    limit: int,
    fetch: Callable[[str | None, int], Awaitable[Page[T]]],
    entity: Callable[[T], str | None],
) -> tuple[list[T], str | None]:
    data: list[T] = []
    # One call is kept back for the cut re-read.
    for _ in range(VENDOR_CALLS_PER_PAGE - 1):
        wanted = limit - len(data)
        page = await fetch(position, MAX_LIMIT)
        shown = [i for i, item in enumerate(page.data) if principal.may_see_entity(entity(item))]
        data.extend(page.data[i] for i in shown[:wanted])
        if len(shown) > wanted:
            cut = await fetch(position, shown[wanted - 1] + 1)
            return data, cut.next_cursor
        position = page.next_cursor
        if position is None or len(data) >= limit:
            break
    return data, position


async def _fill_filtered(
    position: str | None, limit: int, fetch: Callable[[str | None, int], Awaitable[Page[T]]]
) -> tuple[list[T], str | None]:
    data: list[T] = []
    # One call is kept back to look past a full page.
    for _ in range(VENDOR_CALLS_PER_PAGE - 1):
        page = await fetch(position, limit - len(data))
        data.extend(page.data)
        position = page.next_cursor
        if position is None or len(data) >= limit:
            break
    if position is not None and len(data) >= limit:
        # A full page whose vendor has more: hand out a cursor only if a record of the caller
        # follows within the next vendor page, else the caller would page into nothing.
        ahead = await fetch(position, MAX_LIMIT)
        if not ahead.data and ahead.next_cursor is None:
            position = None
    return data, position


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
    if seen(principal, record, entity) is None:
        raise NotFound(f"{what} not found")
    return record
