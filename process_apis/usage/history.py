"""A subscription's recent usage per billing period, for rules that weigh a usage trend."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.usage.records import UsageStore

__all__ = ["PeriodUsage", "UsageRecords", "recent_usage"]


class PeriodUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Accepted units of one metric in one billing period."""

    metric: str
    period_start: datetime
    period_end: datetime
    quantity: int


async def recent_usage(
    database: AsyncEngine, subscription_id: str, *, periods: int = 3
) -> list[PeriodUsage]:
    """The accepted usage of `subscription_id` in its last `periods` billing periods that
    have any, per metric, newest period first (the open period included). Reads the app
    database only: no billing call."""
    totals = await UsageStore(database).totals(subscription_id)
    starts = sorted({t.period_start for t in totals}, reverse=True)[:periods]
    return [
        PeriodUsage(
            metric=t.metric,
            period_start=t.period_start,
            period_end=t.period_end,
            quantity=t.accepted,
        )
        for t in totals
        if t.period_start in starts
    ]


class UsageRecords:
    """Closed periods' usage of a subscription, all metrics summed, as a renewal weighs it
    (`last_periods` is the shape `process_apis.renewals.risk.UsageHistory` asks for)."""

    def __init__(self, database: AsyncEngine) -> None:
        self._database = database

    async def closed_periods(
        self, subscription_id: str, periods: int = 3, *, now: datetime | None = None
    ) -> list[tuple[datetime, int]] | None:
        """Up to `periods` ended periods as (start, units), oldest first; None when no usage
        was ever reported for the subscription."""
        moment = now or datetime.now(UTC)
        totals = await UsageStore(self._database).totals(subscription_id)
        if not totals:
            return None
        summed: dict[datetime, int] = {}
        for total in totals:
            if total.period_end <= moment:
                summed[total.period_start] = summed.get(total.period_start, 0) + total.accepted
        return sorted(summed.items())[-periods:]
