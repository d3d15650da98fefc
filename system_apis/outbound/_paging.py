"""The one paginator: fetch page after page until the vendor says there is no next one.

The rule that finds the next page is one small function of a page (`next_token`); a token the
vendor hands back twice is a loop, refused rather than followed for ever (as
`singer_sdk.pagination.BaseAPIPaginator.advance` does).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import TypeVar

from contracts.errors import UpstreamRejected

__all__ = ["PAGINATION_LOOP", "paginate"]

PAGINATION_LOOP = "pagination_loop"
"""The code of the error a repeated page token becomes."""

P = TypeVar("P")
K = TypeVar("K", bound=Hashable)


async def paginate(
    fetch: Callable[[K | None], Awaitable[P]],
    next_token: Callable[[P], K | None],
    *,
    vendor: str,
    what: str,
    start: K | None = None,
) -> AsyncGenerator[P, None]:
    """Every page of a list: `fetch(start)`, then `fetch(next_token(page))` until it is None.

    Raises:
        UpstreamRejected: code `pagination_loop`, when the vendor repeats a token.
    """
    seen: set[K] = set()
    token = start
    while True:
        page = await fetch(token)
        yield page
        token = next_token(page)
        if token is None:
            return
        if token in seen:
            raise UpstreamRejected(
                f"{what}: the vendor handed back the page token {token!r} again (a loop)",
                vendor=vendor, code=PAGINATION_LOOP,
            )
        seen.add(token)
