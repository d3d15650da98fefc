"""The sold price is what every platform bills and books: a discounted deal, and one-time lines
that stay on their own deal's first invoice when the customer buys twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.stripe import StripeEmulator
from tests.process_apis.money_world import Line, MoneyWorld, money_world
from tests.support.servers import serve_asgi
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)

LIST_PLATFORM_USD = 50_000
"""PLAT-STD's list price in the demo catalog (500.00 USD a month)."""
HELD_MS = 4_500
"""Past the gateway's 4 s read timeout for Stripe, as the money chaos run holds requests."""


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MoneyWorld]:
    async with money_world(tmp_path) as opened:
        yield opened


async def _billing_customer(world: MoneyWorld, account: str) -> str:
    customers = await world.stripe_raw.customers_of(account)
    assert len(customers) == 1
    return str(customers[0]["id"])


async def _subscription_of(world: MoneyWorld, customer: str, deal: str) -> dict[str, Any]:
    subscriptions = await world.stripe_raw.objects("/v1/subscriptions", customer=customer)
    ours = [s for s in subscriptions if s["metadata"].get("deal_id") == deal]
    assert len(ours) == 1
    return ours[0]


async def test_discounted_deal_is_billed_and_booked_at_the_sold_price(world: MoneyWorld) -> None:
    sold = LIST_PLATFORM_USD * 80 // 100  # 400.00, a negotiated 80 % of list
    account = await world.account(
        "Discount Buyer Inc.", legal_entity="US01", currency="USD", country="US", state="OR"
    )
    deal = await world.deal(
        account, [Line("PLAT-STD", 4, sold)], currency="USD", name="Discounted platform"
    )

    await world.book(deal)

    customer = await _billing_customer(world, account)
    subscription = await _subscription_of(world, customer, deal)
    items = subscription["items"]["data"]
    assert [(i["quantity"], i["price"]["unit_amount"]) for i in items] == [(4, sold)]
    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    assert len(invoices) == 1
    first = invoices[0]
    assert (first["subtotal"], first["total"], first["currency"]) == (4 * sold, 4 * sold, "usd")

    opportunity = await world.salesforce.get_deal(deal)
    orders = await world.sales_orders_of(opportunity.erp_order_number)
    assert len(orders) == 1
    order = orders[0]
    assert order.total == 4 * sold == 160_000
    assert [(ln.product_code, ln.quantity, ln.unit_amount, ln.amount) for ln in order.lines] == [
        ("PLAT-STD", 4, sold, 4 * sold)
    ]
    posted = await world.erp_invoice_of(first["id"])
    assert (posted.total, posted.currency, posted.legal_entity) == (160_000, "USD", "US01")
    assert posted.sales_order_id == order.id
    assert posted.external_id == first["id"]
    await world.postings_settled()
    assert await world.open_exceptions() == []


async def test_one_time_lines_stay_on_their_own_deals_first_invoice(world: MoneyWorld) -> None:
    account = await world.account(
        "Two Deals GmbH", legal_entity="US01", currency="USD", country="US", state="OR"
    )
    first_deal = await world.deal(
        account,
        [Line("PLAT-STD", 1, 45_000), Line("SEAT", 10, 2_000), Line("ONBOARD", 1, 200_000)],
        currency="USD",
        name="First rollout",
    )
    second_deal = await world.deal(
        account,
        [Line("SEAT", 5, 2_500), Line("ONBOARD", 2, 150_000)],
        currency="USD",
        name="Second rollout",
    )

    await world.book(first_deal)
    await world.book(second_deal)

    customer = await _billing_customer(world, account)
    expected = {
        first_deal: (45_000 + 10 * 2_000, [(1, 200_000)]),
        second_deal: (5 * 2_500, [(2, 300_000)]),
    }
    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    assert len(invoices) == 2
    for deal, (recurring, one_time) in expected.items():
        subscription = await _subscription_of(world, customer, deal)
        ours = [i for i in invoices if i["subscription"] == subscription["id"]]
        assert len(ours) == 1
        lines = ours[0]["lines"]["data"]
        charges = [ln for ln in lines if ln["type"] == "invoiceitem"]
        assert [(ln["quantity"], ln["amount"]) for ln in charges] == one_time
        assert {ln["metadata"]["deal_id"] for ln in charges} == {deal}
        recurring_lines = [ln for ln in lines if ln["type"] == "subscription"]
        assert sum(ln["amount"] for ln in recurring_lines) == recurring
        total = recurring + sum(amount for _, amount in one_time)
        assert ours[0]["total"] == total
        opportunity = await world.salesforce.get_deal(deal)
        order = (await world.sales_orders_of(opportunity.erp_order_number))[0]
        assert order.total == total
        posted = await world.erp_invoice_of(ours[0]["id"])
        assert posted.total == total
        assert posted.sales_order_id == order.id
    items = await world.stripe_raw.objects("/v1/invoiceitems", customer=customer)
    assert {i["metadata"]["deal_id"] for i in items} == {first_deal, second_deal}
    assert all(i["invoice"] for i in items)
    await world.postings_settled()
    assert await world.open_exceptions() == []


