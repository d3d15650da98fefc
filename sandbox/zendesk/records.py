"""The records the Zendesk emulator keeps in memory, and the stable ids they are given."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "INTEGER_ORGANIZATION_FIELDS",
    "ORGANIZATION_FIELD_KEYS",
    "TICKET_PRIORITIES",
    "TICKET_STATUSES",
    "TICKET_TYPES",
    "USER_ROLES",
    "Comment",
    "IdempotentResponse",
    "Organization",
    "Ticket",
    "TicketEvent",
    "User",
    "stable_id",
]

ORGANIZATION_FIELD_KEYS = (
    "plan",
    "sla_first_response_minutes",
    "credit_percent_per_breach",
    "credit_cap_percent",
    "legal_entity",
    "currency",
    "crm_account_id",
)
"""The organization fields defined in the sandbox account (custom fields in a real account);
`legal_entity` and `currency` carry what the canonical customer needs and Zendesk has no
native field for."""
INTEGER_ORGANIZATION_FIELDS = frozenset(
    {"sla_first_response_minutes", "credit_percent_per_breach", "credit_cap_percent"}
)
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_TYPES = ("problem", "incident", "question", "task")
USER_ROLES = ("end-user", "agent", "admin")

# Seeded records get ids hashed from their demo key into [1e13, 4e13); records created later
# count up from 4e13, so the two never meet and both stay below 2**53 (safe in JSON numbers).
_STABLE_BASE = 10_000_000_000_000
_STABLE_SPAN = 30_000_000_000_000


def stable_id(kind: str, key: str) -> int:
    """A Zendesk-sized int64 id derived from a demo key, the same on every reset."""
    digest = hashlib.sha256(f"zendesk:{kind}:{key}".encode()).digest()
    return _STABLE_BASE + int.from_bytes(digest[:8], "big") % _STABLE_SPAN


@dataclass(slots=True, kw_only=True)
class Organization:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    external_id: str | None = None
    domain_names: list[str] = field(default_factory=list)
    details: str | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, str | int | None] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class User:
    id: int
    name: str
    email: str | None
    role: str
    created_at: datetime
    updated_at: datetime
    organization_id: int | None = None
    external_id: str | None = None
    phone: str | None = None
    time_zone: str = "UTC"
    tags: list[str] = field(default_factory=list)

    @property
    def is_staff(self) -> bool:
        return self.role in ("agent", "admin")


@dataclass(slots=True, kw_only=True)
class Comment:
    id: int
    author_id: int
    body: str
    public: bool
    created_at: datetime
    audit_id: int


@dataclass(slots=True, kw_only=True)
class Ticket:
    id: int
    subject: str
    description: str
    status: str
    requester_id: int
    submitter_id: int
    created_at: datetime
    updated_at: datetime
    priority: str | None = None
    type: str | None = None
    assignee_id: int | None = None
    organization_id: int | None = None
    external_id: str | None = None
    tags: list[str] = field(default_factory=list)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    first_response_at: datetime | None = None
    """Kept internally, as Zendesk does; exposed only through the ticket metrics."""
    solved_at: datetime | None = None
    assigned_at: datetime | None = None
    channel: str = "api"


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketEvent:
    """One change to a ticket, named as Zendesk names its ticket event types."""

    kind: str
    """`created`, `priority_changed`, `status_changed`, `comment_added`, ..."""
    ticket_id: int
    previous: Any = None
    current: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotentResponse:
    """What a ticket creation answered, kept to replay it for the same Idempotency-Key."""

    fingerprint: str
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    stored_at: datetime
