"""Zendesk's wire format: the Structs the client decodes responses into (lenient: unknown
fields are ignored, only the fields the gateway uses are declared)."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "CommentWire",
    "CommentsPage",
    "CursorExportPage",
    "CursorMeta",
    "ErrorBody",
    "ErrorItem",
    "ErrorObject",
    "EventChange",
    "EventComment",
    "EventTicketDetail",
    "FieldProblem",
    "FieldValue",
    "Links",
    "ListPage",
    "MinutesWire",
    "OrganizationEnvelope",
    "OrganizationExportPage",
    "OrganizationWire",
    "OrganizationsPage",
    "SigningSecretEnvelope",
    "SigningSecretWire",
    "TicketEnvelope",
    "TicketEventWire",
    "TicketExportPage",
    "TicketMetricEnvelope",
    "TicketMetricWire",
    "TicketWire",
    "TicketsPage",
    "UserEnvelope",
    "UserExportPage",
    "UserSearchPage",
    "UserWire",
    "UsersPage",
    "WebhookEnvelope",
    "WebhookWire",
    "WebhooksPage",
]

FieldValue = str | int | float | bool | list[str] | None
"""A custom field value as Zendesk sends it (decimal fields arrive as JSON numbers)."""


class _Wire(msgspec.Struct, kw_only=True):
    """Base of the wire Structs: unknown fields are ignored, as Zendesk adds fields often."""


class CursorMeta(_Wire):
    has_more: bool = False
    after_cursor: str | None = None
    before_cursor: str | None = None


class Links(_Wire):
    next: str | None = None
    prev: str | None = None


class OrganizationWire(_Wire):
    id: int
    name: str
    external_id: str | None = None
    domain_names: list[str] = []
    details: str | None = None
    notes: str | None = None
    tags: list[str] = []
    organization_fields: dict[str, FieldValue] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    url: str | None = None


class UserWire(_Wire):
    id: int
    name: str
    email: str | None = None
    role: str | None = None
    organization_id: int | None = None
    external_id: str | None = None
    phone: str | None = None
    active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


class MinutesWire(msgspec.Struct, kw_only=True, frozen=True):
    calendar: int | None = None
    business: int | None = None


class TicketMetricWire(_Wire):
    ticket_id: int
    id: int | None = None
    created_at: datetime | None = None
    solved_at: datetime | None = None
    replies: int | None = None
    reply_time_in_minutes: MinutesWire = MinutesWire()


class CustomFieldWire(_Wire):
    id: int
    value: FieldValue = None


class TicketWire(_Wire):
    id: int
    status: str
    created_at: datetime
    subject: str | None = None
    description: str | None = None
    priority: str | None = None
    type: str | None = None
    requester_id: int | None = None
    submitter_id: int | None = None
    assignee_id: int | None = None
    organization_id: int | None = None
    external_id: str | None = None
    tags: list[str] = []
    custom_fields: list[CustomFieldWire] = []
    updated_at: datetime | None = None
    metric_set: TicketMetricWire | None = None
    """Present when the ticket was read with `include=metric_sets`."""
    url: str | None = None


class CommentWire(_Wire):
    id: int
    created_at: datetime
    author_id: int | None = None
    body: str | None = None
    plain_body: str | None = None
    public: bool = True


class WebhookWire(_Wire):
    id: str
    name: str
    endpoint: str
    status: str
    subscriptions: list[str] = []
    http_method: str = "POST"
    request_format: str = "json"


class FieldProblem(_Wire):
    description: str | None = None
    error: str | None = None


class ErrorObject(_Wire):
    title: str | None = None
    message: str | None = None


class ErrorItem(_Wire):
    code: str | None = None
    title: str | None = None
    detail: str | None = None
    source: dict[str, str] | None = None


class ErrorBody(_Wire):
    """Every error shape Zendesk answers: `error` as a name or an object, `description`,
    `details` (validation), `errors` (parameter problems) or a bare `status`."""

    error: str | ErrorObject | None = None
    description: str | None = None
    details: dict[str, list[FieldProblem]] | None = None
    errors: list[ErrorItem] | None = None
    status: int | None = None


class ListPage(_Wire):
    """Paging members of any Zendesk list: cursor (`meta`, `links`) or offset (`next_page`)."""

    meta: CursorMeta | None = None
    links: Links | None = None
    next_page: str | None = None
    previous_page: str | None = None
    count: int | None = None


class OrganizationsPage(ListPage):
    organizations: list[OrganizationWire] = []


class UsersPage(ListPage):
    users: list[UserWire] = []


class UserSearchPage(ListPage):
    """`/api/v2/search` answered for a `type:user` query: every result is a user."""

    results: list[UserWire] = []


class TicketsPage(ListPage):
    tickets: list[TicketWire] = []
    users: list[UserWire] = []
    organizations: list[OrganizationWire] = []


class CommentsPage(ListPage):
    comments: list[CommentWire] = []


class WebhooksPage(ListPage):
    webhooks: list[WebhookWire] = []


class OrganizationEnvelope(_Wire):
    organization: OrganizationWire


class UserEnvelope(_Wire):
    user: UserWire


class TicketEnvelope(_Wire):
    ticket: TicketWire
    users: list[UserWire] = []
    organizations: list[OrganizationWire] = []


class TicketMetricEnvelope(_Wire):
    ticket_metric: TicketMetricWire


class WebhookEnvelope(_Wire):
    webhook: WebhookWire


class SigningSecretWire(_Wire):
    algorithm: str
    secret: str


class SigningSecretEnvelope(_Wire):
    signing_secret: SigningSecretWire


class CursorExportPage(_Wire):
    """A page of a cursor-based incremental export."""

    after_url: str | None = None
    after_cursor: str | None = None
    end_of_stream: bool = False


class TicketExportPage(CursorExportPage):
    tickets: list[TicketWire] = []


class UserExportPage(CursorExportPage):
    users: list[UserWire] = []


class OrganizationExportPage(_Wire):
    """A page of the time-based organization export."""

    organizations: list[OrganizationWire] = []
    next_page: str | None = None
    end_time: int | None = None
    end_of_stream: bool = False


class EventComment(msgspec.Struct, kw_only=True, frozen=True):
    id: str | None = None
    body: str | None = None
    is_public: bool = True


class EventChange(msgspec.Struct, kw_only=True, frozen=True):
    current: FieldValue = None
    previous: FieldValue = None
    comment: EventComment | None = None


class EventTicketDetail(_Wire):
    """`detail` of a ticket event: ids are strings and enums upper case, as Zendesk sends."""

    id: str
    status: str | None = None
    priority: str | None = None
    subject: str | None = None
    description: str | None = None
    organization_id: str | None = None
    requester_id: str | None = None
    external_id: str | None = None
    tags: list[str] = []
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TicketEventWire(_Wire):
    """A Zendesk ticket event webhook payload (`zen:event-type:ticket.*`)."""

    id: str
    type: str
    detail: EventTicketDetail
    time: datetime | None = None
    subject: str | None = None
    event: EventChange = EventChange()
