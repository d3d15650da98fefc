"""Webhook signatures (sign, verify, rotate, expire) and signed delivery to a loopback endpoint."""

from __future__ import annotations

import base64
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from contracts.errors import InvalidRequest, Unauthenticated
from contracts.v1 import SupportCaseCreate, SupportCasePatch
from gateway.sandbox_wiring import zendesk_sandbox_credentials as sandbox_credentials
from sandbox.zendesk import ZendeskEmulator
from sandbox.zendesk.webhooks import sign_webhook
from system_apis.support.zendesk import ZendeskClient, verify_webhook
from system_apis.support.zendesk.mapping import MappingError, case_from_ticket_event
from tests.support.servers import serve_asgi
from tests.system_apis.support.zendesk.seed import ACME, org_id

SECRET = "erpgw-sandbox-webhook-secret"
BODY = b'{"type":"zen:event-type:ticket.created","id":"e1","detail":{"id":"7"}}'
STAMP = "2026-11-20T10:00:00Z"
AT = datetime(2026, 11, 20, 10, 0, 30, tzinfo=UTC)


def test_accepts_a_correctly_signed_delivery() -> None:
    signature = sign_webhook(BODY, SECRET, STAMP)
    payload = verify_webhook(BODY, signature, STAMP, [SECRET], now=AT)
    assert payload["detail"] == {"id": "7"}


def test_refuses_a_tampered_body() -> None:
    signature = sign_webhook(BODY, SECRET, STAMP)
    with pytest.raises(Unauthenticated) as refused:
        verify_webhook(BODY.replace(b'"7"', b'"8"'), signature, STAMP, [SECRET], now=AT)
    assert refused.value.code == "invalid_signature"


def test_refuses_a_signature_made_with_another_secret() -> None:
    signature = sign_webhook(BODY, "someone-else", STAMP)
    with pytest.raises(Unauthenticated) as refused:
        verify_webhook(BODY, signature, STAMP, [SECRET], now=AT)
    assert refused.value.code == "invalid_signature"


def test_accepts_the_previous_secret_while_rotating() -> None:
    signature = sign_webhook(BODY, "old-secret", STAMP)
    payload = verify_webhook(BODY, signature, STAMP, ["new-secret", "old-secret"], now=AT)
    assert payload["id"] == "e1"
    with pytest.raises(Unauthenticated):
        verify_webhook(BODY, signature, STAMP, ["new-secret"], now=AT)


@pytest.mark.parametrize("offset", [timedelta(seconds=301), timedelta(seconds=-301)])
def test_refuses_a_timestamp_outside_the_window(offset: timedelta) -> None:
    signature = sign_webhook(BODY, SECRET, STAMP)
    signed_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    with pytest.raises(Unauthenticated) as refused:
        verify_webhook(BODY, signature, STAMP, [SECRET], now=signed_at + offset)
    assert refused.value.code == "stale_timestamp"
    assert verify_webhook(BODY, signature, STAMP, [SECRET], tolerance=600,
                          now=signed_at + offset)


def test_the_timestamp_is_signed_as_received() -> None:
    signature = sign_webhook(BODY, SECRET, STAMP)
    with pytest.raises(Unauthenticated):
        verify_webhook(BODY, signature, "2026-11-20T10:00:00+00:00", [SECRET], now=AT)


