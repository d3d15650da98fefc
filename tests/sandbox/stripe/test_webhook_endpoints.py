"""Webhook endpoints of the Stripe emulator point at this machine only (loopback URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.stripe import StripeEmulator

KEY = ("sk_test_erpgw_sandbox", "")


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    emulator = StripeEmulator(rate_limit_per_second=None)
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://stripe.test", auth=KEY
    ) as client:
        yield client
    await emulator.aclose()


@pytest.mark.parametrize(
    "url", ["https://gateway.example.com/webhooks/stripe", "http://169.254.169.254/latest"]
)
async def test_refuses_an_endpoint_off_this_machine(api: httpx.AsyncClient, url: str) -> None:
    refused = await api.post(
        "/v1/webhook_endpoints", data={"url": url, "enabled_events[]": "invoice.paid"}
    )

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error", "url", "url_invalid"
    )
    assert "loopback" in error["message"]
    assert (await api.get("/v1/webhook_endpoints")).json()["data"] == []


async def test_refuses_moving_an_endpoint_off_this_machine(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/webhook_endpoints",
        data={"url": "http://127.0.0.1:8000/webhooks/stripe", "enabled_events[]": "*"},
    )
    assert created.status_code == 200, created.text
    endpoint = created.json()["id"]

    moved = await api.post(f"/v1/webhook_endpoints/{endpoint}", data={"url": "https://x.example"})
    assert moved.status_code == 400
    assert moved.json()["error"]["param"] == "url"
    kept = await api.get(f"/v1/webhook_endpoints/{endpoint}")
    assert kept.json()["url"] == "http://127.0.0.1:8000/webhooks/stripe"


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/webhooks/stripe", "http://[::1]:8000/hook", "https://127.0.0.2/h"]
)
async def test_accepts_loopback_endpoints(api: httpx.AsyncClient, url: str) -> None:
    created = await api.post("/v1/webhook_endpoints", data={"url": url, "enabled_events[]": "*"})

    assert created.status_code == 200, created.text
    assert created.json()["url"] == url
