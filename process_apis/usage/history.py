"""A subscription's recent usage per billing period, for rules that weigh a usage trend."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.usage.records import UsageStore

__all__ = ["PeriodUsage", "recent_usage"]


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
