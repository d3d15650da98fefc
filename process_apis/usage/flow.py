"""Usage push: accepted usage records reach billing as one increment per item and period.

The flow claims the records no batch holds yet (its id is the batch's), sums them per
subscription item, metric and period, reports each sum to billing as an increment keyed by the
batch, item and period, and marks the batch pushed. Every step can run again after a crash: the
claim returns the records the batch already holds, and billing replays a keyed report instead
of counting it again, so no record is lost or counted twice. No compensation: a report billing
refuses (a period it has already closed) waits in the exception queue for finance.
"""

from __future__ import annotations

from typing import Final

import msgspec

from process_apis.engine.durable import (
    BUSY_PLATFORM,
    SHORT_OUTAGE,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from process_apis.usage.records import UsageAggregate, UsageStore
from system_apis.billing.port import BillingPort

__all__ = ["FLOW_TYPE", "PushResult", "UsagePush", "report_key"]

FLOW_TYPE: Final = "usage_push"


class PushResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one push batch sent billing."""

    batch_id: str
    items: int
    records: int
    quantity: int


def report_key(aggregate: UsageAggregate) -> str:
    """The billing idempotency key of one increment: the batch, the item and the period, so
    a repeated report of the same sum is the same billing request."""
    return (
        f"{aggregate.batch_id}:{aggregate.subscription_item_id}:"
        f"{int(aggregate.period_start.timestamp())}"
    )


@flow_class("usage-push")
class UsagePush(FlowInstance):
    """The usage push flow (`push`) and its steps."""

    def __init__(self, *, billing: BillingPort, store: UsageStore) -> None:
        super().__init__()
        self.billing = billing
        self.store = store

    @flow()
    async def push(self, batch_id: str) -> PushResult:
        aggregates = await self.claim_usage(batch_id)
        for aggregate in aggregates:
            await self.report_usage(aggregate)
        await self.mark_pushed(batch_id)
        return PushResult(
            batch_id=batch_id,
            items=len(aggregates),
            records=sum(a.records for a in aggregates),
            quantity=sum(a.quantity for a in aggregates),
        )

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def claim_usage(self, batch_id: str) -> list[UsageAggregate]:
        """The batch's records summed per item and period (claimed now, or before a crash)."""
        return await self.store.claim(batch_id)

    @flow_step(system="stripe", retry=BUSY_PLATFORM, owner="finance")
    async def report_usage(self, aggregate: UsageAggregate) -> str:
        """One increment of the item's usage in its period. The report is dated at the
        period's start, which billing accepts for as long as the period is open whatever the
        records' own times (a sum does not depend on them)."""
        record_id = await self.billing.report_usage(
            aggregate.subscription_item_id,
            quantity=aggregate.quantity,
            at=aggregate.period_start,
            action="increment",
            idempotency_key=report_key(aggregate),
        )
        report_external_ids(stripe_usage_record=record_id)
        return record_id

    @flow_step(system="gateway", retry=SHORT_OUTAGE)
    async def mark_pushed(self, batch_id: str) -> None:
        await self.store.mark_pushed(batch_id)
