"""Stripe webhooks through the gateway: a month-end burst of `--subscriptions` invoices
finalized at once. The Stripe, NetSuite and Salesforce emulators run in their own processes
(NetSuite with its concurrency limit on, the others' limits off), holding one customer, one
quote-to-cash sales order and one finalized invoice per subscription; the gateway (granian, one
worker, PostgreSQL) receives each `invoice.finalized` event, signed as Stripe signs it, on
`POST /webhooks/stripe`, which answers once the event is verified, stored and its posting flow
durably enqueued. Prints events accepted per second (goal >= 2,000/s), the drain time until
every event's ERP invoice is posted (nothing lost: as many succeeded postings as events) and
the NetSuite requests the gateway had to repeat after NetSuite refused them, measured in one
run.

    ERPGW_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/webhooks.py [--subscriptions 5000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import free_port, serve
from contracts.money import Money
from contracts.v1 import CustomerCreate, SalesOrderCreate, SalesOrderLine
from gateway.sandbox_wiring import netsuite_sandbox_credentials, stripe_sandbox_credentials
from sandbox.credentials import NETSUITE, STRIPE
from sandbox.stripe.webhooks import sign_webhook
from system_apis.billing.stripe import StripeClient
from system_apis.erp.netsuite.client import NetSuiteClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("erp-gateway")
AMOUNT = 50_000
SEEDING_CONCURRENCY = 16
GOAL_EVENTS_PER_SECOND = 2_000
VENDORS = ("stripe", "netsuite", "salesforce")


@contextmanager
def _emulators() -> Iterator[dict[str, str]]:
    """Each emulator in its own process; NetSuite keeps its concurrency limit."""
    started: list[subprocess.Popen[bytes]] = []
    bases: dict[str, str] = {}
    try:
        for vendor in VENDORS:
            port = free_port()
            limits = [] if vendor == "netsuite" else ["--no-limits"]
            started.append(
                subprocess.Popen(
                    [str(SCRIPT), "emulator", vendor, "--port", str(port), *limits],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            bases[vendor] = f"http://127.0.0.1:{port}"
        for base in bases.values():
            for _ in range(200):
                try:
                    httpx.get(base + "/_emulator/faults", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
        yield bases
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)


async def _seed_one(index: int, run: str, stripe: StripeClient, netsuite: NetSuiteClient) -> None:
    """A customer in billing and the ERP, its quote-to-cash order and its invoice, finalized
    (Stripe records the `invoice.finalized` event)."""
    account = f"001bench{run}{index:05d}"
    deal = f"006bench{run}{index:05d}"
    create = CustomerCreate(legal_name=f"Bench {index}", legal_entity="US01", currency="USD")
    erp_customer = await netsuite.upsert_customer(create, external_id=f"cus-{account}")
    await netsuite.upsert_sales_order(
        SalesOrderCreate(
            customer_id=erp_customer.id,
            legal_entity="US01",
            currency="USD",
            order_date=date.today(),
            external_id=f"q2c:{deal}",
            deal_id=deal,
            lines=[
                SalesOrderLine(
                    product_code="PLAT-STD", quantity=1, unit_amount=AMOUNT, amount=AMOUNT
                )
            ],
        )
    )
    customer = await stripe.create_customer(create, crm_account_id=account)
    await stripe.create_invoice_item(
        customer_id=customer.id, amount=Money(amount=AMOUNT, currency="USD")
    )
    draft = await stripe.create_invoice(
        customer_id=customer.id,
        collection_method="send_invoice",
        days_until_due=30,
        deal_id=deal,
        legal_entity="US01",
    )
    await stripe.finalize_invoice(draft.id)


async def _seed(count: int, bases: dict[str, str]) -> None:
    limits = httpx.Limits(max_connections=SEEDING_CONCURRENCY)
    run = uuid.uuid4().hex[:6]
    async with (
        httpx.AsyncClient(base_url=bases["stripe"], timeout=60, limits=limits) as stripe_http,
        httpx.AsyncClient(base_url=bases["netsuite"], timeout=60, limits=limits) as ns_http,
    ):
        stripe = StripeClient(stripe_http, credentials=stripe_sandbox_credentials(bases["stripe"]))
        netsuite = NetSuiteClient(
            ns_http, credentials=netsuite_sandbox_credentials(bases["netsuite"])
        )
        gate = asyncio.Semaphore(4)  # NetSuite's concurrency limit counts the seeding too

        async def one(index: int) -> None:
            async with gate:
                await _seed_one(index, run, stripe, netsuite)

        await asyncio.gather(*(one(i) for i in range(count)))


async def _finalized_events(stripe_url: str, count: int) -> list[bytes]:
    """The `invoice.finalized` events Stripe recorded, as Stripe would deliver them."""
    events: list[bytes] = []
    after: str | None = None
    auth = (STRIPE.secret_key, "")
    async with httpx.AsyncClient(base_url=stripe_url, timeout=60, auth=auth) as http:
        while len(events) < count:
            params: dict[str, Any] = {"type": "invoice.finalized", "limit": 100}
            if after:
                params["starting_after"] = after
            page = (await http.get("/v1/events", params=params)).json()
            if not page["data"]:
                break
            for event in page["data"]:
                events.append(httpx.Response(200, json=event).content)
            after = page["data"][-1]["id"]
    return events[:count]


async def _deliver(base: str, events: list[bytes], concurrency: int) -> tuple[float, int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)
    limits = httpx.Limits(max_connections=concurrency)
    retried = 0
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:

        async def worker() -> None:
            nonlocal retried
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    headers = {
                        "Content-Type": "application/json",
                        "Stripe-Signature": sign_webhook(
                            body, STRIPE.webhook_secret, int(time.time())
                        ),
                    }
                    answer = await http.post("/webhooks/stripe", content=body, headers=headers)
                    if answer.status_code == 200:
                        break
                    if answer.status_code not in (429, 503):
                        raise SystemExit(
                            f"webhook answered {answer.status_code}: {answer.text[:300]}"
                        )
                    # Stripe delivers again after a refusal; so does the bench, sooner.
                    retried += 1
                    await asyncio.sleep(1)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, retried


async def _postings(engine: AsyncEngine, event_ids: set[str]) -> tuple[int, int, int]:
    """(succeeded, failed, NetSuite steps repeated) of these events' posting flows."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT id, status FROM flows WHERE flow_type = 'invoice_posting'"
                    " AND created_at > now() - interval '1 day'"
                )
            )
        ).all()
        repeated = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM flow_steps WHERE system = 'netsuite'"
                    " AND attempts > 1 AND started_at > now() - interval '1 day'"
                )
            )
        ).scalar_one()
    ours = [status for flow_id, status in rows if flow_id.removeprefix("stripe:") in event_ids]
    return ours.count("succeeded"), ours.count("failed"), int(repeated)


