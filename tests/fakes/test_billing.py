"""FakeBilling bills, replays and refuses as Stripe does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from contracts.errors import (
    InvalidRequest,
    UpstreamConflict,
    UpstreamInvalid,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from contracts.money import Money
from contracts.v1 import (
    CreditNoteCreate,
    CustomerCreate,
    CustomerPatch,
    Price,
    PriceTier,
    SubscriptionCreate,
    SubscriptionItemInput,
    SubscriptionPatch,
)
from tests.fakes import FakeBilling

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD")
START = datetime(2026, 11, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _billing(clock: Clock | None = None) -> FakeBilling:
    billing = FakeBilling(clock=clock)
    billing.seed_price("PLAT-STD", currency="USD", unit_amount=50_000,
                       name="Platform Standard")
    billing.seed_price("SEAT", currency="USD", unit_amount=2_500, name="User Seat")
    billing.seed_price("ONBOARD", currency="USD", unit_amount=250_000,
                       billing_interval="one_time", name="Onboarding Service")
    return billing


async def _price(billing: FakeBilling, code: str) -> Price:
    price = await billing.find_price(product_code=code, currency="USD")
    assert price is not None
    return price


async def test_a_step_retried_after_a_lost_answer_creates_one_subscription() -> None:
    billing = _billing()
    customer = await billing.create_customer(ACME)
    seat = await _price(billing, "SEAT")
    create = SubscriptionCreate(customer_id=customer.id, currency="USD",
                                items=[SubscriptionItemInput(price_id=seat.id, quantity=20)])
    billing.fail_next("create_subscription", billing.unavailable(timeout=True), applied=True)
    with pytest.raises(UpstreamUnavailable):
        await billing.create_subscription(create, idempotency_key="q2c:deal-1:subscription")
    retried = await billing.create_subscription(create, idempotency_key="q2c:deal-1:subscription")
    assert list(billing.subscriptions) == [retried.id]
    assert [i.total for i in billing.invoices.values()] == [50_000]
    with pytest.raises(UpstreamConflict):
        await billing.create_subscription(msgspec.structs.replace(create, deal_id="other"),
                                          idempotency_key="q2c:deal-1:subscription")


async def test_subscription_invoice_totals_and_payment() -> None:
    billing = _billing()
    customer = await billing.create_customer(ACME)
    std, seat = await _price(billing, "PLAT-STD"), await _price(billing, "SEAT")
    sub = await billing.create_subscription(SubscriptionCreate(
        customer_id=customer.id, currency="USD",
        items=[SubscriptionItemInput(price_id=std.id),
               SubscriptionItemInput(price_id=seat.id, quantity=20)]))
    invoice = next(iter(billing.invoices.values()))
    assert (sub.status, invoice.status, invoice.total, invoice.tax, invoice.amount_paid) == (
        "active", "paid", 100_000, 0, 100_000)
    assert [(line.description, line.amount) for line in invoice.lines] == [
        ("1 \u00d7 Platform Standard", 50_000), ("20 \u00d7 User Seat", 50_000)]
    assert [e.type for e in billing.events.values()] == [
        "customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.paid",
        "customer.subscription.updated"]
    event = await billing.get_event(next(iter(billing.events)))
    assert event.data["object"]["id"] == sub.id


async def test_a_decline_leaves_the_invoice_open_and_the_customer_past_due() -> None:
    billing = _billing()
    customer = await billing.create_customer(ACME)
    billing.default_payment_methods[customer.id] = "pm_card_chargeDeclinedInsufficientFunds"
    await billing.create_invoice_item(customer_id=customer.id,
                                      amount=Money(amount=5_000, currency="USD"))
    invoice = await billing.create_invoice(customer_id=customer.id)
    with pytest.raises(UpstreamInvalid) as declined:
        await billing.pay_invoice(invoice.id, idempotency_key="pay-1")
    assert (declined.value.status, declined.value.code) == (402, "insufficient_funds")
    with pytest.raises(UpstreamInvalid):  # the decline is replayed under the same key
        await billing.pay_invoice(invoice.id, idempotency_key="pay-1")
    assert billing.invoices[invoice.id].status == "open"
    assert billing.customers[customer.id].payment_status == "past_due"
    assert [e.type for e in billing.events.values()][-1] == "invoice.payment_failed"
    paid = await billing.pay_invoice(invoice.id, payment_method="pm_card_visa")
    assert (paid.status, billing.customers[customer.id].payment_status) == ("paid", "current")


async def test_mid_period_quantity_change_prorates_half_up() -> None:
    clock = Clock()
    billing = _billing(clock)
    customer = await billing.create_customer(ACME)
    seat = await _price(billing, "SEAT")
    sub = await billing.create_subscription(SubscriptionCreate(
        customer_id=customer.id, currency="USD",
        items=[SubscriptionItemInput(price_id=seat.id, quantity=10)]))
    clock.now = START + timedelta(days=10)  # 20 of the 30 days of November left
    await billing.update_subscription(sub.id, SubscriptionPatch(
        items=[SubscriptionItemInput(price_id=seat.id, quantity=13)]))
    assert sorted(line.amount for line in billing.pending_items.values()) == [-16_667, 21_667]
    await billing.update_subscription(sub.id, SubscriptionPatch(
        items=[SubscriptionItemInput(price_id=seat.id, quantity=14)]),
        proration_behavior="always_invoice")
    latest = list(billing.invoices.values())[-1]
    assert (latest.status, latest.total) == ("paid", -16_667 + 21_667 - 21_667 + 23_333)
    assert billing.pending_items == {}


async def test_credit_note_on_an_open_invoice_lowers_what_is_due() -> None:
    billing = _billing()
    customer = await billing.create_customer(ACME)
    onboard = await _price(billing, "ONBOARD")
    await billing.create_invoice_item(customer_id=customer.id, price_id=onboard.id)
    invoice = await billing.create_invoice(customer_id=customer.id,
                                           collection_method="send_invoice", days_until_due=30)
    await billing.finalize_invoice(invoice.id)
    note = await billing.create_credit_note(CreditNoteCreate(
        invoice_id=invoice.id, currency="USD", amount=50_000, reason="service_credit"))
    assert (note.amount, note.reason, note.legal_entity) == (50_000, "service_credit", "US01")
    assert billing.invoices[invoice.id].amount_remaining == 200_000
    with pytest.raises(UpstreamInvalid):
        await billing.create_credit_note(CreditNoteCreate(
            invoice_id=invoice.id, currency="USD", amount=200_001))
    with pytest.raises(InvalidRequest):
        await billing.create_credit_note(CreditNoteCreate(
            invoice_id=invoice.id, currency="EUR", amount=1))
    await billing.create_credit_note(CreditNoteCreate(
        invoice_id=invoice.id, currency="USD", amount=200_000))
    assert billing.invoices[invoice.id].status == "paid"


async def test_tiered_price_is_priced_by_its_tiers() -> None:
    billing = _billing()
    product = next(iter(billing.products.values()))
    tiered = await billing.create_price(Price(
        id="", product_id=product.id, currency="USD", billing_scheme="tiered",
        tiers_mode="graduated", tiers=[PriceTier(up_to=10, unit_amount=1_000),
                                       PriceTier(unit_amount=500, flat_amount=100)]))
    customer = await billing.create_customer(ACME)
    await billing.create_invoice_item(customer_id=customer.id, price_id=tiered.id, quantity=12)
    assert [line.amount for line in billing.pending_items.values()] == [
        10 * 1_000 + 2 * 500 + 100]


async def test_customer_refusals_match_stripe() -> None:
    billing = _billing()
    with pytest.raises(UpstreamNotFound):
        await billing.get_customer("cus_nope")
    with pytest.raises(UpstreamInvalid):
        await billing.create_invoice(customer_id="cus_nope")
    customer = await billing.create_customer(ACME)
    with pytest.raises(InvalidRequest):
        await billing.update_customer(customer.id, CustomerPatch(payment_status="current"))
    renamed = await billing.update_customer(customer.id, CustomerPatch(legal_name="Acme Inc."))
    assert renamed.legal_name == "Acme Inc."
    assert billing.writes == [("create_customer", customer.id),
                              ("update_customer", customer.id)]
    with pytest.raises(InvalidRequest):
        await billing.create_invoice_item(customer_id=customer.id)
