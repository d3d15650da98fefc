"""The gateway's edge against input no client should send: invented HTTP methods, header values
that are not UTF-8, JSON nested 10,000 levels deep or naming a key twice, and a body that never
finishes arriving. Each is a 4xx problem (or 501) that writes no traceback; beside each attack,
the well-formed request it imitates still works."""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar import post

from gateway.modes import webhook_secrets
from tests.experience_apis.test_console import exception_status, failed_flow, new_client, sign_in
from tests.support.apps import (
    AppClient,
    app_client,
    bearer,
    gateway_app,
    new_client_token,
    settings_for,
)
from tests.support.servers import serve_asgi

PROBLEM = "application/problem+json"
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


@post("/security-echo", opt={"public": True, "rate_limit": False}, sync_to_thread=False)
def echo(data: dict[str, Any]) -> dict[str, Any]:
    """Any route taking a JSON body: it answers what the gateway decoded."""
    return data


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[AppClient]:
    async with app_client(gateway_app(settings_for(tmp_path), echo)) as client:
        yield client


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[list[MutableMapping[str, Any]]]:
    """Fails the test if anything logged an error or a traceback while it ran."""
    with caplog.at_level(logging.WARNING), structlog.testing.capture_logs() as logs:
        yield logs
    assert [
        entry for entry in logs if entry.get("log_level") == "error" or "exc_info" in entry
    ] == []
    assert [record for record in caplog.records if record.exc_info or record.levelno >= 40] == []


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def stripe_signed(gateway: AppClient, payload: bytes) -> dict[str, str]:
    secret = webhook_secrets(gateway.app.state.gateway.settings)["stripe"][0]
    timestamp = int(time.time())
    digest = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}


# Metrics cardinality


async def test_invented_methods_are_501_and_share_one_metrics_label(gateway: AppClient) -> None:
    for method, path in (("SECX1", "/x"), ("SECX2", "/health/live"), ("SECX3", "/metrics")):
        assert_problem(await gateway.request(method, path), 501)
    control = await gateway.get("/health/live")
    assert control.status_code == 200

    metrics = (await gateway.get("/metrics")).text
    assert "SECX" not in metrics
    assert 'method="other"' in metrics
    assert 'erpgw_http_requests_total{method="GET",route="/health/live",status="200"' in metrics


# 500s instead of 400s


async def test_json_nested_ten_thousand_deep_is_a_400(
    gateway: AppClient, no_tracebacks: list[MutableMapping[str, Any]]
) -> None:
    _, token = await new_client_token(gateway, ["process:write"])
    for deep in (DEEP_ARRAY, DEEP_OBJECT):
        refused = await gateway.post(
            "/webhooks/salesforce",
            content=deep,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert assert_problem(refused, 400)["code"] == "json_too_deep"
        assert_problem(await gateway.post("/security-echo", content=deep), 400)
    # Signed by the vendor, decoded after the signature check: still a 400.
    refused = await gateway.post(
        "/webhooks/stripe", content=DEEP_OBJECT, headers=stripe_signed(gateway, DEEP_OBJECT)
    )
    assert assert_problem(refused, 400)["code"] == "json_too_deep"

    shallow = b'{"a":' * 20 + b"1" + b"}" * 20
    control = await gateway.post("/security-echo", content=shallow)
    assert control.status_code == 201
    assert control.content == shallow


async def test_header_values_that_are_not_utf8_are_a_400(
    gateway: AppClient, no_tracebacks: list[MutableMapping[str, Any]]
) -> None:
    refused = await gateway.post(
        "/webhooks/stripe", content=b"{}", headers={b"stripe-signature": b"t=1,v1=\xff\xfe"}
    )
    body = assert_problem(refused, 400)
    assert body["errors"] == [{"pointer": "header.stripe-signature", "detail": "not valid UTF-8"}]
    for name in ("Authorization", "X-Correlation-ID", "Idempotency-Key", "X-Anything"):
        assert_problem(await gateway.get("/health/live", headers={name.encode(): b"\xc3\x28"}), 400)

    # UTF-8 that is not ASCII passes the edge; a Stripe signature holding it is malformed.
    control = await gateway.get("/health/live", headers={b"x-note": "caf\u00e9".encode()})
    assert control.status_code == 200
    malformed = await gateway.post(
        "/webhooks/stripe", content=b"{}", headers={b"stripe-signature": "t=1,v1=\u00e9".encode()}
    )
    assert assert_problem(malformed, 400)["code"] == "malformed_signature"
    unsigned = await gateway.post(
        "/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=ab"}
    )
    assert assert_problem(unsigned, 401)["code"] == "invalid_signature"
    # Basic credentials that are not base64 text: a refused client, as malformed ones are.
    for credentials in ("Basic \u00e9", "Basic !!"):
        token = await gateway.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={b"authorization": credentials.encode()},
        )
        assert token.status_code == 401, token.text
        assert token.json()["error"] == "invalid_client"


