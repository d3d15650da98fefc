"""A deal of licensed seats and metered API calls, booked by quote-to-cash, reconciles clean:
its committed amount leaves the metered line out in the CRM, billing and the ERP alike (the
calls are billed per unit in arrears and reconciled by the `usage` kind), and the sales order
keeps the calls' sold unit rate."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sandbox.salesforce.ids import seeded_id
from tests.process_apis.money_world import Line, MoneyWorld, money_world
from tests.process_apis.reconciliation.world import WON_DEALS
from tests.support.waiting import eventually

SEATS = 10
SEAT_USD = 2_400  # sold below the 25.00 list price
CALLS = 5_000  # the calls the customer expects: an estimate, not a commitment
CALL_USD = 2
COMMITTED = SEATS * SEAT_USD


async def _reconcile(world: MoneyWorld, kinds: list[str]) -> dict[str, Any]:
    started = await world.http.post(
        "/process/v1/reconciliations",
        json={"kinds": kinds, "settle_seconds": 0, "legal_entity": "US01"},
        headers={**world.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert started.status_code == 202, started.text

    async def ended() -> dict[str, Any] | None:
        run = await world.http.get(started.headers["location"], headers=world.headers)
        body: dict[str, Any] = run.json()
        return body if body.get("status") in ("completed", "failed") else None

    run: dict[str, Any] = await eventually(ended, timeout=90.0, what="the reconciliation")
    assert run["status"] == "completed", run
    return run


async def test_a_deal_with_metered_calls_reconciles_on_its_committed_amount(
    tmp_path: Path,
) -> None:
    async with money_world(tmp_path) as world:
        account = await world.account(
            "Metered Calls Inc.", legal_entity="US01", currency="USD", country="US", state="DE"
        )
        deal_id = await world.deal(
            account,
            [Line("SEAT", SEATS, SEAT_USD), Line("API-CALLS", CALLS, CALL_USD)],
            currency="USD",
            name="Metered Calls - seats and API",
        )
        # The demo company's won deals are booked too, so the books hold nothing unbooked.
        demo = [seeded_id("Opportunity", key) for key in WON_DEALS]
        for opportunity in [*demo, deal_id]:
            await world.book(opportunity)
        await world.postings_settled()
        demo_us = [
            d.amount or 0
            for d in [await world.salesforce.get_deal(o) for o in demo]
            if (d.legal_entity, d.currency) == ("US01", "USD")
        ]

        deal = await world.salesforce.get_deal(deal_id)
        [subscription] = [
            s
            for s in (await world.stripe.list_subscriptions(status="all", limit=100)).data
            if s.deal_id == deal_id
        ]
        invoices = [
            i
            for i in (await world.stripe.list_invoices(limit=100)).data
            if i.subscription_id == subscription.id
        ]
        [order] = await world.sales_orders_of(deal.erp_order_number)
        [first] = invoices
        erp_first = await world.erp_invoice_of(first.id)
        run = await _reconcile(world, ["deals", "invoices", "usage"])

    # The CRM sold the seats and a per-call rate.
    assert sorted((line.product_code, line.total_amount) for line in deal.lines) == [
        ("API-CALLS", CALLS * CALL_USD),
        ("SEAT", COMMITTED),
    ]
    # Stripe: the calls are a metered item at the sold rate, left off the first invoice.
    metered = [item for item in subscription.items if item.usage_metric]
    assert [(item.product_code, item.usage_metric) for item in metered] == [
        ("API-CALLS", "api_calls")
    ]
    assert first.subtotal == COMMITTED
    assert sum(line.amount for line in first.lines if line.product_code == "API-CALLS") == 0
    # NetSuite: the order books the committed seats; the calls' line keeps the sold rate at
    # no committed amount (usage invoices bill them).
    assert order.total == COMMITTED
    calls = [line for line in order.lines if line.product_code == "API-CALLS"]
    assert [(line.unit_amount, line.amount) for line in calls] == [(CALL_USD, 0)]
    assert sum(line.amount for line in order.lines) == COMMITTED
    # The first invoice reached the ERP at its own total.
    assert (erp_first.subtotal, erp_first.total) == (first.subtotal, first.total)
    # The reconciliation compares like with like: nothing to flag, the same committed amount
    # in every system.
    assert [m["reason"] for m in run["mismatches"]] == []
    assert run["checked"]["deals"] == 1 + len(demo_us)
    assert run["summary"]["mismatches"] == 0
    booked = COMMITTED + sum(demo_us)
    deals_total = [t for t in run["totals"] if t["kind"] == "deals"]
    assert [(t["currency"], t["crm"], t["billing"], t["erp"]) for t in deals_total] == [
        ("USD", booked, booked, booked)
    ]
    [invoice_total] = [t for t in run["totals"] if t["kind"] == "invoices"]
    assert invoice_total["billing"] == invoice_total["erp"] >= first.total
