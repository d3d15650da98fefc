"""Group commit of the engine's records: steps of several flows ending at the same moment
share one transaction, each caller returns only once its own rows are committed, a bad row
fails only the caller that wrote it, and a dropped connection is tried again. A flow's
start, run again as a recovered flow replays, leaves the status the flow had reached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import storage
from process_apis.engine._batches import BatchWriter
from process_apis.engine.records import (
    FlowReader,
    create_flow,
    flow_ended,
    set_flow_status,
    start_running,
    step_ended,
)
from process_apis.engine.store import (
    create_process_engine,
    transaction_retried_if_dropped,
    utcnow,
)

NOTE = sa.text("INSERT INTO notes (id, body) VALUES (:id, :body)")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_process_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)"))
    try:
        yield engine
    finally:
        await engine.dispose()


def _count_commits(db: AsyncEngine) -> list[int]:
    commits = [0]

    def counted(_conn: Any) -> None:
        commits[0] += 1

    sa.event.listen(db.sync_engine, "commit", counted)
    return commits


async def _notes(database_url: str) -> dict[str, str]:
    # Read through another pool: what a reader of the flow resource would see.
    other = storage.create_engine(database_url)
    try:
        async with other.connect() as conn:
            rows = await conn.execute(sa.text("SELECT id, body FROM notes"))
            return {row.id: row.body for row in rows}
    finally:
        await other.dispose()


async def test_writes_of_the_same_moment_share_one_commit_and_are_visible_on_return(
    db: AsyncEngine, database_url: str
) -> None:
    writer = BatchWriter(db)
    commits = _count_commits(db)

    await asyncio.gather(
        *(writer.write((NOTE, {"id": f"n{i}", "body": f"step {i}"})) for i in range(8))
    )

    assert commits[0] == 1
    assert await _notes(database_url) == {f"n{i}": f"step {i}" for i in range(8)}
    await writer.write((NOTE, {"id": "later", "body": "alone"}))
    assert commits[0] == 2
    await writer.close()


async def test_a_bad_row_fails_only_its_own_caller(db: AsyncEngine, database_url: str) -> None:
    writer = BatchWriter(db)

    outcomes = await asyncio.gather(
        writer.write((NOTE, {"id": "a", "body": "kept"})),
        writer.write((NOTE, {"id": "b", "body": None})),
        writer.write((NOTE, {"id": "c", "body": "kept too"})),
        return_exceptions=True,
    )

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], sa.exc.IntegrityError)
    assert await _notes(database_url) == {"a": "kept", "c": "kept too"}
    await writer.close()


async def test_step_and_flow_ends_from_several_flows_show_on_their_flows(
    db: AsyncEngine, database_url: str
) -> None:
    now = utcnow()
    async with db.begin() as conn:
        for flow_id in ("order:1", "order:2"):
            await create_flow(
                conn,
                flow_id=flow_id,
                flow_type="order",
                correlation_id="c",
                crm_account=None,
                legal_entity="US01",
                now=now,
            )
            await start_running(conn, flow_id, "order", now=now)
    writer = BatchWriter(db)

    await asyncio.gather(
        writer.write(
            step_ended(
                "order:1",
                "create_invoice",
                system="stripe",
                position=1,
                started_at=now,
                status="succeeded",
                attempt_recorded=False,
                now=utcnow(),
                external_ids={"stripe_invoice": "in_1"},
            ),
            flow_ended("order:1", "succeeded", now=utcnow()),
        ),
        writer.write(
            step_ended(
                "order:2",
                "create_invoice",
                system="stripe",
                position=1,
                started_at=now,
                status="running",
                attempt_recorded=False,
                now=utcnow(),
                error="UpstreamUnavailable: busy",
            )
        ),
    )
    await writer.close()

    reader = FlowReader(storage.create_engine(database_url))
    first, second = await reader.get("order:1"), await reader.get("order:2")
    assert first is not None and second is not None
    assert first.status == "succeeded"
    assert [(s.name, s.status, s.attempts, s.external_ids) for s in first.steps] == [
        ("create_invoice", "succeeded", 1, {"stripe_invoice": "in_1"})
    ]
    assert second.status == "running"
    assert [(s.status, s.attempts, s.error) for s in second.steps] == [
        ("running", 1, "UpstreamUnavailable: busy")
    ]


async def test_a_replayed_start_keeps_the_status_the_flow_had_reached(db: AsyncEngine) -> None:
    now = utcnow()
    async with db.begin() as conn:
        await create_flow(
            conn,
            flow_id="order:9",
            flow_type="order",
            correlation_id="trace-9",
            crm_account="001A",
            legal_entity="US01",
            now=now,
        )
        first = await start_running(conn, "order:9", "order", now=now)
        await set_flow_status(conn, "order:9", "waiting_approval", now=now)
        replayed = await start_running(conn, "order:9", "order", now=utcnow())
        status = (
            await conn.execute(sa.text("SELECT status FROM flows WHERE id = 'order:9'"))
        ).scalar_one()

    assert first == replayed
    assert (replayed.correlation_id, replayed.crm_account, replayed.legal_entity) == (
        "trace-9",
        "001A",
        "US01",
    )
    assert status == "waiting_approval"


async def test_a_dropped_connection_is_tried_again_and_a_refused_statement_is_not(
    db: AsyncEngine, database_url: str
) -> None:
    calls: list[str] = []

    async def dropped_once(conn: AsyncConnection) -> str:
        calls.append("dropped_once")
        if len(calls) == 1:
            raise sa.exc.OperationalError(
                "INSERT",
                {},
                ConnectionError("server closed the connection"),
                connection_invalidated=True,
            )
        await conn.execute(NOTE, {"id": "after-drop", "body": "written"})
        return "done"

    async def refused(conn: AsyncConnection) -> None:
        calls.append("refused")
        await conn.execute(NOTE, {"id": "bad", "body": None})

    assert await transaction_retried_if_dropped(db, dropped_once) == "done"
    with pytest.raises(sa.exc.IntegrityError):
        await transaction_retried_if_dropped(db, refused)

    assert calls == ["dropped_once", "dropped_once", "refused"]
    assert await _notes(database_url) == {"after-drop": "written"}