# Duplicate JSON object keys


async def test_a_json_key_given_twice_is_refused_naming_it(
    gateway: AppClient, no_tracebacks: list[MutableMapping[str, Any]]
) -> None:
    _, token = await new_client_token(gateway, ["process:write"])
    smuggled = b'{"event":"ignored.event","event":"opportunity.closed_won","opportunity_id":"006A"}'
    refused = await gateway.post(
        "/webhooks/salesforce",
        content=smuggled,
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    body = assert_problem(refused, 400)
    assert body["code"] == "repeated_json_key"
    assert '"event"' in body["detail"]

    for twice, key in (
        (b'{"a":1,"b":{"c":"x:y","c":2}}', "c"),  # nested, with a colon inside a string
        (b'{"name":1,"\\u006eame":2}', "name"),  # the same key spelt with an escape
        (b'{"a":"\\u003a","a":1}', "a"),  # a colon hidden by an escape
    ):
        body = assert_problem(await gateway.post("/security-echo", content=twice), 400)
        assert f'"{key}"' in body["detail"]

    for once in (
        b'{"lines":[{"sku":"A","qty":1},{"sku":"B","qty":2}],"at":"10:00:00"}',
        b'{"name":"\\u006eame","url":"https://example.com:8443/a"}',
    ):
        control = await gateway.post("/security-echo", content=once)
        assert control.status_code == 201, control.text


# Body-read timeout


def raw_request(base_url: str, request: bytes, *, wait: float) -> tuple[bytes, float]:
    """Send `request` as is; returns what the server answered before closing or `wait`
    seconds passing, and how long that took."""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    received = b""
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and received.endswith(b"}"):
                    break
        except TimeoutError:
            pass
    return received, time.monotonic() - started


def test_a_body_that_stops_arriving_is_answered_408(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ERPGW_BODY_READ_TIMEOUT_SECONDS="1")
    head = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\nStripe-Signature: t=1,v1=ab\r\n"
        b"Content-Length: 200\r\n\r\n"
    )
    with serve_asgi(gateway_app(settings)) as base_url:
        stalled, took = raw_request(base_url, head + b'{"id":1', wait=15)
        assert stalled.startswith(b"HTTP/1.1 408 "), stalled[:200]
        assert b"application/problem+json" in stalled
        assert took < 10

        complete, took = raw_request(base_url, head + b" " * 200, wait=15)
        assert complete.startswith(b"HTTP/1.1 401 "), complete[:200]
        assert took < 5


async def test_console_edited_input_naming_a_key_twice_is_not_sent(gateway: AppClient) -> None:
    exception_id = await failed_flow(gateway)
    client_id, secret = await new_client(gateway, "ops:read", "ops:replay")
    csrf = await sign_in(gateway, client_id, secret)

    refused = await gateway.post(
        f"/ops/exceptions/{exception_id}/retry",
        data={"input": '{"legal_entity": "US01", "legal_entity": "DE01"}', "csrf_token": csrf},
    )
    assert refused.status_code == 422
    assert "legal_entity" in refused.text
    assert "more than once" in refused.text
    assert await exception_status(gateway, exception_id) == "open"
