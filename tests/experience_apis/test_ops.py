"""Operations traces: every flow, step, vendor call and webhook that carried one correlation
id, in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from contracts.context import CallContext, use_context
from process_apis.engine.records import record_attempt, record_step_outcome
from process_apis.engine.store import webhook_inbox
from tests.experience_apis import seed
from tests.experience_apis.conftest import World


async def traced_flow(world: World, correlation_id: str, *, legal_entity: str = "US01") -> str:
    """A webhook that started a flow whose step called Salesforce, all under one id."""
    start = datetime.now(UTC) - timedelta(seconds=5)
    flow_id = f"q2c:{correlation_id}"
    async with world.engine.begin() as conn:
        await conn.execute(
            sa.insert(webhook_inbox).values(
                source="stripe",
                event_id=f"evt_{correlation_id}",
                event_type="invoice.finalized",
                payload="{}",
                status="processed",
                flow_id=flow_id,
                received_at=start,
                processed_at=start + timedelta(seconds=1),
            )
        )
    await seed.flow(
        world.engine,
        flow_id,
        status="running",
        correlation_id=correlation_id,
        legal_entity=legal_entity,
        at=start + timedelta(seconds=1),
    )
    async with world.engine.begin() as conn:
        await record_attempt(
            conn, flow_id, "read_account", system="salesforce", position=1,
            now=start + timedelta(seconds=2),
        )
        await record_step_outcome(
            conn, flow_id, "read_account", status="succeeded",
            now=datetime.now(UTC), external_ids={"salesforce": "001x"},
        )
    use_context(CallContext(correlation_id=correlation_id, flow_id=flow_id, step="read_account"))
    await world.crm.list_accounts(limit=1)
    use_context(CallContext())
    recorder = world.platforms.recorder
    assert recorder is not None
    await recorder.flush()
    return flow_id


async def test_trace_lists_what_carried_the_correlation_id_in_time_order(world: World) -> None:
    flow_id = await traced_flow(world, "corr-trace-1")
    await traced_flow(world, "corr-trace-2")

    response = await world.http.get("/experience/ops/v1/traces/corr-trace-1")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["flow_ids"] == [flow_id]
    kinds = [event["kind"] for event in body["events"]]
    assert kinds[:3] == ["webhook", "flow", "step"]
    calls = [e for e in body["events"] if e["kind"] == "vendor_call"]
    assert calls, "the Salesforce calls made under the correlation id"
    assert {c["system"] for c in calls} == {"salesforce"}
    assert all(c["flow_id"] == flow_id and c["latency_ms"] >= 0 for c in calls)
    assert any(c["path_template"].endswith("query") and c["status"] == "200" for c in calls)
    stamps = [event["at"] for event in body["events"]]
    assert stamps == sorted(stamps)
    step = body["events"][2]
    assert step["external_ids"] == {"salesforce": "001x"}


async def test_unknown_correlation_id_is_not_found(world: World) -> None:
    response = await world.http.get("/experience/ops/v1/traces/nothing-here")

    assert response.status_code == 404


async def test_a_client_of_another_entity_sees_no_trace_of_its_flows(world: World) -> None:
    await traced_flow(world, "corr-de", legal_entity="DE01")
    world.caller.become(scopes=frozenset({"ops:read"}), entities=frozenset({"US01"}))

    response = await world.http.get("/experience/ops/v1/traces/corr-de")

    assert response.status_code == 404


async def test_recent_traces_list_the_latest_correlation_ids(world: World) -> None:
    await traced_flow(world, "corr-a")
    await traced_flow(world, "corr-b")

    body = (await world.http.get("/experience/ops/v1/traces")).json()

    assert [t["id"] for t in body["data"]][:2] == ["corr-b", "corr-a"]
