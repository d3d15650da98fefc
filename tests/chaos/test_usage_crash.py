"""Chaos: a gateway process SIGKILLed while its usage push has claimed and summed the records
but billing has not answered the report yet. Restarted on its port, the gateway resumes the
push from the report; Stripe, read through its own API, holds every accepted unit exactly
once, and the gateway reports the period pushed in full."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.v1 import CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from gateway.sandbox_wiring import stripe_sandbox_credentials
from sandbox.stripe.emulator import price_id_for
from system_apis.billing.stripe import StripeClient
from tests.process_apis.emulator_processes import emulator_processes, gateway_env
from tests.support.processes import GatewayProcess, create_client, start_gateway
from tests.support.servers import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]

BATCHES = 3
PER_BATCH = 1_000
SLOW_STRIPE_MS = 4_000


async def _admin(url: str, *statements: str) -> None:
    admin = sa.make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    name = f"{sa.make_url(postgres_url).database}_usage_crash"
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    await _admin(
        postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    yield url
    await _admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _metered_subscription(stripe_url: str) -> tuple[str, str]:
    """A US01 subscription with metered API calls in the Stripe emulator process."""
    async with httpx.AsyncClient(timeout=10) as http:
        stripe = StripeClient(http, credentials=stripe_sandbox_credentials(stripe_url))
        customer = await stripe.create_customer(
            CustomerCreate(legal_name="Acme Inc.", legal_entity="US01", currency="USD")
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
    return subscription.id, subscription.items[0].id


async def test_a_crash_between_summing_and_reporting_loses_and_doubles_nothing(
    tmp_path: Path, database: str
) -> None:
    with emulator_processes(tmp_path) as urls:
        env = {
            "ERPGW_DATABASE_URL": database,
            "ERPGW_VAR_DIR": str(tmp_path),
            "ERPGW_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
            "ERPGW_ISSUER": "http://gateway.test",
            "ERPGW_ACCESS_LOG": "false",
            "ERPGW_LOG_FORMAT": "json",
            "ERPGW_USAGE_FLUSH_SECONDS": "0",
            **gateway_env(urls),
        }
        subscription, item = await _metered_subscription(urls["stripe"])
        client = await asyncio.to_thread(
            create_client, env, scopes="usage:write process:write process:read", tier="gold"
        )
        port = free_port()
        gateway = await asyncio.to_thread(start_gateway, env, tmp_path / "gateway-1.log", port=port)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                await _crash_and_resume(
                    http, urls, env, tmp_path, port, gateway, client, subscription, item
                )
        finally:
            gateway.stop()


async def _crash_and_resume(
    http: httpx.AsyncClient,
    urls: dict[str, str],
    env: dict[str, str],
    tmp_path: Path,
    port: int,
    gateway: GatewayProcess,
    client: dict[str, str],
    subscription: str,
    item: str,
) -> None:
    base = gateway.base_url
    token = await http.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    at = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    accepted = 0
    for batch in range(BATCHES):
        records = [
            {
                "id": f"b{batch}-{index}",
                "subscription_id": subscription,
                "metric": "api_calls",
                "quantity": 1 + index % 7,
                "timestamp": at,
            }
            for index in range(PER_BATCH)
        ]
        answer = await http.post(
            f"{base}/process/v1/usage-records", headers=headers, json={"records": records}
        )
        assert answer.status_code == 202, answer.text
        accepted += sum(r["quantity"] for r in records)
    # Billing answers slowly, so the push is caught between its claim and the report.
    slow = {"latency_ms": SLOW_STRIPE_MS}
    assert (await http.post(f"{urls['stripe']}/_emulator/faults", json=slow)).is_success
    flushed = await http.post(f"{base}/process/v1/usage/flush", headers=headers)
    assert flushed.status_code == 202, flushed.text
    flow_id = flushed.json()["flow_id"]

    def steps_of(response: httpx.Response) -> dict[str, str]:
        return {s["name"]: s["status"] for s in response.json()["steps"]}

    claimed = await eventually(
        lambda: http.get(f"{base}/process/v1/flows/{flow_id}", headers=headers),
        lambda r: steps_of(r).get("claim_usage") == "succeeded" and "report_usage" in steps_of(r),
        what="the push between its claim and its report",
    )
    gateway.kill()
    assert steps_of(claimed).get("mark_pushed") is None
    assert (await http.post(f"{urls['stripe']}/_emulator/faults", json={})).is_success
    restarted = await asyncio.to_thread(start_gateway, env, tmp_path / "gateway-2.log", port=port)
    try:
        finished = await eventually(
            lambda: http.get(f"{base}/process/v1/flows/{flow_id}", headers=headers),
            lambda r: r.json()["status"] == "succeeded",
            timeout=90,
            what="the resumed push",
        )
        report = await http.get(f"{base}/process/v1/usage/{subscription}", headers=headers)
        summaries = await http.get(
            f"{urls['stripe']}/v1/subscription_items/{item}/usage_record_summaries",
            auth=("sk_test_erpgw_sandbox", ""),
        )
    finally:
        restarted.stop()

    assert finished.json()["status"] == "succeeded"
    [row] = report.json()["data"]
    assert (row["accepted"], row["pushed"]) == (accepted, accepted)
    current: dict[str, Any] = summaries.json()["data"][0]
    assert current["total_usage"] == accepted
