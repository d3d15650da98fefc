"""Pure parts of the Zendesk client: request paths and parameters, and turning ticket pages
(with their sideloaded users and organizations) into support cases."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated

import msgspec

from contracts.errors import UpstreamNotFound
from contracts.v1 import SupportCase
from system_apis.outbound import decode_cursor, encode_cursor
from system_apis.support.zendesk import mapping
from system_apis.support.zendesk._client_http import (
    MAX_PAGE_SIZE,
    VENDOR,
    next_cursor,
    unmappable,
)
from system_apis.support.zendesk._wire import (
    ListPage,
    OrganizationWire,
    TicketsPage,
    TicketWire,
    UserWire,
    WebhookWire,
)

__all__ = [
    "API",
    "WebhookInfo",
    "ZendeskCursor",
    "numeric",
    "our_cursor",
    "page_params",
    "select_cases",
    "tickets_path",
    "to_case",
    "to_cases",
    "webhook_info",
]

API = "/api/v2"
"""Zendesk Support has one API version, v2; every path is pinned to it here."""
ZendeskCursor = Annotated[str, msgspec.Meta(min_length=1)]
"""A position in one of our cursors: Zendesk's own `after_cursor`."""


class WebhookInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook registered in the Zendesk account."""

    id: str
    name: str
    endpoint: str
    status: str
    subscriptions: tuple[str, ...]


def page_params(cursor: str | None, limit: int, *, list_name: str) -> dict[str, str | int]:
    """The query of one page: our cursor (made by `our_cursor` for `list_name`) unwrapped into
    Zendesk's own `page[after]`."""
    params: dict[str, str | int] = {"page[size]": max(1, min(limit, MAX_PAGE_SIZE))}
    after = decode_cursor(cursor, list_name=list_name, position=ZendeskCursor)
    if after is not None:
        params["page[after]"] = after
    return params


def our_cursor(page: ListPage, *, list_name: str) -> str | None:
    """The cursor we hand out for the page after `page`: Zendesk's, wrapped and bound to the
    list, so a cursor of another list (or none of ours) is refused before Zendesk sees it."""
    after = next_cursor(page)
    return None if after is None else encode_cursor(after, list_name=list_name)


def tickets_path(organization_id: str | None) -> tuple[str, dict[str, str | int]]:
    if organization_id is None:
        return f"{API}/tickets", {}
    return f"{API}/organizations/{{organization_id}}/tickets", {
        "organization_id": numeric(organization_id, "organization")
    }


def numeric(value: str, what: str) -> str:
    """A Zendesk id for a path; anything else cannot name a Zendesk record."""
    if not value.isdigit():
        raise UpstreamNotFound(f"{value!r} is not a Zendesk {what} id", vendor=VENDOR,
                               code="invalid_id")
    return value


def to_case(
    ticket: TicketWire, orgs: Mapping[int, OrganizationWire] | None = None,
    emails: Mapping[int, str | None] | None = None,
) -> SupportCase:
    org = (orgs or {}).get(ticket.organization_id or 0)
    try:
        return mapping.to_support_case(
            ticket, customer_id=org.external_id if org else None,
            requester_email=(emails or {}).get(ticket.requester_id or 0),
        )
    except mapping.MappingError as exc:
        raise unmappable(exc) from exc


def to_cases(
    tickets: list[TicketWire], users: list[UserWire], orgs: list[OrganizationWire]
) -> list[SupportCase]:
    by_org = {org.id: org for org in orgs}
    emails = {user.id: user.email for user in users}
    return [to_case(ticket, by_org, emails) for ticket in tickets]


def select_cases(
    page: TicketsPage, *, priority: str | None, status: str | None,
    entities: Collection[str] | None,
) -> list[SupportCase]:
    by_org = {org.id: org for org in page.organizations}

    def visible(ticket: TicketWire) -> bool:
        if entities is None:
            return True
        org = by_org.get(ticket.organization_id or 0)
        fields = (org.organization_fields or {}) if org else {}
        return fields.get("legal_entity") in entities

    found = to_cases([t for t in page.tickets if visible(t)], page.users, page.organizations)
    return [
        case for case in found
        if (priority is None or case.priority == priority)
        and (status is None or case.status == status)
    ]


def webhook_info(hook: WebhookWire) -> WebhookInfo:
    return WebhookInfo(id=hook.id, name=hook.name, endpoint=hook.endpoint, status=hook.status,
                       subscriptions=tuple(hook.subscriptions))
