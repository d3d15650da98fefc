"""A step that fails for good puts its flow in the exception queue; operators retry it (maybe
with an edited input), assign it or resolve it over HTTP, and every action is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from dbos import DBOS
from prometheus_client import CollectorRegistry

from contracts.errors import FieldError, UpstreamInvalid, UpstreamRejected, UpstreamUnavailable
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from tests.process_apis.conftest import wait_for_status
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.process_apis.routes import process_app
from tests.support.waiting import eventually


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def http(
    engine: FlowEngine, database_url: str, registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    app = process_app(engine, database_url, registry=registry)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def open_exception(http: httpx.AsyncClient, flow_id: str) -> dict[str, Any]:
    async def opened() -> dict[str, Any] | None:
        page = (await http.get("/process/v1/exceptions", params={"status": "open"})).json()
        found = [e for e in page["data"] if e["flow_id"] == flow_id]
        return dict(found[0]) if found else None

    return await eventually(opened, what=f"an open exception for {flow_id}")


async def test_failed_step_goes_to_finance_and_operator_retry_resumes_from_it(
    engine: FlowEngine,
    orders: OrderFlows,
    platform: FakePlatform,
    reader: FlowReader,
    http: httpx.AsyncClient,
    registry: CollectorRegistry,
) -> None:
    platform.fail("post_to_erp", UpstreamRejected("period closed", vendor="netsuite", status=400))
    await engine.start("order", "order:o-5", orders.order, "o-5", 700, legal_entity="US01")

    failed = await wait_for_status(reader, "order:o-5", "failed")
    exception = await open_exception(http, "order:o-5")
    assert exception["owner"] == "finance"
    assert (exception["step"], exception["system"]) == ("post_to_erp", "netsuite")
    assert exception["error_class"] == "UpstreamRejected"
    assert "period closed" in exception["cause"]
    assert exception["input"] == {"invoice_id": "create_invoice-2"}
    assert [s.status for s in failed.steps] == ["succeeded", "succeeded", "failed"]
    finance = (await http.get("/process/v1/exceptions", params={"owner": "finance"})).json()
    assert [e["id"] for e in finance["data"]] == [exception["id"]]

    response = await http.post(f"/process/v1/exceptions/{exception['id']}/retry")

    assert response.status_code == 202, response.text
    assert response.headers["location"] == "/process/v1/flows/order:o-5"
    flow = await wait_for_status(reader, "order:o-5", "succeeded")
    assert [(s.name, s.status) for s in flow.steps][-1] == ("post_to_erp", "succeeded")
    assert platform.count("reserve_stock") == 1
    assert platform.count("create_invoice") == 1
    assert platform.count("post_to_erp") == 2
    detail = (await http.get(f"/process/v1/exceptions/{exception['id']}")).json()
    assert detail["status"] == "resolved"
    assert [(h["actor"], h["action"]) for h in detail["history"]] == [
        ("system", "opened"),
        ("ops-client-1", "retry"),
        ("system", "closed"),
    ]
    assert registry.get_sample_value(
        "erpgw_exception_actions_total", {"action": "retry", "owner": "finance"}
    ) == 1.0
    again = await http.post(f"/process/v1/exceptions/{exception['id']}/retry")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_exhausted_outage_retries_go_to_integration(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader,
    http: httpx.AsyncClient,
) -> None:
    outage = UpstreamUnavailable("salesforce down", vendor="salesforce", status=503)
    platform.fail("reserve_stock", outage, outage, outage)
    await engine.start("order", "order:o-6", orders.order, "o-6", 100)

    flow = await wait_for_status(reader, "order:o-6", "failed")
    exception = await open_exception(http, "order:o-6")

    assert exception["owner"] == "integration"
    assert flow.steps[0].attempts == 3
    assert platform.count("reserve_stock") == 3


async def test_edit_and_retry_checks_the_input_then_uses_it(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader,
    http: httpx.AsyncClient,
) -> None:
    platform.fail(
        "create_invoice",
        UpstreamInvalid(
            "amount refused", vendor="stripe",
            errors=[FieldError(pointer="amount", detail="below minimum")],
        ),
    )
    await engine.start("order", "order:o-7", orders.order, "o-7", 5)
    exception = await open_exception(http, "order:o-7")
    assert exception["input"] == {"order_id": "o-7", "amount": 5, "currency": "USD"}
    url = f"/process/v1/exceptions/{exception['id']}/retry"

    invalid = await http.post(
        url, json={"input": {"order_id": "o-7", "amount": "lots", "currency": "USD"}}
    )

    assert invalid.status_code == 422
    problem = invalid.json()
    assert invalid.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["pointer"] == "/input/amount"
    still = (await http.get(f"/process/v1/exceptions/{exception['id']}")).json()
    assert still["status"] == "open"

    valid = await http.post(
        url, json={"input": {"order_id": "o-7", "amount": 1500, "currency": "USD"}}
    )

    assert valid.status_code == 202, valid.text
    await wait_for_status(reader, "order:o-7", "succeeded")
    assert platform.amounts == [1500]
    assert platform.count("create_invoice") == 2
    assert platform.count("reserve_stock") == 1


async def test_resolve_cancels_the_flow_with_the_reason(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader,
    http: httpx.AsyncClient, registry: CollectorRegistry,
) -> None:
    platform.fail("reserve_stock", UpstreamRejected("no such product", vendor="salesforce"))
    await engine.start("order", "order:o-8", orders.order, "o-8", 100)
    exception = await open_exception(http, "order:o-8")
    base = f"/process/v1/exceptions/{exception['id']}"

    assert (await http.post(f"{base}/resolve", json={})).status_code == 400
    assert (await http.post(f"{base}/resolve", json={"reason": "  "})).status_code == 422
    assigned = await http.post(f"{base}/assign", json={"assignee": "dana@finance"})
    assert assigned.status_code == 200
    assert assigned.json()["assignee"] == "dana@finance"
    resolved = await http.post(f"{base}/resolve", json={"reason": "duplicate order"})

    assert resolved.status_code == 200, resolved.text
    flow = await wait_for_status(reader, "order:o-8", "cancelled")
    assert flow.reason == "duplicate order"
    assert platform.count("create_invoice") == 0
    history = (await http.get(base)).json()["history"]
    assert [(h["actor"], h["action"], h["detail"]) for h in history] == [
        ("system", "opened", "UpstreamRejected: no such product (vendor salesforce)"),
        ("ops-client-1", "assigned", "dana@finance"),
        ("ops-client-1", "resolve", "duplicate order"),
    ]
    assert registry.get_sample_value(
        "erpgw_exception_actions_total", {"action": "resolve", "owner": "integration"}
    ) == 1.0


async def test_flow_resource_pages_and_filters(
    engine: FlowEngine, orders: OrderFlows, reader: FlowReader, http: httpx.AsyncClient,
) -> None:
    for index in range(5):
        handle = await engine.start(
            "order", f"order:p-{index}", orders.order, f"p-{index}", 100,
            correlation_id="batch-1" if index < 3 else "batch-2",
            crm_account=f"acct-{index % 2}", legal_entity="US01" if index % 2 else "GB01",
        )
        await handle.result()

    first = (await http.get("/process/v1/flows", params={"limit": 2})).json()
    second = (
        await http.get("/process/v1/flows", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    batch = (await http.get("/process/v1/flows", params={"correlation_id": "batch-1"})).json()
    one = await http.get("/process/v1/flows/order%3Ap-1")
    raw = await http.get("/process/v1/flows/order:p-1")
    missing = await http.get("/process/v1/flows/order:nope")

    assert [f["id"] for f in first["data"]] == ["order:p-4", "order:p-3"]
    assert [f["id"] for f in second["data"]] == ["order:p-2", "order:p-1"]
    assert {f["id"] for f in batch["data"]} == {"order:p-0", "order:p-1", "order:p-2"}
    assert one.status_code == 200 and raw.status_code == 200
    body = one.json()
    assert (body["type"], body["business_key"]) == ("order", "order:p-1")
    assert body["status"] == "succeeded"
    assert [s["name"] for s in body["steps"]] == ["reserve_stock", "create_invoice", "post_to_erp"]
    assert body["steps"][0]["attempts"] == 1 and body["steps"][0]["system"] == "salesforce"
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_a_decision_for_a_flow_without_its_workflow_is_a_conflict_and_keeps_it_open(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, http: httpx.AsyncClient
) -> None:
    platform.fail("reserve_stock", UpstreamRejected("no such product", vendor="salesforce"))
    await engine.start("order", "order:o-10", orders.order, "o-10", 100)
    exception = await open_exception(http, "order:o-10")
    # The engine's own record of the workflow is gone (a database restored without it).
    await DBOS.delete_workflow_async("order:o-10")
    base = f"/process/v1/exceptions/{exception['id']}"

    for action, body in (("resolve", {"reason": "duplicate order"}), ("retry", {})):
        answer = await http.post(f"{base}/{action}", json=body)

        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "no durable workflow" in answer.json()["detail"]
    assert (await http.get(base)).json()["status"] == "open"
