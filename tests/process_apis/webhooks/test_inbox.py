"""The webhook inbox: a signed delivery is answered once its row is committed (group commit of
concurrent deliveries), and the dispatcher starts each stored event's flows exactly once --
with several dispatchers racing on one PostgreSQL database, after a dispatcher died holding a
row, and, for an event whose handler keeps failing, after an operator's retry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from process_apis.engine.store import webhook_inbox
from process_apis.webhooks.inbox import InboxWriter
from process_apis.webhooks.intake import FlowStart, InboxDispatcher, WebhookEvent
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.process_apis.webhooks.test_intake import (
    OPEN_LIMITS,
    PROBLEM,
    settings_for,
    stripe_delivery,
    stripe_event,
    ticket_event,
    zendesk_delivery,
)
from tests.support.apps import AppClient, app_client, bearer, gateway_app, new_client_token
from tests.support.apps import settings_for as base_settings
from tests.support.servers import free_port
from tests.support.waiting import eventually

FAST = {"ERPGW_WEBHOOK_DISPATCH_POLL_SECONDS": "0.2"}


async def inbox_rows(client: AppClient, *event_ids: str) -> dict[str, Any]:
    """The inbox rows of `event_ids` as the database holds them, by event id."""
    async with client.app.state.gateway.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(webhook_inbox).where(webhook_inbox.c.event_id.in_(event_ids))
        )
        return {row.event_id: row for row in rows}


def order_handler(orders: OrderFlows, calls: Counter[str] | None = None) -> Any:
    async def on_order(event: WebhookEvent) -> FlowStart:
        if calls is not None:
            calls[event.id] += 1
        return FlowStart(
            flow_type="order",
            business_key=f"stripe:{event.id}",
            fn=orders.order,
            args=(event.subject, 100),
        )

    return on_order


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    async with app_client(gateway_app(settings_for(tmp_path, **FAST))) as c:
        yield c


async def test_a_delivery_is_answered_only_once_its_row_is_committed(client: AppClient) -> None:
    writer = client.app.state.gateway.webhooks.writer
    insert = writer._insert
    committing = asyncio.Event()

    async def held_insert(conn: Any, batch: Any) -> Any:
        await committing.wait()
        return await insert(conn, batch)

    writer._insert = held_insert
    event = stripe_event("customer.created", {"id": "cus_held"})
    delivery = asyncio.create_task(client.post("/webhooks/stripe", **stripe_delivery(event)))
    await asyncio.sleep(0.3)
    answered_while_uncommitted = delivery.done()
    stored_before = await inbox_rows(client, event["id"])
    committing.set()
    answer = await delivery
    stored_after = await inbox_rows(client, event["id"])

    assert not answered_while_uncommitted
    assert stored_before == {}
    assert answer.status_code == 200
    assert answer.json() == {
        "source": "stripe",
        "event_id": event["id"],
        "event_type": "customer.created",
        "status": "received",
        "duplicate": False,
        "flow_ids": [],
    }
    assert list(stored_after) == [event["id"]]


async def test_a_delivery_that_cannot_be_stored_is_a_503_the_vendor_retries(
    client: AppClient,
) -> None:
    writer = client.app.state.gateway.webhooks.writer
    insert = writer._insert

    async def database_away(conn: Any, batch: Any) -> Any:
        raise ConnectionResetError("connection lost")

    writer._insert = database_away
    event = stripe_event("customer.created", {"id": "cus_lost"})
    refused = await client.post("/webhooks/stripe", **stripe_delivery(event))
    stored_while_away = await inbox_rows(client, event["id"])
    writer._insert = insert
    retried = await client.post("/webhooks/stripe", **stripe_delivery(event))

    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == "inbox_unavailable"
    assert "connection lost" not in refused.text
    assert stored_while_away == {}
    assert (retried.status_code, retried.json()["duplicate"]) == (200, False)


async def test_after_a_failed_insert_the_deliveries_behind_it_are_stored_on_a_fresh_connection(
    client: AppClient,
) -> None:
    writer: InboxWriter = client.app.state.gateway.webhooks.writer
    insert = writer._insert
    connections: list[Any] = []

    async def first_statement_fails(conn: Any, batch: Any) -> Any:
        connections.append(conn)
        if len(connections) == 1:
            await asyncio.sleep(0.2)  # the other deliveries queue up behind it
            raise ConnectionResetError("connection lost")
        return await insert(conn, batch)

    writer._insert = first_statement_fails
    first, *behind = [stripe_event("customer.created", {"id": f"cus_r{n}"}) for n in range(30)]
    failing = asyncio.create_task(client.post("/webhooks/stripe", **stripe_delivery(first)))
    await asyncio.sleep(0.05)  # its statement is on its way
    answers = await asyncio.gather(
        *(client.post("/webhooks/stripe", **stripe_delivery(event)) for event in behind)
    )
    refused = await failing
    writer._insert = insert
    stored = await inbox_rows(client, first["id"], *(event["id"] for event in behind))

    # Only the failed statement's delivery was refused (the vendor sends it again); the ones
    # that queued behind it are stored, on another connection.
    assert refused.status_code == 503, refused.text
    assert [a.status_code for a in answers] == [200] * 29
    assert set(stored) == {event["id"] for event in behind}
    assert connections[0] is not connections[-1]


async def test_concurrent_deliveries_are_stored_by_a_few_inserts(client: AppClient) -> None:
    writer: InboxWriter = client.app.state.gateway.webhooks.writer
    events = [stripe_event("customer.created", {"id": f"cus_{n}"}) for n in range(200)]
    inserts_before = writer.inserts

    answers = await asyncio.gather(
        *(client.post("/webhooks/stripe", **stripe_delivery(event)) for event in events)
    )
    stored = await inbox_rows(client, *(event["id"] for event in events))

    assert [a.status_code for a in answers] == [200] * 200
    assert {(a.json()["status"], a.json()["duplicate"]) for a in answers} == {("received", False)}
    assert len(stored) == 200
    assert 1 <= writer.inserts - inserts_before < 200


async def test_an_event_of_one_sender_is_no_duplicate_of_anothers(client: AppClient) -> None:
    shared_id = f"evt_{uuid.uuid4().hex[:12]}"
    stripe = stripe_event("customer.created", {"id": "cus_1"}, event_id=shared_id)
    zendesk = ticket_event() | {"id": shared_id}
    _, first = await new_client_token(client, ["process:write"])
    _, second = await new_client_token(client, ["process:write"])
    callout = {"event": "opportunity.updated", "opportunity_id": "006x", "event_id": shared_id}

    answers = await asyncio.gather(
        client.post("/webhooks/stripe", **stripe_delivery(stripe)),
        client.post("/webhooks/zendesk", **zendesk_delivery(zendesk)),
        client.post("/webhooks/salesforce", json=callout, headers=bearer(first)),
        client.post("/webhooks/salesforce", json=callout, headers=bearer(second)),
    )
    again = await client.post("/webhooks/stripe", **stripe_delivery(stripe))

    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["duplicate"] for a in answers] == [False] * 4
    assert again.json()["duplicate"] is True


async def test_a_row_whose_dispatcher_died_is_dispatched_by_another(tmp_path: Path) -> None:
    platform = FakePlatform()
    app = gateway_app(settings_for(tmp_path, **FAST))
    gateway = app.state.gateway
    orders = gateway.process.engine.register(OrderFlows, platform=platform)
    gateway.webhooks.dispatcher.register("stripe", "test.order", order_handler(orders))
    event = WebhookEvent(source="stripe", id="evt_orphan", type="test.order", subject="ord_9")
    async with app_client(app) as client:
        # As a dispatcher leaves a row it claimed just before it died: leased to it for 1 s.
        await gateway.webhooks.writer.store(event, lease_owner="dead-dispatcher", lease_seconds=1)
        await asyncio.sleep(0.5)
        while_leased = (await inbox_rows(client, "evt_orphan"))["evt_orphan"]

        async def settled() -> Any:
            row = (await inbox_rows(client, "evt_orphan"))["evt_orphan"]
            return row if row.status == "enqueued" else None

        row = await eventually(settled, timeout=20.0, what="the orphaned row dispatched")
        _, token = await new_client_token(client, ["process:read"])
        flow = await client.get("/process/v1/flows/stripe:evt_orphan", headers=bearer(token))

    assert (while_leased.status, while_leased.lease_owner) == ("received", "dead-dispatcher")
    assert row.flow_id == "stripe:evt_orphan"
    assert row.lease_owner is None
    assert flow.status_code == 200


async def test_dispatch_waits_while_deliveries_arrive_and_starts_once_they_pause(
    tmp_path: Path,
) -> None:
    # Deliveries keep arriving (the writer stored one a moment ago, every time dispatch
    # looks), and the longest wait is stretched so a slow machine cannot end it early.
    platform = FakePlatform()
    app = gateway_app(settings_for(tmp_path, ERPGW_WEBHOOK_DISPATCH_DEFER_SECONDS="60", **FAST))
    gateway = app.state.gateway
    orders = gateway.process.engine.register(OrderFlows, platform=platform)
    gateway.webhooks.dispatcher.register("stripe", "test.order", order_handler(orders))
    inbox = gateway.webhooks.inbox
    inbox.last_stored = time.monotonic
    event = stripe_event("test.order", {"id": "ord_burst"})
    async with app_client(app) as client:
        stored = await client.post("/webhooks/stripe", **stripe_delivery(event))
        await asyncio.sleep(1.0)  # five polls' worth
        during_burst = (await inbox_rows(client, event["id"]))[event["id"]]
        inbox.last_stored = lambda: float("-inf")  # the burst is over

        async def settled() -> Any:
            row = (await inbox_rows(client, event["id"]))[event["id"]]
            return row if row.status == "enqueued" else None

        after = await eventually(settled, timeout=20.0, what="the event dispatched")

    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "received"
    assert during_burst.status == "received"
    assert after.flow_id == f"stripe:{event['id']}"


async def test_a_steady_stream_of_deliveries_has_its_backlog_dispatched_after_one_wait(
    tmp_path: Path,
) -> None:
    # Deliveries never pause. The backlog (six batches of four) yields to them once, for
    # its defer_seconds, and is then worked off; yielding again before each batch would take
    # six times as long (the way dispatch starved under steady traffic).
    platform = FakePlatform()
    app = gateway_app(
        settings_for(
            tmp_path,
            ERPGW_WEBHOOK_DISPATCH_CONCURRENCY="1",
            ERPGW_WEBHOOK_DISPATCH_DEFER_SECONDS="1.5",
            **FAST,
        )
    )
    gateway = app.state.gateway
    orders = gateway.process.engine.register(OrderFlows, platform=platform)
    gateway.webhooks.dispatcher.register("stripe", "test.order", order_handler(orders))
    inbox = gateway.webhooks.inbox
    events = [stripe_event("test.order", {"id": f"ord_steady_{n}"}) for n in range(24)]
    async with app_client(app) as client:
        inbox.last_stored = time.monotonic
        for event in events:
            stored = await client.post("/webhooks/stripe", **stripe_delivery(event))
            assert stored.status_code == 200, stored.text

        async def all_enqueued() -> dict[str, Any] | None:
            rows = await inbox_rows(client, *(e["id"] for e in events))
            return rows if all(r.status == "enqueued" for r in rows.values()) else None

        rows = await eventually(all_enqueued, timeout=6.0, what="the backlog dispatched")

    assert len(rows) == 24
    assert all(row.flow_id == f"stripe:{row.event_id}" for row in rows.values())


async def test_a_failing_handler_ends_failed_in_the_queue_and_an_operator_retry_dispatches(
    tmp_path: Path,
) -> None:
    platform = FakePlatform()
    app = gateway_app(settings_for(tmp_path, ERPGW_WEBHOOK_DISPATCH_ATTEMPTS="2", **FAST))
    gateway = app.state.gateway
    orders = gateway.process.engine.register(OrderFlows, platform=platform)
    broken = {"yes": True}
    start_order = order_handler(orders)

    async def on_order(event: WebhookEvent) -> FlowStart:
        if broken["yes"]:
            raise RuntimeError("order service misconfigured")
        return await start_order(event)

    gateway.webhooks.dispatcher.register("stripe", "test.order", on_order)
    event = stripe_event("test.order", {"id": "ord_7"}, event_id="evt_broken")
    async with app_client(app) as client:
        _, ops = await new_client_token(client, ["ops:read", "ops:replay", "process:read"])
        first = await client.post("/webhooks/stripe", **stripe_delivery(event))

        async def failed() -> Any:
            row = (await inbox_rows(client, "evt_broken"))["evt_broken"]
            return row if row.status == "failed" else None

        row = await eventually(failed, timeout=20.0, what="the event failed")
        queue = await client.get("/process/v1/exceptions?owner=integration", headers=bearer(ops))
        entry = next(e for e in queue.json()["data"] if "evt_broken" in e["cause"])
        replayed = await client.post("/webhooks/stripe", **stripe_delivery(event))

        broken["yes"] = False
        retry = await client.post(
            f"/process/v1/exceptions/{entry['id']}/retry", headers=bearer(ops)
        )

        async def enqueued() -> Any:
            now = (await inbox_rows(client, "evt_broken"))["evt_broken"]
            return now if now.status == "enqueued" else None

        settled = await eventually(enqueued, timeout=20.0, what="the retried event dispatched")
        after = await client.get(f"/process/v1/exceptions/{entry['id']}", headers=bearer(ops))
        flow = await client.get("/process/v1/flows/stripe:evt_broken", headers=bearer(ops))
        again = await client.post("/webhooks/stripe", **stripe_delivery(event))

    assert first.json()["status"] == "received"
    assert (row.attempts, row.error) == (2, "RuntimeError: order service misconfigured")
    assert entry["flow_type"] == "webhook_dispatch"
    assert entry["status"] == "open"
    assert replayed.json() | {"flow_ids": []} == {
        "source": "stripe",
        "event_id": "evt_broken",
        "event_type": "test.order",
        "status": "failed",
        "duplicate": True,
        "flow_ids": [],
    }
    assert retry.status_code == 202, retry.text
    assert settled.flow_id == "stripe:evt_broken"
    assert after.json()["status"] == "resolved"
    assert flow.status_code == 200
    assert again.json()["status"] == "enqueued"
    assert again.headers["location"] == "/process/v1/flows/stripe:evt_broken"


@pytest.mark.postgres
async def test_racing_dispatchers_start_each_flow_once(tmp_path: Path, postgres_url: str) -> None:
    platform = FakePlatform()
    calls: Counter[str] = Counter()
    app = gateway_app(
        base_settings(
            tmp_path,
            postgres_url,
            ERPGW_RATE_LIMIT_TIERS=OPEN_LIMITS,
            ERPGW_PORT=str(free_port()),
            **FAST,
        )
    )
    gateway = app.state.gateway
    orders = gateway.process.engine.register(OrderFlows, platform=platform)
    gateway.webhooks.dispatcher.register("stripe", "test.race", order_handler(orders, calls))
    run = uuid.uuid4().hex[:8]
    events = [
        WebhookEvent(source="stripe", id=f"evt_{run}_{n}", type="test.race", subject=f"o{n}")
        for n in range(60)
    ]
    # Two more gateway processes' dispatchers, each on its own connection pool.
    databases = [create_async_engine(postgres_url, pool_size=4) for _ in range(2)]
    async with app_client(app) as client:
        rivals = [
            InboxDispatcher(
                database=database,
                handlers=gateway.webhooks.dispatcher,
                engine=gateway.process.engine,
                concurrency=4,
            )
            for database in databases
        ]
        # Stored without waking this process's dispatcher: all three find them at once.
        await asyncio.gather(*(gateway.webhooks.writer.store(event) for event in events))
        for _ in range(20):
            await asyncio.gather(*(rival.dispatch_due() for rival in rivals))
        ids = [event.id for event in events]

        async def all_settled() -> Any:
            rows = await inbox_rows(client, *ids)
            return rows if all(r.status == "enqueued" for r in rows.values()) else None

        rows = await eventually(all_settled, timeout=30.0, what="every event dispatched")
        await eventually(
            lambda: _counted(platform, "post_to_erp", len(events)),
            timeout=60.0,
            what="every order flow finished",
        )
    for database in databases:
        await database.dispose()

    assert calls == Counter({event_id: 1 for event_id in ids})
    assert {row.flow_id for row in rows.values()} == {f"stripe:{event_id}" for event_id in ids}
    assert platform.count("reserve_stock") == len(events)


async def _counted(platform: FakePlatform, operation: str, expected: int) -> bool | None:
    return True if platform.count(operation) >= expected else None


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_the_writer_tells_new_rows_from_duplicates_on_either_database(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    app = gateway_app(
        base_settings(
            tmp_path, url, ERPGW_RATE_LIMIT_TIERS=OPEN_LIMITS, ERPGW_PORT=str(free_port())
        )
    )
    writer: InboxWriter = app.state.gateway.webhooks.writer
    run = uuid.uuid4().hex[:8]

    def event(n: int) -> WebhookEvent:
        return WebhookEvent(
            source="stripe",
            id=f"evt_{run}_{n}",
            type="invoice.finalized",
            subject=f"in_{n}",
            object={"id": f"in_{n}", "amount_due": 1250 * n, "currency": "eur"},
        )

    first, second, held = event(1), event(2), event(3)
    async with app_client(app) as client:
        alone = await writer.store(first)
        # One batch: a repeat of a stored event, one event twice, one held for its deliverer.
        together = await asyncio.gather(
            writer.store(first),
            writer.store(second),
            writer.store(second),
            writer.store(held, lease_owner="inline:test", lease_seconds=30),
        )
        rows = await inbox_rows(client, first.id, second.id, held.id)

    assert alone is True
    assert together[0] is False
    assert sorted(together[1:3]) == [False, True]
    assert together[3] is True
    # (This process's dispatcher may already have claimed the rows nobody held.)
    stored = msgspec.json.decode(rows[second.id].payload, type=WebhookEvent)
    assert stored == second
    assert stored.object["amount_due"] == 2500
    assert rows[held.id].status == "received"
    assert rows[held.id].lease_owner == "inline:test"
    assert rows[held.id].lease_until > rows[held.id].received_at
