"""The usage tables on SQLite and PostgreSQL: a record id stored once per client however often
it comes (twice in a batch, again in another), another client's same id is its own record, and
a push batch claims each record once and again after a crash."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import storage
from process_apis.usage.records import UsageRow, UsageStore

START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> UsageStore:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    else:
        url = request.getfixturevalue("postgres_url")
    storage.upgrade(url)
    return UsageStore(storage.create_engine(url))


def _row(record_id: str, subscription: str, quantity: int) -> UsageRow:
    return UsageRow(
        record_id=record_id,
        subscription_id=subscription,
        subscription_item_id=f"si_{subscription}",
        metric="api_calls",
        quantity=quantity,
        occurred_at=START + timedelta(hours=1),
        period_start=START,
        period_end=START + timedelta(days=31),
        legal_entity="US01",
    )


async def test_records_are_stored_once_and_claimed_once(store: UsageStore) -> None:
    client, other = f"cl_{uuid.uuid4().hex}", f"cl_{uuid.uuid4().hex}"
    subscription = f"sub_{uuid.uuid4().hex[:12]}"
    first = await store.add(
        client,
        [_row("a", subscription, 10), _row("b", subscription, 20), _row("a", subscription, 10)],
    )
    second = await store.add(client, [_row("b", subscription, 20), _row("c", subscription, 30)])
    foreign = await store.add(other, [_row("a", subscription, 5)])
    batch = f"usage-push:{uuid.uuid4().hex}"
    claimed = await store.claim(batch)
    claimed_again = await store.claim(batch)
    late = await store.add(client, [_row("d", subscription, 40)])
    before_push = await store.totals(subscription)
    await store.mark_pushed(batch)
    after_push = await store.totals(subscription)

    assert (first, second, foreign, late) == (2, 1, 1, 1)
    ours = [a for a in claimed if a.subscription_id == subscription]
    assert [(a.quantity, a.records) for a in ours] == [(10 + 20 + 30 + 5, 4)]
    assert claimed_again == claimed  # a repeat after a crash claims nothing new
    [waiting] = before_push
    assert (waiting.accepted, waiting.pushed) == (105, 0)
    [pushed] = after_push
    assert (pushed.accepted, pushed.pushed) == (105, 65)
    assert pushed.period_start == START
