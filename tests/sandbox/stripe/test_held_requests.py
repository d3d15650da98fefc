"""A request Stripe received whole is run whole, even when its caller gave up waiting: a
finalize held past the caller's timeout is replayed to the caller's retry under the same
Idempotency-Key, as Stripe does (https://docs.stripe.com/api/idempotent_requests)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.stripe import StripeEmulator
from tests.support.waiting import eventually
from tests.system_apis.billing.stripe.conftest import set_faults

HELD_MS = 600
CALLER_TIMEOUT = 0.2


async def _draft(vendor: httpx.AsyncClient) -> dict[str, Any]:
    """A draft invoice of 150.00 USD for a new customer."""
    customer = await vendor.post("/v1/customers", data={"name": "Held Request Ltd"})
    assert customer.status_code == 200, customer.text
    item = await vendor.post(
        "/v1/invoiceitems",
        data={"customer": customer.json()["id"], "amount": 15_000, "currency": "usd"},
    )
    assert item.status_code == 200, item.text
    draft = await vendor.post(
        "/v1/invoices",
        data={
            "customer": customer.json()["id"],
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "pending_invoice_items_behavior": "include",
        },
    )
    assert draft.status_code == 200, draft.text
    body: dict[str, Any] = draft.json()
    return body


async def test_a_finalize_held_past_the_callers_timeout_is_replayed_to_its_retry(
    base_url: str, vendor: httpx.AsyncClient
) -> None:
    draft = await _draft(vendor)
    finalize = f"/v1/invoices/{draft['id']}/finalize"
    params = {"expand[0]": "customer"}
    key = {"Idempotency-Key": "flow-1:send_one_time_invoice"}
    await set_faults(base_url, path="/v1/invoices/*/finalize", latency_ms=HELD_MS)

    with pytest.raises(httpx.ReadTimeout):
        await vendor.post(finalize, data=params, headers=key, timeout=CALLER_TIMEOUT)
    # Only the next requests go unheld: the one held is served when its time is up.
    await set_faults(base_url)
    await eventually(
        lambda: vendor.get(f"/v1/invoices/{draft['id']}"),
        lambda invoice: invoice.json()["status"] == "open",
        timeout=5.0,
        interval=0.05,
        what="the held finalize served",
    )
    retry = await vendor.post(finalize, data=params, headers=key)

    assert retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    invoice = retry.json()
    assert (invoice["id"], invoice["status"], invoice["amount_due"]) == (
        draft["id"],
        "open",
        15_000,
    )
    # The held request ran with its own parameters: its answer expands the customer.
    assert invoice["customer"]["id"] == draft["customer"]


async def test_a_request_whose_body_never_arrived_whole_is_not_run() -> None:
    emulator = StripeEmulator(rate_limit_per_second=None)
    headers = [
        (b"authorization", b"Bearer sk_test_erpgw_sandbox"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"idempotency-key", b"customer-1"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/customers",
        "raw_path": b"/v1/customers",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("stripe.test", 80),
    }
    arriving = [
        {"type": "http.request", "body": b"name=Cut+Sh", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await emulator.vendor(scope, receive, send)

    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://stripe.test", auth=("sk_test_erpgw_sandbox", "")
    ) as api:
        customers = (await api.get("/v1/customers")).json()["data"]
        # The key is free: nothing ran under it, so the whole request runs now.
        whole = await api.post(
            "/v1/customers", data={"name": "Cut Short"}, headers={"Idempotency-Key": "customer-1"}
        )
    assert sent == []
    assert [c["name"] for c in customers if c["name"].startswith("Cut")] == []
    assert whole.status_code == 200, whole.text
    assert "idempotent-replayed" not in whole.headers
    assert whole.json()["name"] == "Cut Short"
