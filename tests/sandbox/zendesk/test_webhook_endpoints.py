"""Webhooks of the Zendesk emulator point at this machine only (loopback URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.zendesk import ZendeskEmulator

AUTH = ("sandbox@erpgw.test/token", "erpgw-sandbox-token")


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    emulator = ZendeskEmulator()
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://z.test", auth=AUTH
    ) as client:
        yield client


def _webhook(endpoint: str) -> dict[str, object]:
    return {"webhook": {"name": "gateway", "endpoint": endpoint, "http_method": "POST",
                        "request_format": "json", "status": "active",
                        "subscriptions": ["conditional_ticket_events"]}}


@pytest.mark.parametrize(
    "endpoint", ["https://gateway.example.com/webhooks/zendesk", "http://10.1.2.3/hook"]
)
async def test_refuses_an_endpoint_off_this_machine(api: httpx.AsyncClient, endpoint: str) -> None:
    refused = await api.post("/api/v2/webhooks", json=_webhook(endpoint))

    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert (error["code"], error["source"]["pointer"]) == ("InvalidInput", "/webhook/endpoint")
    assert "loopback" in error["detail"]
    assert (await api.get("/api/v2/webhooks")).json()["webhooks"] == []


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8000/webhooks/zendesk", "http://localhost/h", "http://[::1]/h"]
)
async def test_accepts_loopback_endpoints(api: httpx.AsyncClient, endpoint: str) -> None:
    created = await api.post("/api/v2/webhooks", json=_webhook(endpoint))

    assert created.status_code == 201, created.text
    assert created.json()["webhook"]["endpoint"] == endpoint
