"""Stripe webhooks through the gateway: a month-end burst of `--subscriptions` invoices
finalized at once. The Stripe, NetSuite and Salesforce emulators run in their own processes
(NetSuite with its concurrency limit on, the others' limits off), holding one customer, one
quote-to-cash sales order and one finalized invoice per subscription; the gateway (granian with
`--workers` worker processes, default one; PostgreSQL; its default rate limits) receives each
`invoice.finalized` event, signed as Stripe signs it, on `POST /webhooks/stripe`, which answers
once the event is verified and durably stored in the inbox; its dispatcher then starts each
posting flow. Prints events accepted per second (goal >= 2,000/s), the deliveries refused with
429 or 503 (and sent again), the drain time until every event's ERP invoice is posted (nothing
lost: as many succeeded postings as events), the NetSuite requests the gateway had to repeat
after NetSuite refused them, and the gateway process's peak RSS, measured in one run.

    ERPGW_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/webhooks.py [--subscriptions 5000] [--concurrency 32] [--workers 1]
                                           [--profile] [--intake-only]

`--intake-only` stops once the burst is stored (no drain): what to run while working on the
intake, a minute instead of ten.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import free_port, peak_rss_mb, process_tree_cpu, serve
from bench._profile import Sampler
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


async def _seed_one(
    index: int, run: str, stripe: StripeClient, netsuite: NetSuiteClient, spent: dict[str, float]
) -> None:
    """A customer in billing and the ERP, its quote-to-cash order and its invoice, finalized
    (Stripe records the `invoice.finalized` event); the seconds each vendor took in `spent`."""
    started = time.perf_counter()
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
    erp_done = time.perf_counter()
    spent["netsuite"] += erp_done - started
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
    spent["stripe"] += time.perf_counter() - erp_done


async def _seed(count: int, bases: dict[str, str]) -> dict[str, float]:
    """Seed `count` subscriptions; the seconds spent per vendor (summed over concurrent
    seedings)."""
    spent: dict[str, float] = {"netsuite": 0.0, "stripe": 0.0}
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
                await _seed_one(index, run, stripe, netsuite, spent)

        await asyncio.gather(*(one(i) for i in range(count)))
    return spent


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


_DELIVERY_SCRIPT = r"""
-- Each thread posts its share of the pre-signed deliveries once, then stops; statuses counted.
local deliveries, sent, answered, counts = {}, 0, 0, {}
function setup(thread)
  thread:set("tid", _tid or 0); _tid = (_tid or 0) + 1
end
function init(args)
  local threads, n = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if n % threads == tid then
      local signature, body = line:match("^([^\t]*)\t(.*)$")
      table.insert(deliveries, wrk.format("POST", "/webhooks/stripe", {
        ["Content-Type"] = "application/json", ["Stripe-Signature"] = signature }, body))
    end
    n = n + 1
  end
