"""What a vendor event is to the flows, and how each vendor's delivery becomes one: Stripe's and
Zendesk's checked against their signing secrets, Salesforce Flow callouts read as sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import msgspec

from contracts.errors import FieldError, InvalidRequest, Unauthenticated
from contracts.principal import Principal
from system_apis.billing.stripe import webhooks as stripe_signatures
from system_apis.support.zendesk import webhooks as zendesk_signatures

__all__ = [
    "SalesforceCallout",
    "SignedEvent",
    "WebhookEvent",
    "callout_event",
    "verify_stripe",
    "verify_zendesk",
]


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One vendor event as flows receive it (small enough to be a flow's argument)."""

    source: str
    id: str
    type: str
    created: datetime | None = None
    """When the vendor says the event happened (Stripe `created`, Zendesk `time`)."""
    subject: str | None = None
    """Id of the object the event is about (a Stripe invoice, a Zendesk ticket)."""
    object: dict[str, Any] = {}
    """That object as the vendor sent it: Stripe `data.object`, Zendesk `detail`, the callout
    body for Salesforce."""
    changes: dict[str, Any] | None = None
    """What changed: Stripe `data.previous_attributes`, Zendesk `event`."""
    sender: Principal | None = None
    """The API client that sent a Salesforce callout: what the callout starts acts for it,
    within its scopes and legal entities. None for a delivery the vendor signed."""

    @property
    def sender_id(self) -> str:
        """Who sent it, as the inbox keys deliveries (per source, sender, type and id): the
        callout's client id; empty for a signed webhook (the one vendor account whose secret
        signed it). A caller chooses a callout's event id, so it is only unique for that caller."""
        return self.sender.client_id if self.sender is not None else ""


def verify_stripe(
    body: bytes, signature: str | None, secrets: Sequence[str], *, tolerance: int
) -> SignedEvent:
    """A Stripe event whose `Stripe-Signature` one of `secrets` made, within `tolerance` s."""
    if not signature:
        raise _unsigned("Stripe-Signature")
    event = stripe_signatures.verify_event(body, signature, list(secrets), tolerance=tolerance)
    return SignedEvent(
        source="stripe",
        id=event.id,
        type=event.type,
        created=event.created,
        subject=event.object_id,
        object=event.object,
        changes=event.previous_attributes,
    )


def verify_zendesk(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int,
) -> WebhookEvent:
    """A Zendesk webhook event signed with one of `secrets`, within `tolerance` s."""
    if not signature or not timestamp:
        raise _unsigned(f"{zendesk_signatures.SIGNATURE_HEADER} and its timestamp")
    raw = zendesk_signatures.verify_webhook(
        body, signature, timestamp, list(secrets), tolerance=tolerance
    )
    detail = raw.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    change = raw.get("event")
    return WebhookEvent(
        source="zendesk",
        id=_required_text(raw, "id", "zendesk"),
        type=_required_text(raw, "type", "zendesk"),
        created=_iso_time(raw.get("time")),
        subject=str(detail["id"]) if detail.get("id") is not None else None,
        object=detail,
        changes=change if isinstance(change, dict) else None,
    )


class SignedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery a vendor signed, as the inbox stores it: `WebhookEvent`'s fields with the
    vendor's object still in the bytes it came in, so intake never builds it; stored, it is
    read back as a `WebhookEvent` when dispatched."""

    source: str
    id: str
    type: str
    created: datetime | None = None
    subject: str | None = None
    object: msgspec.Raw
    changes: msgspec.Raw | None = None

    sender_id: ClassVar[str] = ""
    """Signed by the vendor's account: no API client sent it (`WebhookEvent.sender_id`)."""


class SalesforceCallout(msgspec.Struct, frozen=True, kw_only=True):
    """A Salesforce Flow HTTP callout announcing a change of a record."""

    event: Annotated[
        str, msgspec.Meta(min_length=1, max_length=100, examples=["opportunity.closed_won"])
    ]
    opportunity_id: Annotated[str, msgspec.Meta(min_length=1, max_length=99)] | None = None
    """The record the event is about (sized so `event:record` fits the inbox's event id)."""
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    """The sender's id of this event; without one, event and record make the id."""


def callout_event(callout: SalesforceCallout, *, sender: Principal) -> WebhookEvent:
    """The event of a Salesforce callout sent by API client `sender`."""
    return WebhookEvent(
        source="salesforce",
        id=callout.event_id or f"{callout.event}:{callout.opportunity_id or ''}",
        type=callout.event,
        subject=callout.opportunity_id,
        object=msgspec.to_builtins(callout),
        sender=sender,
    )


def _required_text(raw: Mapping[str, Any], name: str, source: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise _malformed(source, f"/{name}", "must be a non-empty string")
    return value


def _iso_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _malformed(source: str, pointer: str, detail: str) -> InvalidRequest:
    return InvalidRequest(
        f"Malformed {source} webhook: {pointer or 'the body'} {detail}",
        errors=[FieldError(pointer=pointer, detail=detail)],
        code="invalid_payload",
    )


def _unsigned(header: str) -> Unauthenticated:
    return Unauthenticated(
        f"The delivery carries no {header}", error="invalid_signature", code="invalid_signature"
    )
