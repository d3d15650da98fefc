"""All state follows the database URL: DBOS's system database sits beside the app database,
and a flow record whose workflow is missing or already over is reported (at launch and when
read) and never left pending."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from gateway import storage
from process_apis.engine.flow_engine import ORPHAN_GRACE_SECONDS, FlowEngine
from process_apis.engine.records import FlowReader, create_flow
from process_apis.engine.store import flows, utcnow
from process_apis.engine.system_database import default_system_database_url
from tests.process_apis.conftest import wait_for_status
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.process_apis.routes import process_app


def test_system_database_sits_beside_a_sqlite_app_database() -> None:
    assert default_system_database_url("sqlite+aiosqlite:///var/erp-gateway.db") == (
        "sqlite:///var/erp-gateway.dbos.sqlite"
    )
    assert default_system_database_url("sqlite+aiosqlite:////srv/gw/state.db") == (
        "sqlite:////srv/gw/state.dbos.sqlite"
    )
    assert default_system_database_url("postgresql+asyncpg://u@db:5432/gw") == (
        "postgresql+psycopg://u@db:5432/gw"
    )


async def _orphan(database_url: str, flow_id: str, *, age_seconds: float) -> None:
    """A flow record with no workflow behind it, written `age_seconds` ago."""
    db = storage.create_engine(database_url)
    async with db.begin() as conn:
        await create_flow(
            conn,
            flow_id=flow_id,
            flow_type="order",
            correlation_id=None,
            crm_account=None,
            legal_entity=None,
            now=utcnow() - timedelta(seconds=age_seconds),
        )
    await db.dispose()


async def test_flow_record_without_workflow_fails_at_launch(
    database_url: str, tmp_path: Path, flow_engine: FlowEngine, orders: OrderFlows,
    reader: FlowReader,
) -> None:
    await _orphan(database_url, "order:orphan", age_seconds=ORPHAN_GRACE_SECONDS + 60)
    await _orphan(database_url, "order:just-started", age_seconds=0)

    await flow_engine.launch()
    try:
        flow = await reader.get("order:orphan")
        young = await reader.get("order:just-started")
    finally:
        await flow_engine.shutdown()

    assert flow is not None and flow.status == "failed"
    assert flow.reason is not None and "workflow is missing" in flow.reason
    # A record this young may be a start between its record and its workflow.
    assert young is not None and young.status == "pending"
    assert (tmp_path / "gateway.dbos.sqlite").exists()
    assert not (tmp_path / "dbos.sqlite").exists()


async def test_reading_a_flow_whose_workflow_already_ended_reports_it(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, database_url: str,
    reader: FlowReader,
) -> None:
    handle = await engine.start("order", "order:over", orders.order, "over", 100)
    await handle.result()
    await wait_for_status(reader, "order:over", "succeeded")
    # The record says pending, as a fresh app database would while DBOS remembers the key.
    db = storage.create_engine(database_url)
    async with db.begin() as conn:
        await conn.execute(
            sa.update(flows).where(flows.c.id == "order:over").values(status="pending")
        )
    await db.dispose()
    await _orphan(database_url, "order:gone", age_seconds=ORPHAN_GRACE_SECONDS + 1)

    async with AsyncTestClient(process_app(engine, database_url)) as client:
        over = await client.get("/process/v1/flows/order:over")
        gone = await client.get("/process/v1/flows/order:gone")

    assert over.status_code == 200, over.text
    assert over.json()["status"] == "failed"
    assert "already ended (SUCCESS)" in over.json()["reason"]
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "failed"
    assert "workflow is missing" in gone.json()["reason"]
    assert platform.count("post_to_erp") == 1
