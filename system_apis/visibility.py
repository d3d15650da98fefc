"""What a caller may see through the canonical routes: only records of its legal entities.

A record of another legal entity answers exactly as a missing one does (404), so a caller
cannot learn that it exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request

from contracts.errors import NotFound, Unauthenticated, UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import Page

__all__ = ["caller", "visible", "visible_one"]

T = TypeVar("T")


def caller(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated caller the gateway put on the request."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("an access token is required", error="")
    return user


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
    if not principal.may_see_entity(entity(record)):
        raise NotFound(f"{what} not found")
    return record
