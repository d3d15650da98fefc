"""The one paginator: pages until there is no next token; a repeated token is a loop."""

from __future__ import annotations

import pytest

from contracts.errors import UpstreamRejected
from system_apis.outbound import PAGINATION_LOOP, paginate


async def test_walks_every_page_then_stops() -> None:
    book = {None: ("a", 1), 1: ("b", 2), 2: ("c", None)}
    asked: list[int | None] = []

    async def fetch(token: int | None) -> tuple[str, int | None]:
        asked.append(token)
        return book[token]

    pages = [page async for page in paginate(fetch, lambda p: p[1], vendor="v", what="list")]
    assert [page for page, _ in pages] == ["a", "b", "c"]
    assert asked == [None, 1, 2]


async def test_starts_where_asked() -> None:
    async def fetch(token: str | None) -> str:
        return f"page after {token}"

    pages = paginate(fetch, lambda p: None, vendor="v", what="list", start="t")
    assert [page async for page in pages] == ["page after t"]


async def test_a_repeated_token_is_a_loop() -> None:
    async def fetch(token: str | None) -> str:
        return "same"

    walked: list[str] = []
    with pytest.raises(UpstreamRejected) as looped:
        async for page in paginate(fetch, lambda p: "t", vendor="zendesk", what="Zendesk list"):
            walked.append(page)
    assert (looped.value.vendor, looped.value.code) == ("zendesk", PAGINATION_LOOP)
    assert walked == ["same", "same"]
