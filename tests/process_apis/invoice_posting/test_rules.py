"""Invoice posting's business rules on the fakes (no HTTP): a finalized billing invoice is one
ERP invoice of the same amount, from the deal's sales order; its payment is one ERP payment that
settles it; a replayed event writes nothing twice; an invoice whose amount differs from its
order is not posted and waits for finance."""

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


async def test_an_invoice_that_differs_from_its_order_is_left_for_finance(
    bench: FlowBench,
) -> None:
    booked = await booked_customer(seats=10, posted=False)
    # The order was booked for 9 seats; billing invoiced 10.
    await booked.erp.upsert_sales_order(SalesOrderCreate(
        customer_id=booked.erp_customer.id, legal_entity="US01", currency="USD",
        order_date=booked.sales_order.order_date, external_id=f"q2c:{booked.deal.id}",
        lines=[SalesOrderLine(product_code="SEAT", quantity=9, unit_amount=SEAT_PRICE,
                              amount=9 * SEAT_PRICE)],
    ))
    flows = await launch(bench, booked)
    invoice = booked.first_invoice
    finalized = stripe_event(booked.billing, FINALIZED, invoice.id)

    await bench.start(FLOW_TYPE, f"stripe:{finalized.id}", flows.invoice_finalized, finalized)
    await bench.wait(f"stripe:{finalized.id}", "failed")

    (entry,) = await bench.exceptions()
    assert (entry.step, entry.system, entry.owner, entry.error_class) == (
        "find_sales_order", "netsuite", "finance", "Conflict")
    assert entry.cause == (
        f"Conflict: Stripe invoice {invoice.id} is 25000 USD (minor units) but sales order "
        f"{booked.sales_order.number} is 22500 USD; NetSuite bills an order with the order's "
        "lines, so this invoice needs posting by hand")
    assert booked.erp.invoices == {}
    assert booked.erp.payments == {}


@pytest.mark.xfail(strict=True, reason=(
    "Two posting paths for one invoice: the amendment flow books its proration invoice in the "
    "ERP itself (change order + invoice, externalId = the billing invoice id), and invoice "
    "posting also takes that invoice's `invoice.finalized`, compares it with the deal's "
    "quote-to-cash order (5000 vs 25000) and stops with Conflict invoice_differs_from_order: "
    "every prorated amendment opens an exception telling finance to post by hand an invoice "
    "the ERP already holds."
))
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
