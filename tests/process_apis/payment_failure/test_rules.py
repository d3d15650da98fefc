"""Payment failure's business rules on the fakes (no HTTP): a declined payment puts the ERP
invoice and customer in collections, the CRM account past due at a raised risk and one item in
finance's queue with the amount due; the payment undoes all of it (the compensation); a
failure older than the payment changes nothing; an ERP that refuses the customer flag leaves
the flow with finance, the invoice flag kept for the retry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.errors import UpstreamInvalid
from process_apis.invoice_posting.flow import PAID, InvoicePostingFlows
from process_apis.payment_failure.flow import (
    FAILED,
    FLOW_TYPE,
    RECOVERY_FLOW_TYPE,
    PaymentFailureFlows,
    collections_step,
)
from process_apis.webhooks.intake import AppliedVersions
from tests.process_apis.booked_fakes import SEAT_PRICE, START, Booked, booked_customer, stripe_event
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)

pytestmark = pytest.mark.timeout(60)

DECLINES = "pm_card_chargeDeclinedInsufficientFunds"


async def declined(bench: FlowBench) -> tuple[Booked, PaymentFailureFlows]:
    """A customer whose first invoice (10 seats, charged at once) was declined."""
    booked = await booked_customer(seats=10, collection_method="charge_automatically",
                                   payment_method=DECLINES)
    posting = bench.register(InvoicePostingFlows, billing=booked.billing, erp=booked.erp)
    flows = bench.register(PaymentFailureFlows, posting=posting, erp=booked.erp,
                           crm=booked.crm, versions=AppliedVersions(bench.database),
                           database=bench.database)
    await bench.launch()
    return booked, flows


async def test_a_declined_payment_goes_to_collections_and_its_payment_undoes_it(
    bench: FlowBench,
) -> None:
    booked, flows = await declined(bench)
    invoice = booked.first_invoice
    assert booked.erp_invoice is not None
    failed = stripe_event(booked.billing, FAILED, invoice.id)

    outcome = await bench.run(FLOW_TYPE, f"stripe:{failed.id}", flows.payment_failed, failed,
                              f"stripe:{failed.id}")

    assert outcome == "in_collections"
    assert booked.erp.collections_flags[booked.erp_invoice.id] == "in_collections"
    assert booked.erp.customers[booked.erp_customer.id].payment_status == "past_due"
    account = booked.crm.accounts[booked.account.id]
    assert (account.payment_status, account.risk_level) == ("past_due", "medium")
    (item,) = await bench.exceptions()
    assert (item.flow_type, item.step, item.owner, item.legal_entity) == (
        FLOW_TYPE, collections_step(booked.billing_customer.id, invoice.id), "finance", "US01")
    assert item.cause == (
        f"Payment attempt 1 failed for Stripe invoice {invoice.number} ({invoice.id}): "
        f"250.00 USD due; NetSuite invoice {booked.erp_invoice.number} is in collections")
    assert item.input is not None and (item.input["amount_due"], item.input["currency"]) == (
        10 * SEAT_PRICE, "USD")

    booked.clock.now = START + timedelta(hours=1)
    await booked.billing.pay_invoice(invoice.id, payment_method="pm_card_visa")
    paid = stripe_event(booked.billing, PAID, invoice.id)
    settled = await bench.run(RECOVERY_FLOW_TYPE, f"stripe:{paid.id}:collections",
                              flows.payment_recovered, paid)

    assert settled == "settled"
    assert booked.erp.collections_flags[booked.erp_invoice.id] is None
    assert booked.erp.customers[booked.erp_customer.id].payment_status == "current"
    assert booked.crm.accounts[booked.account.id].payment_status == "current"
    assert await bench.exceptions() == []
    (resolved,) = await bench.exceptions(status="resolved")
    assert resolved.id == item.id
    assert resolved.resolution == f"Stripe invoice {invoice.id} paid (event {paid.id})"


async def test_a_failure_delivered_after_the_payment_changes_nothing(bench: FlowBench) -> None:
    booked, flows = await declined(bench)
    invoice = booked.first_invoice
    failed = stripe_event(booked.billing, FAILED, invoice.id)
    booked.clock.now = START + timedelta(hours=1)
    await booked.billing.pay_invoice(invoice.id, payment_method="pm_card_visa")
    paid = stripe_event(booked.billing, PAID, invoice.id)

    # Stripe delivers the payment first, then the older failure.
    assert await bench.run(RECOVERY_FLOW_TYPE, f"stripe:{paid.id}:collections",
                           flows.payment_recovered, paid) == "not_in_collections"
    assert await bench.run(FLOW_TYPE, f"stripe:{failed.id}", flows.payment_failed, failed,
                           f"stripe:{failed.id}") == "superseded"

    writes = booked.new_writes()
    assert (writes["crm"], writes["erp"]) == ([], [])
    assert await bench.exceptions(status=None) == []


async def test_a_refused_customer_flag_waits_for_finance_and_keeps_the_invoice_flag(
    bench: FlowBench,
) -> None:
    booked, flows = await declined(bench)
    assert booked.erp_invoice is not None
    booked.erp.fail_next("set_customer_collections", UpstreamInvalid(
        "NetSuite refused the customer: the record is locked", vendor="netsuite", status=400,
        code="RCRD_LOCKED_BY_WF"))
    failed = stripe_event(booked.billing, FAILED, booked.first_invoice.id)

    await bench.start(FLOW_TYPE, f"stripe:{failed.id}", flows.payment_failed, failed,
                      f"stripe:{failed.id}")
    await bench.wait(f"stripe:{failed.id}", "failed")

    (entry,) = await bench.exceptions()
    assert (entry.step, entry.system, entry.owner, entry.error_class) == (
        "flag_customer_for_collections", "netsuite", "finance", "UpstreamInvalid")
    assert entry.cause == (
        "UpstreamInvalid: NetSuite refused the customer: the record is locked (vendor netsuite)")
    # Not undone: the invoice stays flagged while the flow waits to resume at the customer;
    # the CRM is not told and no collections item is opened before the flags are set.
    assert booked.erp.collections_flags[booked.erp_invoice.id] == "in_collections"
    assert booked.erp.customers[booked.erp_customer.id].payment_status is None
    assert booked.new_writes()["crm"] == []
    assert [e.step for e in await bench.exceptions(status=None)] == [
        "flag_customer_for_collections"]