async def test_a_german_customer_of_de01_pays_german_vat_in_billing_and_the_erp(
    world: MoneyWorld,
) -> None:
    account = await world.account(
        "Berliner Kunde GmbH",
        legal_entity="DE01",
        currency="EUR",
        country="DE",
        tax_id="DE811907980",
    )
    # Amounts whose tax needs rounding, on each line (41841 x 19 % = 7949.79, 3 x 1841 =
    # 5523 x 19 % = 1049.37, the onboarding 100050 x 19 % = 19009.5: half up).
    deal = await world.deal(
        account,
        [Line("PLAT-STD", 1, 41_841), Line("SEAT", 3, 1_841), Line("ONBOARD", 1, 100_050)],
        currency="EUR",
        name="Berlin rollout",
    )

    await world.book(deal)

    customer = await _billing_customer(world, account)
    invoice = (await world.stripe_raw.objects("/v1/invoices", customer=customer))[0]
    subtotal = 41_841 + 3 * 1_841 + 100_050
    per_line = {
        ln["amount"]: sum(t["amount"] for t in ln["tax_amounts"]) for ln in invoice["lines"]["data"]
    }
    assert per_line == {41_841: 7_950, 5_523: 1_049, 100_050: 19_010}
    assert (invoice["subtotal"], invoice["tax"]) == (subtotal, 7_950 + 1_049 + 19_010)
    assert invoice["total"] == subtotal + invoice["tax"]
    canonical = await world.stripe.get_invoice(invoice["id"])
    assert {ln.tax_rate_bps for ln in canonical.lines} == {1900}
    assert canonical.tax_note is None

    opportunity = await world.salesforce.get_deal(deal)
    order = (await world.sales_orders_of(opportunity.erp_order_number))[0]
    assert order.total == subtotal  # the order books the sold, pre-tax amounts
    assert {ln.tax_code for ln in order.lines} == {"DE-VAT-19"}
    posted = await world.erp_invoice_of(invoice["id"])
    assert (posted.total, posted.tax, posted.subtotal) == (
        invoice["total"],
        invoice["tax"],
        subtotal,
    )
    assert (posted.currency, posted.legal_entity) == ("EUR", "DE01")
    assert sorted(ln.tax_amount or 0 for ln in posted.lines) == [1_049, 7_950, 19_010]
    assert {ln.tax_rate_bps for ln in posted.lines} == {1900}
    await world.postings_settled()
    assert await world.open_exceptions() == []


async def test_an_eu_business_with_a_vat_id_is_reverse_charged_on_both_invoices(
    world: MoneyWorld,
) -> None:
    account = await world.account(
        "Amsterdam Zaak B.V.",
        legal_entity="DE01",
        currency="EUR",
        country="NL",
        tax_id="NL001234567B01",
    )
    deal = await world.deal(
        account, [Line("PLAT-STD", 2, 41_841)], currency="EUR", name="Dutch platform"
    )

    await world.book(deal)

    customer = await _billing_customer(world, account)
    invoice = (await world.stripe_raw.objects("/v1/invoices", customer=customer))[0]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (83_682, 0, 83_682)
    canonical = await world.stripe.get_invoice(invoice["id"])
    assert canonical.tax == 0
    assert canonical.tax_note is not None and "Reverse charge" in canonical.tax_note
    opportunity = await world.salesforce.get_deal(deal)
    order = (await world.sales_orders_of(opportunity.erp_order_number))[0]
    assert {ln.tax_code for ln in order.lines} == {"EU-RC"}
    posted = await world.erp_invoice_of(invoice["id"])
    assert (posted.total, posted.tax) == (83_682, 0)
    assert posted.tax_note == canonical.tax_note
    await world.postings_settled()
    assert await world.open_exceptions() == []


async def test_a_discounted_one_time_deal_is_billed_on_an_invoice_of_its_own(
    world: MoneyWorld,
) -> None:
    account = await world.account(
        "Services Only LLC", legal_entity="US01", currency="USD", country="US", state="OR"
    )
    deal = await world.deal(
        account, [Line("ONBOARD", 2, 200_000)], currency="USD", name="Onboarding only"
    )

    await world.book(deal)

    customer = await _billing_customer(world, account)
    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    assert len(invoices) == 1
    [line] = invoices[0]["lines"]["data"]
    assert (line["quantity"], line["amount"], line["metadata"]) == (2, 400_000, {"deal_id": deal})
    assert invoices[0]["status"] == "open"
    opportunity = await world.salesforce.get_deal(deal)
    order = (await world.sales_orders_of(opportunity.erp_order_number))[0]
    assert order.total == 400_000
    posted = await world.erp_invoice_of(invoices[0]["id"])
    assert posted.total == 400_000
    await world.postings_settled()
    assert await world.open_exceptions() == []


