"""Usage intake through the gateway on PostgreSQL: batches of 1,000 usage records posted to
`POST /process/v1/usage-records` by concurrent clients, against the gateway served by granian
(one worker) with the Stripe emulator in its own process (limits off) holding the metered
subscriptions. Every record is new, checked and stored before the answer. Prints records
accepted per second (goal >= 20,000/s) and the peak RSS of each gateway process (goal <= 200
MB), measured in one run.

    ERPGW_BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/usage.py [--batches 300] [--concurrency 8]

The gateway migrates the database named in the URL; each run reports under a new client and
new record ids, so runs do not collide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import free_port, process_tree_peak_rss, serve
from contracts.v1 import CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from gateway.sandbox_wiring import stripe_sandbox_credentials
from sandbox.stripe.emulator import price_id_for
from system_apis.billing.stripe import StripeClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("erp-gateway")
BATCH = 1_000
SUBSCRIPTIONS = 20
GOAL_RECORDS_PER_SECOND = 20_000
GOAL_PEAK_RSS_MB = 200


@contextmanager
def _stripe_emulator() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "emulator", "stripe", "--port", str(port), "--no-limits"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/_emulator/faults", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _subscriptions(stripe_url: str) -> list[str]:
    async with httpx.AsyncClient(timeout=30) as http:
        stripe = StripeClient(http, credentials=stripe_sandbox_credentials(stripe_url))
        found = []
        for index in range(SUBSCRIPTIONS):
            customer = await stripe.create_customer(
                CustomerCreate(legal_name=f"Bench {index}", legal_entity="US01", currency="USD")
            )
            subscription = await stripe.create_subscription(
                SubscriptionCreate(
                    customer_id=customer.id,
                    currency="USD",
                    items=[
                        SubscriptionItemInput(
                            price_id=price_id_for("API-CALLS", "USD"), usage_metric="api_calls"
                        )
                    ],
                    collection_method="send_invoice",
                    days_until_due=30,
                    legal_entity="US01",
                )
            )
            found.append(subscription.id)
        return found


def _bodies(batches: int, subscriptions: list[str]) -> list[bytes]:
    """Every batch encoded up front (new record ids throughout), so the load costs little."""
    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    run = uuid.uuid4().hex[:8]
    return [
        json.dumps(
            {
                "records": [
                    {
                        "id": f"{run}-{batch}-{index}",
                        "subscription_id": subscriptions[(batch + index) % len(subscriptions)],
                        "metric": "api_calls",
                        "quantity": 1 + index % 5,
                        "timestamp": at,
                    }
                    for index in range(BATCH)
                ]
            }
        ).encode()
        for batch in range(batches)
    ]


async def _drive(base: str, token: str, bodies: list[bytes], concurrency: int) -> tuple[int, float]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def worker() -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                answer = await http.post("/process/v1/usage-records", content=body, headers=headers)
                if answer.status_code != 202:
                    raise SystemExit(f"intake answered {answer.status_code}: {answer.text[:300]}")
                accepted += answer.json()["accepted"]

        # One warm-up batch: the subscriptions are read from billing once, then cached.
        warm = bodies[0]
        first = await http.post("/process/v1/usage-records", content=warm, headers=headers)
        accepted += first.json()["accepted"]
        queue.get_nowait()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted, time.perf_counter() - started


async def main(batches: int, concurrency: int, database_url: str) -> None:
    database = database_url
    with _stripe_emulator() as stripe_url:
        subscriptions = await _subscriptions(stripe_url)
        port = free_port()
        var = Path(f"/tmp/erpgw-bench-usage-{port}")
        env = {
            "ERPGW_DATABASE_URL": database,
            "ERPGW_VAR_DIR": str(var),
            "ERPGW_SIGNING_KEYS_DIR": str(var / "keys"),
            "ERPGW_LOG_FORMAT": "json",
            "ERPGW_LOG_LEVEL": "warning",
            "ERPGW_ACCESS_LOG": "false",
            "ERPGW_SANDBOX": "true",
            "ERPGW_SANDBOX_VENDORS": "none",
            "ERPGW_STRIPE_SECRET_KEY": "sk_test_erpgw_sandbox",
            "ERPGW_STRIPE_BASE_URL": stripe_url,
            "ERPGW_USAGE_FLUSH_SECONDS": "0",
            "ERPGW_RATE_LIMIT_TIERS": "gold=1000000/minute;anonymous=100000/minute",
            "ERPGW_PORT": str(port),
        }
        with serve("gateway.workers:worker_app", port=port, env=env) as server:
            made = await asyncio.to_thread(
                subprocess.run,
                [
                    str(SCRIPT),
                    "clients",
                    "create",
                    "--name",
                    "bench-usage",
                    "--scopes",
                    "usage:write",
                    "--tier",
                    "gold",
                    "--json",
                ],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
            )
            created = json.loads(made.stdout)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient() as http:
                granted = await http.post(
                    f"{base}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(created["client_id"], created["client_secret"]),
                )
            token = granted.json()["access_token"]
            bodies = _bodies(batches, subscriptions)
            accepted, seconds = await _drive(base, token, bodies, concurrency)
            peaks = process_tree_peak_rss(server.pid)
    rate = (accepted - BATCH) / seconds
    expected = batches * BATCH
    print(f"records accepted: {accepted} of {expected} sent (each new, stored once)")
    print(
        f"usage intake: {rate:,.0f} records/s over {seconds:.1f} s, {concurrency} clients "
        f"(goal >= {GOAL_RECORDS_PER_SECOND:,}/s): {rate / GOAL_RECORDS_PER_SECOND:.2f}x goal"
    )
    for pid, peak in sorted(peaks.items()):
        print(
            f"gateway process {pid}: peak RSS {peak:.0f} MB (goal <= {GOAL_PEAK_RSS_MB} MB): "
            f"{peak / GOAL_PEAK_RSS_MB:.2f}x goal"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    arguments = parser.parse_args()
    url = os.environ.get("ERPGW_BENCH_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        raise SystemExit("set ERPGW_BENCH_DATABASE_URL to an async PostgreSQL URL")
    asyncio.run(main(arguments.batches, arguments.concurrency, url))
