"""The emulator answers every operation the client uses as Stripe's OpenAPI (2023-08-16) says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.errors import UpstreamInvalid, UpstreamNotFound
from contracts.money import Money
from contracts.v1 import (
    CreditNoteCreate,
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
from system_apis.billing.stripe import StripeClient
from tests.system_apis.billing.stripe.openapi_check import ValidatingTransport, spec_validator

EXPECTED = {
    "POST /v1/customers 200",
    "GET /v1/customers 200",
    "GET /v1/customers/search 200",
    "GET /v1/customers/{customer} 200",
    "GET /v1/customers/{customer} default",
    "POST /v1/customers/{customer} 200",
    "POST /v1/products 200",
    "GET /v1/products 200",
    "GET /v1/products/search 200",
    "GET /v1/products/{id} 200",
    "POST /v1/products/{id} 200",
    "POST /v1/prices 200",
    "GET /v1/prices 200",
    "GET /v1/prices/{price} 200",
    "POST /v1/subscriptions 200",
    "GET /v1/subscriptions 200",
    "GET /v1/subscriptions/{subscription_exposed_id} 200",
    "POST /v1/subscriptions/{subscription_exposed_id} 200",
    "DELETE /v1/subscriptions/{subscription_exposed_id} 200",
    "POST /v1/invoiceitems 200",
    "POST /v1/invoices 200",
    "GET /v1/invoices 200",
    "GET /v1/invoices/{invoice} 200",
    "GET /v1/invoices/{invoice}/lines 200",
    "POST /v1/invoices/{invoice}/finalize 200",
    "POST /v1/invoices/{invoice}/pay 200",
    "POST /v1/invoices/{invoice}/pay default",
    "POST /v1/invoices/{invoice}/void 200",
    "POST /v1/invoices/{invoice}/mark_uncollectible 200",
    "POST /v1/invoices/{invoice}/send 200",
    "POST /v1/credit_notes 200",
    "GET /v1/credit_notes 200",
    "GET /v1/credit_notes/{id} 200",
    "GET /v1/events 200",
    "GET /v1/events/{id} 200",
    "POST /v1/webhook_endpoints 200",
    "GET /v1/webhook_endpoints 200",
    "DELETE /v1/webhook_endpoints/{webhook_endpoint} 200",
}


async def test_every_answer_matches_the_published_schema(base_url: str) -> None:
    validator = spec_validator()
    transport = ValidatingTransport(httpx.AsyncHTTPTransport(), validator)
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as http:
        stripe = StripeClient(http, credentials=sandbox_credentials(base_url))
        await _scenario(stripe, base_url, http)

    assert sum(validator.validated.values()) > 0
    missing = EXPECTED - set(validator.validated)
    assert not missing, sorted(missing)


async def _scenario(stripe: StripeClient, base_url: str, http: httpx.AsyncClient) -> None:
    customer = await stripe.create_customer(
        CustomerCreate(legal_name="Acme", legal_entity="US01", currency="USD"),
        crm_account_id="001X",
        idempotency_key="oa:1",
    )
    await stripe.update_customer(customer.id, CustomerPatch(phone="+1 555"))
    await stripe.get_customer(customer.id)
    await stripe.list_customers()
    await stripe.find_customer(crm_account_id="001X")
    with pytest.raises(UpstreamNotFound):
        await stripe.get_customer("cus_missing")

    product = await stripe.create_product(
        Product(id="", code="X1", name="X", billing_interval="year")
    )
    await stripe.update_product(product.id, description="d")
    await stripe.get_product(product.id)
    await stripe.list_products()
    tiered = await stripe.create_price(
        Price(
            id="",
            product_id=product.id,
            currency="USD",
            billing_scheme="tiered",
            tiers_mode="volume",
            recurring_interval="year",
            tiers=[PriceTier(up_to=5, unit_amount=900), PriceTier(unit_amount=700)],
        )
    )
    await stripe.get_price(tiered.id)
    seat = await stripe.find_price(product_code="SEAT", currency="USD")
    onboarding = await stripe.find_price(product_code="ONBOARD", currency="USD")
    assert seat is not None and onboarding is not None

    subscription = await stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            items=[SubscriptionItemInput(price_id=seat.id, quantity=3)],
        )
    )
    await stripe.update_subscription(
        subscription.id,
        SubscriptionPatch(items=[SubscriptionItemInput(price_id=seat.id, quantity=5)]),
    )
    await stripe.get_subscription(subscription.id)
    await stripe.list_subscriptions(customer_id=customer.id)
    await stripe.cancel_subscription(subscription.id)

    for _ in range(11):
        await stripe.create_invoice_item(
            customer_id=customer.id, amount=Money(amount=100, currency="USD")
        )
    long_invoice = await stripe.create_invoice(customer_id=customer.id)
    await stripe.get_invoice(long_invoice.id)
    await stripe.pay_invoice(long_invoice.id)
    await stripe.list_invoices(customer_id=customer.id)
    await stripe.create_credit_note(
        CreditNoteCreate(invoice_id=long_invoice.id, currency="USD", amount=100)
    )
    notes = await stripe.list_credit_notes(customer_id=customer.id)
    await stripe.get_credit_note(notes.data[0].id)

    await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    declined = await stripe.finalize_invoice(
        (await stripe.create_invoice(customer_id=customer.id)).id
    )
    with pytest.raises(UpstreamInvalid):
        await stripe.pay_invoice(declined.id, payment_method="pm_card_chargeDeclined")
    await stripe.void_invoice(declined.id)
    await stripe.create_invoice_item(customer_id=customer.id, price_id=onboarding.id)
    sent = await stripe.create_invoice(
        customer_id=customer.id, collection_method="send_invoice", days_until_due=14
    )
    await stripe.send_invoice(sent.id)
    await stripe.mark_invoice_uncollectible(sent.id)

    events = await stripe.list_events(created_gte=datetime.now(UTC) - timedelta(hours=1))
    await stripe.get_event(events.data[0].id)
    endpoint = await stripe.create_webhook_endpoint(
        "http://127.0.0.1:8000/hook", enabled_events=["*"]
    )
    await stripe.list_webhook_endpoints()
    await stripe.delete_webhook_endpoint(endpoint.id)
