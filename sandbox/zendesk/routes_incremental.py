"""Routes of the emulated Zendesk's incremental exports: records changed since a time.

Tickets and users use the cursor-based export (`after_cursor`, `after_url`, `end_of_stream`),
organizations the time-based one (`next_page`, `end_time`, `end_of_stream`), as Zendesk offers
(https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response, get

from sandbox.zendesk.context import Call, json_response
from sandbox.zendesk.errors import bad_request
from sandbox.zendesk.render import (
    organization_json,
    ticket_json,
    user_json,
)

__all__ = ["INCREMENTAL_ROUTES"]

AnyRequest = Request[Any, Any, Any]
EXPORT_PAGE_SIZE = 1000
"""Zendesk's default (and maximum) page size for incremental exports."""


class _Changed(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def updated_at(self) -> datetime: ...


R = TypeVar("R", bound=_Changed)


@get("/api/v2/incremental/tickets/cursor")
async def export_tickets(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    return _cursor_export(call, "tickets", list(call.account.desk.tickets.values()),
                          lambda t: ticket_json(call.base, t))


@get("/api/v2/incremental/users/cursor")
async def export_users(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    return _cursor_export(call, "users", list(call.account.directory.users.values()),
                          lambda u: user_json(call.base, u))


@get("/api/v2/incremental/organizations")
async def export_organizations(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    start = _start_time(call)
    size = _page_size(call)
    changed = _ordered(call.account.directory.organizations.values(), start)
    page = changed[:size]
    end_time = int(page[-1].updated_at.timestamp()) if page else start
    query = urlencode([("start_time", str(end_time))])
    return json_response({
        "organizations": [organization_json(call.base, org) for org in page],
        "next_page": f"{call.url}?{query}",
        "count": len(page),
        "end_of_stream": len(changed) <= size,
        "end_time": end_time,
    })


def _cursor_export(
    call: Call, root: str, records: Sequence[R], render: Callable[[R], dict[str, Any]]
) -> Response[bytes]:
    size = _page_size(call)
    cursor = call.query("cursor")
    if cursor is not None:
        after = _decode(cursor)
        changed: list[R] = [r for r in _ordered(records, 0) if _position(r) > after]
    else:
        changed = _ordered(records, _start_time(call))
    page = changed[:size]
    last = _encode(_position(page[-1])) if page else cursor
    query = urlencode([("cursor", last or ""), ("per_page", str(size))])
    return json_response({
        root: [render(record) for record in page],
        "after_url": f"{call.url}?{query}" if last else None,
        "before_url": None,
        "after_cursor": last,
        "before_cursor": None,
        "end_of_stream": len(changed) <= size,
    })


def _ordered(records: Iterable[R], start: int) -> list[R]:
    return sorted((r for r in records if r.updated_at.timestamp() >= start), key=_position)


def _position(record: _Changed) -> tuple[int, int]:
    return int(record.updated_at.timestamp()), record.id


def _start_time(call: Call) -> int:
    raw = call.query("start_time")
    if raw is None or not raw.isdigit():
        raise bad_request("InvalidValue", "Invalid value", "start_time must be a Unix time")
    return int(raw)


def _page_size(call: Call) -> int:
    raw = call.query("per_page")
    return min(int(raw), EXPORT_PAGE_SIZE) if raw and raw.isdigit() and int(raw) > 0 \
        else EXPORT_PAGE_SIZE


def _encode(position: tuple[int, int]) -> str:
    return base64.b64encode(f"{position[0]}.0||{position[1]}|".encode()).decode("ascii")


def _decode(cursor: str) -> tuple[int, int]:
    try:
        stamp, _, rest = base64.b64decode(cursor, validate=True).decode().partition("||")
        return int(float(stamp)), int(rest.rstrip("|"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad_request("InvalidCursor", "Invalid cursor", "the export cursor is not valid") \
            from exc


INCREMENTAL_ROUTES = [export_tickets, export_users, export_organizations]
