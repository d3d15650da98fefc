"""The won-deal poller's watermark: where it starts, how it moves, that it survives a restart
(it is kept in the app database) and that a failed poll does not move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from contracts.errors import UpstreamUnavailable
from contracts.v1 import Deal
from gateway import storage
from process_apis.cross_references import CrossReferences
from process_apis.quote_to_cash.won_deals import WonDealPoller
from system_apis.crm.port import CrmPort

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def deal(number: int, *, at: datetime) -> Deal:
    return Deal(id=f"006{number}", customer_id="001", name=f"Deal {number}", stage="Closed Won",
                won=True, currency="USD", updated_at=at)


class FakeCrm:
    """Answers `list_won_deals` from a list, as the CRM's SOQL would."""

    def __init__(self) -> None:
        self.deals: list[Deal] = []
        self.asked: list[datetime] = []
        self.down = False

    async def list_won_deals(self, *, since: datetime, limit: int = 200) -> list[Deal]:
        self.asked.append(since)
        if self.down:
            raise UpstreamUnavailable("Salesforce is down", vendor="salesforce", status=503)
        found = [d for d in self.deals if d.updated_at is not None and d.updated_at > since]
        return sorted(found, key=lambda d: d.updated_at or since)[:limit]


@pytest.fixture
def references(database_url: str) -> CrossReferences:
    return CrossReferences(storage.create_engine(database_url))


async def test_first_poll_starts_now_and_the_watermark_follows_the_deals(
    references: CrossReferences,
) -> None:
    crm, booked = FakeCrm(), []

    async def book(found: Deal) -> None:
        booked.append(found.id)

    poller = WonDealPoller(
        crm=cast(CrmPort, crm), book=book, watermarks=references, interval_seconds=1,
        clock=lambda: T0,
    )
    crm.deals = [deal(1, at=T0 - timedelta(days=3))]
    assert await poller.poll() == 0
    crm.deals += [deal(2, at=T0 + timedelta(seconds=5)), deal(3, at=T0 + timedelta(seconds=9))]

    assert await poller.poll() == 2

    assert booked == ["0062", "0063"]
    assert crm.asked == [T0, T0]
    # Another process (or a restart) reads the same watermark from the database.
    again = WonDealPoller(
        crm=cast(CrmPort, crm), book=book, watermarks=references, interval_seconds=1,
        clock=lambda: T0 + timedelta(days=1),
    )
    assert await again.watermark() == T0 + timedelta(seconds=9)
    assert await again.poll() == 0


async def test_a_failed_poll_keeps_the_watermark(references: CrossReferences) -> None:
    crm = FakeCrm()

    async def book(found: Deal) -> None:
        raise UpstreamUnavailable("the CRM timed out", vendor="salesforce")

    poller = WonDealPoller(
        crm=cast(CrmPort, crm), book=book, watermarks=references, interval_seconds=1,
        since=T0,
    )
    crm.deals = [deal(1, at=T0 + timedelta(seconds=1))]

    with pytest.raises(UpstreamUnavailable):
        await poller.poll()

    assert await poller.watermark() == T0


async def test_a_full_batch_reads_its_last_instant_again(references: CrossReferences) -> None:
    crm, booked = FakeCrm(), []

    async def book(found: Deal) -> None:
        booked.append(found.id)

    poller = WonDealPoller(
        crm=cast(CrmPort, crm), book=book, watermarks=references, interval_seconds=1,
        since=T0, batch=2,
    )
    later = T0 + timedelta(seconds=2)
    crm.deals = [deal(1, at=T0 + timedelta(seconds=1)), deal(2, at=later), deal(3, at=later)]

    for _ in range(3):
        await poller.poll()

    assert booked[:2] == ["0061", "0062"]
    assert set(booked) == {"0061", "0062", "0063"}
    assert await poller.watermark() == later