async def main(count: int, concurrency: int, database: str) -> None:
    with _emulators() as bases:
        started = time.perf_counter()
        await _seed(count, bases)
        seeded = time.perf_counter() - started
        events = await _finalized_events(bases["stripe"], count)
        event_ids = {httpx.Response(200, content=e).json()["id"] for e in events}
        port = free_port()
        var = Path(f"/tmp/erpgw-bench-webhooks-{port}")
        env = {
            "ERPGW_DATABASE_URL": database,
            "ERPGW_VAR_DIR": str(var),
            "ERPGW_SIGNING_KEYS_DIR": str(var / "keys"),
            "ERPGW_LOG_FORMAT": "json",
            "ERPGW_LOG_LEVEL": "warning",
            "ERPGW_ACCESS_LOG": "false",
            "ERPGW_SANDBOX": "true",
            "ERPGW_SANDBOX_VENDORS": "none",
            "ERPGW_STRIPE_SECRET_KEY": STRIPE.secret_key,
            "ERPGW_STRIPE_BASE_URL": bases["stripe"],
            "ERPGW_STRIPE_WEBHOOK_SECRETS": STRIPE.webhook_secret,
            "ERPGW_SALESFORCE_CLIENT_ID": "erpgw-sandbox",
            "ERPGW_SALESFORCE_CLIENT_SECRET": "erpgw-sandbox-secret",
            "ERPGW_SALESFORCE_LOGIN_URL": bases["salesforce"],
            "ERPGW_NETSUITE_ACCOUNT_ID": "ERPGW_SANDBOX",
            "ERPGW_NETSUITE_CLIENT_ID": "erpgw-sandbox",
            "ERPGW_NETSUITE_CERTIFICATE_ID": "erpgw-sandbox-cert",
            "ERPGW_NETSUITE_PRIVATE_KEY": NETSUITE.private_key_pem,
            "ERPGW_NETSUITE_BASE_URL": bases["netsuite"],
            "ERPGW_RECONCILE_INTERVAL_SECONDS": "0",
            "ERPGW_RATE_LIMIT_TIERS": "anonymous=10000000/minute;gold=1000000/minute",
            "ERPGW_PORT": str(port),
        }
        with serve("gateway.app:create_app_from_env", port=port, env=env):
            burst_started = time.perf_counter()
            seconds, retried = await _deliver(f"http://127.0.0.1:{port}", events, concurrency)
            # One connection: the database's connections are shared with the gateway.
            engine = create_async_engine(database, pool_size=1, max_overflow=0)
            try:
                while True:
                    succeeded, failed, repeated = await _postings(engine, event_ids)
                    if succeeded + failed >= len(events):
                        break
                    await asyncio.sleep(1)
            finally:
                await engine.dispose()
            drained = time.perf_counter() - burst_started
    rate = len(events) / seconds
    print(f"seeded {count} customers, orders and finalized invoices in {seeded:.0f} s")
    print(
        f"webhook intake: {rate:,.0f} events/s ({len(events)} signed invoice.finalized in "
        f"{seconds:.1f} s, {concurrency} connections; goal >= {GOAL_EVENTS_PER_SECOND:,}/s): "
        f"{rate / GOAL_EVENTS_PER_SECOND:.2f}x goal; {retried} deliveries refused (429/503) "
        "and delivered again"
    )
    print(
        f"month-end drain: {drained:.0f} s until every event's ERP invoice was posted "
        f"({len(events) / drained:.1f} invoices/s); posted {succeeded}, failed {failed}, "
        f"lost {len(events) - succeeded - failed}"
    )
    print(f"NetSuite steps repeated after a refusal or outage: {repeated}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()
    url = os.environ.get("ERPGW_BENCH_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        raise SystemExit("set ERPGW_BENCH_DATABASE_URL to an async PostgreSQL URL")
    asyncio.run(main(arguments.subscriptions, arguments.concurrency, url))
