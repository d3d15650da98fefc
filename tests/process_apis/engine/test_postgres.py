"""The engine on PostgreSQL: DBOS's tables in a schema of their own in the app database (one
per test run, dropped after), flows and exceptions in the gateway's tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa

from contracts.errors import UpstreamRejected
from contracts.principal import Principal
from gateway import storage
from process_apis.engine.durable import Decision
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.queue import ExceptionQueue
from process_apis.engine.records import FlowReader
from process_apis.engine.system_database import sync_database_url
from tests.process_apis.conftest import FAST, wait_for_status
from tests.process_apis.example_flow import FakePlatform, OrderFlows

pytestmark = pytest.mark.postgres

OPERATOR = Principal(client_id="ops-pg", name="ops", scopes=frozenset({"ops:replay"}))


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    storage.upgrade(postgres_url)
    schema = f"dbos_{uuid.uuid4().hex[:10]}"
    yield schema
    engine = sa.create_engine(sync_database_url(postgres_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
async def pg_engine(
    postgres_url: str, pg_schema: str, platform: FakePlatform, orders: OrderFlows
) -> AsyncIterator[FlowEngine]:
    engine = FlowEngine(
        database_url=postgres_url,
        executor_id=f"pg-{uuid.uuid4().hex[:8]}",
        system_schema=pg_schema,
        pool_size=4,
        **FAST,
    )
    assert engine.register(OrderFlows, platform=platform) is orders
    await engine.launch()
    try:
        yield engine
    finally:
        await engine.shutdown()


async def test_flow_fails_into_the_queue_and_resumes_on_postgres(
    pg_engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, postgres_url: str
) -> None:
    db = storage.create_engine(postgres_url)
    reader, queue = FlowReader(db), ExceptionQueue(db)
    flow_id = f"order:pg-{uuid.uuid4().hex[:8]}"
    platform.fail("post_to_erp", UpstreamRejected("period closed", vendor="netsuite"))
    first = await pg_engine.start("order", flow_id, orders.order, "pg", 100)
    again = await pg_engine.start("order", flow_id, orders.order, "pg", 100)

    await wait_for_status(reader, flow_id, "failed")
    entries = (await queue.list(principal=OPERATOR, status="open", limit=100)).data
    entry = next(e for e in entries if e.flow_id == flow_id)
    await queue.claim_retry(entry.id, principal=OPERATOR, edited_input=None)
    await pg_engine.decide(
        flow_id,
        Decision(
            action="retry", exception_id=entry.id, occurrence=entry.occurrences, actor="ops-pg"
        ),
    )

    flow = await wait_for_status(reader, flow_id, "succeeded")
    assert first.created and not again.created
    assert entry.owner == "finance"
    assert [(s.name, s.attempts) for s in flow.steps] == [
        ("reserve_stock", 1),
        ("create_invoice", 1),
        ("post_to_erp", 2),
    ]
    assert (platform.count("reserve_stock"), platform.count("post_to_erp")) == (1, 2)
    await db.dispose()
