"""The Stripe client against the emulator over loopback HTTP: every operation, end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
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
    AddressInput,
    CreditNoteCreate,
    CreditNoteLineInput,
    CustomerCreate,
    CustomerPatch,
    Price,
    PriceTier,
    Product,
    SubscriptionCreate,
    SubscriptionItemInput,
    SubscriptionPatch,
)
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from system_apis.billing.port import BillingPort
from system_apis.billing.stripe import (
    STRIPE_VERSION,
    StripeClient,
    StripeCredentials,
)


def acme(**overrides: object) -> CustomerCreate:
    fields: dict[str, object] = {
        "legal_name": "Acme Robotics Inc.",
        "legal_entity": "US01",
        "currency": "USD",
        "email": "billing@acme.test",
        "billing_address": AddressInput(line1="100 Market St", city="San Francisco", country="US"),
        "payment_terms_days": 30,
    }
    fields.update(overrides)
    return CustomerCreate(**fields)  # type: ignore[arg-type]


async def price_of(stripe: StripeClient, code: str, currency: str = "USD") -> Price:
    price = await stripe.find_price(product_code=code, currency=currency)
    assert price is not None
    return price


def test_client_implements_the_billing_port(stripe: StripeClient) -> None:
    port: BillingPort = stripe
    assert port is stripe


async def test_creates_a_customer_once_per_idempotency_key(
    stripe: StripeClient, vendor: httpx.AsyncClient
) -> None:
    first = await stripe.create_customer(acme(), crm_account_id="001A", idempotency_key="cm:1")
    again = await stripe.create_customer(acme(), crm_account_id="001A", idempotency_key="cm:1")

    assert again.id == first.id
    assert first.legal_entity == "US01"
    assert first.refs == {"stripe": first.id, "salesforce": "001A"}
    listed = (await vendor.get("/v1/customers")).json()
    assert [c["id"] for c in listed["data"]] == [first.id]


async def test_reuse_of_a_key_with_other_parameters_is_a_conflict(stripe: StripeClient) -> None:
    await stripe.create_customer(acme(), idempotency_key="cm:2")
    with pytest.raises(UpstreamConflict) as caught:
        await stripe.create_customer(acme(legal_name="Other"), idempotency_key="cm:2")
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    "error",
    [
        # The emulator names the type only; Stripe's API also names the code.
        {"type": "idempotency_error", "message": "another in-progress request"},
        {"type": "idempotency_error", "code": "idempotency_key_in_use",
         "message": "another in-progress request"},
    ],
)
async def test_a_key_still_in_flight_is_retried_later(error: dict[str, str]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Idempotency-Key"] == "cm:3"
        return httpx.Response(409, json={"error": error}, headers={"Request-Id": "req_409"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        stripe = StripeClient(http, credentials=sandbox_credentials("https://stripe.test"))
        with pytest.raises(UpstreamUnavailable) as caught:
            await stripe.create_customer(acme(), idempotency_key="cm:3")

    assert (caught.value.status, caught.value.code) == (409, "idempotency_key_in_use")
    assert (caught.value.retry_after, caught.value.request_id) == (1.0, "req_409")
    assert "another in-progress request" in caught.value.message


async def test_another_conflict_is_not_retried() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"error": {"type": "invalid_request_error", "message": "Lock timeout"}}
        return httpx.Response(409, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        stripe = StripeClient(http, credentials=sandbox_credentials("https://stripe.test"))
        with pytest.raises(UpstreamConflict) as caught:
            await stripe.create_customer(acme(), idempotency_key="cm:4")

    assert caught.value.code == "invalid_request_error"


async def test_reads_updates_and_finds_customers(stripe: StripeClient) -> None:
    created = await stripe.create_customer(acme(), crm_account_id="001ACME")
    await stripe.create_customer(acme(legal_name="Globex", email="ap@globex.test"))

    patched = await stripe.update_customer(
        created.id, CustomerPatch(country="CA", phone="+1 555 0100", tax_id="US-1")
    )
    fetched = await stripe.get_customer(created.id)
    found = await stripe.find_customer(crm_account_id="001ACME")
    by_email = await stripe.list_customers(email="ap@globex.test")
    by_name = await stripe.search_customers("name:'Globex'")

    assert patched == fetched
    assert fetched.billing_address is not None
    assert (fetched.billing_address.line1, fetched.country) == ("100 Market St", "CA")
    assert (fetched.phone, fetched.tax_id) == ("+1 555 0100", "US-1")
    assert found is not None and found.id == created.id
    assert [c.legal_name for c in by_email.data] == ["Globex"]
    assert [c.legal_name for c in by_name] == ["Globex"]
    assert await stripe.find_customer(crm_account_id="nobody") is None


async def test_pages_through_customers_with_opaque_cursors(stripe: StripeClient) -> None:
    created = [
        (await stripe.create_customer(acme(legal_name=f"Customer {n}"))).id for n in range(7)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await stripe.list_customers(cursor=cursor, limit=3)
        seen.extend(c.id for c in page.data)
        pages += 1
        if page.next_cursor is None:
            break
        assert not page.next_cursor.startswith("cus_")
        cursor = page.next_cursor

    assert pages == 3
    assert seen == list(reversed(created))
    assert [c.id async for c in stripe.iter_customers()] == seen
    with pytest.raises(InvalidRequest):
        await stripe.list_customers(cursor="not-a-cursor")


async def test_lists_customers_created_in_a_window(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    now = datetime.now(UTC)
    inside = await stripe.list_customers(
        created_gte=now - timedelta(minutes=5), created_lte=now + timedelta(minutes=5)
    )
    later = await stripe.list_customers(created_gte=now + timedelta(hours=1))
    assert [c.id for c in inside.data] == [customer.id]
    assert later.data == []


async def test_manages_products_and_finds_them_by_code(stripe: StripeClient) -> None:
    seeded = await stripe.find_product("PLAT-STD")
    created = await stripe.create_product(
        Product(
            id="",
            code="SUPPORT-PLUS",
            name="Support Plus",
            billing_interval="month",
            refs={"netsuite": "105"},
        ),
        idempotency_key="prod:1",
    )
    renamed = await stripe.update_product(created.id, name="Support Plus+", active=False)
    page = await stripe.list_products(limit=2)
    rest = await stripe.list_products(cursor=page.next_cursor, limit=10)

    assert seeded is not None and seeded.billing_interval == "month"
    assert (created.code, created.refs["netsuite"]) == ("SUPPORT-PLUS", "105")
    assert (renamed.name, renamed.active) == ("Support Plus+", False)
    assert await stripe.get_product(created.id) == renamed
    assert len(page.data) + len(rest.data) == 6
    assert rest.next_cursor is None
    assert [p.code for p in (await stripe.list_products(active=False)).data] == ["SUPPORT-PLUS"]


async def test_creates_flat_and_tiered_prices(stripe: StripeClient) -> None:
    product = await stripe.create_product(
        Product(id="", code="API", name="API calls", billing_interval="month")
    )
    flat = await stripe.create_price(
        Price(
            id="",
            product_id=product.id,
            currency="EUR",
            unit_amount=1999,
            recurring_interval="month",
            product_code="API",
        ),
        lookup_key="api_eur",
    )
    tiers = [
        PriceTier(up_to=10, unit_amount=1000),
        PriceTier(up_to=None, unit_amount=800, flat_amount=500),
    ]
    tiered = await stripe.create_price(
        Price(
            id="",
            product_id=product.id,
            currency="USD",
            billing_scheme="tiered",
            tiers=tiers,
            tiers_mode="graduated",
            recurring_interval="year",
        )
    )

    assert (flat.unit_amount, flat.currency, flat.recurring_interval) == (1999, "EUR", "month")
    assert await stripe.get_price(tiered.id) == tiered
    assert tiered.tiers == tiers and tiered.unit_amount is None
    listed = await stripe.list_prices(product_id=product.id)
    assert {p.id for p in listed.data} == {flat.id, tiered.id}
    assert (await stripe.find_price(product_code="API", currency="EUR")) == flat


async def test_subscribes_amends_with_prorations_and_cancels(
    stripe: StripeClient, vendor: httpx.AsyncClient
) -> None:
    customer = await stripe.create_customer(acme())
    platform, seat = await price_of(stripe, "PLAT-STD"), await price_of(stripe, "SEAT")
    subscription = await stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            deal_id="006D",
            legal_entity="US01",
            items=[
                SubscriptionItemInput(price_id=platform.id),
                SubscriptionItemInput(price_id=seat.id, quantity=20),
            ],
        ),
        idempotency_key="sub:1",
    )
    amended = await stripe.update_subscription(
        subscription.id,
        SubscriptionPatch(items=[SubscriptionItemInput(price_id=seat.id, quantity=25)]),
    )
    pending = (
        await vendor.get("/v1/invoiceitems", params={"customer": customer.id, "pending": "true"})
    ).json()["data"]
    canceled = await stripe.cancel_subscription(subscription.id)

    assert subscription.status == "active"
    assert (subscription.deal_id, subscription.legal_entity) == ("006D", "US01")
    assert [(i.product_code, i.quantity) for i in amended.items] == [("SEAT", 25)]
    assert all(item["proration"] for item in pending)
    assert sorted(item["amount"] for item in pending)[0] < 0  # the credit for unused time
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert (await stripe.list_subscriptions(customer_id=customer.id)).data == []
    everything = await stripe.list_subscriptions(customer_id=customer.id, status="all")
    assert [s.id for s in everything.data] == [subscription.id]
    assert (await stripe.get_subscription(subscription.id)).status == "canceled"


async def test_always_invoice_bills_an_amendment_at_once(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    seat = await price_of(stripe, "SEAT")
    subscription = await stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            items=[SubscriptionItemInput(price_id=seat.id, quantity=10)],
        )
    )
    await stripe.update_subscription(
        subscription.id,
        SubscriptionPatch(items=[SubscriptionItemInput(price_id=seat.id, quantity=12)]),
        proration_behavior="always_invoice",
    )
    invoices = await stripe.list_invoices(subscription_id=subscription.id)

    assert [i.status for i in invoices.data] == ["paid", "paid"]
    newest = invoices.data[0]
    assert newest.total == sum(line.amount for line in newest.lines)
    assert newest.total == 12 * 2500 - 10 * 2500  # the full period remains


async def test_send_invoice_subscription_gets_a_due_date(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    platform = await price_of(stripe, "PLAT-STD")
    subscription = await stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            collection_method="send_invoice",
            days_until_due=30,
            items=[SubscriptionItemInput(price_id=platform.id)],
        )
    )
    (invoice,) = (await stripe.list_invoices(customer_id=customer.id)).data

    assert subscription.collection_method == "send_invoice"
    assert invoice.status == "open" and invoice.issued_at is not None
    assert invoice.due_date == (invoice.issued_at + timedelta(days=30)).date()
    sent = await stripe.send_invoice(invoice.id)
    assert sent.status == "open"


async def test_runs_the_invoice_lifecycle(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    onboarding = await price_of(stripe, "ONBOARD")
    line = await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    extra = await stripe.create_invoice_item(
        customer_id=customer.id,
        amount=Money(amount=12_345, currency="USD"),
        description="Travel",
        idempotency_key="ii:1",
    )
    draft = await stripe.create_invoice(customer_id=customer.id, idempotency_key="inv:1")
    opened = await stripe.finalize_invoice(draft.id)
    paid = await stripe.pay_invoice(draft.id, payment_method="pm_card_visa")

    assert (line.amount, line.price_id, extra.amount) == (250_000, onboarding.id, 12_345)
    assert draft.status == "draft" and draft.total == 262_345
    assert opened.status == "open" and opened.number is not None
    assert paid.status == "paid" and paid.amount_paid == 262_345 and paid.amount_remaining == 0
    assert paid.legal_entity == "US01" and paid.paid_at is not None
    assert await stripe.get_invoice(draft.id) == paid

    await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    second = await stripe.finalize_invoice(
        (await stripe.create_invoice(customer_id=customer.id)).id
    )
    voided = await stripe.void_invoice(second.id)
    await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    third = await stripe.finalize_invoice((await stripe.create_invoice(customer_id=customer.id)).id)
    written_off = await stripe.mark_invoice_uncollectible(third.id)

    assert (voided.status, written_off.status) == ("void", "uncollectible")
    assert [i.id for i in (await stripe.list_invoices(status="paid")).data] == [paid.id]
    assert len((await stripe.list_invoices(customer_id=customer.id)).data) == 3
    window = await stripe.list_invoices(created_gte=datetime.now(UTC) + timedelta(days=1))
    assert window.data == []


async def test_declined_card_fails_the_payment(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    await stripe.create_invoice_item(
        customer_id=customer.id, amount=Money(amount=5_000, currency="USD")
    )
    invoice = await stripe.finalize_invoice(
        (await stripe.create_invoice(customer_id=customer.id)).id
    )
    with pytest.raises(UpstreamInvalid) as caught:
        await stripe.pay_invoice(invoice.id, payment_method="pm_card_chargeDeclined")

    assert caught.value.status == 402 and caught.value.code == "generic_decline"
    assert (await stripe.get_invoice(invoice.id)).status == "open"
    assert (await stripe.get_customer(customer.id)).payment_status == "past_due"
    failed = await stripe.list_events(types=["invoice.payment_failed"])
    assert [e.subject for e in failed.data] == [invoice.id]


async def test_reads_every_line_of_a_long_invoice(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    for n in range(12):
        await stripe.create_invoice_item(
            customer_id=customer.id, amount=Money(amount=100 + n, currency="USD")
        )
    invoice = await stripe.create_invoice(customer_id=customer.id)
    assert len(invoice.lines) == 12
    assert invoice.total == sum(100 + n for n in range(12))


async def test_credits_paid_and_open_invoices(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    onboarding = await price_of(stripe, "ONBOARD")
    await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    paid = await stripe.pay_invoice((await stripe.create_invoice(customer_id=customer.id)).id)
    await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    open_ = await stripe.finalize_invoice((await stripe.create_invoice(customer_id=customer.id)).id)

    service = await stripe.create_credit_note(
        CreditNoteCreate(
            invoice_id=paid.id,
            currency="USD",
            amount=10_000,
            reason="service_credit",
            memo="SLA breach",
        ),
        idempotency_key="cn:1",
    )
    partial = await stripe.create_credit_note(
        CreditNoteCreate(
            invoice_id=open_.id,
            currency="USD",
            reason="order_change",
            lines=[CreditNoteLineInput(invoice_line_id=open_.lines[0].id, amount=50_000)],
        )
    )
    with pytest.raises(InvalidRequest):
        await stripe.create_credit_note(
            CreditNoteCreate(invoice_id=paid.id, currency="EUR", amount=1)
        )

    assert (service.amount, service.reason, service.memo) == (
        10_000,
        "service_credit",
        "SLA breach",
    )
    assert service.legal_entity == "US01"
    assert partial.lines[0].invoice_line_id == open_.lines[0].id
    assert (await stripe.get_invoice(open_.id)).amount_due == 200_000
    assert [n.id for n in (await stripe.list_credit_notes(invoice_id=paid.id)).data] == [service.id]
    assert len((await stripe.list_credit_notes(customer_id=customer.id)).data) == 2
    assert await stripe.get_credit_note(partial.id) == partial


async def test_reads_events_and_manages_webhook_endpoints(stripe: StripeClient) -> None:
    customer = await stripe.create_customer(acme())
    events = await stripe.list_events(types=["customer.created"])
    event = await stripe.get_event(events.data[0].id)
    endpoint = await stripe.create_webhook_endpoint(
        "http://127.0.0.1:8000/webhooks/stripe", enabled_events=["invoice.paid"]
    )
    listed = await stripe.list_webhook_endpoints()
    await stripe.delete_webhook_endpoint(endpoint.id)

    assert (event.type, event.subject, event.source) == ("customer.created", customer.id, "stripe")
    assert endpoint.secret == "whsec_erpgw_sandbox"
    assert [e.id for e in listed] == [endpoint.id] and listed[0].secret is None
    assert await stripe.list_webhook_endpoints() == []
    with pytest.raises(UpstreamNotFound):
        await stripe.get_event("evt_missing")


async def test_test_clock_renews_a_subscription_into_a_new_invoice(
    stripe: StripeClient, emulator: StripeEmulator
) -> None:
    start = datetime(2026, 1, 15, tzinfo=UTC)
    clock = await stripe.create_test_clock(start, name="renewal")
    customer = await stripe.create_customer(acme(), test_clock=clock.id)
    platform = await price_of(stripe, "PLAT-STD")
    subscription = await stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            items=[SubscriptionItemInput(price_id=platform.id)],
        )
    )
    advanced = await stripe.advance_test_clock(clock.id, start + timedelta(days=31, hours=2))
    renewed = await stripe.get_subscription(subscription.id)
    invoices = await stripe.list_invoices(subscription_id=subscription.id)

    assert subscription.current_period_end == datetime(2026, 2, 15, tzinfo=UTC)
    assert advanced.ready and advanced.frozen_time == start + timedelta(days=31, hours=2)
    assert renewed.current_period_start == datetime(2026, 2, 15, tzinfo=UTC)
    assert renewed.current_period_end == datetime(2026, 3, 15, tzinfo=UTC)
    newest = invoices.data[0]
    assert len(invoices.data) == 2 and newest.status == "paid" and newest.total == 50_000
    assert newest.lines[0].period_start == datetime(2026, 2, 15, tzinfo=UTC)
    assert (await stripe.get_test_clock(clock.id)).ready


async def test_sends_the_key_the_pinned_version_and_the_idempotency_marker() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "cus_1", "object": "customer", "metadata": {}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        stripe = StripeClient(
            http, credentials=StripeCredentials(secret_key="sk_test_x", base_url="https://s.test")
        )
        await stripe.create_customer(acme(), idempotency_key="flow-1:create_customer")
        await stripe.get_customer("cus_1")

    keyed, read = seen
    assert keyed.headers["authorization"] == "Bearer sk_test_x"
    assert keyed.headers["stripe-version"] == STRIPE_VERSION == "2023-08-16"
    assert keyed.headers["idempotency-key"] == "flow-1:create_customer"
    assert keyed.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"metadata%5Blegal_entity%5D=US01" in keyed.content
    assert keyed.extensions["erpgw_idempotent"] is True
    assert keyed.extensions["erpgw_path_template"] == "/v1/customers"
    assert "erpgw_idempotent" not in read.extensions
    assert read.extensions["erpgw_path_template"] == "/v1/customers/{id}"
    assert str(read.url) == "https://s.test/v1/customers/cus_1"


def test_credentials_default_to_stripe_and_sandbox_ones_to_the_emulator() -> None:
    configured = StripeCredentials(secret_key="sk_live_1", webhook_secrets=("whsec_a",))
    assert configured.base_url == "https://api.stripe.com"
    sandbox = sandbox_credentials("http://127.0.0.1:8000/_sandbox/stripe")
    assert (sandbox.secret_key, sandbox.webhook_secrets) == (
        "sk_test_erpgw_sandbox",
        ("whsec_erpgw_sandbox",),
    )
