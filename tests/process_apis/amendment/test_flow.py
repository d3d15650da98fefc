"""Subscription amendments through the gateway against the emulators: a prorated increase is
invoiced in billing and the ERP, a decrease is credited in the ERP, a replay is one update, and
a bad request lists every problem."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from process_apis.engine.store import utcnow
from tests.process_apis.linked_customer import Acme, seed_acme, vendor
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    settings = settings_for(tmp_path, emulated=True, ERPGW_EXECUTOR_ID="amend-test")
    async with app_client(gateway_app(settings)) as opened:
        yield opened


@pytest.fixture
async def writer(client: AppClient) -> dict[str, str]:
    scopes = ["process:write", "process:read"]
    return bearer((await new_client_token(client, scopes, entities=["US01"]))[1])


def seats(acme: Acme, quantity: int, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": acme.subscription_id,
        "changes": [{"product_code": "SEAT", "quantity": quantity}],
        "effective_date": utcnow().date().isoformat(),
        **extra,
    }


async def amend(client: AppClient, who: dict[str, str], body: dict[str, Any], key: str) -> Any:
    return await client.post(
        "/process/v1/subscription-amendments",
        json=body,
        headers={**who, "Idempotency-Key": key},
    )


async def finished(client: AppClient, who: dict[str, str], location: str) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        flow: dict[str, Any] = (await client.get(location, headers=who)).json()
        return flow if flow.get("status") in ("succeeded", "failed") else None

    flow: dict[str, Any] = await eventually(ended, timeout=30.0, what=f"{location} ended")
    assert flow.get("status") == "succeeded", flow
    return flow


def step_ids(flow: dict[str, Any]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for step in flow["steps"]:
        ids.update(step["external_ids"])
    return ids


async def test_prorated_increase_is_invoiced_in_billing_and_erp_once(
    client: AppClient, writer: dict[str, str]
) -> None:
    acme = await seed_acme(client)
    billing, erp = vendor(client, "stripe"), vendor(client, "netsuite")

    first = await amend(client, writer, seats(acme, 30), "amend-up-1")
    replay = await amend(client, writer, seats(acme, 30), "amend-up-2")
    flow = await finished(client, writer, first.headers["location"])

    assert first.status_code == 202, first.text
    assert first.json()["created"] is True
    assert (replay.status_code, replay.json()["created"]) == (202, False)
    assert replay.headers["location"] == first.headers["location"]
    subscription = await billing.get_subscription(acme.subscription_id)
    assert {i.product_code: i.quantity for i in subscription.items} == {"PLAT-STD": 1, "SEAT": 30}
    invoices = (await billing.list_invoices(subscription_id=acme.subscription_id)).data
    proration = next(i for i in invoices if i.id != acme.stripe_invoice_id)
    assert len(invoices) == 2
    assert proration.status == "open"
    assert 0 < proration.total <= 10 * 2_500
    assert any("Remaining time on 30" in (line.description or "") for line in proration.lines)
    posted = await erp.get_invoice(f"eid:{proration.id}")
    assert (posted.total, posted.currency, posted.legal_entity) == (proration.total, "USD", "US01")
    assert posted.customer_id == acme.erp_customer_id
    ids = step_ids(flow)
    assert (ids["stripe_invoice"], ids["netsuite_invoice"]) == (proration.id, posted.id)
    deal = await vendor(client, "salesforce").get_deal(acme.deal_id)
    assert deal.integration_status == "synced"

    again = await amend(client, writer, seats(acme, 30), "amend-up-3")
    assert again.json()["created"] is False
    assert len((await billing.list_invoices(subscription_id=acme.subscription_id)).data) == 2


async def test_prorated_decrease_is_credited_in_the_erp(
    client: AppClient, writer: dict[str, str]
) -> None:
    acme = await seed_acme(client)
    billing, erp = vendor(client, "stripe"), vendor(client, "netsuite")

    response = await amend(client, writer, seats(acme, 10), "amend-down-1")
    flow = await finished(client, writer, response.headers["location"])

    invoices = (await billing.list_invoices(subscription_id=acme.subscription_id)).data
    proration = next(i for i in invoices if i.id != acme.stripe_invoice_id)
    assert -10 * 2_500 <= proration.total < 0
    memos = (await erp.list_credit_memos(customer_id=acme.erp_customer_id)).data
    assert [(m.amount, m.currency, m.legal_entity) for m in memos] == [
        (-proration.total, "USD", "US01")
    ]
    # The invoice posting's one path: the credit memo is keyed by the billing invoice.
    assert memos[0].external_id == f"credit:{proration.id}"
    assert memos[0].invoice_id == acme.erp_invoice_id
    assert "netsuite_invoice" not in step_ids(flow)


async def test_amendment_without_proration_bills_nothing_now(
    client: AppClient, writer: dict[str, str]
) -> None:
    acme = await seed_acme(client)
    billing = vendor(client, "stripe")

    response = await amend(client, writer, seats(acme, 25, prorate=False), "amend-flat-1")
    flow = await finished(client, writer, response.headers["location"])

    subscription = await billing.get_subscription(acme.subscription_id)
    assert {i.product_code: i.quantity for i in subscription.items}["SEAT"] == 25
    assert len((await billing.list_invoices(subscription_id=acme.subscription_id)).data) == 1
    assert [s["name"] for s in flow["steps"]] == [
        "time_until_effective",
        "update_subscription",
        "find_crm_account",
        "find_erp_customer",
        "find_deal_order",
        "amend_sales_order",
        "mark_deal_synced",
    ]


async def test_invalid_amendment_lists_every_problem(
    client: AppClient, writer: dict[str, str]
) -> None:
    acme = await seed_acme(client)
    long_ago = (utcnow().date() - timedelta(days=3)).isoformat()

    unknown = await amend(
        client,
        writer,
        {
            "subscription_id": "sub_nope",
            "changes": [{"price_id": "price_nope", "quantity": -2}],
            "effective_date": long_ago,
        },
        "bad-1",
    )
    mixed = await amend(
        client,
        writer,
        {
            "subscription_id": acme.subscription_id,
            "changes": [
                {"product_code": "NOPE", "quantity": 3},
                {"product_code": "SEAT", "quantity": -1},
                {"product_code": "PLAT-STD", "remove": True},
            ],
            "effective_date": utcnow().date().isoformat(),
        },
        "bad-2",
    )

    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert {e["pointer"] for e in unknown.json()["errors"]} == {
        "/subscription_id",
        "/changes/0/price_id",
        "/changes/0/quantity",
        "/effective_date",
    }
    assert mixed.status_code == 422
    assert {e["pointer"] for e in mixed.json()["errors"]} == {
        "/changes/0/product_code",
        "/changes/1/quantity",
    }
    subscription = await vendor(client, "stripe").get_subscription(acme.subscription_id)
    assert {i.product_code: i.quantity for i in subscription.items} == {"PLAT-STD": 1, "SEAT": 20}
