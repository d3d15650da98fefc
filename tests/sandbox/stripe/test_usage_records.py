"""Metered prices in the Stripe emulator, through its raw API: usage records increment and
set, keyed requests replay, timestamps outside the open period are refused, and the period's
sum is billed in arrears on the renewal invoice (test clock), its summary naming the invoice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.stripe import StripeEmulator
from sandbox.stripe.emulator import price_id_for
from tests.system_apis.billing.stripe.openapi_check import SpecValidator, ValidatingTransport

KEY = ("sk_test_erpgw_sandbox", "")
START = 1_790_000_000
DAY = 86_400


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


async def metered_subscription(api: httpx.AsyncClient) -> tuple[str, str, str]:
    """(clock, subscription, metered item) of a customer on a test clock at START."""
    clock = await ok(api.post("/v1/test_helpers/test_clocks", data={"frozen_time": START}))
    buyer = await ok(api.post("/v1/customers", data={"name": "Acme", "test_clock": clock["id"]}))
    subscription = await ok(
        api.post(
            "/v1/subscriptions",
            data={
                "customer": buyer["id"],
                "collection_method": "send_invoice",
                "days_until_due": "30",
                "items[0][price]": price_id_for("PLAT-STD", "USD"),
                "items[1][price]": price_id_for("API-CALLS", "USD"),
            },
        )
    )
    metered = next(
        item["id"]
        for item in subscription["items"]["data"]
        if item["price"]["recurring"]["usage_type"] == "metered"
    )
    return clock["id"], subscription["id"], metered


async def test_usage_is_summed_per_period_and_billed_in_arrears(api: httpx.AsyncClient) -> None:
    clock, subscription, item = await metered_subscription(api)
    records = f"/v1/subscription_items/{item}/usage_records"
    await ok(
        api.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance", data={"frozen_time": str(START + 100)}
        )
    )
    await ok(api.post(records, data={"quantity": "100", "timestamp": str(START)}))
    keyed = {"Idempotency-Key": "usage-1"}
    first = await ok(
        api.post(records, data={"quantity": "50", "timestamp": str(START)}, headers=keyed)
    )
    replay = await api.post(
        records, data={"quantity": "50", "timestamp": str(START)}, headers=keyed
    )
    # `set` replaces what is recorded at its timestamp; another timestamp adds.
    await ok(
        api.post(records, data={"quantity": "10", "timestamp": str(START + 1), "action": "set"})
    )
    await ok(
        api.post(records, data={"quantity": "7", "timestamp": str(START + 1), "action": "set"})
    )
    before = await api.post(records, data={"quantity": "1", "timestamp": str(START - 1)})
    future = await api.post(records, data={"quantity": "1", "timestamp": str(START + 160)})
    open_summaries = await ok(api.get(f"/v1/subscription_items/{item}/usage_record_summaries"))
    first_invoice = await ok(api.get("/v1/invoices", params={"subscription": subscription}))

    await ok(
        api.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance",
            data={"frozen_time": str(START + 32 * DAY)},
        )
    )
    invoices = await ok(api.get("/v1/invoices", params={"subscription": subscription}))
    summaries = await ok(api.get(f"/v1/subscription_items/{item}/usage_record_summaries"))

    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first["id"] and first["object"] == "usage_record"
    assert before.status_code == 400 and before.json()["error"]["param"] == "timestamp"
    assert future.status_code == 400 and future.json()["error"]["param"] == "timestamp"
    [current] = open_summaries["data"]
    assert (current["total_usage"], current["invoice"]) == (157, None)
    # The first invoice bills the licensed item only: usage is billed at the period's end.
    [created] = first_invoice["data"]
    assert [line["price"]["id"] for line in created["lines"]["data"]] == [
        price_id_for("PLAT-STD", "USD")
    ]
    renewal = next(i for i in invoices["data"] if i["billing_reason"] == "subscription_cycle")
    usage_line = next(
        line for line in renewal["lines"]["data"] if line["subscription_item"] == item
    )
    assert (usage_line["quantity"], usage_line["amount"]) == (157, 157 * 2)
    assert usage_line["period"] == {"start": START, "end": current["period"]["end"]}
    closed = next(s for s in summaries["data"] if s["invoice"] is not None)
    assert (closed["id"], closed["total_usage"], closed["invoice"]) == (
        current["id"],
        157,
        renewal["id"],
    )
    reopened = next(s for s in summaries["data"] if s["invoice"] is None)
    assert reopened["total_usage"] == 0 and reopened["period"]["start"] == current["period"]["end"]


async def test_metered_items_take_no_quantity_and_licensed_items_no_usage(
    api: httpx.AsyncClient,
) -> None:
    buyer = await ok(api.post("/v1/customers", data={"name": "Acme"}))
    with_quantity = await api.post(
        "/v1/subscriptions",
        data={
            "customer": buyer["id"],
            "items[0][price]": price_id_for("API-CALLS", "USD"),
            "items[0][quantity]": "3",
        },
    )
    subscription = await ok(
        api.post(
            "/v1/subscriptions",
            data={"customer": buyer["id"], "items[0][price]": price_id_for("SEAT", "USD")},
        )
    )
    licensed = subscription["items"]["data"][0]["id"]
    on_licensed = await api.post(
        f"/v1/subscription_items/{licensed}/usage_records", data={"quantity": "1"}
    )
    price = await ok(api.get(f"/v1/prices/{price_id_for('API-CALLS', 'EUR')}"))

    assert with_quantity.status_code == 400
    assert with_quantity.json()["error"]["param"] == "items[0][quantity]"
    assert on_licensed.status_code == 400
    assert price["recurring"]["usage_type"] == "metered"
    assert price["recurring"]["aggregate_usage"] == "sum"
    assert (price["unit_amount"], price["currency"]) == (2, "eur")


async def test_a_subscription_ending_at_its_period_end_bills_the_periods_usage(
    api: httpx.AsyncClient,
) -> None:
    clock, subscription, item = await metered_subscription(api)
    sub = await ok(api.get(f"/v1/subscriptions/{subscription}"))
    end = sub["current_period_end"]
    await ok(api.post(f"/v1/subscriptions/{subscription}", data={"cancel_at": str(end)}))
    await ok(
        api.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance",
            data={"frozen_time": str(START + 2 * DAY)},
        )
    )
    await ok(
        api.post(
            f"/v1/subscription_items/{item}/usage_records",
            data={"quantity": "420", "timestamp": str(START + DAY)},
        )
    )

    await ok(
        api.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance",
            data={"frozen_time": str(end + 2 * DAY)},
        )
    )
    ended = await ok(api.get(f"/v1/subscriptions/{subscription}"))
    invoices = await ok(api.get("/v1/invoices", params={"subscription": subscription}))
    summaries = await ok(api.get(f"/v1/subscription_items/{item}/usage_record_summaries"))

    assert ended["status"] == "canceled" and ended["ended_at"] == end
    # The last period's usage is billed on a final invoice, finalized like a cycle's; the
    # licensed item is not billed again.
    [final] = [i for i in invoices["data"] if i["billing_reason"] != "subscription_create"]
    assert final["status"] == "open"
    assert [(line["subscription_item"], line["quantity"]) for line in final["lines"]["data"]] == [
        (item, 420)
    ]
    assert (final["subtotal"], final["total"]) == (420 * 2, 420 * 2)
    [closed] = [s for s in summaries["data"] if s["invoice"] is not None]
    assert (closed["total_usage"], closed["invoice"]) == (420, final["id"])


async def test_canceling_now_with_invoice_now_bills_the_usage_so_far(
    api: httpx.AsyncClient,
) -> None:
    clock, subscription, item = await metered_subscription(api)
    await ok(
        api.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance",
            data={"frozen_time": str(START + 10 * DAY)},
        )
    )
    await ok(
        api.post(
            f"/v1/subscription_items/{item}/usage_records",
            data={"quantity": "75", "timestamp": str(START + 2 * DAY)},
        )
    )

    canceled = await ok(api.delete(f"/v1/subscriptions/{subscription}?invoice_now=true"))
    invoices = await ok(api.get("/v1/invoices", params={"subscription": subscription}))

    assert canceled["status"] == "canceled"
    [final] = [i for i in invoices["data"] if i["billing_reason"] != "subscription_create"]
    usage_lines = [line for line in final["lines"]["data"] if line["subscription_item"] == item]
    assert [(line["quantity"], line["amount"]) for line in usage_lines] == [(75, 150)]
    assert usage_lines[0]["period"] == {"start": START, "end": START + 10 * DAY}
    assert final["status"] == "open" and final["subtotal"] == 150


async def test_a_schedule_keeps_a_metered_item_without_quantity_and_refuses_one(
    api: httpx.AsyncClient,
) -> None:
    clock, subscription, _ = await metered_subscription(api)
    schedule = await ok(
        api.post("/v1/subscription_schedules", data={"from_subscription": subscription})
    )
    [current] = schedule["phases"]
    quantities = {item["price"]: item["quantity"] for item in current["items"]}
    assert quantities == {
        price_id_for("PLAT-STD", "USD"): 1,
        price_id_for("API-CALLS", "USD"): None,
    }
    boundary = current["end_date"]
    phases = {
        "phases[0][start_date]": str(current["start_date"]),
        "phases[0][end_date]": str(boundary),
        "phases[0][items][0][price]": price_id_for("PLAT-STD", "USD"),
        "phases[0][items][1][price]": price_id_for("API-CALLS", "USD"),
        "phases[1][items][0][price]": price_id_for("PLAT-STD", "USD"),
        "phases[1][items][0][quantity]": "2",
        "phases[1][items][1][price]": price_id_for("API-CALLS", "USD"),
        "phases[1][iterations]": "1",
    }
    refused = await api.post(
        f"/v1/subscription_schedules/{schedule['id']}",
        data={**phases, "phases[1][items][1][quantity]": "5"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "phases[1][items][1][quantity]"
    await ok(api.post(f"/v1/subscription_schedules/{schedule['id']}", data=phases))
    await ok(
        api.post(
            f"/v1/test_helpers/test_clocks/{clock}/advance", data={"frozen_time": boundary + DAY}
        )
    )
    renewed = await ok(api.get(f"/v1/subscriptions/{subscription}"))
    items = {item["price"]["id"]: item for item in renewed["items"]["data"]}
    assert items[price_id_for("PLAT-STD", "USD")]["quantity"] == 2
    assert "quantity" not in items[price_id_for("API-CALLS", "USD")]
