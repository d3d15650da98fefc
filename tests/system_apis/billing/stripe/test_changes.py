"""Billing's change feed: the Events API names the customers, invoices (paid and voided
included) and credit notes changed since a time, and keeps 30 days of history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from contracts.money import Money
from contracts.v1 import CustomerCreate
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from system_apis.billing.stripe import StripeClient
from tests.support.servers import serve_asgi

ACME = CustomerCreate(legal_name="Acme Robotics Inc.", legal_entity="US01", currency="USD")
GLOBEX = CustomerCreate(legal_name="Globex GmbH", legal_entity="DE01", currency="EUR")


async def _invoice(stripe: StripeClient, customer_id: str, amount: int, currency: str) -> str:
    await stripe.create_invoice_item(
        customer_id=customer_id, amount=Money(amount=amount, currency=currency)
    )
    draft = await stripe.create_invoice(
        customer_id=customer_id, collection_method="send_invoice", days_until_due=30
    )
    return (await stripe.finalize_invoice(draft.id)).id


async def _next_second() -> datetime:
    """A time after every event so far (events are stamped in whole seconds)."""
    await asyncio.sleep(1.05)
    return datetime.now(UTC)


async def test_changes_name_what_was_paid_voided_credited_or_deleted_since(
    stripe: StripeClient, http: httpx.AsyncClient, base_url: str
) -> None:
    acme = await stripe.create_customer(ACME, crm_account_id="001ACME")
    globex = await stripe.create_customer(GLOBEX, crm_account_id="001GLOBEX")
    quiet = await stripe.create_customer(ACME, crm_account_id="001QUIET")
    paid = await _invoice(stripe, acme.id, 10_000, "USD")
    voided = await _invoice(stripe, globex.id, 20_000, "EUR")
    untouched = await _invoice(stripe, quiet.id, 30_000, "USD")
    since = await _next_second()

    await stripe.pay_invoice(paid, paid_out_of_band=True)
    await stripe.void_invoice(voided)
    gone = await stripe.create_customer(ACME, crm_account_id="001GONE")
    deleted = await http.delete(
        f"{base_url}/v1/customers/{gone.id}",
        headers={"Authorization": "Bearer sk_test_erpgw_sandbox"},
    )
    assert deleted.status_code == 200, deleted.text
    changes = await stripe.changed_since(since)

    assert changes.invoices == sorted([paid, voided])
    assert untouched not in changes.invoices
    assert changes.customers == sorted([acme.id, globex.id, gone.id])
    assert changes.deleted_customers == [gone.id]
    assert changes.credit_notes == []


async def test_events_older_than_thirty_days_are_not_listed() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC).timestamp()]
    emulator = StripeEmulator(rate_limit_per_second=None, clock=lambda: now[0])
    with serve_asgi(emulator.vendor, lifespan="off") as url:
        async with httpx.AsyncClient(timeout=5.0) as http:
            stripe = StripeClient(http, credentials=sandbox_credentials(url))
            old = await stripe.create_customer(ACME, crm_account_id="001OLD")
            now[0] += 29 * 86400
            recent = await stripe.create_customer(GLOBEX, crm_account_id="001NEW")
            within = await stripe.changed_since(datetime(2025, 12, 1, tzinfo=UTC))
            now[0] += 2 * 86400
            later = await stripe.changed_since(datetime(2025, 12, 1, tzinfo=UTC))

    assert {old.id, recent.id} <= set(within.customers)
    assert recent.id in later.customers and old.id not in later.customers
