"""Webhook signatures, and signed deliveries from the emulator to a loopback endpoint."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from contracts.errors import InvalidRequest, Unauthenticated, UpstreamInvalid
from contracts.money import Money
from contracts.v1 import CustomerCreate, SubscriptionCreate, SubscriptionItemInput
from gateway.sandbox_wiring import stripe_sandbox_credentials as sandbox_credentials
from sandbox.stripe import StripeEmulator
from sandbox.stripe.webhooks import sign_webhook
from system_apis.billing.stripe import StripeClient, verify_event
from tests.support.servers import serve_asgi
from tests.system_apis.billing.stripe.openapi_check import optional_validator

SECRET = "whsec_erpgw_sandbox"
PAYLOAD = b'{"id":"evt_1","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}'
NOW = 1_800_000_000


def test_accepts_a_genuine_signature() -> None:
    header = sign_webhook(PAYLOAD, SECRET, NOW)
    assert verify_event(PAYLOAD, header, [SECRET], now=NOW + 10).id == "evt_1"


def test_refuses_a_tampered_body() -> None:
    header = sign_webhook(PAYLOAD, SECRET, NOW)
    with pytest.raises(Unauthenticated) as caught:
        verify_event(PAYLOAD.replace(b"paid", b"void"), header, [SECRET], now=NOW)
    assert caught.value.code == "invalid_signature"


def test_refuses_the_wrong_secret() -> None:
    header = sign_webhook(PAYLOAD, "whsec_other", NOW)
    with pytest.raises(Unauthenticated) as caught:
        verify_event(PAYLOAD, header, [SECRET], now=NOW)
    assert caught.value.code == "invalid_signature"


def test_accepts_the_second_secret_during_a_roll() -> None:
    new_secret = "whsec_rolled"
    header = sign_webhook(PAYLOAD, new_secret, NOW)
    both = f"{header},v1={sign_webhook(PAYLOAD, 'whsec_retired', NOW).split('v1=')[1]}"
    assert verify_event(PAYLOAD, header, [SECRET, new_secret], now=NOW).id == "evt_1"
    assert verify_event(PAYLOAD, both, [new_secret], now=NOW).id == "evt_1"


def test_refuses_a_stale_timestamp() -> None:
    header = sign_webhook(PAYLOAD, SECRET, NOW)
    with pytest.raises(Unauthenticated) as caught:
        verify_event(PAYLOAD, header, [SECRET], now=NOW + 301)
    assert caught.value.code == "stale_timestamp"
    assert verify_event(PAYLOAD, header, [SECRET], tolerance=600, now=NOW + 301)


@pytest.mark.parametrize(
    "header",
    ["", "v1=abc", "t=abc,v1=abc", "t=1,t=2,v1=abc", f"t={NOW}", "garbage", f"t={NOW},v0=abc"],
)
def test_refuses_a_malformed_header(header: str) -> None:
    with pytest.raises(InvalidRequest):
        verify_event(PAYLOAD, header, [SECRET], now=NOW)


def test_refuses_a_body_that_is_not_an_event() -> None:
    header = sign_webhook(b"[1,2]", SECRET, NOW)
    with pytest.raises(InvalidRequest):
        verify_event(b"[1,2]", header, [SECRET], now=NOW)


def test_an_event_is_read_by_its_envelope_and_keeps_its_object_as_sent() -> None:
    payload = (
        b'{"id":"evt_2","object":"event","type":"customer.updated","created":1800000000,'
        b'"data":{"object": {"id":"cus_1","name":"Ada","metadata":{"a":"b:c"}},'
        b'"previous_attributes":{"name":"A"}}}'
    )
    event = verify_event(payload, sign_webhook(payload, SECRET, NOW), [SECRET], now=NOW)

    assert (event.id, event.type, event.created, event.object_id) == (
        "evt_2", "customer.updated", datetime.fromtimestamp(1_800_000_000, UTC), "cus_1")
    assert bytes(event.object) == b'{"id":"cus_1","name":"Ada","metadata":{"a":"b:c"}}'
    assert event.previous_attributes is not None
    assert msgspec.json.decode(event.previous_attributes) == {"name": "A"}


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        (b"[1,2]", "/"),
        (b'{"id":"evt_1","type":"invoice.paid"}', "/data/object"),
        (b'{"id":"evt_1","type":"invoice.paid","data":[]}', "/data/object"),
        (b'{"id":"evt_1","type":"invoice.paid","data":{"object":"in_1"}}', "/data/object"),
        (b'{"type":"invoice.paid","data":{"object":{}}}', "/id"),
        (b'{"id":"","type":"invoice.paid","data":{"object":{}}}', "/id"),
        (b'{"id":"evt_1","type":7,"data":{"object":{}}}', "/type"),
        (b'{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":1,}}}', "/"),
    ],
)
def test_a_signed_body_that_is_not_a_stripe_event_is_refused_naming_where(
    payload: bytes, pointer: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        verify_event(payload, sign_webhook(payload, SECRET, NOW), [SECRET], now=NOW)
    assert [error.pointer for error in refused.value.errors] == [pointer]


def test_an_event_is_verified_before_it_is_read() -> None:
    header = sign_webhook(b"[1,2]", SECRET, NOW)
    with pytest.raises(Unauthenticated):
        verify_event(b"[1,2]", header, ["whsec_other"], now=NOW)


class Receiver:
    """A loopback webhook endpoint that records deliveries and answers scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.deliveries: list[tuple[dict[str, str], bytes]] = []

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.deliveries.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def events(self) -> list[dict[str, Any]]:
        """Every delivery, verified, and (with the specs at hand) checked as a Stripe event."""
        events = [
            json.loads(body)
            for headers, body in self.deliveries
            if verify_event(body, headers["stripe-signature"], [SECRET])
        ]
        validator = optional_validator()
        if validator is not None:
            for event in events:
                validator.check_object("event", event)
                validator.check_object(event["data"]["object"]["object"], event["data"]["object"])
        return events


