"""The process layer inside the real gateway: the engine launches with the app, the routes
answer behind the gateway's auth (scopes, legal entities) and Idempotency-Key policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contracts.errors import UpstreamRejected
from process_apis.engine.flow_engine import FlowEngine
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)
from tests.support.waiting import eventually


async def wait_for(
    client: AppClient, path: str, headers: dict[str, str], status: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(path, headers=headers)).json()
        return body if body.get("status") == status else None

    return await eventually(reached, what=f"{path} {status}")


async def test_gateway_runs_flows_and_serves_the_process_routes(tmp_path: Path) -> None:
    platform = FakePlatform()
    platform.fail("post_to_erp", UpstreamRejected("period closed", vendor="netsuite"))
    app = gateway_app(settings_for(tmp_path, ERPGW_EXECUTOR_ID="gateway-test"))
    orders = app.state.gateway.process.engine.register(OrderFlows, platform=platform)

    async with app_client(app) as client:
        engine: FlowEngine = client.app.state.gateway.process.engine
        _, reader_token = await new_client_token(client, ["process:read"], entities=["US01"])
        _, other_token = await new_client_token(client, ["process:read"], entities=["GB01"])
        _, ops_token = await new_client_token(client, ["ops:read", "ops:replay", "process:read"])
        reader, other, ops = bearer(reader_token), bearer(other_token), bearer(ops_token)
        await engine.start("order", "order:gw-1", orders.order, "gw-1", 100, legal_entity="US01")

        failed = await wait_for(client, "/process/v1/flows/order:gw-1", reader, "failed")
        hidden = await client.get("/process/v1/flows/order:gw-1", headers=other)
        refused = await client.get("/process/v1/exceptions", headers=reader)
        queue = (await client.get("/process/v1/exceptions", headers=ops)).json()
        exception_id = queue["data"][0]["id"]
        retried = await client.post(
            f"/process/v1/exceptions/{exception_id}/retry",
            headers={**ops, "Idempotency-Key": "retry-gw-1"},
        )
        replayed = await client.post(
            f"/process/v1/exceptions/{exception_id}/retry",
            headers={**ops, "Idempotency-Key": "retry-gw-1"},
        )
        done = await wait_for(client, "/process/v1/flows/order:gw-1", reader, "succeeded")
        listed = (await client.get("/process/v1/flows", headers=other)).json()

    assert engine.executor_id == "gateway-test"
    assert failed["steps"][-1]["status"] == "failed"
    assert hidden.status_code == 404
    assert refused.status_code == 403
    assert retried.status_code == 202
    assert replayed.status_code == 202
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert retried.headers["location"] == "/process/v1/flows/order:gw-1"
    assert [s["attempts"] for s in done["steps"]] == [1, 1, 2]
    assert platform.count("post_to_erp") == 2
    assert listed["data"] == []
