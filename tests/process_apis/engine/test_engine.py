"""The engine: flows run once per business key, steps are recorded with their attempts, and
retries happen only for platform outages."""

from __future__ import annotations

import asyncio

import pytest

from contracts.errors import Conflict, UpstreamUnavailable
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.records import FlowReader
from tests.process_apis.conftest import wait_for_status
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.support.waiting import eventually


async def test_flow_runs_to_success_and_records_its_steps(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader
) -> None:
    handle = await engine.start(
        "order", "order:o-1", orders.order, "o-1", 1200,
        correlation_id="corr-1", crm_account="acct-1", legal_entity="US01",
    )

    assert handle.created
    assert await handle.result() == "post_to_erp-3"
    flow = await wait_for_status(reader, "order:o-1", "succeeded")
    assert (flow.type, flow.correlation_id, flow.crm_account) == ("order", "corr-1", "acct-1")
    assert [(s.name, s.system, s.status, s.attempts) for s in flow.steps] == [
        ("reserve_stock", "salesforce", "succeeded", 1),
        ("create_invoice", "stripe", "succeeded", 1),
        ("post_to_erp", "netsuite", "succeeded", 1),
    ]
    assert flow.steps[1].external_ids == {"stripe_invoice": "create_invoice-2"}
    assert all(s.started_at and s.finished_at for s in flow.steps)
    assert platform.calls == [
        ("reserve_stock", "order:o-1:reserve_stock"),
        ("create_invoice", "order:o-1:create_invoice"),
        ("post_to_erp", "order:o-1:post_to_erp"),
    ]


async def test_a_step_running_past_a_second_shows_running_and_counts_one_attempt(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader
) -> None:
    release = platform.hold("create_invoice")
    handle = await engine.start("order", "order:slow", orders.order, "slow", 700)

    async def invoice_step() -> tuple[str, int] | None:
        flow = await reader.get("order:slow")
        step = next((s for s in flow.steps if s.name == "create_invoice"), None) if flow else None
        return (step.status, step.attempts) if step else None

    shown = await eventually(invoice_step, timeout=30, what="the held step shown running")
    release.set()
    await handle.result()
    flow = await wait_for_status(reader, "order:slow", "succeeded")

    assert shown == ("running", 1)
    assert [(s.name, s.status, s.attempts) for s in flow.steps] == [
        ("reserve_stock", "succeeded", 1),
        ("create_invoice", "succeeded", 1),
        ("post_to_erp", "succeeded", 1),
    ]
    invoice = flow.steps[1]
    assert invoice.started_at and invoice.finished_at
    assert (invoice.finished_at - invoice.started_at).total_seconds() >= 1.0
    assert invoice.external_ids == {"stripe_invoice": "create_invoice-2"}


async def test_same_business_key_runs_once(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader
) -> None:
    first = await engine.start("order", "order:dup", orders.order, "dup", 100)
    again = await engine.start("order", "order:dup", orders.order, "dup", 100)
    burst = await asyncio.gather(
        *(engine.start("order", "order:dup", orders.order, "dup", 100) for _ in range(50))
    )

    results = await asyncio.gather(first.result(), again.result(), *(h.result() for h in burst))
    assert set(results) == {"post_to_erp-3"}
    assert first.created and not again.created and not any(h.created for h in burst)
    assert platform.count("reserve_stock") == 1
    assert platform.count("create_invoice") == 1
    assert platform.count("post_to_erp") == 1


async def test_outage_is_retried_until_the_step_succeeds(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader
) -> None:
    platform.fail(
        "create_invoice",
        UpstreamUnavailable("stripe 503", vendor="stripe", status=503),
        UpstreamUnavailable("stripe timeout", vendor="stripe", timeout=True),
    )

    handle = await engine.start("order", "order:o-3", orders.order, "o-3", 500)

    await handle.result()
    flow = await wait_for_status(reader, "order:o-3", "succeeded")
    invoice = next(s for s in flow.steps if s.name == "create_invoice")
    assert (invoice.status, invoice.attempts) == ("succeeded", 3)
    assert platform.count("create_invoice") == 3
    assert platform.count("reserve_stock") == 1


async def test_any_platform_unavailable_is_retried_whatever_its_code(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader
) -> None:
    # Stripe's 409 for a key still in flight arrives as UpstreamUnavailable from its client:
    # the engine retries it as any other outage, with no rule of its own per vendor.
    platform.fail(
        "create_invoice",
        UpstreamUnavailable(
            "key in flight", vendor="stripe", status=409, code="idempotency_key_in_use"
        ),
    )
    platform.fail("reserve_stock", UpstreamUnavailable("sf 429", vendor="salesforce", status=429))

    handle = await engine.start("order", "order:o-409", orders.order, "o-409", 500)

    await handle.result()
    flow = await wait_for_status(reader, "order:o-409", "succeeded")
    assert {s.name: s.attempts for s in flow.steps} == {
        "reserve_stock": 2, "create_invoice": 2, "post_to_erp": 1,
    }
    assert platform.count("create_invoice") == 2


async def test_open_circuit_waits_without_spending_an_attempt(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform, reader: FlowReader
) -> None:
    circuit = UpstreamUnavailable(
        "circuit open", vendor="netsuite", retry_after=0.05, code="circuit_open"
    )
    # post_to_erp allows 2 attempts: four open-circuit answers would exhaust them if counted.
    platform.fail("post_to_erp", circuit, circuit, circuit, circuit)

    handle = await engine.start("order", "order:o-4", orders.order, "o-4", 500)

    await handle.result()
    flow = await wait_for_status(reader, "order:o-4", "succeeded")
    post = next(s for s in flow.steps if s.name == "post_to_erp")
    assert (post.status, post.attempts) == ("succeeded", 1)
    assert platform.count("post_to_erp") == 5


async def test_business_key_of_another_flow_is_a_conflict(
    engine: FlowEngine, orders: OrderFlows, platform: FakePlatform
) -> None:
    first = await engine.start("order", "order:shared", orders.order, "s", 100)
    await first.result()

    with pytest.raises(Conflict):
        await engine.start("order", "order:shared", orders.reserve_only, "s")
