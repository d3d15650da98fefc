"""Zendesk records <-> canonical v1 contracts: pure functions over the wire Structs.

Ids: a contract read from Zendesk carries the Zendesk id as `id` and in `refs["zendesk"]`, as
every system API does; the canonical id the gateway wrote into the record's `external_id`
appears where the contract has a slot for it (`customer_id`). Zendesk has no native field for
a customer's legal entity, billing currency or support entitlement: they live in organization
fields (`legal_entity`, `currency`, `plan`, `sla_first_response_minutes`,
`credit_percent_per_breach`, `credit_cap_percent`, and `crm_account_id` for the CRM link).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import msgspec

from contracts.money import is_known_currency
from contracts.v1 import (
    CasePriority,
    CaseStatus,
    Contact,
    ContactCreate,
    Customer,
    Entitlement,
    SupportCase,
    SupportCaseCreate,
    SupportCasePatch,
)
from system_apis.support.zendesk._wire import (
    CommentWire,
    FieldValue,
    OrganizationWire,
    TicketEventWire,
    TicketMetricWire,
    TicketWire,
    UserWire,
)

__all__ = [
    "ENTITLEMENT_FIELDS",
    "SYSTEM",
    "MappingError",
    "TicketComment",
    "case_from_ticket_event",
    "first_response_at",
    "from_contact_create",
    "from_customer",
    "from_entitlement",
    "from_support_case",
    "from_support_case_create",
    "from_support_case_patch",
    "to_comment",
    "to_contact",
    "to_customer",
    "to_entitlement",
    "to_support_case",
    "to_support_case_from_event",
]

SYSTEM = "zendesk"
ENTITLEMENT_FIELDS = (
    "plan",
    "sla_first_response_minutes",
    "credit_percent_per_breach",
    "credit_cap_percent",
)
_CASE_STATUSES: frozenset[str] = frozenset({"new", "open", "pending", "hold", "solved", "closed"})
_CASE_PRIORITIES: frozenset[str] = frozenset({"low", "normal", "high", "urgent"})
# Incremental exports report deleted and archived tickets; for a customer they are closed.
_STATUS_ALIASES = {"deleted": "closed", "archived": "closed"}
# The sandbox marks seeded organizations `demo:<key>` until the gateway links a CRM account.
_DEMO_MARKER = "demo:"


class MappingError(ValueError):
    """A Zendesk record lacks what its canonical contract requires."""


class TicketComment(msgspec.Struct, frozen=True, kw_only=True):
    """One comment on a ticket (the canonical contracts have no comment type)."""

    id: str
    author_id: str | None
    body: str
    public: bool
    created_at: datetime


# -- organizations <-> customers and entitlements ---------------------------------------


def to_customer(
    org: OrganizationWire,
    *,
    default_legal_entity: str | None = None,
    currency_by_entity: Mapping[str, str] | None = None,
) -> Customer:
    """The customer an organization stands for.

    Raises:
        MappingError: neither the organization nor the defaults give a legal entity and a
            known currency.
    """
    fields = org.organization_fields or {}
    legal_entity = _text(fields.get("legal_entity")) or default_legal_entity
    if not legal_entity:
        raise MappingError(f"Zendesk organization {org.id} has no legal_entity")
    currency = (_text(fields.get("currency")) or "").upper() or (
        (currency_by_entity or {}).get(legal_entity, "")
    )
    if not is_known_currency(currency):
        raise MappingError(f"Zendesk organization {org.id} has no known currency")
    refs = {SYSTEM: str(org.id)}
    crm_account = _text(fields.get("crm_account_id"))
    if crm_account and not crm_account.startswith(_DEMO_MARKER):
        refs["salesforce"] = crm_account
    return Customer(
        id=str(org.id),
        legal_name=org.name,
        legal_entity=legal_entity,
        currency=currency,
        updated_at=org.updated_at,
        refs=refs,
    )


def from_customer(customer: Customer, *, external_id: str | None) -> dict[str, Any]:
    """The `organization` body that writes a customer; `external_id` is its canonical id."""
    fields: dict[str, FieldValue] = {
        "legal_entity": customer.legal_entity,
        "currency": customer.currency,
    }
    if "salesforce" in customer.refs:
        fields["crm_account_id"] = customer.refs["salesforce"]
    body: dict[str, Any] = {"name": customer.legal_name, "organization_fields": fields}
    if external_id is not None:
        body["external_id"] = external_id
    zendesk_id = customer.refs.get(SYSTEM, "")
    if zendesk_id.isdigit():
        body["id"] = int(zendesk_id)
    return body


def to_entitlement(org: OrganizationWire) -> Entitlement | None:
    """The support entitlement in an organization's fields; None when it has no plan."""
    fields = org.organization_fields or {}
    plan = _text(fields.get("plan"))
    sla = _whole(fields.get("sla_first_response_minutes"))
    if not plan or sla is None or sla < 1:
        return None
    return Entitlement(
        id=str(org.id),
        customer_id=org.external_id,
        organization_id=str(org.id),
        plan=plan,
        sla_first_response_minutes=sla,
        credit_percent_per_breach=_whole(fields.get("credit_percent_per_breach")) or 0,
        credit_cap_percent=_whole(fields.get("credit_cap_percent")) or 0,
        refs={SYSTEM: str(org.id)},
    )


