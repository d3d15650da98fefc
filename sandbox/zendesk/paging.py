"""Zendesk's two list paginations, as the emulator answers them.

Cursor pagination when `page[size]` is given (`page[after]`/`page[before]`, `meta` and `links`);
otherwise offset pagination (`page`, `per_page`, `next_page`, `previous_page`, `count`), which
Zendesk refuses with 400 past the first 10,000 records
(https://developer.zendesk.com/api-reference/introduction/pagination/).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec

from sandbox.zendesk.errors import bad_request

__all__ = [
    "MAX_PAGE_SIZE",
    "OFFSET_RECORD_LIMIT",
    "PageRequest",
    "page_link",
    "paginate",
    "parse_paging",
]

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PER_PAGE = 100
OFFSET_RECORD_LIMIT = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRequest:
    cursor: bool
    size: int
    after: int | None = None
    before: int | None = None
    page: int = 1


def parse_paging(params: Sequence[tuple[str, str]], *, cursor_allowed: bool = True) -> PageRequest:
    query = dict(params)
    if cursor_allowed and "page[size]" in query:
        size = _positive(query["page[size]"], "page[size]")
        if size > MAX_PAGE_SIZE:
            raise _invalid(f"page[size] is limited to {MAX_PAGE_SIZE}")
        after = _decode_cursor(query["page[after]"]) if "page[after]" in query else None
        before = _decode_cursor(query["page[before]"]) if "page[before]" in query else None
        return PageRequest(cursor=True, size=size, after=after, before=before)
    per_page = min(_positive(query.get("per_page", str(DEFAULT_PER_PAGE)), "per_page"),
                   MAX_PAGE_SIZE)
    page = _positive(query.get("page", "1"), "page")
    if page * per_page > OFFSET_RECORD_LIMIT:
        raise bad_request(
            "InvalidPaginationParameter",
            "Invalid pagination parameter",
            f"Offset pagination is limited to the first {OFFSET_RECORD_LIMIT} records; "
            "use cursor pagination (page[size]) to read further",
        )
    return PageRequest(cursor=False, size=per_page, page=page)


def paginate(
    items: Sequence[T],
    paging: PageRequest,
    *,
    key: Callable[[T], int],
    link: Callable[[dict[str, str]], str],
) -> tuple[list[T], dict[str, Any]]:
    """(the records of this page, the paging members to merge into the response body).

    `items` must be sorted by `key` ascending; `link` renders the request URL with the given
    page parameters replacing the old ones.
    """
    if paging.cursor:
        return _cursor_page(items, paging, key, link)
    return _offset_page(items, paging, link)


def _cursor_page(
    items: Sequence[T], paging: PageRequest, key: Callable[[T], int],
    link: Callable[[dict[str, str]], str],
) -> tuple[list[T], dict[str, Any]]:
    size = paging.size
    if paging.before is not None:
        candidates = [item for item in items if key(item) < paging.before]
        page = candidates[-size:]
    else:
        floor = paging.after
        candidates = [item for item in items if floor is None or key(item) > floor]
        page = candidates[:size]
    after = _encode_cursor(key(page[-1])) if page else None
    before = _encode_cursor(key(page[0])) if page else None
    size_param = {"page[size]": str(size)}
    return page, {
        "meta": {"has_more": len(candidates) > size, "after_cursor": after,
                 "before_cursor": before},
        "links": {
            "prev": link({**size_param, "page[before]": before}) if before else None,
            "next": link({**size_param, "page[after]": after}) if after else None,
        },
    }


def _offset_page(
    items: Sequence[T], paging: PageRequest, link: Callable[[dict[str, str]], str]
) -> tuple[list[T], dict[str, Any]]:
    start = (paging.page - 1) * paging.size
    page = list(items[start : start + paging.size])
    per_page = str(paging.size)
    has_next = start + paging.size < len(items)
    return page, {
        "next_page": link({"page": str(paging.page + 1), "per_page": per_page}) if has_next
        else None,
        "previous_page": link({"page": str(paging.page - 1), "per_page": per_page})
        if paging.page > 1 else None,
        "count": len(items),
    }


def page_link(base_url: str, params: Sequence[tuple[str, str]], changes: dict[str, str]) -> str:
    """`base_url` with the request's params, page parameters replaced by `changes`."""
    kept = [(k, v) for k, v in params if not (k.startswith("page") or k == "per_page")]
    return f"{base_url}?{urlencode([*kept, *changes.items()])}"


def _encode_cursor(record_id: int) -> str:
    return base64.b64encode(msgspec.json.encode({"o": "id", "v": record_id})).decode("ascii")


def _decode_cursor(cursor: str) -> int:
    try:
        decoded = msgspec.json.decode(base64.b64decode(cursor, validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise _invalid("the page cursor is not valid") from exc
    value = decoded.get("v") if isinstance(decoded, dict) else None
    if not isinstance(value, int):
        raise _invalid("the page cursor is not valid")
    return value


def _positive(raw: str, name: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise _invalid(f"{name} must be a positive integer")
    return int(raw)


def _invalid(detail: str) -> Exception:
    return bad_request("InvalidPaginationParameter", "Invalid pagination parameter", detail)
