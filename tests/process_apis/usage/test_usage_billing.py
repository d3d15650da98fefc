"""Usage-based billing end to end, on the served gateway and its emulators: usage records
reported through the gateway are checked one by one, deduplicated within and across batches,
pushed to Stripe once, billed by Stripe when the period closes (test clock), and posted to the
NetSuite invoice with the usage line at quantity x unit price; another legal entity's client
neither reports nor reads this subscription's usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts.v1 import (
    CustomerCreate,
    SalesOrderCreate,
    SalesOrderLine,
    SubscriptionCreate,
    SubscriptionItemInput,
)
from gateway import storage
from gateway.clients import ClientRegistry
from sandbox.salesforce.ids import seeded_id
from sandbox.stripe.emulator import price_id_for
from tests.process_apis.served_gateway import Served, served_gateway
from tests.support.waiting import eventually

PLATFORM_USD = 50_000
API_CALL_USD = 2
GRACE = 3600


async def _headers(
    tmp_path: Path, world: Served, *, scopes: list[str], entities: list[str]
) -> dict[str, str]:
    engine = storage.create_engine(f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    try:
        created = await ClientRegistry(engine).create(
            name=f"usage-{'-'.join(entities)}", scopes=scopes, tier="gold", entities=entities
        )
    finally:
        await engine.dispose()
    token = await world.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client.client_id, created.client_secret),
    )
    token.raise_for_status()
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def _metered_customer(world: Served, start: datetime) -> tuple[str, str, str, str]:
    """A US01 customer on a test clock at `start`, its quote-to-cash order and a subscription
    of PLAT-STD and metered API-CALLS; returns (clock, subscription, item, ERP customer)."""
    account = seeded_id("Account", "acme")
    opportunity = seeded_id("Opportunity", "acme-platform")
    create = CustomerCreate(legal_name="Acme Inc.", legal_entity="US01", currency="USD")
    erp_customer = await world.netsuite.upsert_customer(create, external_id=f"cus-{account}")
    await world.netsuite.upsert_sales_order(
        SalesOrderCreate(
            customer_id=erp_customer.id,
            legal_entity="US01",
            currency="USD",
            order_date=start.date(),
            external_id=f"q2c:{opportunity}",
            deal_id=opportunity,
            lines=[
                SalesOrderLine(
                    product_code="PLAT-STD",
                    quantity=1,
                    unit_amount=PLATFORM_USD,
                    amount=PLATFORM_USD,
                ),
                SalesOrderLine(
                    product_code="API-CALLS",
                    quantity=1,
                    unit_amount=API_CALL_USD,
                    amount=API_CALL_USD,
                ),
            ],
        )
    )
    clock = await world.stripe.create_test_clock(start, name="usage")
    customer = await world.stripe.create_customer(
        create, crm_account_id=account, test_clock=clock.id
    )
    subscription = await world.stripe.create_subscription(
        SubscriptionCreate(
            customer_id=customer.id,
            currency="USD",
            items=[
                SubscriptionItemInput(price_id=price_id_for("PLAT-STD", "USD")),
                SubscriptionItemInput(
                    price_id=price_id_for("API-CALLS", "USD"),
                    product_code="API-CALLS",
                    usage_metric="api_calls",
                ),
            ],
            collection_method="send_invoice",
            days_until_due=30,
            deal_id=opportunity,
            legal_entity="US01",
        )
    )
    metered = next(item for item in subscription.items if item.usage_metric)
    return clock.id, subscription.id, metered.id, erp_customer.id


def _record(
    record_id: str, subscription: str, quantity: int, at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "id": record_id,
        "subscription_id": subscription,
        "metric": "api_calls",
        "quantity": quantity,
        "timestamp": at.isoformat(),
        **extra,
    }


async def _summaries(world: Served, item: str) -> list[dict[str, Any]]:
    response = await world.stripe.transport.call(
        "GET",
        f"/v1/subscription_items/{item}/usage_record_summaries",
        template="/v1/subscription_items/{id}/usage_record_summaries",
        what="usage summaries",
    )
    import json

    data: list[dict[str, Any]] = json.loads(response)["data"]
    return data


async def test_usage_is_counted_once_pushed_once_invoiced_and_posted(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=2)
    async with served_gateway(tmp_path) as world:
        clock, subscription, item, erp_customer = await _metered_customer(world, start)
        usage = await _headers(
            tmp_path,
            world,
            scopes=["usage:write", "process:read", "process:write"],
            entities=["US01"],
        )
        german = await _headers(
            tmp_path, world, scopes=["usage:write", "process:read"], entities=["DE01"]
        )
        at = now - timedelta(minutes=30)
        first = await world.http.post(
            "/process/v1/usage-records",
            headers=usage,
            json={
                "records": [
                    _record("r1", subscription, 100, at),
                    _record("r2", subscription, 200, at),
                    _record("r1", subscription, 100, at),  # the same record twice in a batch
                    _record("r3", subscription, 300, at),
                    _record("late", subscription, 7, start - timedelta(seconds=GRACE + 60)),
                    _record("future", subscription, 7, now + timedelta(hours=1)),
                    {**_record("bad-metric", subscription, 7, at), "metric": "seats"},
                    {**_record("negative", subscription, 7, at), "quantity": -1},
                    _record("grace", subscription, 400, start - timedelta(seconds=GRACE - 60)),
                ]
            },
        )
        second = await world.http.post(
            "/process/v1/usage-records",
            headers=usage,
            json={
                "records": [
                    _record("r2", subscription, 200, at),
                    _record("r4", subscription, 5, at),
                ]
            },
        )
        foreign = await world.http.post(
            "/process/v1/usage-records",
            headers=german,
            json={"records": [_record("x1", subscription, 1_000_000, at)]},
        )
        foreign_read = await world.http.get(f"/process/v1/usage/{subscription}", headers=german)
        unknown_read = await world.http.get("/process/v1/usage/sub_nothing", headers=german)

        flushed = await world.http.post("/process/v1/usage/flush", headers=usage)
        flow_id = flushed.json()["flow_id"]
        push = await eventually(
            lambda: world.http.get(f"/process/v1/flows/{flow_id}", headers=world.reader),
            lambda r: r.json()["status"] == "succeeded",
            what="the usage push",
        )
        again = await world.http.post("/process/v1/usage/flush", headers=usage)
        before_close = await world.http.get(f"/process/v1/usage/{subscription}", headers=usage)
        open_summary = (await _summaries(world, item))[0]

        # The period closes: Stripe renews the subscription and bills the usage in arrears.
        await world.stripe.advance_test_clock(clock, start + timedelta(days=32))
        renewal = await eventually(
            lambda: world.erp_invoices(erp_customer),
            lambda invoices: any(
                line.product_code == "API-CALLS" for i in invoices for line in i.lines
            ),
            timeout=30,
            what="the NetSuite invoice of the usage",
        )
        after_close = await world.http.get(f"/process/v1/usage/{subscription}", headers=usage)
        started = await world.http.post(
            "/process/v1/reconciliations",
            json={"kinds": ["usage"], "legal_entity": "US01", "settle_seconds": 0},
            headers={**usage, "Idempotency-Key": "usage-reconciliation"},
        )
        reconciled = await eventually(
            lambda: world.http.get(started.headers["location"], headers=usage),
            lambda r: r.json().get("status") in ("completed", "failed"),
            what="the usage reconciliation",
        )

    assert first.status_code == 202
    body = first.json()
    assert (body["accepted"], body["duplicates"]) == (4, 1)
    assert {r["pointer"]: r["index"] for r in body["rejected"]} == {
        "/records/4/timestamp": 4,
        "/records/5/timestamp": 5,
        "/records/6/metric": 6,
        "/records/7/quantity": 7,
    }
    assert second.status_code == 202
    assert (second.json()["accepted"], second.json()["duplicates"]) == (1, 1)
    # Another entity's client: the subscription does not exist for it.
    assert foreign.status_code == 202
    assert foreign.json()["accepted"] == 0
    assert [r["pointer"] for r in foreign.json()["rejected"]] == ["/records/0/subscription_id"]
    assert foreign_read.status_code == 404 == unknown_read.status_code
    assert foreign_read.headers["content-type"].startswith("application/problem+json")
    assert foreign_read.json()["detail"].replace(subscription, "X") == unknown_read.json()[
        "detail"
    ].replace("sub_nothing", "X")

    total = 100 + 200 + 300 + 400 + 5
    assert flushed.status_code == 202 and flushed.json()["records"] == 5
    assert flushed.headers["location"].endswith(flow_id)
    assert push.json()["status"] == "succeeded"
    assert again.json() == {"flow_id": None, "records": 0}
    assert open_summary["total_usage"] == total and open_summary["invoice"] is None
    [row] = before_close.json()["data"]
    assert (row["metric"], row["accepted"], row["pushed"], row["invoiced"]) == (
        "api_calls",
        total,
        total,
        0,
    )

    [usage_invoice] = [
        i for i in renewal if any(line.product_code == "API-CALLS" for line in i.lines)
    ]
    [usage_line] = [line for line in usage_invoice.lines if line.product_code == "API-CALLS"]
    assert (usage_line.quantity, usage_line.amount) == (total, total * API_CALL_USD)
    assert usage_invoice.currency == "USD" and usage_invoice.legal_entity == "US01"
    [closed] = after_close.json()["data"]
    assert (closed["accepted"], closed["pushed"], closed["invoiced"]) == (total, total, total)
    assert closed["period_start"] == row["period_start"]
    run = reconciled.json()
    assert run["status"] == "completed", run
    assert (run["checked"]["usage"], run["summary"]["mismatches"]) == (1, 0)
    [usage_total] = [t for t in run["totals"] if t["kind"] == "usage"]
    assert (usage_total["currency"], usage_total["billing"]) == ("USD", total)
