"""Invoice posting end to end: Stripe finalizes an invoice and delivers the signed webhook to
the served gateway; the NetSuite invoice appears on the quote-to-cash order with the right
amount; paying it in Stripe applies a NetSuite payment that leaves the invoice paid in full."""

from __future__ import annotations

from pathlib import Path

from contracts.money import Money
from tests.process_apis.served_gateway import ORDER_TOTAL, served_gateway
from tests.support.waiting import eventually


async def test_finalized_invoice_is_posted_and_its_payment_applied(tmp_path: Path) -> None:
    async with served_gateway(tmp_path) as world:
        customer = await world.subscribe("acme", "acme-platform")

        posted = await eventually(
            lambda: world.erp_invoices(customer.erp_customer),
            lambda invoices: len(invoices) == 1,
            what="the NetSuite invoice",
        )
        await world.stripe.pay_invoice(customer.stripe_invoice, payment_method="pm_card_visa")
        paid = await eventually(
            lambda: world.erp_invoices(customer.erp_customer),
            lambda invoices: invoices[0].status == "paid",
            what="the NetSuite invoice paid",
        )
        postings = await world.flows("invoice_posting")
        payments = await eventually(
            lambda: world.flows("payment_posting"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the payment flow",
        )
        recoveries = await eventually(
            lambda: world.flows("payment_recovery"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the collections check",
        )

    invoice = posted[0]
    assert (invoice.total, invoice.currency, invoice.legal_entity) == (ORDER_TOTAL, "USD", "US01")
    assert invoice.sales_order_id == customer.sales_order
    assert invoice.status == "open"
    assert (paid[0].id, paid[0].amount_remaining, paid[0].amount_paid) == (
        invoice.id,
        0,
        ORDER_TOTAL,
    )
    assert len(postings) == 1 and postings[0]["status"] == "succeeded"
    assert postings[0]["id"].startswith("stripe:evt_")
    assert postings[0]["legal_entity"] == "US01"
    posting_steps = {s["name"]: s for s in postings[0]["steps"]}
    assert posting_steps["post_invoice"]["external_ids"]["netsuite_invoice"] == invoice.id
    # The invoice names its deal, so no step asks billing for the subscription's deal.
    assert [s["system"] for s in postings[0]["steps"]] == [
        "stripe",
        "stripe",
        "netsuite",
        "netsuite",
        "netsuite",
    ]
    payment_steps = {s["name"]: s for s in payments[0]["steps"]}
    assert payment_steps["apply_payment"]["external_ids"]["netsuite_payment"]
    # Never in collections: the check on payment stops at its first step.
    assert [s["name"] for s in recoveries[0]["steps"]] == ["claim_invoice_version"]


async def test_an_invoice_apart_from_the_order_is_posted_as_billed(tmp_path: Path) -> None:
    async with served_gateway(tmp_path) as world:
        customer = await world.subscribe("initech", "initech-pilot")
        # A second invoice for a one-off item: the ERP books what billing billed, not the
        # order's lines again.
        await world.stripe.create_invoice_item(
            customer_id=customer.stripe_customer, amount=Money(amount=12_345, currency="USD")
        )
        extra = await world.stripe.create_invoice(
            customer_id=customer.stripe_customer, collection_method="send_invoice",
            days_until_due=30,
        )
        await world.stripe.finalize_invoice(extra.id)

        invoices = await eventually(
            lambda: world.erp_invoices(customer.erp_customer),
            lambda items: len(items) == 2,
            what="both invoices in NetSuite",
        )
        postings = await eventually(
            lambda: world.flows("invoice_posting"),
            lambda flows: len(flows) == 2 and all(f["status"] == "succeeded" for f in flows),
            what="both postings",
        )
        queue = await world.exceptions("finance")
        first = await world.stripe.get_invoice(customer.stripe_invoice)

    by_external = {i.external_id: i for i in invoices}
    assert by_external[extra.id].total == 12_345
    assert by_external[extra.id].sales_order_id == customer.sales_order
    assert by_external[first.id].total == first.total
    assert len(postings) == 2
    assert queue == []
