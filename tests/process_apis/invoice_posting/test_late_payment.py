"""A payment that reaches the ERP after a credit memo settled part of its invoice: the customer
paid the whole invoice in Stripe, NetSuite refuses to apply more than the invoice has open, so
the customer payment applies what is open and keeps the rest as unapplied customer credit."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from contracts.v1 import CreditNoteCreate
from gateway import storage
from process_apis.cross_references import CrossReferences
from process_apis.customer_master.flow import CUSTOMER, canonical_customer_id
from tests.process_apis.served_gateway import ORDER_TOTAL, Served, served_gateway
from tests.support.waiting import eventually

PAYMENTS = "/services/rest/record/v1/customerPayment*"
CREDIT = ORDER_TOTAL // 5


async def _faults(world: Served, **faults: Any) -> None:
    response = await world.http.post(
        f"{world.base_url}/_sandbox/netsuite/_emulator/faults", json=faults
    )
    assert response.status_code == 200, response.text


async def _erp_payment(world: Served, external_id: str) -> dict[str, Any]:
    """The customer payment as NetSuite's record API shows it (with applied and unapplied)."""
    response = await world.netsuite._transport.send(
        "GET",
        f"/services/rest/record/v1/customerPayment/eid:{external_id}",
        params={"expandSubResources": "true"},
        what="read the customer payment",
    )
    found: dict[str, Any] = response.json()
    return found


async def _link_erp_customer(world: Served, crm_account: str, erp_customer: str) -> None:
    """The customer master's link of the account to its NetSuite customer, which the
    reconciliation matches credits by (the served world creates the customer directly)."""
    engine = storage.create_engine(world.database_url)
    try:
        await CrossReferences(engine).link(
            CUSTOMER,
            canonical_customer_id(crm_account),
            "netsuite",
            erp_customer,
            legal_entity="US01",
        )
    finally:
        await engine.dispose()


async def _reconcile(world: Served, headers: dict[str, str]) -> dict[str, Any]:
    started = await world.http.post(
        "/process/v1/reconciliations",
        json={"kinds": ["payments", "credits"], "settle_seconds": 0},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert started.status_code == 202, started.text

    async def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = (
            await world.http.get(started.headers["location"], headers=headers)
        ).json()
        return run if run.get("status") in ("completed", "failed") else None

    run: dict[str, Any] = await eventually(ended, timeout=90.0, interval=0.2, what="reconcile")
    return run


async def test_a_payment_posted_after_a_credit_memo_keeps_the_rest_unapplied(
    tmp_path: Path,
) -> None:
    async with served_gateway(tmp_path) as world:
        ops = await world.headers_for(("ops:read", "ops:replay", "process:read", "process:write"))
        customer = await world.subscribe("acme", "acme-platform")
        await _link_erp_customer(world, customer.crm_account, customer.erp_customer)
        await eventually(
            lambda: world.erp_invoices(customer.erp_customer),
            lambda invoices: len(invoices) == 1,
            what="the NetSuite invoice",
        )
        # The payment posting fails in NetSuite, so it waits for an operator's retry.
        await _faults(world, error_rate=1.0, error_status=400, path=PAYMENTS)
        await world.stripe.pay_invoice(customer.stripe_invoice, payment_method="pm_card_visa")
        await eventually(
            lambda: world.flows("payment_posting"),
            lambda flows: [f["status"] for f in flows] == ["failed"],
            what="the failed payment posting",
        )
        # Meanwhile a service credit on the paid invoice is booked against the ERP invoice.
        await world.stripe.create_credit_note(
            CreditNoteCreate(
                invoice_id=customer.stripe_invoice,
                currency="USD",
                amount=CREDIT,
                reason="product_unsatisfactory",
                memo="Service credit",
            )
        )
        await eventually(
            lambda: world.flows("credit_posting"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the credit posting",
        )
        await _faults(world)
        queue = (await world.http.get("/process/v1/exceptions", headers=ops)).json()["data"]
        failed = [e for e in queue if e["flow_type"] == "payment_posting"]
        retried = await world.http.post(
            f"/process/v1/exceptions/{failed[0]['id']}/retry",
            headers={**ops, "Idempotency-Key": uuid.uuid4().hex},
        )
        await eventually(
            lambda: world.flows("payment_posting"),
            lambda flows: [f["status"] for f in flows] == ["succeeded"],
            what="the retried payment posting",
        )
        billed = await world.stripe.get_invoice(customer.stripe_invoice)
        invoice = (await world.erp_invoices(customer.erp_customer))[0]
        payment = await _erp_payment(world, f"pay:{customer.stripe_invoice}")
        open_now = [
            e
            for e in (await world.http.get("/process/v1/exceptions", headers=ops)).json()["data"]
            if e["status"] == "open"
        ]
        run = await _reconcile(world, ops)

    assert retried.status_code == 202, retried.text
    assert billed.amount_paid == ORDER_TOTAL
    assert (invoice.status, invoice.amount_remaining, invoice.amount_paid) == (
        "paid",
        0,
        ORDER_TOTAL,
    )
    lines = payment["apply"]["items"]
    assert [(line["doc"]["id"], line["amount"]) for line in lines] == [
        (invoice.id, (ORDER_TOTAL - CREDIT) / 100)
    ]
    assert (payment["payment"], payment["applied"], payment["unapplied"]) == (
        ORDER_TOTAL / 100,
        (ORDER_TOTAL - CREDIT) / 100,
        CREDIT / 100,
    )
    assert open_now == []
    assert run["status"] == "completed", run
    assert run["summary"]["mismatches"] == 0, json.dumps(run)
