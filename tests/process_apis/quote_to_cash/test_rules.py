"""Quote-to-cash's business rules on the fakes of the four ports (no HTTP): a won deal is one
customer everywhere, one subscription whose first invoice bills the deal's lines, one sales
order booking the same lines, and a write-back; a replay writes nothing twice, an outage is
retried, and a refused posting waits in finance's queue with nothing undone."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

import msgspec
import pytest

from contracts.errors import FieldError, UpstreamInvalid
from process_apis.cross_references import CrossReferences
from process_apis.customer_master.flow import CustomerMaster, canonical_customer_id
from process_apis.engine.durable import Decision
from process_apis.quote_to_cash.flow import FLOW_TYPE, QuoteToCash, QuoteToCashResult, flow_id_for
from process_apis.quote_to_cash.orders import Order, OrderDesk
from system_apis.tax.port import TaxTreatment
from system_apis.tax.rules import TaxRule, TaxRules
from tests.fakes import FakeBilling, FakeCrm, FakeErp, FakeSupport
from tests.process_apis.fakes_engine import (  # noqa: F401 (fixtures)
    FlowBench,
    flow_bench,
    migrated_database,
)

# The deal: (product code, name, interval, quantity, unit amount in cents).
LINES = [
    ("PLAT-STD", "Platform Standard", "month", 1, 50_000),
    ("SEAT", "User Seat", "month", 20, 2_500),
    ("ONBOARD", "Onboarding Service", "one_time", 1, 250_000),
]
DEAL_TOTAL = 50_000 + 20 * 2_500 + 250_000

pytestmark = pytest.mark.timeout(60)


@dataclass
class Q2C:
    bench: FlowBench
    crm: FakeCrm
    billing: FakeBilling
    erp: FakeErp
    support: FakeSupport
    flows: QuoteToCash
    order: Order

    @property
    def flow_id(self) -> str:
        return flow_id_for(self.order.opportunity_id)

    async def run(self, order: Order | None = None) -> QuoteToCashResult:
        result = await self.bench.run(FLOW_TYPE, self.flow_id, self.flows.run,
                                      order or self.order)
        assert result is not None, "the flow was resolved by an operator"
        return result


async def launch(bench: FlowBench) -> Q2C:
    """The fakes as a sandbox holds them (a CRM catalog, a won deal; billing and the ERP
    without the products yet), the flows registered on them, the engine launched, and the
    deal taken as an order by the order desk."""
    crm, billing, erp, support = FakeCrm(), FakeBilling(), FakeErp(), FakeSupport()
    for code, name, interval, _, unit in LINES:
        crm.seed_product(code, name=name, billing_interval=interval, prices={"USD": unit})
    account = crm.seed_account("Acme Robotics Inc.", legal_entity="US01", currency="USD",
                               country="US", payment_terms_days=30)
    deal = crm.seed_deal(account.id, name="Acme platform", close_date=date(2026, 11, 30),
                         lines=[(code, quantity) for code, _, _, quantity, _ in LINES])
    references = CrossReferences(bench.database)
    customers = bench.register(CustomerMaster, billing=billing, erp=erp, support=support,
                               references=references)
    flows = bench.register(QuoteToCash, customers=customers, crm=crm, billing=billing, erp=erp,
                           references=references)
    await bench.launch()
    order = await OrderDesk(crm=crm, erp=erp).order_for(deal.id, principal=None)
    return Q2C(bench=bench, crm=crm, billing=billing, erp=erp, support=support, flows=flows,
               order=order)


def booked_lines(erp: FakeErp) -> list[tuple[str | None, int, int, int]]:
    (order,) = erp.sales_orders.values()
    return [(line.product_code, line.quantity, line.unit_amount, line.amount)
            for line in order.lines]


DEAL_LINES = [(code, quantity, unit, quantity * unit) for code, _, _, quantity, unit in LINES]


def created(*fakes: FakeCrm | FakeBilling | FakeErp | FakeSupport) -> Counter[str]:
    """How many records each write method created or changed, over `fakes`."""
    return Counter(method for fake in fakes for method, _ in fake.writes)


async def test_a_won_deal_is_billed_and_booked_at_the_deals_amounts(bench: FlowBench) -> None:
    q2c = await launch(bench)

    result = await q2c.run()

    # Billing: one customer, one subscription of the recurring lines, one first invoice that
    # bills every line of the deal (the one-time service included), sent on 30-day terms.
    (customer,) = q2c.billing.customers.values()
    assert (customer.legal_name, customer.legal_entity) == ("Acme Robotics Inc.", "US01")
    (subscription,) = q2c.billing.subscriptions.values()
    assert subscription.id == result.subscription_id
    assert (subscription.customer_id, subscription.deal_id) == (
        customer.id, q2c.order.opportunity_id)
    prices = q2c.billing.prices
    assert sorted((prices[i.price_id].product_code, i.quantity, prices[i.price_id].unit_amount)
                  for i in subscription.items) == [("PLAT-STD", 1, 50_000), ("SEAT", 20, 2_500)]
    (invoice,) = q2c.billing.invoices.values()
    assert (invoice.customer_id, invoice.subscription_id) == (customer.id, subscription.id)
    assert (invoice.status, invoice.currency, invoice.total, invoice.amount_due) == (
        "open", "USD", DEAL_TOTAL, DEAL_TOTAL)
    assert sorted(line.amount for line in invoice.lines) == sorted(
        amount for *_, amount in DEAL_LINES)
    assert invoice.issued_at is not None and invoice.due_date is not None
    assert (invoice.due_date - invoice.issued_at.date()).days == 30
    assert q2c.billing.pending_items == {}

    # ERP: one customer under the canonical id, one sales order of the deal's lines.
    (erp_customer,) = q2c.erp.customers.values()
    assert erp_customer.id == result.customer.erp_customer_id
    assert await q2c.erp.find_customer(
        external_id=canonical_customer_id(q2c.order.account.id)) == erp_customer
    (order,) = q2c.erp.sales_orders.values()
    assert (order.customer_id, order.legal_entity, order.currency, order.total) == (
        erp_customer.id, "US01", "USD", DEAL_TOTAL)
    assert (order.external_id, order.deal_id) == (q2c.flow_id, q2c.order.opportunity_id)
    assert booked_lines(q2c.erp) == DEAL_LINES

    # Support: one organization under the canonical id. CRM: the deal shows what was booked.
    (organization,) = q2c.support.organizations.values()
    assert organization.id == result.customer.support_organization_id
    deal = q2c.crm.deals[q2c.order.opportunity_id]
    assert (deal.erp_order_number, deal.billing_subscription_id, deal.integration_status) == (
        order.number, subscription.id, "synced")

    flow = await bench.flow(q2c.flow_id)
    assert flow.status == "succeeded"
    assert all(step.status == "succeeded" and step.attempts == 1 for step in flow.steps)


async def test_the_same_deal_started_twice_books_nothing_twice(bench: FlowBench) -> None:
    q2c = await launch(bench)
    first = await q2c.run()
    writes = {name: list(fake.writes) for name, fake in (
        ("crm", q2c.crm), ("billing", q2c.billing), ("erp", q2c.erp), ("support", q2c.support))}

    again = await bench.start(FLOW_TYPE, q2c.flow_id, q2c.flows.run, q2c.order)

    assert not again.created
    assert await again.result() == first
    assert {name: fake.writes for name, fake in (
        ("crm", q2c.crm), ("billing", q2c.billing), ("erp", q2c.erp),
        ("support", q2c.support))} == writes
    # The one-time line rides on the subscription create (its first invoice), no loose item.
    assert created(q2c.billing) == {
        "create_customer": 1, "create_product": 3, "create_price": 3,
        "create_subscription": 1}
    assert [i.total for i in q2c.billing.invoices.values()] == [DEAL_TOTAL]
    assert created(q2c.erp) == {"upsert_customer": 1, "upsert_product": 3,
                                "upsert_sales_order": 1}


async def test_an_outage_whose_answer_was_lost_is_retried_into_one_record(
    bench: FlowBench,
) -> None:
    q2c = await launch(bench)
    # Each platform did the work and the answer was lost: the retry must find it, not redo it.
    q2c.billing.fail_next("create_subscription", q2c.billing.unavailable(timeout=True),
                          applied=True)
    q2c.erp.fail_next("upsert_sales_order", q2c.erp.unavailable(timeout=True), applied=True)

    await q2c.run()

    assert len(q2c.billing.subscriptions) == 1
    assert [i.total for i in q2c.billing.invoices.values()] == [DEAL_TOTAL]
    assert len(q2c.erp.sales_orders) == 1
    assert booked_lines(q2c.erp) == DEAL_LINES
    steps = {step.name: step for step in (await bench.flow(q2c.flow_id)).steps}
    assert (steps["subscribe_to_recurring_prices"].attempts,
            steps["book_sales_order"].attempts) == (2, 2)
    assert await bench.exceptions(status=None) == []


async def test_a_refused_sales_order_waits_for_finance_and_resumes_there(
    bench: FlowBench,
) -> None:
    q2c = await launch(bench)
    refusal = UpstreamInvalid(
        "NetSuite refused the sales order: the subsidiary is closed for the period",
        vendor="netsuite", status=400, code="INVALID_FLD_VALUE",
        errors=[FieldError(pointer="subsidiary", detail="period closed")])
    q2c.erp.fail_next("upsert_sales_order", refusal)

    handle = await bench.start(FLOW_TYPE, q2c.flow_id, q2c.flows.run, q2c.order)
    flow = await bench.wait(q2c.flow_id, "failed")

    (entry,) = await bench.exceptions()
    assert (entry.flow_id, entry.step, entry.system, entry.owner, entry.error_class) == (
        q2c.flow_id, "book_sales_order", "netsuite", "finance", "UpstreamInvalid")
    assert entry.cause == (
        "UpstreamInvalid: NetSuite refused the sales order: the subsidiary is closed for the "
        "period (vendor netsuite); subsidiary: period closed")
    # The order is booked before anything is billed: a refused order bills nothing, books
    # nothing, does not mark the deal synced, and the refused call is not retried.
    assert q2c.billing.subscriptions == {} and q2c.billing.invoices == {}
    assert q2c.erp.sales_orders == {}
    assert q2c.crm.deals[q2c.order.opportunity_id].integration_status is None
    assert q2c.erp.calls.count("upsert_sales_order") == 1
    assert [s.name for s in flow.steps if s.status != "succeeded"] == ["book_sales_order"]

    await bench.engine.decide(q2c.flow_id, Decision(
        action="retry", exception_id=entry.id, occurrence=entry.occurrences, actor="finance"))
    await handle.result()

    assert (await bench.flow(q2c.flow_id)).status == "succeeded"
    assert await bench.exceptions() == []
    assert len(q2c.billing.subscriptions) == 1 and len(q2c.billing.invoices) == 1
    assert booked_lines(q2c.erp) == DEAL_LINES
    assert q2c.crm.deals[q2c.order.opportunity_id].integration_status == "synced"


async def test_a_discounted_line_is_billed_at_the_sold_price(bench: FlowBench) -> None:
    q2c = await launch(bench)
    # The rep sold the seats at 20.00 instead of the list 25.00.
    deal = q2c.crm.deals[q2c.order.opportunity_id]
    lines = [msgspec.structs.replace(line, unit_amount=2_000, total_amount=line.quantity * 2_000)
             if line.product_code == "SEAT" else line for line in deal.lines]
    q2c.crm.deals[deal.id] = msgspec.structs.replace(
        deal, lines=lines, amount=sum(line.total_amount for line in lines))
    discounted = await OrderDesk(crm=q2c.crm, erp=q2c.erp).order_for(deal.id, principal=None)
    assert discounted.amount == DEAL_TOTAL - 20 * 500

    await q2c.run(discounted)

    (order,) = q2c.erp.sales_orders.values()
    (invoice,) = q2c.billing.invoices.values()
    assert order.total == discounted.amount
    assert invoice.total == order.total == DEAL_TOTAL - 20 * 500
    assert sorted((line.product_code, line.quantity, line.unit_amount, line.amount)
                  for line in invoice.lines) == [
        ("ONBOARD", 1, 250_000, 250_000), ("PLAT-STD", 1, 50_000, 50_000),
        ("SEAT", 20, 2_000, 40_000)]
    assert ("SEAT", 20, 2_000, 40_000) in booked_lines(q2c.erp)
    # The seat is billed through an inline price of its own; the catalog keeps the list one.
    (seat,) = [i for i in q2c.billing.subscriptions[invoice.subscription_id or ""].items
               if i.product_code == "SEAT"]
    assert seat.unit_amount == 2_000
    listed = await q2c.billing.find_price(product_code="SEAT", currency="USD")
    assert listed is not None and listed.unit_amount == 2_500 and listed.id != seat.price_id


async def test_a_deal_of_services_only_is_invoiced_on_its_own_without_a_subscription(
    bench: FlowBench,
) -> None:
    q2c = await launch(bench)
    onboarding = [line for line in q2c.order.lines if not line.recurring]
    services = msgspec.structs.replace(q2c.order, lines=onboarding, amount=250_000)

    result = await q2c.run(services)

    assert result.subscription_id is None and q2c.billing.subscriptions == {}
    # A draft of its own, its item bound to it, finalized by the flow: sent on the terms.
    (invoice,) = q2c.billing.invoices.values()
    assert (invoice.status, invoice.total, invoice.subscription_id) == ("open", 250_000, None)
    assert [(line.quantity, line.amount) for line in invoice.lines] == [(1, 250_000)]
    assert invoice.issued_at is not None and invoice.due_date is not None
    assert (invoice.due_date - invoice.issued_at.date()).days == 30
    assert created(q2c.billing)["create_invoice_item"] == 1
    assert q2c.billing.pending_items == {}
    assert booked_lines(q2c.erp) == [("ONBOARD", 1, 250_000, 250_000)]
    deal = q2c.crm.deals[q2c.order.opportunity_id]
    assert (deal.billing_subscription_id, deal.integration_status) == (None, "synced")


async def test_a_taxed_customer_is_billed_and_booked_under_one_tax_code(
    bench: FlowBench,
) -> None:
    q2c = await launch(bench)
    california = TaxTreatment(code="US-CA", rate_bps=725, name="Sales tax California",
                              jurisdiction="US-CA")
    tax = TaxRules([TaxRule(legal_entity="US01", country="US", treatment=california)])
    taxed = await OrderDesk(crm=q2c.crm, erp=q2c.erp, tax=tax).order_for(
        q2c.order.opportunity_id, principal=None)
    assert taxed.tax == california

    first = await q2c.run(taxed)
    # Replayed, nothing (the tax rate included) is made twice.
    again = await bench.start(FLOW_TYPE, q2c.flow_id, q2c.flows.run, taxed)
    assert not again.created and await again.result() == first

    # Billing: one tax rate of the code, on the subscription; each line taxed 7.25% half up
    # (500.00 -> 36.25, 500.00 -> 36.25, 2500.00 -> 181.25).
    assert created(q2c.billing)["create_tax_rate"] == 1
    rate = await q2c.billing.find_tax_rate("US-CA")
    assert rate is not None and rate.rate_bps == 725
    (invoice,) = q2c.billing.invoices.values()
    assert sorted((line.amount, line.tax_code, line.tax_amount) for line in invoice.lines) == [
        (50_000, "US-CA", 3_625), (50_000, "US-CA", 3_625), (250_000, "US-CA", 18_125)]
    assert (invoice.subtotal, invoice.tax, invoice.total, invoice.amount_due) == (
        DEAL_TOTAL, 25_375, DEAL_TOTAL + 25_375, DEAL_TOTAL + 25_375)
    # ERP: the order's lines are pre-tax and name the code; its tax is on the invoices.
    (order,) = q2c.erp.sales_orders.values()
    assert order.total == DEAL_TOTAL
    assert [(line.amount, line.tax_code) for line in order.lines] == [
        (amount, "US-CA") for *_, amount in DEAL_LINES]
