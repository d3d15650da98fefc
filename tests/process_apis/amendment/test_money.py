"""Amendments up and down of a discounted deal: billing, the ERP and the CRM keep the same
money (no false exception, receivables equal billing's open amount, the deal amount follows)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from system_apis.tax import line_tax
from tests.process_apis.money_world import Line, MoneyWorld, money_world

pytestmark = pytest.mark.timeout(240)

PLATFORM = 40_000
SEAT = 2_000
"""Both sold below list (500.00 and 25.00 USD)."""


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[MoneyWorld]:
    async with money_world(tmp_path) as opened:
        yield opened


async def billing_open_amount(world: MoneyWorld, customer: str) -> int:
    """What the customer owes in billing: open invoices less the credit balance Stripe holds
    from a crediting proration (a negative customer balance)."""
    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    owed = sum(i["amount_remaining"] for i in invoices if i["status"] == "open")
    balance = next(
        c["balance"] for c in await world.stripe_raw.objects("/v1/customers")
        if c["id"] == customer
    )
    return int(owed + balance)


async def test_amendments_up_and_down_keep_every_system_equal(world: MoneyWorld) -> None:
    account = await world.account(
        "Amending Corp", legal_entity="US01", currency="USD", country="US", state="OR"
    )
    deal = await world.deal(
        account, [Line("PLAT-STD", 1, PLATFORM), Line("SEAT", 10, SEAT)],
        currency="USD", name="Amended rollout",
    )
    await world.book(deal)
    customer = (await world.stripe_raw.customers_of(account))[0]["id"]
    subscription = (await world.stripe_raw.objects("/v1/subscriptions", customer=customer))[0]
    erp_customer = (await world.salesforce.get_deal(deal)).erp_order_number

    up = await world.amend(subscription["id"], [{"product_code": "SEAT", "quantity": 15}])
    down = await world.amend(subscription["id"], [{"product_code": "SEAT", "quantity": 12}])
    await world.postings_settled()

    # Billing: the seats keep their sold price; one proration invoice each way.
    items = (await world.stripe.get_subscription(subscription["id"])).items
    assert sorted((i.product_code, i.quantity, i.unit_amount) for i in items) == [
        ("PLAT-STD", 1, PLATFORM), ("SEAT", 12, SEAT),
    ]
    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    prorations = [i for i in invoices if i["billing_reason"] != "subscription_create"]
    assert len(prorations) == 2
    charged = next(i for i in prorations if i["total"] > 0)
    credited = next(i for i in prorations if i["total"] < 0)
    assert 0 < charged["total"] <= 5 * SEAT
    assert -3 * SEAT <= credited["total"] < 0
    # ERP: the charge is posted once, by its billing id, with the billing total; the credit
    # is a credit memo of the same amount; the order follows the subscription.
    posted = await world.erp_invoice_of(charged["id"])
    assert posted.total == charged["total"]
    assert up["steps"][-2]["name"] == "post_erp_invoice"
    assert {s["name"] for s in down["steps"]} >= {"book_erp_credit", "amend_sales_order"}
    order = (await world.sales_orders_of(erp_customer))[0]
    assert sorted((ln.product_code, ln.quantity, ln.amount) for ln in order.lines) == [
        ("PLAT-STD", 1, PLATFORM), ("SEAT", 12, 12 * SEAT),
    ]
    memos = (await world.netsuite.list_credit_memos(customer_id=order.customer_id)).data
    assert [(m.amount, m.external_id) for m in memos] == [
        (-credited["total"], f"credit:{credited['id']}")
    ]
    erp_invoices = (await world.netsuite.list_invoices(customer_id=order.customer_id)).data
    assert sorted(i.external_id or "" for i in erp_invoices) == sorted(
        i["id"] for i in invoices if i["total"] > 0
    )
    # Receivables: the ERP's balance is billing's open amount.
    receivables = await world.netsuite.receivables_balance(order.customer_id)
    assert receivables.balance.amount == await billing_open_amount(world, customer)
    # CRM: the deal shows what it is booked at now.
    opportunity = await world.salesforce.get_deal(deal)
    assert opportunity.contract_amount == PLATFORM + 12 * SEAT == order.total
    assert await world.open_exceptions() == []


async def test_a_taxed_customers_amendments_carry_the_same_tax_in_billing_and_the_erp(
    world: MoneyWorld,
) -> None:
    account = await world.account(
        "Hamburger Handel GmbH", legal_entity="DE01", currency="EUR", country="DE",
        tax_id="DE136695976",
    )
    deal = await world.deal(
        account, [Line("PLAT-STD", 1, 41_841), Line("SEAT", 7, 1_841)],
        currency="EUR", name="Hamburg rollout",
    )
    await world.book(deal)
    customer = (await world.stripe_raw.customers_of(account))[0]["id"]
    subscription = (await world.stripe_raw.objects("/v1/subscriptions", customer=customer))[0]

    await world.amend(subscription["id"], [{"product_code": "SEAT", "quantity": 11}])
    await world.amend(subscription["id"], [{"product_code": "SEAT", "quantity": 9}])
    await world.postings_settled()

    invoices = await world.stripe_raw.objects("/v1/invoices", customer=customer)
    assert len(invoices) == 3
    for invoice in invoices:
        # 19 % on each line, rounded half up once per line (prorations included).
        assert invoice["tax"] == sum(
            line_tax(ln["amount"], 1900) for ln in invoice["lines"]["data"]
        )
    charged = [i for i in invoices if i["total"] > 0]
    for invoice in charged:
        posted = await world.erp_invoice_of(invoice["id"])
        assert (posted.total, posted.tax) == (invoice["total"], invoice["tax"])
    opportunity = await world.salesforce.get_deal(deal)
    order = (await world.sales_orders_of(opportunity.erp_order_number))[0]
    receivables = await world.netsuite.receivables_balance(order.customer_id)
    assert receivables.balance.amount == await billing_open_amount(world, customer)
    assert opportunity.contract_amount == 41_841 + 9 * 1_841 == order.total
    assert await world.open_exceptions() == []
