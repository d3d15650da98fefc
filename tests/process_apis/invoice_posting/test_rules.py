"""Invoice posting's business rules on the fakes (no HTTP): a finalized billing invoice is one
ERP invoice of the same amount, from the deal's sales order; its payment is one ERP payment that
settles it; a replayed event writes nothing twice; an invoice is posted as billed (its own
lines and tax, whatever its order says), once, and a proration the amendment posted is not
posted again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.v1 import SalesOrderCreate, SalesOrderLine
from process_apis.amendment import flow as amendment_flow
from process_apis.amendment.flow import Amendment, ItemChange, SubscriptionAmendments
from process_apis.engine.store import utcnow
from process_apis.invoice_posting.flow import (
    FINALIZED,
    FLOW_TYPE,
    PAID,
    PAYMENT_FLOW_TYPE,
    InvoicePostingFlows,
    payment_external_id,
)
from tests.process_apis.booked_fakes import SEAT_PRICE, START, Booked, booked_customer, stripe_event
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)

pytestmark = pytest.mark.timeout(60)


async def launch(bench: FlowBench, booked: Booked) -> InvoicePostingFlows:
    flows = bench.register(InvoicePostingFlows, billing=booked.billing, erp=booked.erp)
    await bench.launch()
    return flows


async def test_a_billed_and_paid_invoice_is_one_settled_erp_invoice(bench: FlowBench) -> None:
    booked = await booked_customer(seats=10, posted=False)
    flows = await launch(bench, booked)
    invoice = booked.first_invoice
    finalized = stripe_event(booked.billing, FINALIZED, invoice.id)

    erp_invoice_id = await bench.run(FLOW_TYPE, f"stripe:{finalized.id}",
                                     flows.invoice_finalized, finalized)

    posted = await booked.erp.get_invoice(f"eid:{invoice.id}")
    assert posted.id == erp_invoice_id
    assert (posted.customer_id, posted.legal_entity, posted.currency) == (
        booked.erp_customer.id, "US01", "USD")
    assert (posted.sales_order_id, posted.total, posted.amount_remaining) == (
        booked.sales_order.id, invoice.total, 10 * SEAT_PRICE)
    assert [(line.quantity, line.unit_amount, line.amount) for line in posted.lines] == [
        (10, SEAT_PRICE, 10 * SEAT_PRICE)]

    booked.clock.now = START + timedelta(days=3)
    await booked.billing.pay_invoice(invoice.id, payment_method="pm_card_visa")
    paid = stripe_event(booked.billing, PAID, invoice.id)
    payment_id = await bench.run(PAYMENT_FLOW_TYPE, f"stripe:{paid.id}", flows.invoice_paid,
                                 paid)
    writes = booked.new_writes()["erp"]
    replay = await bench.start(PAYMENT_FLOW_TYPE, f"stripe:{paid.id}", flows.invoice_paid, paid)

    assert not replay.created and await replay.result() == payment_id
    assert booked.new_writes()["erp"] == writes == [
        ("upsert_invoice", invoice.id),
        ("upsert_customer_payment", payment_external_id(invoice.id)),
    ]
    (payment,) = booked.erp.payments.values()
    assert (payment.id, payment.invoice_id, payment.amount, payment.currency) == (
        payment_id, posted.id, 10 * SEAT_PRICE, "USD")
    settled = await booked.erp.get_invoice(posted.id)
    assert (settled.status, settled.amount_paid, settled.amount_remaining) == (
        "paid", 10 * SEAT_PRICE, 0)


async def test_an_invoice_is_posted_as_billed_with_its_own_lines_and_tax_exactly_once(
    bench: FlowBench,
) -> None:
    # Seats sold at 20.20 and taxed 7.25% (US-CA): 202.00 x 7.25% = 14.645, billed 14.65.
    booked = await booked_customer(seats=10, posted=False, unit_amount=2_020,
                                   tax_code="US-CA")
    # The order was booked for 9 seats; billing invoiced 10. The ERP invoice bills what
    # billing billed, not the order's lines.
    await booked.erp.upsert_sales_order(SalesOrderCreate(
        customer_id=booked.erp_customer.id, legal_entity="US01", currency="USD",
        order_date=booked.sales_order.order_date, external_id=f"q2c:{booked.deal.id}",
        lines=[SalesOrderLine(product_code="SEAT", quantity=9, unit_amount=2_020,
                              amount=9 * 2_020, tax_code="US-CA")],
    ))
    flows = await launch(bench, booked)
    invoice = booked.first_invoice
    assert (invoice.subtotal, invoice.tax, invoice.total) == (20_200, 1_465, 21_665)
    finalized = stripe_event(booked.billing, FINALIZED, invoice.id)

    erp_invoice_id = await bench.run(FLOW_TYPE, f"stripe:{finalized.id}",
                                     flows.invoice_finalized, finalized)

    posted = await booked.erp.find_invoice(external_id=invoice.id)
    assert posted is not None and posted.id == erp_invoice_id
    assert (posted.sales_order_id, posted.customer_id, posted.currency) == (
        booked.sales_order.id, booked.erp_customer.id, "USD")
    assert (posted.subtotal, posted.tax, posted.total, posted.amount_remaining) == (
        20_200, 1_465, 21_665, 21_665)
    assert [(line.quantity, line.unit_amount, line.amount, line.tax_code, line.tax_rate_bps,
             line.tax_amount) for line in posted.lines] == [
        (10, 2_020, 20_200, "US-CA", 725, 1_465)]
    order = booked.erp.sales_orders[booked.sales_order.id]
    assert (order.total, [line.quantity for line in order.lines]) == (9 * 2_020, [9])
    assert await bench.exceptions(status=None) == []
    writes = booked.new_writes()["erp"]
    assert writes == [("upsert_sales_order", f"q2c:{booked.deal.id}"),
                      ("upsert_invoice", invoice.id)]

    # The same event again, and the same invoice under a redelivered event's id: one ERP
    # invoice, nothing written.
    again = await bench.start(FLOW_TYPE, f"stripe:{finalized.id}", flows.invoice_finalized,
                              finalized)
    assert not again.created and await again.result() == erp_invoice_id
    redelivered = await bench.run(FLOW_TYPE, "stripe:evt_redelivered",
                                  flows.invoice_finalized, finalized)
    assert redelivered == erp_invoice_id
    assert booked.new_writes()["erp"] == writes
    assert list(booked.erp.invoices) == [erp_invoice_id]
    assert booked.billing.invoices[invoice.id].total == 21_665


async def test_a_proration_invoice_the_amendment_booked_is_not_sent_to_finance(
    bench: FlowBench,
) -> None:
    booked = await booked_customer(seats=10)
    amendments = bench.register(SubscriptionAmendments, crm=booked.crm, billing=booked.billing,
                                erp=booked.erp)
    flows = await launch(bench, booked)
    booked.clock.now = START + timedelta(days=10)
    amendment = Amendment(
        subscription_id=booked.subscription.id,
        changes=[ItemChange(price_id=booked.seat.id, product_code="SEAT", quantity=13)],
        effective_date=utcnow().date(),
    )
    outcome = await bench.run(amendment_flow.FLOW_TYPE, amendment_flow.amendment_id(amendment),
                              amendments.amend, amendment)
    assert outcome is not None and outcome.erp_invoice_id is not None
    erp_writes = booked.new_writes()["erp"]
    finalized = stripe_event(booked.billing, FINALIZED, outcome.proration_invoice_id or "")

    await bench.start(FLOW_TYPE, f"stripe:{finalized.id}", flows.invoice_finalized, finalized)
    flow = await bench.wait(f"stripe:{finalized.id}", "succeeded", "failed")

    assert await bench.exceptions() == []
    assert flow.status == "succeeded"
    assert booked.new_writes()["erp"] == erp_writes
    # One ERP invoice of the proration, its amount billing's, against the deal's order.
    proration = booked.billing.invoices[outcome.proration_invoice_id or ""]
    assert proration.total == 3 * SEAT_PRICE * 2 // 3 == 5_000
    posted = await booked.erp.find_invoice(external_id=proration.id)
    assert posted is not None and posted.id == outcome.erp_invoice_id
    assert (posted.total, posted.sales_order_id) == (proration.total, booked.sales_order.id)
    assert booked.erp.sales_orders[booked.sales_order.id].total == 13 * SEAT_PRICE


async def test_a_returning_customers_one_time_deal_is_posted_against_its_own_order(
    bench: FlowBench,
) -> None:
    # Acme's seats deal is booked; a later deal sells it onboarding only (one-time), booked
    # as its own order, and billed on an invoice of its own that names the deal.
    booked = await booked_customer(seats=10)
    onboarding = 150_000
    services = booked.crm.seed_deal(booked.account.id, name="Acme onboarding",
                                    close_date=START.date(), lines=[("SEAT", 1)])
    second_order = await booked.erp.upsert_sales_order(SalesOrderCreate(
        customer_id=booked.erp_customer.id, legal_entity="US01", currency="USD",
        order_date=START.date(),
        lines=[SalesOrderLine(product_code="SEAT", quantity=1, unit_amount=onboarding,
                              amount=onboarding)],
        external_id=f"q2c:{services.id}", deal_id=services.id,
    ))
    # Another deal of Acme's is booked after it: the latest order is not the onboarding's.
    expansion = booked.crm.seed_deal(booked.account.id, name="Acme expansion",
                                     close_date=START.date(), lines=[("SEAT", 5)])
    await booked.erp.upsert_sales_order(SalesOrderCreate(
        customer_id=booked.erp_customer.id, legal_entity="US01", currency="USD",
        order_date=START.date(),
        lines=[SalesOrderLine(product_code="SEAT", quantity=5, unit_amount=SEAT_PRICE,
                              amount=5 * SEAT_PRICE)],
        external_id=f"q2c:{expansion.id}", deal_id=expansion.id,
    ))
    draft = await booked.billing.create_invoice(
        customer_id=booked.billing_customer.id, collection_method="send_invoice",
        days_until_due=30, include_pending_items=False, deal_id=services.id,
        legal_entity="US01")
    await booked.billing.create_invoice_item(
        customer_id=booked.billing_customer.id, price_id=booked.seat.id, quantity=1,
        unit_amount=onboarding, invoice_id=draft.id, deal_id=services.id)
    invoice = await booked.billing.finalize_invoice(draft.id)
    flows = await launch(bench, booked)
    finalized = stripe_event(booked.billing, FINALIZED, invoice.id)

    await bench.run(FLOW_TYPE, f"stripe:{finalized.id}", flows.invoice_finalized, finalized)

    posted = await booked.erp.get_invoice(f"eid:{invoice.id}")
    assert invoice.deal_id == services.id
    assert (posted.sales_order_id, posted.total) == (second_order.id, onboarding)
    assert posted.sales_order_id != booked.sales_order.id
    assert await bench.exceptions() == []
