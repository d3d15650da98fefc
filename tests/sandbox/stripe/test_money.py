"""Stripe money behaviour of the emulator through its raw, form-encoded API: inline prices
(`price_data`), one-time items added to a subscription's first invoice (`add_invoice_items`),
and tax rates applied per line, rounded half up once per line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.stripe import StripeEmulator
from sandbox.stripe.emulator import price_id_for
from tests.system_apis.billing.stripe.openapi_check import SpecValidator, ValidatingTransport

KEY = ("sk_test_erpgw_sandbox", "")


@pytest.fixture
async def api(openapi: SpecValidator | None) -> AsyncIterator[httpx.AsyncClient]:
    emulator = StripeEmulator(rate_limit_per_second=None)
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=emulator.vendor)
    if openapi is not None:
        transport = ValidatingTransport(transport, openapi)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://stripe.test", auth=KEY
    ) as client:
        yield client


async def ok(api: httpx.AsyncClient, path: str, data: dict[str, str] | None = None) -> Any:
    response = await (api.post(path, data=data) if data is not None else api.get(path))
    assert response.status_code == 200, response.text
    return response.json()


async def product_of(api: httpx.AsyncClient, code: str) -> str:
    return str((await ok(api, f"/v1/prices/{price_id_for(code, 'EUR')}"))["product"])


async def test_inline_prices_one_time_items_and_vat_on_the_first_invoice(
    api: httpx.AsyncClient,
) -> None:
    customer = await ok(api, "/v1/customers", {"name": "Globex"})
    vat = await ok(api, "/v1/tax_rates", {
        "display_name": "VAT", "percentage": "19", "inclusive": "false", "country": "DE",
        "jurisdiction": "DE",
    })
    subscription = await ok(api, "/v1/subscriptions", {
        "customer": customer["id"],
        "collection_method": "send_invoice",
        "days_until_due": "14",
        "items[0][price_data][currency]": "eur",
        "items[0][price_data][product]": await product_of(api, "SEAT"),
        "items[0][price_data][unit_amount]": "1841",
        "items[0][price_data][recurring][interval]": "month",
        "items[0][quantity]": "3",
        "add_invoice_items[0][price_data][currency]": "eur",
        "add_invoice_items[0][price_data][product]": await product_of(api, "ONBOARD"),
        "add_invoice_items[0][price_data][unit_amount]": "100050",
        "add_invoice_items[0][metadata][deal_id]": "006DEAL",
        "default_tax_rates[0]": vat["id"],
    })
    invoice = await ok(api, f"/v1/invoices/{subscription['latest_invoice']}")

    assert subscription["items"]["data"][0]["price"]["unit_amount"] == 1841
    assert subscription["items"]["data"][0]["price"]["active"] is False
    lines = {line["type"]: line for line in invoice["lines"]["data"]}
    assert lines["invoiceitem"]["metadata"] == {"deal_id": "006DEAL"}
    assert lines["invoiceitem"]["amount"] == 100_050
    assert lines["subscription"]["amount"] == 3 * 1841
    # 19 % per line, half up: 5523 -> 1049.37 -> 1049; 100050 -> 19009.5 -> 19010.
    assert [t["amount"] for t in lines["subscription"]["tax_amounts"]] == [1049]
    assert [t["amount"] for t in lines["invoiceitem"]["tax_amounts"]] == [19_010]
    assert invoice["subtotal"] == 105_573
    assert invoice["tax"] == 20_059
    assert invoice["total"] == 125_632
    assert invoice["total_tax_amounts"] == [{
        "amount": 20_059, "inclusive": False, "tax_rate": vat["id"],
        "taxability_reason": None, "taxable_amount": 105_573,
    }]


async def test_a_tax_rate_is_required_to_be_well_formed(api: httpx.AsyncClient) -> None:
    missing = await api.post("/v1/tax_rates", data={"display_name": "VAT", "percentage": "19"})
    too_high = await api.post(
        "/v1/tax_rates", data={"display_name": "VAT", "percentage": "101", "inclusive": "false"}
    )
    unknown = await api.post("/v1/invoices", data={
        "customer": (await ok(api, "/v1/customers", {"name": "A"}))["id"],
        "default_tax_rates[0]": "txr_missing",
    })

    assert (missing.status_code, missing.json()["error"]["param"]) == (400, "inclusive")
    assert (too_high.status_code, too_high.json()["error"]["param"]) == (400, "percentage")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["param"] == "default_tax_rates[0]"