@pytest.mark.parametrize(
    "held",
    ["/v1/invoices", "/v1/invoices/*/finalize"],
    ids=["draft-create", "finalize"],
)
async def test_a_one_time_deal_whose_stripe_answers_outlive_the_gateways_timeout_is_invoiced_once(
    tmp_path: Path, held: str
) -> None:
    # Stripe holds the step's first request past the gateway's read timeout, and its retry
    # too, then runs the first (its caller gone): the retries under the step's
    # Idempotency-Key get that answer, so the deal has one invoice, finalized, with its tax,
    # posted once to the ERP.
    with serve_asgi(StripeEmulator().vendor, lifespan="off") as stripe_url:
        async with money_world(tmp_path, stripe_url=stripe_url) as world:
            account = await world.account(
                "Held Answers Inc.",
                legal_entity="US01",
                currency="USD",
                country="US",
                state="CA",
            )
            deal = await world.deal(
                account, [Line("ONBOARD", 2, 200_000)], currency="USD", name="Onboarding, held"
            )
            await world.stripe_raw.set_faults(path=held, latency_ms=HELD_MS)
            booking = asyncio.create_task(world.book(deal))
            await eventually(
                world.stripe_raw.faults,
                lambda state: state["counters"]["latency"] >= 2,
                timeout=30.0,
                interval=0.1,
                what="the first request and its retry held",
            )
            await world.stripe_raw.set_faults()  # later requests are answered at once
            await booking

            invoices = await world.stripe_raw.objects(
                "/v1/invoices", customer=await _billing_customer(world, account)
            )
            assert [(i["status"], i["subtotal"], i["tax"], i["total"]) for i in invoices] == [
                ("open", 400_000, 29_000, 429_000)
            ]
            [line] = invoices[0]["lines"]["data"]
            assert (line["quantity"], line["amount"], line["metadata"]) == (
                2,
                400_000,
                {"deal_id": deal},
            )
            posted = await world.erp_invoice_of(invoices[0]["id"])
            assert (posted.total, posted.tax, posted.currency) == (429_000, 29_000, "USD")
            await world.postings_settled()
            assert await world.open_exceptions() == []


async def test_a_euro_customers_first_deal_of_one_time_services_bills_in_euro(
    world: MoneyWorld,
) -> None:
    # The deal's own invoice is the account's first billing record, so it fixes the Stripe
    # customer's currency: in the deal's currency, and the account's next deal bills too.
    account = await world.account(
        "Erstkunde GmbH",
        legal_entity="DE01",
        currency="EUR",
        country="DE",
        tax_id="DE811907980",
    )
    services = await world.deal(
        account, [Line("ONBOARD", 1, 207_000)], currency="EUR", name="Onboarding first"
    )
    platform = await world.deal(
        account, [Line("PLAT-STD", 1, 36_800)], currency="EUR", name="Platform next"
    )

    await world.book(services)
    await world.book(platform)

    customer = await _billing_customer(world, account)
    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    assert sorted((i["currency"], i["subtotal"], i["tax"]) for i in invoices) == [
        ("eur", 36_800, 6_992),
        ("eur", 207_000, 39_330),
    ]
    for invoice in invoices:
        posted = await world.erp_invoice_of(invoice["id"])
        assert (posted.currency, posted.total) == ("EUR", invoice["total"])
    await world.postings_settled()
    assert await world.open_exceptions() == []


async def test_a_metered_line_is_subscribed_to_a_metered_price_without_quantity(
    world: MoneyWorld,
) -> None:
    account = await world.account(
        "Metered Buyer Inc.", legal_entity="US01", currency="USD", country="US", state="OR"
    )
    deal = await world.deal(
        account,
        [Line("PLAT-STD", 1, LIST_PLATFORM_USD), Line("API-CALLS", 1, 2)],
        currency="USD",
        name="Platform with API calls",
    )

    await world.book(deal)

    customer = await _billing_customer(world, account)
    subscription = await _subscription_of(world, customer, deal)
    items = {i["price"]["metadata"].get("product_code"): i for i in subscription["items"]["data"]}
    metered = items["API-CALLS"]
    assert "quantity" not in metered
    assert metered["metadata"]["usage_metric"] == "api_calls"
    assert metered["price"]["recurring"]["usage_type"] == "metered"
    assert metered["price"]["recurring"]["aggregate_usage"] == "sum"
    assert metered["price"]["unit_amount"] == 2
    assert items["PLAT-STD"]["quantity"] == 1
    # Usage is billed in arrears: the first invoice bills the platform only.
    [first] = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    assert first["subtotal"] == LIST_PLATFORM_USD
