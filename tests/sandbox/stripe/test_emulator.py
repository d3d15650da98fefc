"""Stripe behaviour of the emulator the client does not drive itself, through its raw API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import system_apis.billing as billing_package
import system_apis.billing.stripe as stripe_package
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


async def ok(response: Any) -> dict[str, Any]:
    result = await response
    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json()
    return body


async def customer(api: httpx.AsyncClient, **fields: str) -> dict[str, Any]:
    return await ok(api.post("/v1/customers", data={"name": "Acme", **fields}))


def test_public_names_are_exported() -> None:
    for package in (stripe_package, billing_package):
        assert all(hasattr(package, name) for name in package.__all__)
    assert sorted(stripe_package.__all__) == stripe_package.__all__


async def test_replays_the_first_answer_with_a_marker(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await api.post("/v1/customers", data={"name": "A"}, headers=headers)
    second = await api.post("/v1/customers", data={"name": "A"}, headers=headers)
    too_long = await api.post(
        "/v1/customers", data={"name": "A"}, headers={"Idempotency-Key": "k" * 256}
    )

    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert too_long.status_code == 400


async def test_pages_backwards_with_ending_before(api: httpx.AsyncClient) -> None:
    ids = [(await customer(api, email=f"c{n}@x.test"))["id"] for n in range(5)]
    newest_first = list(reversed(ids))
    before = await ok(
        api.get("/v1/customers", params={"ending_before": newest_first[3], "limit": 2})
    )
    after = await ok(
        api.get("/v1/customers", params={"starting_after": newest_first[1], "limit": 2})
    )
    both = await api.get(
        "/v1/customers", params={"ending_before": ids[0], "starting_after": ids[1]}
    )
    too_many = await api.get("/v1/customers", params={"limit": 101})

    assert [c["id"] for c in before["data"]] == newest_first[1:3] and before["has_more"]
    assert [c["id"] for c in after["data"]] == newest_first[2:4] and after["has_more"]
    assert (both.status_code, too_many.status_code) == (400, 400)


async def test_searches_with_next_page(api: httpx.AsyncClient) -> None:
    for n in range(3):
        await customer(api, **{"metadata[tier]": "gold", "email": f"g{n}@x.test"})
    await customer(api, **{"metadata[tier]": "silver"})
    first = await ok(
        api.get("/v1/customers/search", params={"query": "metadata['tier']:'gold'", "limit": 2})
    )
    rest = await ok(
        api.get(
            "/v1/customers/search",
            params={"query": "metadata['tier']:'gold'", "limit": 2, "page": first["next_page"]},
        )
    )
    bad = await api.get("/v1/customers/search", params={"query": "tier = gold"})

    assert first["object"] == "search_result" and first["has_more"]
    assert len(first["data"]) + len(rest["data"]) == 3 and rest["next_page"] is None
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query"


async def test_refuses_unknown_and_missing_parameters(api: httpx.AsyncClient) -> None:
    unknown = await api.post("/v1/customers", data={"pineapple": "1"})
    missing = await api.post("/v1/prices", data={"product": "prod_x"})

    assert unknown.json()["error"]["code"] == "parameter_unknown"
    assert unknown.json()["error"]["param"] == "pineapple"
    assert missing.json()["error"] == {
        **missing.json()["error"],
        "code": "parameter_missing",
        "param": "currency",
    }


async def test_subscription_items_change_with_prorations(api: httpx.AsyncClient) -> None:
    buyer = await customer(api)
    subscription = await ok(
        api.post(
            "/v1/subscriptions",
            data={
                "customer": buyer["id"],
                "items[0][price]": price_id_for("PLAT-STD", "USD"),
            },
        )
    )
    added = await ok(
        api.post(
            "/v1/subscription_items",
            data={
                "subscription": subscription["id"],
                "price": price_id_for("SEAT", "USD"),
                "quantity": "3",
                "proration_behavior": "none",
            },
        )
    )
    updated = await ok(api.post(f"/v1/subscription_items/{added['id']}", data={"quantity": "5"}))
    listed = await ok(
        api.get("/v1/subscription_items", params={"subscription": subscription["id"]})
    )
    deleted = await ok(api.delete(f"/v1/subscription_items/{added['id']}"))
    pending = await ok(
        api.get("/v1/invoiceitems", params={"customer": buyer["id"], "pending": "true"})
    )
    yearly = await api.post(
        f"/v1/subscriptions/{subscription['id']}",
        data={
            "items[0][price]": price_id_for("PLAT-ENT", "USD"),
        },
    )

    assert (added["quantity"], updated["quantity"]) == (3, 5)
    assert listed["data"][0]["id"] == added["id"]
    assert deleted == {"id": added["id"], "object": "subscription_item", "deleted": True}
    assert sorted(i["amount"] for i in pending["data"]) == [-12_500, -7_500, 12_500]
    assert yearly.status_code == 400  # one billing interval per subscription


async def test_default_incomplete_waits_for_payment(api: httpx.AsyncClient) -> None:
    buyer = await customer(api)
    subscription = await ok(
        api.post(
            "/v1/subscriptions",
            data={
                "customer": buyer["id"],
                "items[0][price]": price_id_for("SEAT", "USD"),
                "payment_behavior": "default_incomplete",
                "expand[]": "latest_invoice.payment_intent",
            },
        )
    )
    invoice = subscription["latest_invoice"]
    intent = await ok(api.get(f"/v1/payment_intents/{invoice['payment_intent']['id']}"))
    await ok(api.post(f"/v1/invoices/{invoice['id']}/pay"))
    after = await ok(api.get(f"/v1/subscriptions/{subscription['id']}"))

    assert subscription["status"] == "incomplete" and invoice["status"] == "open"
    assert intent["status"] == "requires_payment_method" and intent["amount"] == 2_500
    assert after["status"] == "active"


async def test_drafts_can_be_edited_and_deleted(api: httpx.AsyncClient) -> None:
    buyer = await customer(api)
    item = await ok(
        api.post(
            "/v1/invoiceitems",
            data={
                "customer": buyer["id"],
                "amount": "990",
                "currency": "usd",
            },
        )
    )
    draft = await ok(
        api.post(
            "/v1/invoices",
            data={
                "customer": buyer["id"],
                "pending_invoice_items_behavior": "include",
            },
        )
    )
    edited = await ok(api.post(f"/v1/invoices/{draft['id']}", data={"metadata[po]": "PO-7"}))
    gone = await ok(api.delete(f"/v1/invoices/{draft['id']}"))
    again = await ok(api.get(f"/v1/invoiceitems/{item['id']}"))
    removed = await ok(api.delete(f"/v1/invoiceitems/{item['id']}"))

    assert edited["metadata"] == {"po": "PO-7"} and edited["total"] == 990
    assert gone["deleted"] is True and again["invoice"] is None
    assert removed["deleted"] is True


async def test_a_refused_invoice_create_leaves_no_draft(api: httpx.AsyncClient) -> None:
    buyer = await customer(api)
    archived = await ok(
        api.post(
            "/v1/tax_rates",
            data={"display_name": "Old VAT", "percentage": "19", "inclusive": "false"},
        )
    )
    await ok(api.post(f"/v1/tax_rates/{archived['id']}", data={"active": "false"}))
    await ok(api.post("/v1/invoices", data={"customer": buyer["id"], "currency": "eur"}))

    refused = [
        await api.post(
            "/v1/invoices",
            data={"customer": buyer["id"], "default_tax_rates[0]": archived["id"]},
        ),
        # The customer bills in euro since its first invoice.
        await api.post("/v1/invoices", data={"customer": buyer["id"], "currency": "usd"}),
        await api.post(
            "/v1/invoices", data={"customer": buyer["id"], f"metadata[{'k' * 41}]": "v"}
        ),
    ]
    invoices = await ok(api.get("/v1/invoices", params={"customer": buyer["id"]}))
    events = await ok(api.get("/v1/events", params={"type": "invoice.created"}))

    assert [r.status_code for r in refused] == [400, 400, 400], [r.text for r in refused]
    assert [i["currency"] for i in invoices["data"]] == ["eur"]
    assert len([e for e in events["data"] if e["data"]["object"]["customer"] == buyer["id"]]) == 1


async def test_voiding_a_credit_note_restores_the_amount_due(api: httpx.AsyncClient) -> None:
    buyer = await customer(api)
    await ok(
        api.post(
            "/v1/invoiceitems", data={"customer": buyer["id"], "amount": "5000", "currency": "usd"}
        )
    )
    draft = await ok(
        api.post(
            "/v1/invoices",
            data={
                "customer": buyer["id"],
                "pending_invoice_items_behavior": "include",
            },
        )
    )
    await ok(api.post(f"/v1/invoices/{draft['id']}/finalize"))
    note = await ok(api.post("/v1/credit_notes", data={"invoice": draft["id"], "amount": "1500"}))
    reduced = await ok(api.get(f"/v1/invoices/{draft['id']}"))
    voided = await ok(api.post(f"/v1/credit_notes/{note['id']}/void"))
    restored = await ok(api.get(f"/v1/invoices/{draft['id']}"))
    too_much = await api.post("/v1/credit_notes", data={"invoice": draft["id"], "amount": "9999"})

    assert (note["type"], reduced["amount_due"]) == ("pre_payment", 3_500)
    assert voided["status"] == "void" and restored["amount_due"] == 5_000
    assert too_much.status_code == 400


async def test_customer_deletion_leaves_a_tombstone(api: httpx.AsyncClient) -> None:
    buyer = await customer(api)
    deleted = await ok(api.delete(f"/v1/customers/{buyer['id']}"))
    fetched = await ok(api.get(f"/v1/customers/{buyer['id']}"))
    assert deleted == fetched == {"id": buyer["id"], "object": "customer", "deleted": True}


async def test_events_record_previous_attributes(api: httpx.AsyncClient) -> None:
    buyer = await customer(api, email="old@x.test")
    await ok(api.post(f"/v1/customers/{buyer['id']}", data={"email": "new@x.test"}))
    events = await ok(api.get("/v1/events", params={"type": "customer.*"}))

    updated, created = events["data"]
    assert (updated["type"], created["type"]) == ("customer.updated", "customer.created")
    assert updated["data"]["previous_attributes"] == {"email": "old@x.test"}
    assert updated["data"]["object"]["email"] == "new@x.test"
    assert updated["request"]["id"].startswith("req_")
