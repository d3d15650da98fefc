"""`/system/billing/v2` beside v1, through the gateway app: the same invoices with `Money`
amounts, per-line tax, discount and service period; the same entity limits; v1 deprecated by
the default lifecycle (Deprecation, Sunset 180 days on, Link to v2) in headers and OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.v1 import CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from sandbox.stripe.emulator import price_id_for
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)

SEATS = 3
SEAT_USD = 2_500
DEPRECATED_AT = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    async with app_client(gateway_app(settings_for(tmp_path, emulated=True))) as opened:
        yield opened


async def _us_invoice(client: AppClient) -> str:
    stripe = client.app.state.gateway.platforms.vendors["stripe"].client
    customer = await stripe.create_customer(
        CustomerCreate(legal_name="Seats Inc.", legal_entity="US01", currency="USD")
    )
    await stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            items=[SubscriptionItemInput(price_id=price_id_for("SEAT", "USD"), quantity=SEATS)],
        )
    )
    (invoice,) = (await stripe.list_invoices(customer_id=customer.id)).data
    return str(invoice.id)


def _usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


async def test_v2_serves_the_v1_invoice_with_money_objects(client: AppClient) -> None:
    invoice_id = await _us_invoice(client)
    _, token = await new_client_token(client, ["billing:read"])

    v1 = await client.get(f"/system/billing/v1/invoices/{invoice_id}", headers=bearer(token))
    v2 = await client.get(f"/system/billing/v2/invoices/{invoice_id}", headers=bearer(token))

    assert (v1.status_code, v2.status_code) == (200, 200), v2.text
    old, new = v1.json(), v2.json()
    assert new["id"] == old["id"] == invoice_id
    assert new["totals"] == {
        "subtotal": _usd(old["subtotal"]),
        "discount": _usd(0),
        "tax": _usd(old["tax"]),
        "total": _usd(old["total"]),
        "amount_due": _usd(old["amount_due"]),
        "amount_paid": _usd(old["amount_paid"]),
        "amount_remaining": _usd(old["amount_remaining"]),
    }
    assert new["totals"]["subtotal"] == _usd(SEATS * SEAT_USD)
    [line] = new["lines"]
    [old_line] = old["lines"]
    assert (line["quantity"], line["unit_price"]) == (SEATS, _usd(SEAT_USD))
    assert line["list_amount"] == line["amount"] == _usd(SEATS * SEAT_USD)
    assert line["discount"] == _usd(0)
    assert line["service_period"] == {
        "start": old_line["period_start"],
        "end": old_line["period_end"],
    }
    assert "currency" not in new and "unit_amount" not in line

    listed = await client.get(
        "/system/billing/v2/invoices", params={"limit": 50}, headers=bearer(token)
    )
    assert listed.status_code == 200
    assert invoice_id in [item["id"] for item in listed.json()["data"]]
    assert all(isinstance(i["totals"]["total"]["amount"], int) for i in listed.json()["data"])


async def test_v2_keeps_another_entitys_invoice_out_of_sight(client: AppClient) -> None:
    invoice_id = await _us_invoice(client)
    _, german = await new_client_token(client, ["billing:read"], entities=["DE01"])

    one = await client.get(f"/system/billing/v2/invoices/{invoice_id}", headers=bearer(german))
    listed = await client.get("/system/billing/v2/invoices", headers=bearer(german))

    assert one.status_code == 404
    assert one.headers["content-type"] == "application/problem+json"
    assert listed.status_code == 200
    assert invoice_id not in [item["id"] for item in listed.json()["data"]]
    assert {item["legal_entity"] for item in listed.json()["data"]} <= {"DE01"}


async def test_v1_is_deprecated_by_default_with_sunset_in_180_days(client: AppClient) -> None:
    _, token = await new_client_token(client, ["billing:read"])

    v1 = await client.get("/system/billing/v1/invoices", headers=bearer(token))
    v2 = await client.get("/system/billing/v2/invoices", headers=bearer(token))
    document = (await client.get("/docs/openapi.json")).json()

    assert v1.status_code == 200
    assert v1.headers["deprecation"] == f"@{int(DEPRECATED_AT.timestamp())}"
    sunset = parsedate_to_datetime(v1.headers["sunset"])
    assert sunset - DEPRECATED_AT == timedelta(days=180)
    assert '</system/billing/v2>; rel="successor-version"' in v1.headers["link"]
    assert "deprecation" not in v2.headers and "sunset" not in v2.headers
    old = document["paths"]["/system/billing/v1/invoices"]["get"]
    new = document["paths"]["/system/billing/v2/invoices"]["get"]
    assert old["deprecated"] is True
    assert old["x-sunset"] == "2027-06-05T00:00:00Z"
    assert old["x-successor"] == "/system/billing/v2"
    assert new.get("deprecated", False) is False
