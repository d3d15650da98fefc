"""Stripe usage records of metered subscription items and their per-period summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from contracts.v1 import UsageSummary
from system_apis.billing.stripe._client_base import ClientBase
from system_apis.billing.stripe._conventions import timestamp
from system_apis.billing.stripe._wire import ListWire, UsageRecordSummaryWire, UsageRecordWire

__all__ = ["UsageOperations"]

SUMMARY_PAGE: Final = 100
"""Stripe's list limit is 100; a year of monthly periods fits in one page."""


class UsageOperations(ClientBase):
    """Usage operations of `StripeClient`."""

    async def report_usage(
        self,
        subscription_item_id: str,
        *,
        quantity: int,
        at: datetime,
        action: Literal["increment", "set"] = "increment",
        idempotency_key: str | None = None,
    ) -> str:
        """Record `quantity` units of usage at `at` (inside the item's current period); returns
        Stripe's usage record id. A keyed repeat is replayed by Stripe, not counted again."""
        wire = await self.post_json(
            f"/v1/subscription_items/{subscription_item_id}/usage_records",
            {"quantity": quantity, "timestamp": int(at.timestamp()), "action": action},
            UsageRecordWire,
            idempotency_key,
            f"usage record of subscription item {subscription_item_id}",
            template="/v1/subscription_items/{id}/usage_records",
        )
        return wire.id

    async def list_usage_summaries(self, subscription_item_id: str) -> list[UsageSummary]:
        """The item's usage per period, newest first (the open period first, not invoiced)."""
        content = await self.transport.call(
            "GET",
            f"/v1/subscription_items/{subscription_item_id}/usage_record_summaries",
            template="/v1/subscription_items/{id}/usage_record_summaries",
            params={"limit": SUMMARY_PAGE},
            what=f"usage summaries of subscription item {subscription_item_id}",
        )
        page = self.transport.decode(
            content, ListWire[UsageRecordSummaryWire], "usage record summaries"
        )
        return [
            UsageSummary(
                subscription_item_id=entry.subscription_item,
                period_start=_utc(entry.period.start),
                period_end=_utc(entry.period.end),
                total_usage=entry.total_usage,
                invoice_id=entry.invoice,
            )
            for entry in page.data
        ]


def _utc(moment: int) -> datetime:
    value = timestamp(moment)
    assert value is not None
    return value