end
function request()
  sent = sent + 1
  return deliveries[math.min(sent, #deliveries)]
end
function response(status, headers, body)
  answered = answered + 1
  counts[status] = (counts[status] or 0) + 1
  if answered >= #deliveries then
    io.write(string.format("thread %d:", tid))
    for code, count in pairs(counts) do io.write(string.format(" %d=%d", code, count)) end
    io.write("\n"); io.flush()
    wrk.thread:stop()
  end
end
"""


def _deliver_burst(base: str, events: list[bytes], concurrency: int) -> tuple[float, Counter[int]]:
    """Deliver every event once as Stripe does, signed just before (wrk: the client costs
    next to nothing): the seconds it took and the answers by status."""
    threads = 2
    folder = Path(f"/tmp/erpgw-bench-webhooks-deliveries-{uuid.uuid4().hex[:6]}")
    folder.mkdir()
    signed_at = int(time.time())
    deliveries = folder / "deliveries.tsv"
    with deliveries.open("wb") as out:
        for body in events:
            out.write(sign_webhook(body, STRIPE.webhook_secret, signed_at).encode())
            out.write(b"\t" + body + b"\n")
    script = folder / "deliver.lua"
    script.write_text(_DELIVERY_SCRIPT)
    started = time.perf_counter()
    # wrk runs for its whole duration (the signatures stay valid for 300 s): stop it once
    # every thread has had all its answers.
    wrk = subprocess.Popen(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            "-d290s",
            "-s",
            str(script),
            base,
            "--",
            str(deliveries),
            str(threads),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert wrk.stdout is not None
    finished: list[str] = []
    for line in wrk.stdout:
        if line.startswith("thread "):
            finished.append(line)
            if len(finished) == threads:
                break
    seconds = time.perf_counter() - started
    wrk.send_signal(signal.SIGINT)
    wrk.communicate(timeout=30)
    output = "".join(finished)
    answers: Counter[int] = Counter()
    for code, count in re.findall(r" (\d{3})=(\d+)", output):
        answers[int(code)] += int(count)
    return seconds, answers


async def _deliver_again(base: str, events: list[bytes], refused: Counter[int]) -> None:
    """Deliver again what was refused (a 429 or 503: Stripe retries), until each is taken."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        for body in events:
            while True:
                headers = {
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign_webhook(body, STRIPE.webhook_secret, int(time.time())),
                }
                answer = await http.post("/webhooks/stripe", content=body, headers=headers)
                if answer.status_code == 200:
                    break
                if answer.status_code not in (429, 503):
                    raise SystemExit(f"webhook answered {answer.status_code}: {answer.text[:300]}")
                refused[answer.status_code] += 1
                await asyncio.sleep(1)


async def _unstored(engine: AsyncEngine, event_ids: set[str]) -> set[str]:
    """The events the inbox does not hold."""
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.text(
                    "SELECT event_id FROM webhook_inbox WHERE source = 'stripe'"
                    " AND event_id = ANY(:ids)"
                ),
                {"ids": list(event_ids)},
            )
        ).scalars()
        return event_ids - set(stored)