async def test_delivers_signed_events_and_retries_failures() -> None:
    receiver = Receiver(statuses=[500])
    emulator = StripeEmulator(rate_limit_per_second=None, webhook_retry_delays=(0.05, 0.1))
    with serve_asgi(receiver, lifespan="off") as hook_url:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.vendor)) as http:
            stripe = StripeClient(http, credentials=sandbox_credentials("http://stripe.test"))
            endpoint = await stripe.create_webhook_endpoint(
                f"{hook_url}/webhooks/stripe", enabled_events=["customer.created"]
            )
            customer = await stripe.create_customer(
                CustomerCreate(legal_name="Umbrella", legal_entity="DE01", currency="EUR")
            )
            await emulator.drain_webhooks()
        await emulator.aclose()

    events = receiver.events()
    assert endpoint.secret == SECRET
    assert [e["type"] for e in events] == ["customer.created", "customer.created"]
    assert {e["id"] for e in events} == {events[0]["id"]}  # the retry is the same event
    assert events[0]["data"]["object"]["id"] == customer.id
    assert [a.status for a in emulator.webhook_attempts] == [500, 200]


async def test_a_declined_payment_emits_invoice_payment_failed() -> None:
    receiver = Receiver(statuses=[])
    emulator = StripeEmulator(rate_limit_per_second=None)
    with serve_asgi(receiver, lifespan="off") as hook_url:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.vendor)) as http:
            stripe = StripeClient(http, credentials=sandbox_credentials("http://stripe.test"))
            await stripe.create_webhook_endpoint(hook_url, enabled_events=["*"])
            customer = await stripe.create_customer(
                CustomerCreate(legal_name="Globex", legal_entity="DE01", currency="EUR")
            )
            await stripe.create_invoice_item(
                customer_id=customer.id, amount=Money(amount=9_900, currency="EUR")
            )
            invoice = await stripe.create_invoice(customer_id=customer.id)
            with pytest.raises(UpstreamInvalid):
                await stripe.pay_invoice(invoice.id, payment_method="pm_card_chargeDeclined")
            await emulator.drain_webhooks()
        await emulator.aclose()

    failed = [e for e in receiver.events() if e["type"] == "invoice.payment_failed"]
    assert len(failed) == 1
    assert failed[0]["data"]["object"]["id"] == invoice.id
    assert failed[0]["data"]["object"]["attempt_count"] == 1


async def test_clock_advance_renews_and_notifies() -> None:
    receiver = Receiver(statuses=[])
    emulator = StripeEmulator(rate_limit_per_second=None)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with serve_asgi(receiver, lifespan="off") as hook_url:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.vendor)) as http:
            stripe = StripeClient(http, credentials=sandbox_credentials("http://stripe.test"))
            await stripe.create_webhook_endpoint(
                hook_url, enabled_events=["invoice.created", "invoice.finalized", "invoice.paid"]
            )
            clock = await stripe.create_test_clock(start)
            customer = await stripe.create_customer(
                CustomerCreate(legal_name="Acme", legal_entity="US01", currency="USD"),
                test_clock=clock.id,
            )
            seat = await stripe.find_price(product_code="SEAT", currency="USD")
            assert seat is not None
            subscription = await stripe.create_subscription(
                SubscriptionCreate(
                    customer_id=customer.id,
                    currency="USD",
                    items=[SubscriptionItemInput(price_id=seat.id, quantity=4)],
                )
            )
            await stripe.advance_test_clock(clock.id, start + timedelta(days=31))
            draft_only = await stripe.list_invoices(subscription_id=subscription.id, status="draft")
            await stripe.advance_test_clock(clock.id, start + timedelta(days=31, hours=2))
            await emulator.drain_webhooks()
        await emulator.aclose()

    renewal = [
        e["data"]["object"]
        for e in receiver.events()
        if e["data"]["object"]["billing_reason"] == "subscription_cycle"
    ]
    assert [len(draft_only.data)] == [1]
    assert [r["status"] for r in renewal] == ["draft", "open", "paid"]
    assert renewal[0]["period_start"] == int(start.timestamp())
    assert renewal[-1]["amount_paid"] == 4 * 2_500
    payload = json.dumps(renewal[0])
    assert customer.id in payload
