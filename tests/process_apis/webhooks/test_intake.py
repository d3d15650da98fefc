"""Webhook intake through the gateway app: signatures (bad, stale, rotated), malformed payloads,
replayed and concurrent deliveries of one event, out-of-order subscription updates, and the
Salesforce callout route behind a bearer token."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.v1 import CustomerCreate
from process_apis.webhooks.intake import FlowStart, WebhookEvent
from sandbox.salesforce.ids import seeded_id
from sandbox.stripe.webhooks import sign_webhook as stripe_sign
from sandbox.zendesk.webhooks import sign_webhook as zendesk_sign
from tests.process_apis.example_flow import FakePlatform, OrderFlows
from tests.support.apps import AppClient, app_client, bearer, gateway_app, new_client_token
from tests.support.apps import settings_for as base_settings
from tests.support.servers import free_port
from tests.support.waiting import eventually

STRIPE_SECRET = "whsec_erpgw_sandbox"
ZENDESK_SECRET = "erpgw-sandbox-webhook-secret"
PROBLEM = "application/problem+json"
OPEN_LIMITS = "gold=100000/minute;anonymous=100000/minute"


def settings_for(tmp_path: Path, **env: str) -> Any:
    # A port nobody serves: the emulators' own deliveries (not wanted here) go nowhere.
    return base_settings(
        tmp_path,
        ERPGW_RATE_LIMIT_TIERS=OPEN_LIMITS,
        ERPGW_PORT=str(free_port()),
        **env,
    )


def stripe_event(
    event_type: str, obj: dict[str, Any], *, event_id: str | None = None, created: int = 0
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": event_type,
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
    }


def stripe_delivery(
    event: dict[str, Any], *, secret: str = STRIPE_SECRET, at: int | None = None
) -> dict[str, Any]:
    body = json.dumps(event).encode()
    signature = stripe_sign(body, secret, at if at is not None else int(time.time()))
    return {"content": body, "headers": {"Stripe-Signature": signature}}


def zendesk_delivery(
    payload: dict[str, Any], *, secret: str = ZENDESK_SECRET, at: datetime | None = None
) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "content": body,
        "headers": {
            "X-Zendesk-Webhook-Signature": zendesk_sign(body, secret, stamp),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        },
    }


def ticket_event(ticket_id: str = "901") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "zen:event-type:ticket.comment_added",
        "time": datetime.now(UTC).isoformat(),
        "detail": {"id": ticket_id, "priority": "LOW", "status": "OPEN"},
        "event": {},
    }


async def wait_for_flow(
    client: AppClient, flow_id: str, headers: dict[str, str], *statuses: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await client.get(f"/process/v1/flows/{flow_id}", headers=headers)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] in statuses else None

    return await eventually(reached, timeout=20.0, what=f"flow {flow_id} in {statuses}")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AppClient]:
    async with app_client(gateway_app(settings_for(tmp_path, emulated=True))) as c:
        yield c


async def test_bad_signature_is_refused_with_a_401_problem(client: AppClient) -> None:
    event = stripe_event("invoice.finalized", {"id": "in_1", "object": "invoice"})
    stripe = await client.post(
        "/webhooks/stripe", **stripe_delivery(event, secret="whsec_someone_else")
    )
    tampered = stripe_delivery(event)
    tampered["content"] = tampered["content"].replace(b"in_1", b"in_2")
    altered = await client.post("/webhooks/stripe", **tampered)
    zendesk = await client.post(
        "/webhooks/zendesk", **zendesk_delivery(ticket_event(), secret="not-the-secret")
    )
    unsigned = await client.post("/webhooks/stripe", content=json.dumps(event).encode())

    for response in (stripe, altered, zendesk, unsigned):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["code"] == "invalid_signature"


async def test_stale_timestamp_is_refused(client: AppClient) -> None:
    event = stripe_event("invoice.finalized", {"id": "in_1", "object": "invoice"})
    stale = await client.post(
        "/webhooks/stripe", **stripe_delivery(event, at=int(time.time()) - 301)
    )
    future = await client.post(
        "/webhooks/stripe", **stripe_delivery(event, at=int(time.time()) + 400)
    )
    zendesk = await client.post(
        "/webhooks/zendesk",
        **zendesk_delivery(ticket_event(), at=datetime.now(UTC) - timedelta(seconds=320)),
    )

    for response in (stale, future, zendesk):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["code"] == "stale_timestamp"


async def test_malformed_payload_is_a_400_problem(client: AppClient) -> None:
    signature = stripe_sign(b"{not json", STRIPE_SECRET, int(time.time()))
    not_json: dict[str, Any] = {
        "content": b"{not json",
        "headers": {"Stripe-Signature": signature},
    }
    no_type = stripe_event("x", {"id": "in_1"})
    del no_type["type"]
    no_object = stripe_event("invoice.paid", {})
    no_object["data"] = {}
    far_future = stripe_event("invoice.paid", {"id": "in_1"})
    far_future["created"] = 10**20
    malformed_header: dict[str, Any] = {
        "content": b"{}",
        "headers": {"Stripe-Signature": "garbage"},
    }

    answers = [
        await client.post("/webhooks/stripe", **not_json),
        await client.post("/webhooks/stripe", **stripe_delivery(no_type)),
        await client.post("/webhooks/stripe", **stripe_delivery(no_object)),
        await client.post("/webhooks/stripe", **stripe_delivery(far_future)),
        await client.post("/webhooks/stripe", **malformed_header),
        await client.post("/webhooks/zendesk", **zendesk_delivery({"detail": {}})),
    ]

    for response in answers:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
    pointers = [[e["pointer"] for e in answer.json()["errors"]] for answer in answers[:4]]
    assert pointers == [["/"], ["/type"], ["/data/object"], ["/created"]]


async def test_rotated_previous_secret_is_accepted(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        ERPGW_STRIPE_SECRET_KEY="sk_test_rotation",
        ERPGW_STRIPE_BASE_URL="http://127.0.0.1:9",
        ERPGW_STRIPE_WEBHOOK_SECRETS="whsec_current, whsec_previous",
        ERPGW_ZENDESK_BASE_URL="http://127.0.0.1:9",
        ERPGW_ZENDESK_EMAIL="ops@example.test",
        ERPGW_ZENDESK_API_TOKEN="token",
        ERPGW_ZENDESK_WEBHOOK_SECRETS="zd-current,zd-previous",
    )
    async with app_client(gateway_app(settings)) as client:
        # No flow subscribes to customer.created: accepted and stored, nothing started.
        answers = {
            secret: await client.post(
                "/webhooks/stripe",
                **stripe_delivery(stripe_event("customer.created", {"id": "cus_1"}), secret=secret),
            )
            for secret in ("whsec_current", "whsec_previous", STRIPE_SECRET)
        }
        zendesk = {
            secret: await client.post(
                "/webhooks/zendesk", **zendesk_delivery(ticket_event(), secret=secret)
            )
            for secret in ("zd-current", "zd-previous", ZENDESK_SECRET)
        }

    assert answers["whsec_current"].status_code == 200
    assert answers["whsec_previous"].status_code == 200
    assert answers["whsec_previous"].json()["status"] == "received"
    assert answers[STRIPE_SECRET].status_code == 401
    assert [zendesk[s].status_code for s in ("zd-current", "zd-previous", ZENDESK_SECRET)] == [
        200,
        200,
        401,
    ]


async def test_replayed_event_answers_200_and_runs_one_flow(tmp_path: Path) -> None:
    platform = FakePlatform()
    app = gateway_app(settings_for(tmp_path))
    orders = app.state.gateway.process.engine.register(OrderFlows, platform=platform)

    def on_ping(event: WebhookEvent) -> FlowStart:
        return FlowStart(
            flow_type="order",
            business_key=f"stripe:{event.id}",
            fn=orders.order,
            args=(event.subject, 100),
        )

    app.state.gateway.webhooks.dispatcher.register("stripe", "test.ping", on_ping)
    event = stripe_event("test.ping", {"id": "ord_1"}, event_id="evt_replayed")
    async with app_client(app) as client:
        _, token = await new_client_token(client, ["process:read"])
        burst = await asyncio.gather(
            *(client.post("/webhooks/stripe", **stripe_delivery(event)) for _ in range(10))
        )
        await wait_for_flow(client, "stripe:evt_replayed", bearer(token), "succeeded")
        replay = await client.post("/webhooks/stripe", **stripe_delivery(event))
        flows = (await client.get("/process/v1/flows?type=order", headers=bearer(token))).json()

    assert [r.status_code for r in burst] == [200] * 10
    # One delivery stored the event; the others found it stored, none has started a flow.
    assert sorted(r.json()["duplicate"] for r in burst) == [False] + [True] * 9
    assert {r.json()["status"] for r in burst} == {"received"}
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    assert replay.json()["flow_ids"] == ["stripe:evt_replayed"]
    assert replay.headers["location"] == "/process/v1/flows/stripe:evt_replayed"
    assert [f["id"] for f in flows["data"]] == ["stripe:evt_replayed"]
    assert platform.count("reserve_stock") == 1
    assert platform.count("post_to_erp") == 1


async def test_older_subscription_update_does_not_undo_a_newer_one(client: AppClient) -> None:
    gateway = client.app.state.gateway
    billing = gateway.platforms.vendors["stripe"].client
    crm = gateway.platforms.vendors["salesforce"].client
    account = seeded_id("Account", "initech")
    customer = await billing.create_customer(
        CustomerCreate(legal_name="Initech LLC", legal_entity="US01", currency="USD"),
        crm_account_id=account,
    )
    _, token = await new_client_token(client, ["process:read"])
    now = int(time.time())
    subscription = {"id": "sub_order_test", "object": "subscription", "customer": customer.id}
    newer = stripe_event(
        "customer.subscription.updated",
        {**subscription, "status": "active"},
        event_id="evt_sub_newer",
        created=now,
    )
    older = stripe_event(
        "customer.subscription.updated",
        {**subscription, "status": "past_due"},
        event_id="evt_sub_older",
        created=now - 60,
    )

    first = await client.post("/webhooks/stripe", **stripe_delivery(newer))
    applied = await wait_for_flow(client, "stripe:evt_sub_newer", bearer(token), "succeeded")
    after_newer = (await crm.get_account(account)).payment_status
    second = await client.post("/webhooks/stripe", **stripe_delivery(older))
    skipped = await wait_for_flow(client, "stripe:evt_sub_older", bearer(token), "succeeded")
    after_older = (await crm.get_account(account)).payment_status

    assert (first.status_code, second.status_code) == (200, 200)
    assert [s["name"] for s in applied["steps"]][-1] == "mirror_payment_status"
    assert after_newer == "current"
    assert [s["name"] for s in skipped["steps"]] == ["claim_subscription_version"]
    assert after_older == "current"


async def test_salesforce_callout_needs_a_token_with_process_write(client: AppClient) -> None:
    _, reader = await new_client_token(client, ["process:read"])
    _, writer = await new_client_token(client, ["process:write"])
    open_deal = seeded_id("Opportunity", "acme-expansion")
    won = {"event": "opportunity.closed_won", "opportunity_id": open_deal}

    anonymous = await client.post("/webhooks/salesforce", json=won)
    forbidden = await client.post("/webhooks/salesforce", json=won, headers=bearer(reader))
    other = await client.post(
        "/webhooks/salesforce",
        json={"event": "opportunity.updated", "opportunity_id": open_deal},
        headers=bearer(writer),
    )
    malformed = await client.post(
        "/webhooks/salesforce", json={"opportunity_id": open_deal}, headers=bearer(writer)
    )
    not_won = await client.post("/webhooks/salesforce", json=won, headers=bearer(writer))

    assert anonymous.status_code == 401
    assert forbidden.status_code == 403
    assert other.status_code == 200
    assert other.json() | {"flow_ids": []} == {
        "source": "salesforce",
        "event_id": f"opportunity.updated:{open_deal}",
        "event_type": "opportunity.updated",
        "status": "ignored",
        "duplicate": False,
        "flow_ids": [],
    }
    assert malformed.status_code == 400
    # Quote-to-cash checks the deal before it books it: an open deal is refused.
    assert not_won.status_code == 422, not_won.text
    assert not_won.headers["content-type"].startswith(PROBLEM)


async def test_emulators_deliver_to_this_gateway_once_registered(client: AppClient) -> None:
    gateway = client.app.state.gateway
    stripe = gateway.platforms.vendors["stripe"].client
    zendesk = gateway.platforms.vendors["zendesk"].client
    base = gateway.settings.base_url
    register_again = gateway.webhooks.sandbox_registration(base, stripe=stripe, zendesk=zendesk)

    await register_again()
    endpoints = await stripe.list_webhook_endpoints()
    hooks = await zendesk.list_webhooks()

    assert [(e.url, e.enabled) for e in endpoints] == [(f"{base}/webhooks/stripe", True)]
    assert set(endpoints[0].enabled_events) >= {
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_failed",
        "customer.subscription.updated",
    }
    assert [(h.endpoint, h.status) for h in hooks] == [(f"{base}/webhooks/zendesk", "active")]


async def test_signed_routes_answer_with_the_gateways_headers_and_problems(
    client: AppClient,
) -> None:
    event = stripe_event("invoice.finalized", {"id": "in_9", "object": "invoice"})
    accepted = await client.post("/webhooks/stripe", **stripe_delivery(event))
    fetched = await client.get("/webhooks/stripe")
    replaced = await client.put("/webhooks/zendesk", content=b"{}")
    metrics = (await client.get("/metrics")).text

    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["content-type"] == "application/json"
    assert accepted.json() == {
        "source": "stripe",
        "event_id": event["id"],
        "event_type": "invoice.finalized",
        "status": "received",
        "duplicate": False,
        "flow_ids": [],
    }
    # The edge's trace headers and the rate-limit policy's, as on every route.
    assert accepted.headers["x-correlation-id"]
    assert accepted.headers["traceparent"].startswith("00-")
    assert accepted.headers["ratelimit-policy"].startswith('"anonymous-webhooks"')
    for refused in (fetched, replaced):
        assert refused.status_code == 405, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.headers["allow"] == "POST"
    assert 'method="POST",route="/webhooks/stripe",status="200"' in metrics
    assert 'method="GET",route="/webhooks/stripe",status="405"' in metrics
