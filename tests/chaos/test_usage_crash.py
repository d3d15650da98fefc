"""Chaos: a gateway process SIGKILLed while its usage push has claimed and summed the records
and Stripe has counted the report, but before the answer reached the gateway (a proxy holds
it back). Restarted on its port, the gateway resumes the push from the report; Stripe, read
through its own API, holds every accepted unit exactly once, and the gateway reports the period
pushed in full."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

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
_FORWARDED = ("authorization", "stripe-version", "idempotency-key", "content-type")
_RETURNED = ("content-type", "request-id", "idempotent-replayed")


class AnswerSwallower:
    """A proxy before Stripe that, while `swallowing`, forwards usage reports and never
    relays Stripe's answer: Stripe has counted the report, the gateway never learns it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.swallowing = False
        self.swallowed = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=30)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        answer = await self._http.request(
            request.method,
            f"{self.upstream}{request.path_qs}",
            headers=headers,
            content=await request.read(),
        )
        if self.swallowing and request.path.endswith("/usage_records"):
            self.swallowed.set()
            await asyncio.sleep(3600)
        kept = {k: v for k, v in answer.headers.items() if k.lower() in _RETURNED}
        return web.Response(status=answer.status_code, body=answer.content, headers=kept)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
            await self._http.aclose()


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
        swallower = AnswerSwallower(urls["stripe"])
        async with swallower.serving() as proxied:
            env["ERPGW_STRIPE_BASE_URL"] = proxied
            client = await asyncio.to_thread(
                create_client, env, scopes="usage:write process:write process:read", tier="gold"
            )
            port = free_port()
            gateway = await asyncio.to_thread(
                start_gateway, env, tmp_path / "gateway-1.log", port=port
            )
            try:
                async with httpx.AsyncClient(timeout=30) as http:
                    await _crash_and_resume(
                        http,
                        urls,
                        env,
                        tmp_path,
                        port,
                        gateway,
                        client,
                        subscription,
                        item,
                        swallower,
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
    swallower: AnswerSwallower,
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
    # Stripe counts the report; its answer never reaches the gateway, which dies then.
    swallower.swallowing = True
    flushed = await http.post(f"{base}/process/v1/usage/flush", headers=headers)
    assert flushed.status_code == 202, flushed.text
    flow_id = flushed.json()["flow_id"]

    def steps_of(response: httpx.Response) -> dict[str, str]:
        return {s["name"]: s["status"] for s in response.json()["steps"]}

    await asyncio.wait_for(swallower.swallowed.wait(), timeout=60)
    # A step attempt shows as running once it has run for a second (a shorter one is
    # recorded only as it ends).
    claimed = await eventually(
        lambda: http.get(f"{base}/process/v1/flows/{flow_id}", headers=headers),
        lambda r: steps_of(r).get("report_usage") == "running",
        timeout=30,
        what="the report step shown running",
    )
    gateway.kill()
    counted_before_crash = await _stripe_total(http, urls["stripe"], item)
    swallower.swallowing = False
    restarted = await asyncio.to_thread(start_gateway, env, tmp_path / "gateway-2.log", port=port)
    try:
        finished = await eventually(
            lambda: http.get(f"{base}/process/v1/flows/{flow_id}", headers=headers),
            lambda r: r.json()["status"] == "succeeded",
            timeout=90,
            what="the resumed push",
        )
        report = await http.get(f"{base}/process/v1/usage/{subscription}", headers=headers)
        counted = await _stripe_total(http, urls["stripe"], item)
    finally:
        restarted.stop()

    assert steps_of(claimed)["claim_usage"] == "succeeded"
    assert steps_of(claimed)["report_usage"] == "running"
    assert "mark_pushed" not in steps_of(claimed)
    assert counted_before_crash == accepted
    assert finished.json()["status"] == "succeeded"
    [row] = report.json()["data"]
    assert (row["accepted"], row["pushed"]) == (accepted, accepted)
    assert counted == accepted


async def _stripe_total(http: httpx.AsyncClient, stripe_url: str, item: str) -> int:
    summaries = await http.get(
        f"{stripe_url}/v1/subscription_items/{item}/usage_record_summaries",
        auth=("sk_test_erpgw_sandbox", ""),
    )
    current: dict[str, Any] = summaries.json()["data"][0]
    return int(current["total_usage"])
