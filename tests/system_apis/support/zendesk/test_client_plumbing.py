"""Client plumbing: credentials, request marks for the outbound policy, loop detection."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from contracts.errors import UpstreamRejected, UpstreamUnavailable
from contracts.v1 import Customer, SupportCaseCreate
from gateway.sandbox_wiring import zendesk_sandbox_credentials as sandbox_credentials
from sandbox.credentials import ZENDESK
from sandbox.zendesk import ZendeskEmulator
from system_apis.support.zendesk import ZendeskClient, ZendeskCredentials


def test_credentials_authenticate_by_api_token_or_oauth_token() -> None:
    token = ZendeskCredentials(
        base_url="https://northwind.zendesk.com", email="ops@northwind.test", api_token="t0k"
    )
    request = httpx.Request("GET", "https://northwind.zendesk.com/api/v2/tickets")
    next(token.auth().auth_flow(request))
    expected = base64.b64encode(b"ops@northwind.test/token:t0k").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    oauth = ZendeskCredentials(base_url="https://help.example.test", oauth_token="oa")
    request = httpx.Request("GET", "https://help.example.test/api/v2/tickets")
    next(oauth.auth().auth_flow(request))
    assert request.headers["Authorization"] == "Bearer oa"


def test_sandbox_credentials_verify_sandbox_deliveries() -> None:
    sandbox = sandbox_credentials("http://127.0.0.1:8000/_sandbox/zendesk/")
    assert sandbox.base_url == "http://127.0.0.1:8000/_sandbox/zendesk"
    assert sandbox.webhook_secrets == (ZENDESK.webhook_secret,)


async def test_marks_requests_safe_to_retry_for_the_outbound_policy() -> None:
    emulator = ZendeskEmulator()
    seen: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=emulator.vendor)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await inner.handle_async_request(request)

    async with httpx.AsyncClient(transport=Recording(), base_url="https://z.test") as http:
        client = ZendeskClient(http, credentials=sandbox_credentials("https://z.test"))
        await client.upsert_organization(
            Customer(id="c", legal_name="Hooli", legal_entity="US01", currency="USD"),
            external_id="cus_h")
        await client.create_case(SupportCaseCreate(customer_id="cus_h", subject="s",
                                                   description="d"), idempotency_key="k")
        await client.create_case(SupportCaseCreate(customer_id="cus_h", subject="s2",
                                                   description="d"))
    marks = [(r.method, r.extensions.get("erpgw_path_template"),
              r.extensions.get("erpgw_idempotent", False)) for r in seen if r.method != "GET"]
    assert marks == [
        ("POST", "/api/v2/organizations/create_or_update", True),
        ("POST", "/api/v2/tickets", True),
        ("POST", "/api/v2/tickets", False),
    ]
    keyed = next(r for r in seen if r.headers.get("idempotency-key"))
    assert keyed.headers["idempotency-key"] == "k"
    assert json.loads(keyed.content)["ticket"]["organization_id"] > 0


async def test_a_repeated_cursor_is_a_loop() -> None:
    page = {"webhooks": [{"id": "w1", "name": "n", "endpoint": "https://e.test", "status":
                          "active"}], "meta": {"has_more": True, "after_cursor": "same"}}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer),
                                 base_url="https://z.test") as http:
        with pytest.raises(UpstreamRejected) as looped:
            await ZendeskClient(http).list_webhooks()
    assert looped.value.code == "pagination_loop"


async def test_connection_failures_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse),
                                 base_url="https://z.test") as http:
        with pytest.raises(UpstreamUnavailable) as failed:
            await ZendeskClient(http).get_case("1")
    assert (failed.value.vendor, failed.value.timeout) == ("zendesk", False)


async def test_an_unexpected_body_is_refused_not_guessed() -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ticket": {"id": "not a number"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(garbage),
                                 base_url="https://z.test") as http:
        with pytest.raises(UpstreamRejected) as refused:
            await ZendeskClient(http).get_case("1")
    assert refused.value.code == "unexpected_response"