async def _postings(
    engine: AsyncEngine, event_ids: set[str], since: datetime
) -> tuple[int, int, int]:
    """(succeeded, failed, NetSuite steps repeated) of these events' posting flows made
    `since` (the emulator numbers its events alike in every run)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT id, status FROM flows WHERE flow_type = 'invoice_posting'"
                    " AND created_at >= :since"
                ),
                {"since": since},
            )
        ).all()
        repeated = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM flow_steps WHERE system = 'netsuite'"
                    " AND attempts > 1 AND started_at >= :since"
                ),
                {"since": since},
            )
        ).scalar_one()
    ours = [status for flow_id, status in rows if flow_id.removeprefix("stripe:") in event_ids]
    return ours.count("succeeded"), ours.count("failed"), int(repeated)


@contextlib.asynccontextmanager
async def _fresh_database(server_url: str) -> AsyncIterator[str]:
    """A database of its own for the run, dropped after: the emulator numbers its events
    alike in every run, and an inbox that held them already would take them as duplicates."""
    url = sa.make_url(server_url)
    name = f"{url.database}_webhooks_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def main(
    count: int,
    concurrency: int,
    server_database: str,
    workers: int = 1,
    *,
    profile: bool = False,
    intake_only: bool = False,
) -> None:
    async with _fresh_database(server_database) as database:
        await _run(count, concurrency, database, workers, profile=profile, intake_only=intake_only)


async def _run(
    count: int,
    concurrency: int,
    database: str,
    workers: int = 1,
    *,
    profile: bool = False,
    intake_only: bool = False,
) -> None:
    with _emulators() as bases:
        started = time.perf_counter()
        spent = await _seed(count, bases)
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
            "ERPGW_PORT": str(port),
        }
        with serve("gateway.workers:worker_app", port=port, env=env, workers=workers) as gateway:
            base = f"http://127.0.0.1:{port}"
            burst_at = datetime.now(UTC)
            burst_started = time.perf_counter()
            cpu_before = process_tree_cpu(gateway.pid)
            with Sampler([gateway.pid], var, enabled=profile) as sampler:
                seconds, answers = _deliver_burst(base, events, concurrency)
            cpu_seconds = process_tree_cpu(gateway.pid) - cpu_before
            refused = Counter({code: answers[code] for code in (429, 503)})
            # The intake's figures first: the drain behind them takes minutes.
            _report_seeding(count, seeded, spent)
            _report_intake(len(events), seconds, concurrency, refused, cpu_seconds)
            if profile:
                print(sampler.report(count=len(events), unit="event"), flush=True)
            # One connection: the database's connections are shared with the gateway.
            engine = create_async_engine(database, pool_size=1, max_overflow=0)
            try:
                missing = await _unstored(engine, event_ids)
                by_id = {httpx.Response(200, content=e).json()["id"]: e for e in events}
                await _deliver_again(base, [by_id[i] for i in sorted(missing)], refused)
                if intake_only:
                    print(
                        f"stored: {len(event_ids) - len(await _unstored(engine, event_ids))} "
                        f"of {len(event_ids)} events; peak RSS of the gateway process: "
                        f"{peak_rss_mb(gateway.pid):.0f} MB"
                    )
                    return
                while True:
                    succeeded, failed, repeated = await _postings(engine, event_ids, burst_at)
                    if succeeded + failed >= len(events):
                        break
                    await asyncio.sleep(1)
            finally:
                await engine.dispose()
            drained = time.perf_counter() - burst_started
            rss_mb = peak_rss_mb(gateway.pid)
    print(
        f"month-end drain: {drained:.0f} s until every event's ERP invoice was posted "
        f"({len(events) / drained:.1f} invoices/s); posted {succeeded}, failed {failed}, "
        f"lost {len(events) - succeeded - failed}"
    )
    print(f"NetSuite steps repeated after a refusal or outage: {repeated}")
    print(f"peak RSS of the gateway process: {rss_mb:.0f} MB")


def _report_seeding(count: int, seeded: float, spent: dict[str, float]) -> None:
    total = max(sum(spent.values()), 1e-9)
    share = ", ".join(f"{vendor} {part / total:.0%}" for vendor, part in spent.items())
    print(
        f"seeded {count} customers, orders and finalized invoices in {seeded:.0f} s "
        f"(time in calls: {share})",
        flush=True,
    )


def _report_intake(
    events: int, seconds: float, concurrency: int, refused: Counter[int], cpu_seconds: float
) -> None:
    rate = events / seconds
    print(
        f"webhook intake: {rate:,.0f} events/s ({events} signed invoice.finalized in "
        f"{seconds:.1f} s, {concurrency} connections from wrk; "
        f"goal >= {GOAL_EVENTS_PER_SECOND:,}/s): "
        f"{rate / GOAL_EVENTS_PER_SECOND:.2f}x goal; refused and delivered again: "
        f"{refused[429]} with 429, {refused[503]} with 503",
        flush=True,
    )
    # The gateway's CPU an event moves far less than events/s when the machine's speed swings.
    print(
        f"gateway CPU per event (user + system, every gateway process): "
        f"{cpu_seconds / events * 1e6:.0f} us",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=1, help="granian worker processes serving the gateway"
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the gateway with py-spy during the burst"
    )
    parser.add_argument(
        "--intake-only", action="store_true", help="stop once the burst is stored (no drain)"
    )
    arguments = parser.parse_args()
    url = os.environ.get("ERPGW_BENCH_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        raise SystemExit("set ERPGW_BENCH_DATABASE_URL to an async PostgreSQL URL")
    asyncio.run(
        main(
            arguments.subscriptions,
            arguments.concurrency,
            url,
            arguments.workers,
            profile=arguments.profile,
            intake_only=arguments.intake_only,
        )
    )
