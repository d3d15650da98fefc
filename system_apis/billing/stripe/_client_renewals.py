"""Renewal operations: a subscription that continues at a period boundary with new items
(a subscription schedule of two phases), and one that ends there (`cancel_at`).

A schedule's phases are Stripe's way to change a subscription at a future instant
(https://docs.stripe.com/billing/subscriptions/subscription-schedules): the first phase keeps
the current items until the boundary, the second bills the renewal's items from it, and the
schedule then releases the subscription, which goes on with them. Nothing is prorated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from contracts.v1 import Subscription, SubscriptionItemInput
from system_apis.billing.stripe import mapping
from system_apis.billing.stripe._client_billing import BillingOperations
from system_apis.billing.stripe._conventions import META_DEAL
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._map_billing import _item_params
from system_apis.billing.stripe._wire import SubscriptionWire

__all__ = ["RenewalOperations"]


class _PhaseItemWire(msgspec.Struct, kw_only=True, frozen=True):
    price: str | dict[str, object]
    quantity: int | None = None
    metadata: dict[str, str] = {}


class _PhaseWire(msgspec.Struct, kw_only=True, frozen=True):
    start_date: int
    end_date: int | None = None
    items: list[_PhaseItemWire] = []


class _ScheduleWire(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    status: str = "active"
    phases: list[_PhaseWire] = []


class RenewalOperations(BillingOperations):
    """`SubscriptionRenewals` on Stripe."""

    async def continue_subscription(
        self,
        subscription_id: str,
        *,
        at: datetime,
        items: Sequence[SubscriptionItemInput],
        deal_id: str,
        idempotency_key: str,
    ) -> Subscription:
        """From `at` on, the subscription bills `items` under deal `deal_id`, unprorated."""
        current = await self._subscription_with_schedule(subscription_id)
        schedule = await self._schedule_of(current, f"{idempotency_key}:schedule")
        boundary = int(at.timestamp())
        ongoing = next(
            (p for p in reversed(schedule.phases) if p.start_date < boundary), schedule.phases[0]
        )
        priced = {item.price_id for item in items if item.unit_amount is not None}
        catalog = {price_id: await self._price_wire(price_id) for price_id in sorted(priced)}
        currency = current.currency.lower()
        params: FormParams = {
            "end_behavior": "release",
            "proration_behavior": "none",
            "phases": [
                {
                    "start_date": ongoing.start_date,
                    "end_date": boundary,
                    # Each item restated as it is, its metadata (product code, deal) included:
                    # Stripe merges a phase item's metadata into the subscription item's.
                    "items": [_ongoing_item(item) for item in ongoing.items],
                    "proration_behavior": "none",
                },
                {
                    "items": [
                        _item_params(item, catalog, currency, recurring=True) for item in items
                    ],
                    "iterations": 1,
                    "metadata": {META_DEAL: deal_id},
                    "proration_behavior": "none",
                },
            ],
        }
        await self.post_json(
            f"/v1/subscription_schedules/{schedule.id}",
            params,
            _ScheduleWire,
            f"{idempotency_key}:phases",
            f"subscription schedule {schedule.id} update",
            template="/v1/subscription_schedules/{id}",
        )
        return await self.get_subscription(subscription_id)

    async def cancel_subscription_at(
        self, subscription_id: str, *, at: datetime, idempotency_key: str
    ) -> Subscription:
        """The subscription ends at `at` (a period end), billing nothing after it."""
        wire = await self.post_json(
            f"/v1/subscriptions/{subscription_id}",
            {
                "cancel_at": int(at.timestamp()),
                "proration_behavior": "none",
                "expand": ["customer"],
            },
            SubscriptionWire,
            idempotency_key,
            f"subscription {subscription_id} cancel_at",
            template="/v1/subscriptions/{id}",
        )
        return mapping.to_subscription(wire)

    async def _subscription_with_schedule(self, subscription_id: str) -> _SubscriptionRef:
        return await self.get_json(
            f"/v1/subscriptions/{subscription_id}",
            _SubscriptionRef,
            f"subscription {subscription_id}",
            template="/v1/subscriptions/{id}",
        )

    async def _schedule_of(self, subscription: _SubscriptionRef, key: str) -> _ScheduleWire:
        """The subscription's schedule, made from it when it has none (keyed, so a retry that
        lost the answer finds the same schedule)."""
        if subscription.schedule:
            return await self.get_json(
                f"/v1/subscription_schedules/{subscription.schedule}",
                _ScheduleWire,
                f"subscription schedule {subscription.schedule}",
                template="/v1/subscription_schedules/{id}",
            )
        return await self.post_json(
            "/v1/subscription_schedules",
            {"from_subscription": subscription.id},
            _ScheduleWire,
            key,
            f"subscription schedule of {subscription.id}",
            template="/v1/subscription_schedules",
        )


class _SubscriptionRef(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    currency: str = ""
    schedule: str | None = None


def _price_id(price: str | dict[str, object]) -> str:
    return price if isinstance(price, str) else str(price["id"])


def _ongoing_item(item: _PhaseItemWire) -> dict[str, object]:
    params: dict[str, object] = {"price": _price_id(item.price), "quantity": item.quantity}
    if item.metadata:
        params["metadata"] = dict(item.metadata)
    return params
