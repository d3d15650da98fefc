"""The outbound policy as a vendor client sees it: headers, retries, deadline, records, metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import msgspec
import pytest
from prometheus_client import CollectorRegistry

import system_apis.outbound as http_policy
from contracts.context import CallContext, use_context
from system_apis.outbound import (
    InMemoryCallRecorder,
    OutboundMetrics,
    PlatformPolicy,
    Timeouts,
    build_transport,
    build_vendor_http,
    is_idempotent,
    path_template,
    retry_after_seconds,
)
from tests.support.servers import serve_asgi
from tests.system_apis.outbound.upstream import Reply, ScriptedUpstream, fast_policy, policy_client

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


# --- correlation headers -------------------------------------------------------------------


async def test_stamps_child_traceparent_and_correlation_id_from_context():
    upstream = ScriptedUpstream()
    use_context(
        CallContext(correlation_id="corr-42", traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01")
    )
    async with policy_client(upstream) as client:
        response = await client.get("/v1/customers")

    assert response.status_code == 200
    headers = upstream.seen[0].headers
    assert headers["x-correlation-id"] == "corr-42"
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id != CALLER_SPAN and len(span_id) == 16


async def test_mints_trace_and_correlation_id_without_context():
    upstream = ScriptedUpstream()
    use_context(CallContext())
    async with policy_client(upstream) as client:
        await client.get("/v1/customers")
        await client.get("/v1/customers")

    first, second = (seen.headers for seen in upstream.seen)
    for headers in (first, second):
        version, trace_id, span_id, _flags = headers["traceparent"].split("-")
        assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
        assert int(trace_id, 16) != 0 and int(span_id, 16) != 0
        assert headers["x-correlation-id"]
    assert first["x-correlation-id"] != second["x-correlation-id"]


async def test_each_attempt_is_its_own_span_of_the_same_trace():
    upstream = ScriptedUpstream(script=[Reply(503)])
    use_context(CallContext(correlation_id="c1", traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01"))
    async with policy_client(upstream) as client:
        await client.get("/v1/customers")

    spans = [seen.headers["traceparent"].split("-")[2] for seen in upstream.seen]
    assert [seen.headers["traceparent"].split("-")[1] for seen in upstream.seen] == [TRACE_ID] * 2
    assert len(set(spans)) == 2
    assert {seen.headers["x-correlation-id"] for seen in upstream.seen} == {"c1"}


# --- retries -------------------------------------------------------------------------------


async def test_retries_a_503_then_returns_the_success():
    upstream = ScriptedUpstream(script=[Reply(503), Reply(503)])
    async with policy_client(upstream) as client:
        response = await client.get("/v1/customers/cus_NffrFeUfNV2Hib")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert len(upstream.seen) == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retries_transient_statuses(status):
    upstream = ScriptedUpstream(script=[Reply(status)])
    async with policy_client(upstream) as client:
        response = await client.get("/v1/customers")
    assert response.status_code == 200
    assert len(upstream.seen) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
async def test_does_not_retry_client_errors(status):
    upstream = ScriptedUpstream(script=[Reply(status)])
    async with policy_client(upstream) as client:
        response = await client.get("/v1/customers")
    assert response.status_code == status
    assert len(upstream.seen) == 1


async def test_returns_the_last_failure_when_attempts_run_out():
    upstream = ScriptedUpstream(default=Reply(502, body=b'{"error": "bad gateway"}'))
    async with policy_client(upstream, policy=fast_policy(max_attempts=3)) as client:
        response = await client.get("/v1/customers")
    assert response.status_code == 502
    assert response.json() == {"error": "bad gateway"}
    assert len(upstream.seen) == 3


async def test_honours_retry_after_seconds():
    upstream = ScriptedUpstream(script=[Reply(429, headers=(("Retry-After", "1"),))])
    async with policy_client(upstream) as client:
        started = time.monotonic()
        response = await client.get("/v1/customers")
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert len(upstream.seen) == 2
    # Backoff alone would wait milliseconds here; only Retry-After explains a second.
    assert 0.9 <= elapsed < 4.0


async def test_retry_after_beyond_the_deadline_is_handed_back_at_once():
    upstream = ScriptedUpstream(script=[Reply(503, headers=(("Retry-After", "30"),))])
    async with policy_client(upstream) as client:
        started = time.monotonic()
        response = await client.get("/v1/customers")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert len(upstream.seen) == 1
    assert elapsed < 2.0


def test_reads_retry_after_as_seconds_or_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now=now) == 7.0
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=5), usegmt=True)
    assert retry_after_seconds(later, now=now) == 90.0
    assert retry_after_seconds(earlier, now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None, now=now) is None


@pytest.mark.parametrize(
    ("method", "headers", "extensions", "expected"),
    [
        ("GET", {}, {}, True),
        ("HEAD", {}, {}, True),
        ("OPTIONS", {}, {}, True),
        ("PUT", {}, {}, True),
        ("DELETE", {}, {}, True),
        ("POST", {}, {}, False),
        ("PATCH", {}, {}, False),
        ("POST", {"Idempotency-Key": "k"}, {}, True),
        ("PATCH", {}, {"erpgw_idempotent": True}, True),
    ],
)
def test_only_repeatable_requests_count_as_idempotent(method, headers, extensions, expected):
    request = httpx.Request(method, "https://vendor.test/x", headers=headers, extensions=extensions)
    assert is_idempotent(request) is expected


async def test_does_not_retry_a_post_without_idempotency_key():
    upstream = ScriptedUpstream(script=[Reply(503)])
    async with policy_client(upstream) as client:
        response = await client.post("/v1/customers", data={"name": "Acme"})
    assert response.status_code == 503
    assert len(upstream.seen) == 1


async def test_retries_a_post_with_idempotency_key_sending_the_same_body():
    upstream = ScriptedUpstream(script=[Reply(503), Reply(500)])
    async with policy_client(upstream) as client:
        response = await client.post(
            "/v1/customers", data={"name": "Acme"}, headers={"Idempotency-Key": "q2c:1:create"}
        )
    assert response.status_code == 200
    assert [seen.body for seen in upstream.seen] == [b"name=Acme"] * 3
    assert {seen.headers["idempotency-key"] for seen in upstream.seen} == {"q2c:1:create"}


async def test_retries_a_patch_marked_idempotent():
    upstream = ScriptedUpstream(script=[Reply(503)])
    async with policy_client(upstream) as client:
        request = client.build_request(
            "PATCH",
            "/services/data/v62.0/sobjects/Account/Ext_Id__c/ACME-1",
            json={"Name": "Acme"},
            extensions={"erpgw_idempotent": True},
        )
        response = await client.send(request)
    assert response.status_code == 200
    assert [seen.body for seen in upstream.seen] == [b'{"Name":"Acme"}'] * 2


async def test_does_not_retry_a_plain_patch():
    upstream = ScriptedUpstream(script=[Reply(503)])
    async with policy_client(upstream) as client:
        response = await client.patch("/api/v2/tickets/1.json", json={"ticket": {}})
    assert response.status_code == 503
    assert len(upstream.seen) == 1


async def test_retries_connection_errors_then_reraises_the_last():
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    async with policy_client(httpx.MockTransport(refuse)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/v1/customers")
    assert attempts == 3


async def test_a_slow_upstream_fails_with_a_timeout_within_the_deadline():
    upstream = ScriptedUpstream(default=Reply(delay=2.5))
    policy = fast_policy(deadline=1.0, attempt=0.4)
    with serve_asgi(upstream) as base_url:
        transport = build_transport("aiohttp")
        async with policy_client(transport, policy=policy, base_url=base_url) as client:
            started = time.monotonic()
            with pytest.raises(httpx.TimeoutException) as caught:
                await client.get("/v1/customers")
            elapsed = time.monotonic() - started

    assert "timeout" in str(caught.value)
    assert elapsed < 1.0 + 1.0
    # More than one attempt fitted in the deadline, and none started after it.
    assert 2 <= len(upstream.seen) <= 3


async def test_batch_callers_get_the_longer_deadline():
    policy = PlatformPolicy(
        name="zendesk",
        timeouts=Timeouts(attempt=0.2, interactive_deadline=0.3, batch_deadline=1.5),
    )
    upstream = ScriptedUpstream(script=[Reply(delay=0.5)], default=Reply())
    use_context(CallContext(priority="batch"))
    async with policy_client(upstream, policy=policy) as client:
        response = await client.get("/api/v2/tickets.json")
    assert response.status_code == 200


# --- records and metrics -------------------------------------------------------------------


async def test_records_one_call_per_attempt_without_query_or_secrets():
    recorder = InMemoryCallRecorder()
    upstream = ScriptedUpstream(script=[Reply(503)])
    use_context(CallContext(correlation_id="corr-7", flow_id="q2c:006A", step="create_invoice"))
    async with policy_client(upstream, recorder=recorder) as client:
        await client.get(
            "/v1/customers/cus_NffrFeUfNV2Hib/invoices",
            params={"email": "jane@example.com"},
            headers={"Authorization": "Bearer sk_test_secret"},
        )

    calls = recorder.calls
    assert [(c.attempt, c.status) for c in calls] == [(1, 503), (2, 200)]
    for call in calls:
        assert call.system == "stripe"
        assert call.method == "GET"
        assert call.path_template == "/v1/customers/{id}/invoices"
        assert call.correlation_id == "corr-7"
        assert (call.flow_id, call.step) == ("q2c:006A", "create_invoice")
        assert call.error is None
        assert call.latency_ms >= 0
        assert call.started_at.tzinfo is not None
    encoded = msgspec.json.encode(calls).decode()
    assert "jane" not in encoded and "sk_test_secret" not in encoded and "?" not in encoded


async def test_records_transport_errors_with_no_status():
    recorder = InMemoryCallRecorder()

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer", request=request)

    async with policy_client(
        httpx.MockTransport(reset), policy=fast_policy(max_attempts=2), recorder=recorder
    ) as client:
        with pytest.raises(httpx.ReadError):
            await client.get("/services/rest/record/v1/customer/eid:ACME-1")

    assert [(c.attempt, c.status) for c in recorder.calls] == [(1, None), (2, None)]
    assert recorder.calls[0].error == "ReadError: connection reset by peer"
    assert recorder.calls[0].path_template == "/services/rest/record/v1/customer/{id}"


async def test_a_client_may_name_the_path_template():
    recorder = InMemoryCallRecorder()
    async with policy_client(ScriptedUpstream(), recorder=recorder) as client:
        request = client.build_request(
            "GET",
            "/services/data/v62.0/sobjects/Account/Ext_Id__c/ACME-1",
            extensions={"erpgw_path_template": "/sobjects/Account/Ext_Id__c/{ext_id}"},
        )
        await client.send(request)
    assert recorder.calls[0].path_template == "/sobjects/Account/Ext_Id__c/{ext_id}"


def test_path_templates_hide_identifiers_but_keep_words():
    assert path_template("/v1/customers/cus_NffrFeUfNV2Hib") == "/v1/customers/{id}"
    assert path_template("/v1/invoices/in_1MtHbELkdIwHu7ix/pay") == "/v1/invoices/{id}/pay"
    assert path_template("/v1/payment_intents") == "/v1/payment_intents"
    assert path_template("/api/v2/tickets/35436.json") == "/api/v2/tickets/{id}.json"
    assert (
        path_template("/services/data/v62.0/sobjects/Opportunity/006xx000001abcdAAA")
        == "/services/data/v62.0/sobjects/Opportunity/{id}"
    )
    assert path_template("/sobjects/Account/001xx000003DGb2") == "/sobjects/Account/{id}"
    assert (
        path_template("/services/rest/record/v1/customerpayment/77")
        == "/services/rest/record/v1/customerpayment/{id}"
    )
    assert path_template("/x/3fa85f64-5717-4562-b3fc-2c963f66afa6/y") == "/x/{id}/y"
    assert path_template("/services/oauth2/token") == "/services/oauth2/token"


async def test_metrics_count_attempts_outcomes_and_retries():
    registry = CollectorRegistry()
    metrics = OutboundMetrics(registry)
    upstream = ScriptedUpstream(script=[Reply(503), Reply(404)])
    async with policy_client(upstream, metrics=metrics) as client:
        await client.get("/v1/customers/cus_NffrFeUfNV2Hib")
        await client.get("/v1/customers/cus_NffrFeUfNV2Hib")

    def calls(status_class: str, outcome: str) -> float | None:
        return registry.get_sample_value(
            "erpgw_outbound_calls_total",
            {
                "platform": "stripe",
                "method": "GET",
                "path_template": "/v1/customers/{id}",
                "status_class": status_class,
                "outcome": outcome,
            },
        )

    assert calls("5xx", "failed") == 1
    assert calls("4xx", "rejected") == 1
    assert calls("2xx", "ok") == 1
    assert (
        registry.get_sample_value(
            "erpgw_outbound_retries_total", {"platform": "stripe", "reason": "5xx"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "erpgw_outbound_latency_seconds_count",
            {"platform": "stripe", "method": "GET", "path_template": "/v1/customers/{id}"},
        )
        == 3
    )
    assert registry.get_sample_value("erpgw_outbound_breaker_state", {"platform": "stripe"}) == 0


async def test_observe_hook_sees_every_answer_and_cannot_break_the_call():
    statuses: list[int] = []

    def observe(response: httpx.Response) -> None:
        statuses.append(response.status_code)
        raise ValueError("unparseable usage header")

    upstream = ScriptedUpstream(script=[Reply(503)])
    async with policy_client(upstream, observe=observe) as client:
        response = await client.get("/v1/customers")
    assert response.status_code == 200
    assert statuses == [503, 200]


# --- the client the app factory builds -----------------------------------------------------


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_build_vendor_http_over_loopback(kind):
    upstream = ScriptedUpstream(
        script=[Reply(503), Reply(302, headers=(("Location", "https://elsewhere.test/"),))]
    )
    recorder = InMemoryCallRecorder()
    use_context(CallContext(correlation_id="corr-loop"))
    with serve_asgi(upstream) as base_url:
        async with build_vendor_http(
            "zendesk",
            base_url=base_url,
            transport=build_transport(kind),
            recorder=recorder,
            headers={"User-Agent": "erp-gateway"},
        ) as client:
            assert client.timeout.connect == 2.0 and client.timeout.read == 4.0
            response = await client.get("/api/v2/tickets/12.json", params={"q": "x"})

    # The redirect is handed back, never followed.
    assert response.status_code == 302
    assert [seen.path for seen in upstream.seen] == ["/api/v2/tickets/12.json"] * 2
    assert upstream.seen[-1].query == "q=x"
    assert upstream.seen[-1].headers["x-correlation-id"] == "corr-loop"
    assert upstream.seen[-1].headers["user-agent"] == "erp-gateway"
    assert [c.path_template for c in recorder.calls] == ["/api/v2/tickets/{id}.json"] * 2


def test_build_vendor_http_refuses_another_platforms_policy():
    with pytest.raises(ValueError, match="policy for stripe"):
        build_vendor_http("zendesk", base_url="https://x.test", policy=fast_policy())


def test_public_surface_matches_all():
    exported = {name for name in dir(http_policy) if not name.startswith("_")}
    imported_modules = {"annotations"}
    assert set(http_policy.__all__) == exported - imported_modules
