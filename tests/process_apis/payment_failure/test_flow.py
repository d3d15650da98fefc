"""Payment failure end to end: a declined card in Stripe puts the NetSuite invoice and customer
in collections, shows the Salesforce account past due with its risk raised, and gives finance
one exception item; a later successful payment clears all of it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import UpstreamInvalid
from process_apis.payment_failure.flow import collections_step
from sandbox.stripe.webhooks import sign_webhook
from tests.process_apis.served_gateway import Customer, Served, served_gateway
from tests.support.waiting import eventually


async def _decline(world: Served, customer: Customer) -> None:
    with pytest.raises(UpstreamInvalid):
        await world.stripe.pay_invoice(
            customer.stripe_invoice, payment_method="pm_card_chargeDeclined"
        )


async def _collections_items(world: Served) -> list[dict[str, Any]]:
    return [item for item in await world.exceptions("finance") if item["flow_type"] ==
            "payment_failure"]


async def test_declined_payment_goes_to_collections_and_payment_clears_it(
    tmp_path: Path,
) -> None:
    async with served_gateway(tmp_path) as world:
        customer = await world.subscribe("acme", "acme-platform")
        await eventually(
            lambda: world.erp_invoices(customer.erp_customer),
            lambda invoices: len(invoices) == 1,
            what="the NetSuite invoice",
        )
        risk_before = (await world.salesforce.get_account(customer.crm_account)).risk_level

        await _decline(world, customer)
        items = await eventually(
            lambda: _collections_items(world), lambda found: len(found) == 1, what="the item"
        )
        await eventually(
            lambda: world.flows("payment_failure"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the payment-failure flow",
        )
        erp_invoice = (await world.erp_invoices(customer.erp_customer))[0]
        flagged_invoice = await world.invoice_collections_flag(erp_invoice.id)
        flagged_customer = await world.netsuite.get_customer(customer.erp_customer)
        past_due = await world.salesforce.get_account(customer.crm_account)

        await world.stripe.pay_invoice(customer.stripe_invoice, payment_method="pm_card_visa")
        await eventually(
            lambda: world.flows("payment_recovery"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the recovery flow",
        )
        resolved = await world.http.get(
            f"/process/v1/exceptions/{items[0]['id']}", headers=world.reader
        )
        cleared_invoice = await world.invoice_collections_flag(erp_invoice.id)
        cleared_customer = await world.netsuite.get_customer(customer.erp_customer)
        current = await world.salesforce.get_account(customer.crm_account)
        paid = (await world.erp_invoices(customer.erp_customer))[0]

        # Stripe delivers an old failure of the invoice late: it must not undo the payment.
        late = await world.http.post("/webhooks/stripe", **_late_failure(customer))
        skipped = await eventually(
            lambda: world.flows("payment_failure"),
            lambda flows: len(flows) == 2 and {f["status"] for f in flows} == {"succeeded"},
            what="the late failure flow",
        )
        after_late = await world.salesforce.get_account(customer.crm_account)
        flag_after_late = await world.invoice_collections_flag(erp_invoice.id)

    item = items[0]
    assert item["owner"] == "finance"
    assert item["status"] == "open"
    assert item["legal_entity"] == "US01"
    assert item["step"] == collections_step(customer.stripe_customer, customer.stripe_invoice)
    assert item["input"]["stripe_invoice_id"] == customer.stripe_invoice
    assert item["input"]["erp_invoice_id"] == erp_invoice.id
    assert item["input"]["attempt_count"] == 1
    assert item["input"]["amount_due"] == erp_invoice.total
    assert "attempt 1" in item["cause"]
    assert flagged_invoice == "in_collections"
    assert flagged_customer.payment_status == "past_due"
    assert past_due.payment_status == "past_due"
    assert past_due.risk_level in ("medium", "high")
    assert past_due.risk_level != risk_before

    assert resolved.json()["status"] == "resolved"
    assert customer.stripe_invoice in resolved.json()["resolution"]
    assert "paid" in resolved.json()["resolution"]
    assert cleared_invoice is None
    assert cleared_customer.payment_status == "current"
    assert current.payment_status == "current"
    assert paid.status == "paid"

    assert late.status_code == 200
    late_flow = next(f for f in skipped if f["id"] == "stripe:evt_late_failure")
    assert [s["name"] for s in late_flow["steps"]] == ["claim_invoice_version"]
    assert after_late.payment_status == "current"
    assert flag_after_late is None


def _late_failure(customer: Customer) -> dict[str, Any]:
    event = {
        "id": "evt_late_failure",
        "object": "event",
        "type": "invoice.payment_failed",
        "created": int(time.time()) - 3600,
        "data": {"object": {"id": customer.stripe_invoice, "object": "invoice",
                            "attempt_count": 1}},
    }
    body = json.dumps(event).encode()
    signature = sign_webhook(body, "whsec_erpgw_sandbox", int(time.time()))
    return {"content": body, "headers": {"Stripe-Signature": signature}}


async def test_each_failed_attempt_updates_the_one_item(tmp_path: Path) -> None:
    async with served_gateway(tmp_path) as world:
        customer = await world.subscribe("globex", "globex-enterprise")
        await _decline(world, customer)
        await eventually(
            lambda: _collections_items(world),
            lambda found: [i["input"]["attempt_count"] for i in found] == [1],
            what="the first attempt",
        )
        await _decline(world, customer)
        items = await eventually(
            lambda: _collections_items(world),
            lambda found: [i["input"]["attempt_count"] for i in found] == [2],
            what="the second attempt",
        )
        account = await world.salesforce.get_account(customer.crm_account)
        flows = await eventually(
            lambda: world.flows("payment_failure"),
            lambda found: [f["status"] for f in found] == ["succeeded", "succeeded"],
            what="both failure flows",
        )

    assert items[0]["occurrences"] == 2
    assert "attempt 2" in items[0]["cause"]
    assert account.payment_status == "past_due"
    assert account.risk_level == "high"
    assert len({f["id"] for f in flows}) == 2