def from_entitlement(entitlement: Entitlement) -> dict[str, Any]:
    """The `organization` body that writes an entitlement into the organization fields."""
    return {
        "organization_fields": {
            "plan": entitlement.plan,
            "sla_first_response_minutes": entitlement.sla_first_response_minutes,
            "credit_percent_per_breach": entitlement.credit_percent_per_breach,
            "credit_cap_percent": entitlement.credit_cap_percent,
        }
    }


# -- users <-> contacts -----------------------------------------------------------------


def to_contact(user: UserWire, *, customer_id: str | None = None) -> Contact:
    """A contact from a Zendesk user; Zendesk keeps one `name`, split at its last space."""
    first, _, last = user.name.strip().rpartition(" ")
    return Contact(
        id=str(user.id),
        customer_id=customer_id,
        first_name=first or None,
        last_name=last or user.name,
        email=user.email,
        phone=user.phone,
        refs={SYSTEM: str(user.id)},
    )


def from_contact_create(contact: ContactCreate, *, organization_id: int | None) -> dict[str, Any]:
    """The `user` body that creates an end user for a contact (Zendesk has no job title)."""
    name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
    body: dict[str, Any] = {"name": name, "role": "end-user"}
    if contact.email is not None:
        body["email"] = contact.email
    if contact.phone is not None:
        body["phone"] = contact.phone
    if organization_id is not None:
        body["organization_id"] = organization_id
    return body


# -- tickets <-> support cases ----------------------------------------------------------


def first_response_at(created_at: datetime, metric: TicketMetricWire | None) -> datetime | None:
    """When the first public staff reply came, from the ticket's metric set.

    Zendesk reports reply time in whole calendar minutes, not the reply's timestamp.
    """
    if metric is None or metric.reply_time_in_minutes.calendar is None:
        return None
    return created_at + timedelta(minutes=metric.reply_time_in_minutes.calendar)


def to_support_case(
    ticket: TicketWire,
    *,
    customer_id: str | None = None,
    requester_email: str | None = None,
    metric: TicketMetricWire | None = None,
) -> SupportCase:
    """A support case from a ticket; its first response comes from `metric` or the sideloaded
    `metric_set`."""
    return SupportCase(
        id=str(ticket.id),
        customer_id=customer_id,
        organization_id=_ref(ticket.organization_id),
        subject=ticket.subject or "",
        description=ticket.description,
        priority=_priority(ticket.priority),
        status=_status(ticket.status, ticket.id),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        first_response_at=first_response_at(ticket.created_at, metric or ticket.metric_set),
        requester_email=requester_email,
        tags=list(ticket.tags),
        refs={SYSTEM: str(ticket.id)},
    )


