"""The fakes of the four ports holding one customer as quote-to-cash leaves it: a CRM account
and its won deal, a billing customer linked to the account with a subscription of seats and
its first invoice, an ERP customer under the canonical id with the deal's sales order
(`q2c:{opportunity}`), a support organization linked to the account. Seeded straight into
the fakes, so a flow test starts where a customer's later flows start."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from contracts.v1 import (
    CollectionMethod,
    Customer,
    Deal,
    Entitlement,
    Invoice,
    Price,
    SalesOrder,
    SalesOrderCreate,
    SalesOrderLine,
    Subscription,
    SubscriptionCreate,
    SubscriptionItemInput,
    TaxRate,
)
from process_apis.customer_master.flow import canonical_customer_id, customer_create
from process_apis.webhooks.events import WebhookEvent
from tests.fakes import FakeBilling, FakeCrm, FakeErp, FakeSupport

__all__ = ["SEAT_PRICE", "START", "Booked", "Clock", "booked_customer", "stripe_event"]

START = datetime(2026, 11, 1, tzinfo=UTC)
SEAT_PRICE = 2_500
"""A seat per month, in cents."""


@dataclass
class Clock:
    """The platforms' clock (the fakes read it), moved by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Booked:
    crm: FakeCrm
    billing: FakeBilling
    erp: FakeErp
    support: FakeSupport
    clock: Clock
    account: Customer
    deal: Deal
    seat: Price
    billing_customer: Customer
    subscription: Subscription
    first_invoice: Invoice
    erp_customer: Customer
    sales_order: SalesOrder
    erp_invoice: Invoice | None
    organization_id: str
    seeded_writes: dict[str, int] = field(default_factory=dict)

    def new_writes(self) -> dict[str, list[tuple[str, str]]]:
        """What each platform wrote after seeding, by platform."""
        fakes = {"crm": self.crm, "billing": self.billing, "erp": self.erp,
                 "support": self.support}
        return {name: fake.writes[self.seeded_writes[name]:] for name, fake in fakes.items()}


async def booked_customer(
    *,
    seats: int = 10,
    collection_method: CollectionMethod = "send_invoice",
    payment_method: str | None = None,
    entitlement: Entitlement | None = None,
    erp_linked: bool = True,
    posted: bool = True,
    unit_amount: int = SEAT_PRICE,
    tax_code: str | None = None,
) -> Booked:
    """Acme Robotics (US01, USD) with `seats` seats at `SEAT_PRICE` a month since `START`.

    Args:
        collection_method: `charge_automatically` charges the first invoice at once with
            `payment_method` (a Stripe test method; a declining one leaves it open).
        entitlement: the support organization's SLA terms.
        erp_linked: False makes the ERP customer by hand, under another external id than
            the canonical one (no flow finds it).
        posted: the first invoice is in the ERP too (externalId = its billing id), as invoice
            posting leaves it.
        unit_amount: the seat's sold unit price (billed inline when not the list price).
        tax_code: the customer's tax code (one of the ERP's): billing taxes the subscription
            with a tax rate of it, and the order's lines name it.
    """
    clock = Clock()
    crm, billing = FakeCrm(clock=clock), FakeBilling(clock=clock)
    erp, support = FakeErp(clock=clock), FakeSupport(clock=clock)
    crm.seed_product("SEAT", name="User Seat", prices={"USD": SEAT_PRICE})
    account = crm.seed_account("Acme Robotics Inc.", legal_entity="US01", currency="USD",
                               country="US", payment_terms_days=30)
    deal = crm.seed_deal(account.id, name="Acme seats", close_date=START.date(),
                         lines=[("SEAT", seats)])
    canonical = canonical_customer_id(account.id)

    seat = billing.seed_price("SEAT", currency="USD", unit_amount=SEAT_PRICE, name="User Seat")
    customer = await billing.create_customer(customer_create(account), crm_account_id=account.id,
                                             canonical_id=canonical)
    if payment_method is not None:
        billing.default_payment_methods[customer.id] = payment_method
    rates = []
    if tax_code is not None:
        rate = await billing.create_tax_rate(TaxRate(
            id=tax_code, code=tax_code, rate_bps=erp.tax_codes[tax_code], display_name=tax_code))
        rates.append(rate.id)
    subscription = await billing.create_subscription(SubscriptionCreate(
        customer_id=customer.id, currency="USD",
        items=[SubscriptionItemInput(
            price_id=seat.id, quantity=seats, product_code="SEAT",
            unit_amount=None if unit_amount == SEAT_PRICE else unit_amount)],
        tax_rate_ids=rates,
        collection_method=collection_method,
        days_until_due=30 if collection_method == "send_invoice" else None,
        deal_id=deal.id, legal_entity="US01",
    ), canonical_id=canonical)
    (first_invoice,) = billing.invoices.values()

    erp.seed_product("SEAT", name="User Seat", prices={"USD": SEAT_PRICE})
    erp_customer = await erp.upsert_customer(
        customer_create(account), external_id=canonical if erp_linked else f"manual-{account.id}")
    order = await erp.upsert_sales_order(SalesOrderCreate(
        customer_id=erp_customer.id, legal_entity="US01", currency="USD",
        order_date=date(2026, 11, 1),
        lines=[SalesOrderLine(product_code="SEAT", quantity=seats, unit_amount=unit_amount,
                              amount=seats * unit_amount, tax_code=tax_code)],
        external_id=f"q2c:{deal.id}", deal_id=deal.id,
    ))
    erp_invoice = None
    if posted:
        erp_invoice = await erp.upsert_invoice(sales_order_id=order.id,
                                               external_id=first_invoice.id)
    organization = support.seed_organization(
        account.legal_name, legal_entity="US01", currency="USD", external_id=canonical,
        crm_account_id=account.id, entitlement=entitlement)
    booked = Booked(
        crm=crm, billing=billing, erp=erp, support=support, clock=clock, account=account,
        deal=deal, seat=seat, billing_customer=billing.customers[customer.id],
        subscription=billing.subscriptions[subscription.id], first_invoice=first_invoice,
        erp_customer=erp_customer, sales_order=order, erp_invoice=erp_invoice,
        organization_id=organization,
    )
    booked.seeded_writes = {name: len(fake.writes) for name, fake in (
        ("crm", crm), ("billing", billing), ("erp", erp), ("support", support))}
    return booked


def stripe_event(billing: FakeBilling, kind: str, subject: str) -> WebhookEvent:
    """The latest event `kind` billing emitted about `subject`, as the webhook intake hands
    it to flows (verified, the object as Stripe sent it)."""
    envelope = next(e for e in reversed(billing.events.values())
                    if e.type == kind and e.subject == subject)
    return WebhookEvent(source="stripe", id=envelope.id, type=envelope.type,
                        created=envelope.time, subject=subject,
                        object=dict(envelope.data["object"]))
