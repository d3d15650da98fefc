"""What a caller may see: only records of its legal entities, through every door.

A record of another legal entity answers exactly as a missing one does (the canonical routes'
404, a process route's 404 or 422 for an unknown reference), so a caller cannot learn that it
exists. The canonical routes use `visible` and `visible_one`; the process routes, webhook
callouts and operator actions read a record and pass it through `seen`, then answer for None
as they answer for a missing record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request

from contracts.errors import NotFound, Unauthenticated, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import Page

__all__ = ["caller", "may_see", "seen", "visible", "visible_one"]

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
