"""Subscription amendment's business rules on the fakes (no HTTP): more seats mid-period bill
the prorated difference in billing and book it in the ERP at the same amount, fewer seats
credit it in the ERP, a replay changes nothing, and an amendment of a customer the ERP does
not know waits for finance with the billing change kept (no compensation)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from process_apis.amendment.flow import (
    FLOW_TYPE,
    Amendment,
    AmendmentOutcome,
    ItemChange,
    SubscriptionAmendments,
    amendment_id,
)
from process_apis.engine.store import utcnow
from tests.process_apis.booked_fakes import SEAT_PRICE, START, Booked, booked_customer
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)

pytestmark = pytest.mark.timeout(60)

TEN_DAYS_IN = START + timedelta(days=10)
"""20 of November's 30 days left: a seat changed now is prorated at 2/3 of a month."""


def seats(booked: Booked, quantity: int) -> Amendment:
    return Amendment(
        subscription_id=booked.subscription.id,
        changes=[ItemChange(price_id=booked.seat.id, product_code="SEAT", quantity=quantity)],
        # The flow waits until the effective date (UTC) begins: today's has begun.
        effective_date=utcnow().date(),
        prorate=True,
    )


async def launch(bench: FlowBench, booked: Booked) -> SubscriptionAmendments:
    flows = bench.register(SubscriptionAmendments, crm=booked.crm, billing=booked.billing,
                           erp=booked.erp)
    await bench.launch()
    return flows


async def amend(
    bench: FlowBench, flows: SubscriptionAmendments, amendment: Amendment
) -> AmendmentOutcome:
    outcome = await bench.run(FLOW_TYPE, amendment_id(amendment), flows.amend, amendment)
    assert outcome is not None, "the flow was resolved by an operator"
    return outcome


async def test_more_seats_mid_period_bill_and_book_the_prorated_difference(
    bench: FlowBench,
) -> None:
    booked = await booked_customer(seats=10)
    flows = await launch(bench, booked)
    booked.clock.now = TEN_DAYS_IN
    amendment = seats(booked, 13)

    outcome = await amend(bench, flows, amendment)

    # 3 more seats for 20 of 30 days: 3 x 25.00 x 2/3 = 50.00 (credit for the unused 10 seats,
    # -166.67, plus the remaining 13 seats, 216.67).
    owed = 3 * SEAT_PRICE * 2 // 3
    assert owed == 5_000
    assert (outcome.proration_amount, outcome.currency) == (owed, "USD")
    (item,) = booked.billing.subscriptions[booked.subscription.id].items
    assert item.quantity == 13
    invoice = booked.billing.invoices[outcome.proration_invoice_id or ""]
    assert (invoice.status, invoice.total) == ("open", owed)
    assert sorted(line.amount for line in invoice.lines) == [-16_667, 21_667]

    # The ERP: the deal's order follows the subscription (13 seats), and the proration is
    # posted against it through the one posting path, keyed by the billing invoice's id.
    order = booked.erp.sales_orders[booked.sales_order.id]
    assert [(line.product_code, line.quantity, line.unit_amount, line.amount)
            for line in order.lines] == [("SEAT", 13, SEAT_PRICE, 13 * SEAT_PRICE)]
    assert order.total == 13 * SEAT_PRICE
    erp_invoice = await booked.erp.find_invoice(external_id=invoice.id)
    assert erp_invoice is not None and erp_invoice.id == outcome.erp_invoice_id
    assert (erp_invoice.total, erp_invoice.currency, erp_invoice.customer_id) == (
        owed, "USD", booked.erp_customer.id)
    assert erp_invoice.sales_order_id == booked.sales_order.id
    assert [(line.amount, line.tax_amount) for line in erp_invoice.lines] == [(owed, None)]
    assert len(booked.erp.sales_orders) == 1 and booked.erp.credit_memos == {}
    deal = booked.crm.deals[booked.deal.id]
    assert (deal.integration_status, deal.contract_amount) == ("synced", 13 * SEAT_PRICE)


async def test_fewer_seats_are_credited_in_the_erp_and_a_replay_changes_nothing(
    bench: FlowBench,
) -> None:
    booked = await booked_customer(seats=10)
    flows = await launch(bench, booked)
    booked.clock.now = TEN_DAYS_IN
    amendment = seats(booked, 7)

    outcome = await amend(bench, flows, amendment)
    writes = booked.new_writes()
    again = await bench.start(FLOW_TYPE, amendment_id(amendment), flows.amend, amendment)

    assert not again.created and await again.result() == outcome
    assert booked.new_writes() == writes
    credited = 3 * SEAT_PRICE * 2 // 3
    assert outcome.proration_amount == -credited
    (memo,) = booked.erp.credit_memos.values()
    assert memo.id == outcome.erp_credit_memo_id
    assert booked.erp_invoice is not None
    assert (memo.amount, memo.currency, memo.customer_id, memo.invoice_id) == (
        credited, "USD", booked.erp_customer.id, booked.erp_invoice.id)
    assert (await booked.erp.get_invoice(booked.erp_invoice.id)).amount_remaining == (
        10 * SEAT_PRICE - credited)
    # Nothing is billed: the ERP holds no new order or invoice.
    assert list(booked.erp.sales_orders) == [booked.sales_order.id]
    assert list(booked.erp.invoices) == [booked.erp_invoice.id]
    assert [(m, k) for m, k in writes["billing"] if m == "update_subscription"] == [
        ("update_subscription", booked.subscription.id)]


async def test_a_customer_unknown_to_the_erp_waits_for_finance_with_billing_amended(
    bench: FlowBench,
) -> None:
    # The ERP customer was made by hand: it does not carry the account's canonical id.
    booked = await booked_customer(seats=10, erp_linked=False)
    flows = await launch(bench, booked)
    booked.clock.now = TEN_DAYS_IN
    amendment = seats(booked, 13)

    await bench.start(FLOW_TYPE, amendment_id(amendment), flows.amend, amendment)
    flow = await bench.wait(amendment_id(amendment), "failed")

    (entry,) = await bench.exceptions()
    assert (entry.step, entry.system, entry.owner, entry.error_class) == (
        "find_erp_customer", "netsuite", "finance", "UpstreamNotFound")
    assert "run the customer master first" in entry.cause
    # No compensation: the subscription keeps its 13 seats and its prorations (50.00 net)
    # wait on it, to be invoiced when finance resumes the flow; nothing reached the books,
    # the deal is not marked synced.
    (item,) = booked.billing.subscriptions[booked.subscription.id].items
    assert item.quantity == 13
    assert [i.total for i in booked.billing.invoices.values()] == [10 * SEAT_PRICE]
    assert sorted(p.amount for p in booked.billing.pending_items.values()) == [-16_667, 21_667]
    assert booked.new_writes()["erp"] == []
    assert booked.crm.deals[booked.deal.id].integration_status is None
    assert [s.name for s in flow.steps if s.status != "succeeded"] == ["find_erp_customer"]
