"""Stripe events, webhook endpoints and test clocks as the gateway sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from contracts.v1 import EventEnvelope
from system_apis.billing.stripe._conventions import SYSTEM, timestamp
from system_apis.billing.stripe._wire import EventWire, TestClockWire, WebhookEndpointWire

__all__ = ["TestClock", "WebhookEndpoint", "to_event", "to_test_clock", "to_webhook_endpoint"]


def to_event(wire: EventWire) -> EventEnvelope:
    """A Stripe event in the CloudEvents envelope (`source` stripe, `type` Stripe's type)."""
    subject = wire.data.object.get("id")
    data: dict[str, Any] = {"object": wire.data.object}
    if wire.data.previous_attributes is not None:
        data["previous_attributes"] = wire.data.previous_attributes
    return EventEnvelope(
        specversion="1.0",
        id=wire.id,
        source=SYSTEM,
        type=wire.type,
        subject=subject if isinstance(subject, str) else None,
        time=timestamp(wire.created),
        datacontenttype="application/json",
        data=data,
    )


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A Stripe webhook endpoint; `secret` is only known from the answer that created it."""

    id: str
    url: str
    enabled_events: list[str]
    enabled: bool
    secret: str | None = None
    description: str | None = None


class TestClock(msgspec.Struct, frozen=True, kw_only=True):
    """A Stripe test clock: simulated time for the customers created on it."""

    __test__ = False  # not a test class, despite the name

    id: str
    frozen_time: datetime
    ready: bool
    name: str | None = None


def to_webhook_endpoint(wire: WebhookEndpointWire) -> WebhookEndpoint:
    """The webhook endpoint as the gateway sees it."""
    return WebhookEndpoint(
        id=wire.id,
        url=wire.url,
        enabled_events=list(wire.enabled_events),
        enabled=wire.status == "enabled",
        secret=wire.secret,
        description=wire.description,
    )


def to_test_clock(wire: TestClockWire) -> TestClock:
    """The test clock as the gateway sees it."""
    return TestClock(
        id=wire.id,
        frozen_time=datetime.fromtimestamp(wire.frozen_time, tz=UTC),
        ready=wire.status == "ready",
        name=wire.name,
    )
