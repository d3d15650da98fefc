"""The won-deal poller: picks up deals won in the CRM since the last look and books them.

Every `interval_seconds` it asks the CRM for deals won and changed after its watermark
(`CrmPort.list_won_deals`, a SOQL query on `SystemModstamp`), hands each to quote-to-cash and
moves the watermark to the last deal it saw. The watermark is kept in the app database, so a
restarted (or another) gateway process goes on from there; handing a deal over twice is
harmless, since its flow id is its business key. It runs as a background task of the app's
lifespan (not a DBOS scheduled workflow: a poll is a cheap read that must not pile up
workflow records every few seconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from contracts.v1 import Deal
from process_apis.cross_references import CrossReferences
from system_apis.crm.port import CrmPort

__all__ = ["WATERMARK", "WonDealPoller"]

WATERMARK: Final = "watermark"
"""Cross-reference entity of a poller's watermark (an ISO 8601 timestamp in `external_id`)."""
WATERMARK_KEY: Final = "crm:won_deals"
BATCH: Final = 200
"""Deals read per poll; the rest wait for the next poll."""
OVERLAP: Final = timedelta(milliseconds=1)
"""After a full batch the watermark stops just before the last deal's timestamp (Salesforce
stamps to the millisecond): deals sharing it that did not fit the batch are read next time
(handing one over twice is harmless)."""

log = structlog.get_logger("process_apis.quote_to_cash.won_deals")


class WonDealPoller:
    """Polls the CRM for won deals and hands each to `book` (quote-to-cash's start)."""

    def __init__(
        self,
        *,
        crm: CrmPort,
        book: Callable[[Deal], Awaitable[None]],
        watermarks: CrossReferences,
        interval_seconds: float,
        since: datetime | None = None,
        batch: int = BATCH,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """
        Args:
            since: where a gateway that never polled starts; None: when it first polls
                (deals won before polling was turned on are left to be booked by hand).
        """
        self._crm = crm
        self._book = book
        self._watermarks = watermarks
        self._interval = interval_seconds
        self._since = since
        self._batch = batch
        self._clock = clock

    async def poll(self) -> int:
        """One look at the CRM: books what was won since the watermark; returns how many
        deals it handed over."""
        since = await self.watermark()
        deals = await self._crm.list_won_deals(since=since, limit=self._batch)
        latest = since
        for deal in deals:
            await self._book(deal)
            if deal.updated_at is not None and deal.updated_at > latest:
                latest = deal.updated_at
        first = deals[0].updated_at if deals else None
        if len(deals) >= self._batch and first is not None and first < latest:
            # A full batch may have cut deals sharing its last timestamp: read that instant
            # again. A batch of one instant moves on (more than a batch of deals changed in
            # the same millisecond is where a timestamp watermark reaches its limit).
            latest -= OVERLAP
        if latest > since:
            await self._store(latest)
        return len(deals)

    async def _store(self, watermark: datetime) -> None:
        await self._watermarks.link(WATERMARK, WATERMARK_KEY, "salesforce", watermark.isoformat())

    async def watermark(self) -> datetime:
        """The last change time already looked at (stored once polling starts)."""
        stored = await self._watermarks.find(WATERMARK, WATERMARK_KEY, "salesforce")
        if stored:
            return datetime.fromisoformat(stored)
        start = self._since or self._clock()
        await self._store(start)
        return start

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is logged and tried again next interval."""
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("won_deal_poll_failed", error=str(exc))
            await asyncio.sleep(self._interval)
