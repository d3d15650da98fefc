"""The usage service: intake, pushes on demand and on a schedule, and the usage of one
subscription per period as the gateway, billing and its invoices hold it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import structlog

from contracts.audit import FlowSource, actor_of, system_actor
from contracts.errors import NotFound
from contracts.principal import Principal
from process_apis.engine.flow_engine import FlowEngine
from process_apis.usage.flow import FLOW_TYPE, UsagePush
from process_apis.usage.intake import UsageAccepted, UsageBatch, UsageIntake
from process_apis.usage.records import UsageRow, UsageStore
from process_apis.usage.subscriptions import SubscriptionDirectory
from system_apis.billing.port import BillingPort

__all__ = ["FlushStarted", "UsagePeriod", "UsageReport", "UsageService"]

log = structlog.get_logger("process_apis.usage")


class FlushStarted(msgspec.Struct, frozen=True, kw_only=True):
    flow_id: str | None
    """The push flow started, None when no record was waiting."""
    records: int
    """Records waiting when the push started (it claims them, and any accepted since)."""


class UsagePeriod(msgspec.Struct, frozen=True, kw_only=True):
    """One metric of one subscription in one billing period."""

    metric: str
    period_start: datetime
    period_end: datetime
    accepted: int
    """Units the gateway accepted (each record once)."""
    pushed: int
    """Units of those pushed to billing."""
    invoiced: int
    """Units billing invoiced for the period (0 while it is open)."""


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    data: list[UsagePeriod]


@dataclass
class UsageService:
    """What the usage routes and the flush schedule call."""

    intake: UsageIntake
    store: UsageStore
    directory: SubscriptionDirectory
    flows: UsagePush
    engine: FlowEngine
    billing: BillingPort
    flush_seconds: float
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def accept(self, batch: UsageBatch, *, principal: Principal) -> UsageAccepted:
        answer, rows = await self.intake.accept(batch, principal=principal)
        if self._closing_soon(rows):
            # Billing closes the period before the next scheduled push: push now.
            self.wake.set()
        return answer

    async def flush(
        self, *, source: FlowSource = "schedule", principal: Principal | None = None
    ) -> FlushStarted:
        """Start a push of every waiting record (none when nothing waits); the start is
        audited as the caller's, or the schedule's."""
        waiting = await self.store.pending()
        if waiting == 0:
            return FlushStarted(flow_id=None, records=0)
        batch_id = f"usage-push:{uuid.uuid4().hex}"
        await self.engine.start(
            FLOW_TYPE, batch_id, self.flows.push, batch_id, source=source,
            actor=actor_of(principal) if principal is not None else system_actor("schedule"),
        )
        return FlushStarted(flow_id=batch_id, records=waiting)

    async def report(self, subscription_id: str, *, principal: Principal) -> UsageReport:
        """Accepted, pushed and invoiced units per metric and period, newest first.

        Raises:
            NotFound: no such subscription among the caller's (another's answers alike).
        """
        subscription = await self.directory.find(subscription_id)
        if subscription is None or not subscription.visible_to(principal):
            raise NotFound(f"No subscription {subscription_id}")
        totals = await self.store.totals(subscription_id)
        invoiced = await self._invoiced({t.subscription_item_id for t in totals})
        return UsageReport(
            data=[
                UsagePeriod(
                    metric=t.metric,
                    period_start=t.period_start,
                    period_end=t.period_end,
                    accepted=t.accepted,
                    pushed=t.pushed,
                    invoiced=invoiced.get(
                        (t.subscription_item_id, t.period_start, t.period_end), 0
                    ),
                )
                for t in totals
            ]
        )

    async def run_schedule(self) -> None:
        """Push every `flush_seconds`, and at once when intake sees a period about to close."""
        while True:
            timeout = self.flush_seconds if self.flush_seconds > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)
            self.wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the next round tries again; say why this one failed
                log.warning("usage_push_not_started", error=str(exc))

    async def _invoiced(self, item_ids: set[str]) -> dict[tuple[str, datetime, datetime], int]:
        found: dict[tuple[str, datetime, datetime], int] = {}
        for item_id in sorted(item_ids):
            for summary in await self.billing.list_usage_summaries(item_id):
                if summary.invoice_id is not None:
                    key = (item_id, summary.period_start, summary.period_end)
                    found[key] = summary.total_usage
        return found

    def _closing_soon(self, rows: Sequence[UsageRow]) -> bool:
        if not rows:
            return False
        margin = timedelta(seconds=2 * max(self.flush_seconds, 30.0))
        return min(row.period_end for row in rows) - self.now() <= margin