@pytest.mark.parametrize("signature", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_refuses_malformed_signatures(signature: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        verify_webhook(BODY, signature, STAMP, [SECRET], now=AT)
    assert refused.value.code == "invalid_signature"


def test_malformed_input_is_an_invalid_request() -> None:
    bad_stamp = "yesterday"
    with pytest.raises(InvalidRequest) as refused:
        verify_webhook(BODY, sign_webhook(BODY, SECRET, bad_stamp), bad_stamp, [SECRET], now=AT)
    assert refused.value.errors[0].pointer == "timestamp"
    not_json = b"<xml/>"
    with pytest.raises(InvalidRequest) as refused:
        verify_webhook(not_json, sign_webhook(not_json, SECRET, STAMP), STAMP, [SECRET], now=AT)
    assert refused.value.errors[0].pointer == "body"


class Receiver:
    """A webhook endpoint on loopback: records each request, answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    endpoint = Receiver()
    with serve_asgi(endpoint, lifespan="off") as url:
        yield endpoint, url


def _verified(received: list[tuple[dict[str, str], bytes]], secret: str) -> list[dict[str, Any]]:
    return [
        verify_webhook(body, headers["x-zendesk-webhook-signature"],
                       headers["x-zendesk-webhook-signature-timestamp"], [secret])
        for headers, body in received
    ]


async def test_ticket_events_are_delivered_signed(
    client: ZendeskClient, emulator: ZendeskEmulator, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    hook = await client.create_webhook(name="gateway", endpoint=f"{url}/webhooks/zendesk")
    secret = await client.get_signing_secret(hook.id)
    await client.upsert_organization(await client.get_organization(org_id(ACME)),
                                     external_id="cus_acme")
    case = await client.create_case(SupportCaseCreate(
        customer_id="cus_acme", subject="Login broken", description="Nobody can log in.",
        priority="normal"))
    await client.update_case(case.id, SupportCasePatch(priority="urgent"))
    await emulator.drain_webhooks()

    payloads = _verified(endpoint.received, secret)
    assert [p["type"] for p in payloads] == ["zen:event-type:ticket.created",
                                             "zen:event-type:ticket.priority_changed"]
    assert {h["x-zendesk-webhook-id"] for h, _ in endpoint.received} == {hook.id}
    changed = payloads[1]
    assert changed["event"] == {"current": "URGENT", "previous": "NORMAL"}
    assert changed["detail"]["id"] == case.id
    assert changed["detail"]["organization_id"] == org_id(ACME)
    reported = case_from_ticket_event(changed)
    assert (reported.id, reported.priority, reported.severity) == (case.id, "urgent", "sev1")
    with pytest.raises(MappingError):
        case_from_ticket_event({**changed, "type": "zen:event-type:user.created"})
    with pytest.raises(MappingError):
        case_from_ticket_event({"type": "zen:event-type:ticket.created"})


async def test_a_failed_delivery_is_retried(
    client: ZendeskClient, emulator: ZendeskEmulator, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    endpoint.statuses = [500, 503]
    await client.create_webhook(name="gateway", endpoint=f"{url}/hook",
                                subscriptions=["zen:event-type:ticket.status_changed"])
    await client.update_case("3", SupportCasePatch(status="pending"))
    await emulator.drain_webhooks()
    assert len(endpoint.received) == 3
    assert len({h["x-zendesk-webhook-invocation-id"] for h, _ in endpoint.received}) == 1
    [delivery] = emulator.webhook_deliveries
    assert (delivery.attempts, delivery.statuses, delivery.delivered) == (3, [500, 503, 200],
                                                                         True)
    payload = _verified(endpoint.received[-1:], SECRET)[0]
    assert payload["event"] == {"current": "PENDING", "previous": "NEW"}


async def test_only_subscribed_events_are_delivered(
    client: ZendeskClient, emulator: ZendeskEmulator, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    await client.create_webhook(name="priority only", endpoint=f"{url}/hook",
                                subscriptions=["zen:event-type:ticket.priority_changed"])
    await client.add_internal_comment("3", "looking")
    await client.update_case("3", SupportCasePatch(priority="low"))
    await emulator.drain_webhooks()
    assert [msgspec.json.decode(body)["type"] for _, body in endpoint.received] == [
        "zen:event-type:ticket.priority_changed"]


async def test_deliveries_use_the_given_http_client() -> None:
    delivered: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        delivered.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as outbound:
        emulator = ZendeskEmulator(webhook_http=outbound)
        transport = httpx.ASGITransport(app=emulator.vendor)
        async with httpx.AsyncClient(transport=transport, base_url="https://z.test") as http:
            client = ZendeskClient(http, credentials=sandbox_credentials("https://z.test"))
            await client.create_webhook(name="gw", endpoint="http://127.0.0.1:8000/webhooks")
            await client.update_case("3", SupportCasePatch(tags=["vip"]))
            await emulator.drain_webhooks()
    [request] = delivered
    assert (request.method, str(request.url)) == ("POST", "http://127.0.0.1:8000/webhooks")
    payload = verify_webhook(request.content, request.headers["x-zendesk-webhook-signature"],
                             request.headers["x-zendesk-webhook-signature-timestamp"], [SECRET])
    assert payload["type"] == "zen:event-type:ticket.tags_changed"
    assert payload["event"] == {"current": ["vip"], "previous": ["sso"]}