def to_support_case_from_event(event: TicketEventWire) -> SupportCase:
    """The case state a ticket event webhook reports (its `detail`, enums upper case)."""
    detail = event.detail
    if not detail.id.isdigit() or detail.created_at is None:
        raise MappingError(f"Zendesk event {event.id} has no ticket id or creation time")
    return SupportCase(
        id=detail.id,
        organization_id=detail.organization_id,
        subject=detail.subject or "",
        description=detail.description,
        priority=_priority((detail.priority or "").lower() or None),
        status=_status((detail.status or "open").lower(), int(detail.id)),
        created_at=detail.created_at,
        updated_at=detail.updated_at,
        tags=list(detail.tags),
        refs={SYSTEM: detail.id},
    )


def case_from_ticket_event(payload: Mapping[str, Any]) -> SupportCase:
    """The case a verified ticket event webhook payload reports (see `verify_webhook`).

    Raises:
        MappingError: the payload is not a Zendesk ticket event.
    """
    try:
        event = msgspec.convert(payload, TicketEventWire)
    except msgspec.ValidationError as exc:
        raise MappingError(f"not a Zendesk ticket event: {exc}") from exc
    if not event.type.startswith("zen:event-type:ticket."):
        raise MappingError(f"not a Zendesk ticket event: {event.type}")
    return to_support_case_from_event(event)


def to_comment(comment: CommentWire) -> TicketComment:
    return TicketComment(
        id=str(comment.id),
        author_id=_ref(comment.author_id),
        body=comment.plain_body or comment.body or "",
        public=comment.public,
        created_at=comment.created_at,
    )


def from_support_case_create(
    case: SupportCaseCreate, *, organization_id: int | None
) -> dict[str, Any]:
    """The `ticket` body that opens a case (the description becomes the first comment)."""
    body: dict[str, Any] = {
        "subject": case.subject,
        "comment": {"body": case.description},
        "priority": case.priority,
        "tags": list(case.tags),
    }
    if case.requester_email is not None:
        body["requester"] = {"email": case.requester_email}
    if organization_id is not None:
        body["organization_id"] = organization_id
    return body


def from_support_case_patch(patch: SupportCasePatch) -> dict[str, Any]:
    """The `ticket` body of a partial update: only the fields the patch sets."""
    return {name: getattr(patch, name) for name in patch.fields_set()}


def from_support_case(case: SupportCase) -> dict[str, Any]:
    """The `ticket` fields Zendesk keeps for a case, as a write body."""
    body: dict[str, Any] = {
        "subject": case.subject,
        "priority": case.priority,
        "status": case.status,
        "tags": list(case.tags),
    }
    if case.description is not None:
        body["comment"] = {"body": case.description}
    if case.organization_id is not None and case.organization_id.isdigit():
        body["organization_id"] = int(case.organization_id)
    return body


# -- field values ----------------------------------------------------------------------


def _ref(value: int | None) -> str | None:
    return None if value is None else str(value)


def _text(value: FieldValue) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _whole(value: FieldValue) -> int | None:
    """An integer organization field, whether Zendesk sent it as a number or a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _priority(value: str | None) -> CasePriority:
    # A ticket without a priority is treated as normal, the canonical default.
    if value is None:
        return "normal"
    if value not in _CASE_PRIORITIES:
        raise MappingError(f"unknown Zendesk priority {value!r}")
    return cast("CasePriority", value)


def _status(value: str, ticket_id: int) -> CaseStatus:
    status = _STATUS_ALIASES.get(value, value)
    if status not in _CASE_STATUSES:
        raise MappingError(f"Zendesk ticket {ticket_id} has unknown status {value!r}")
    return cast("CaseStatus", status)
