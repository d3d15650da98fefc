"""Stripe events, webhook endpoints and test clocks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from contracts.v1 import EventEnvelope, Page
from system_apis.billing.port import BillingChanges
from system_apis.billing.stripe import mapping
from system_apis.billing.stripe._client_base import ClientBase, created_range, to_page
from system_apis.billing.stripe._client_http import Transport
from system_apis.billing.stripe._wire import (
    DeletedWire,
    EventWire,
    TestClockWire,
    WebhookEndpointWire,
)
from system_apis.billing.stripe.mapping import TestClock, WebhookEndpoint

__all__ = ["AdminOperations"]

_CLOCKS = "/v1/test_helpers/test_clocks"
CHANGE_EVENTS = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.deleted",
    "credit_note.created",
    "credit_note.updated",
    "credit_note.voided",
)
"""The events that change what reconciliation compares (Stripe takes at most 20 `types`); a
payment shows as its invoice's `invoice.paid`."""
_CLOCK_POLL_SECONDS = 0.5
_CLOCK_MAX_POLLS = 240


class AdminOperations(ClientBase):
    """Event, webhook and test clock operations of `StripeClient`."""

    # events and webhooks -----------------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventEnvelope:
        wire = await self.get_json(
            f"/v1/events/{event_id}", EventWire, f"event {event_id}", template="/v1/events/{id}"
        )
        return mapping.to_event(wire)

    async def list_events(
        self,
        *,
        types: Sequence[str] = (),
        created_gte: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[EventEnvelope]:
        query = {"types": list(types) or None, "created": created_range(created_gte, None)}
        wire = await self.list_page("/v1/events", query, EventWire, cursor, limit, "events")
        return to_page(wire, mapping.to_event)

    async def changed_since(self, since: datetime) -> BillingChanges:
        """From the Events API (the change feed: list filters know only `created`, so an
        invoice paid or voided later shows only as an event)."""
        query = {"types": list(CHANGE_EVENTS), "created": created_range(since, None)}
        customers: set[str] = set()
        deleted: set[str] = set()
        invoices: set[str] = set()
        notes: set[str] = set()
        async for wire in self.iterate("/v1/events", query, EventWire, "events"):
            changed = wire.data.object
            kind, object_id = changed.get("object"), changed.get("id")
            if not isinstance(object_id, str):
                continue
            owner = object_id if kind == "customer" else _customer_of(changed)
            if owner is not None:
                customers.add(owner)
            if kind == "customer" and wire.type == "customer.deleted":
                deleted.add(object_id)
            elif kind == "invoice":
                invoices.add(object_id)
            elif kind == "credit_note":
                notes.add(object_id)
        return BillingChanges(
            customers=sorted(customers),
            deleted_customers=sorted(deleted),
            invoices=sorted(invoices),
            credit_notes=sorted(notes),
        )

    async def create_webhook_endpoint(
        self,
        url: str,
        *,
        enabled_events: Sequence[str],
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> WebhookEndpoint:
        params = {
            "url": url,
            "enabled_events": list(enabled_events),
            "description": description,
            "api_version": self.api_version,
        }
        wire = await self.post_json(
            "/v1/webhook_endpoints",
            params,
            WebhookEndpointWire,
            idempotency_key,
            "webhook endpoint create",
        )
        return mapping.to_webhook_endpoint(wire)

    async def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        items = self.iterate("/v1/webhook_endpoints", {}, WebhookEndpointWire, "webhook endpoints")
        return [mapping.to_webhook_endpoint(wire) async for wire in items]

    async def delete_webhook_endpoint(
        self, endpoint_id: str, *, idempotency_key: str | None = None
    ) -> None:
        content = await self.transport.call(
            "DELETE",
            f"/v1/webhook_endpoints/{endpoint_id}",
            template="/v1/webhook_endpoints/{id}",
            idempotency_key=idempotency_key,
            what=f"webhook endpoint {endpoint_id} delete",
        )
        Transport.decode(content, DeletedWire, "webhook endpoint delete")

    # test clocks -------------------------------------------------------------------------------

    async def create_test_clock(
        self, frozen_time: datetime, *, name: str | None = None, idempotency_key: str | None = None
    ) -> TestClock:
        params = {"frozen_time": int(frozen_time.timestamp()), "name": name}
        wire = await self.post_json(
            _CLOCKS, params, TestClockWire, idempotency_key, "test clock create"
        )
        return mapping.to_test_clock(wire)

    async def get_test_clock(self, clock_id: str) -> TestClock:
        wire = await self.get_json(
            f"{_CLOCKS}/{clock_id}",
            TestClockWire,
            f"test clock {clock_id}",
            template=f"{_CLOCKS}/{{id}}",
        )
        return mapping.to_test_clock(wire)

    async def advance_test_clock(
        self, clock_id: str, frozen_time: datetime, *, idempotency_key: str | None = None
    ) -> TestClock:
        """Advance the clock and wait until Stripe has finished (the clock reads `ready`)."""
        params = {"frozen_time": int(frozen_time.timestamp())}
        wire = await self.post_json(
            f"{_CLOCKS}/{clock_id}/advance",
            params,
            TestClockWire,
            idempotency_key,
            f"test clock {clock_id} advance",
            template=f"{_CLOCKS}/{{id}}/advance",
        )
        clock = mapping.to_test_clock(wire)
        for _ in range(_CLOCK_MAX_POLLS):
            if clock.ready:
                return clock
            await asyncio.sleep(_CLOCK_POLL_SECONDS)
            clock = await self.get_test_clock(clock_id)
        return clock


def _customer_of(changed: Mapping[str, Any]) -> str | None:
    """The customer an event's object belongs to (an id, or the expanded customer)."""
    customer = changed.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else None
