"""The circuit breaker: retried through scattered faults, open under sustained failure."""

from __future__ import annotations

import random

import httpx
import pytest
from prometheus_client import CollectorRegistry

from contracts.errors import UpstreamUnavailable
from system_apis.outbound import BreakerSettings, BreakerState, CircuitBreaker, OutboundMetrics
from tests.system_apis.outbound.upstream import Reply, ScriptedUpstream, fast_policy, policy_client


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def breaker_with(clock: FakeClock, **settings: float) -> CircuitBreaker:
    return CircuitBreaker("stripe", BreakerSettings(**settings), clock=clock)  # type: ignore[arg-type]


async def test_scattered_faults_are_retried_and_never_open_the_breaker():
    faults = random.Random(20240601)
    served = {"ok": 0, "failed": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        if faults.random() < 0.3:
            served["failed"] += 1
            return httpx.Response(503, json={"error": {"type": "api_error"}})
        served["ok"] += 1
        return httpx.Response(200, json={"id": "cus_1"})

    policy = fast_policy(max_attempts=6)
    breaker = CircuitBreaker("stripe", policy.breaker)
    async with policy_client(httpx.MockTransport(flaky), policy=policy, breaker=breaker) as client:
        statuses = [(await client.get("/v1/customers/cus_1")).status_code for _ in range(150)]

    assert statuses == [200] * 150
    assert served["failed"] >= 30  # the faults really happened, about 30 % of attempts
    assert state_of(breaker) is BreakerState.CLOSED


async def test_sustained_failure_opens_and_fails_fast_without_calling():
    upstream = ScriptedUpstream(default=Reply(503))
    registry = CollectorRegistry()
    clock = FakeClock()
    breaker = breaker_with(clock, min_calls=20, window=10.0, open_seconds=15.0)
    policy = fast_policy(max_attempts=1)
    async with policy_client(
        upstream, policy=policy, breaker=breaker, metrics=OutboundMetrics(registry)
    ) as client:
        for _ in range(20):
            assert (await client.get("/v1/customers")).status_code == 503
        assert state_of(breaker) is BreakerState.OPEN

        clock.now += 5
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/v1/customers")

    error = caught.value
    assert error.code == "circuit_open"
    assert error.vendor == "stripe"
    assert error.retry_after == pytest.approx(10.0)
    assert len(upstream.seen) == 20  # the refused call never reached the vendor
    assert registry.get_sample_value("erpgw_outbound_breaker_state", {"platform": "stripe"}) == 2
    assert (
        registry.get_sample_value("erpgw_outbound_breaker_refusals_total", {"platform": "stripe"})
        == 1
    )


async def test_half_open_probe_success_closes_the_breaker():
    upstream = ScriptedUpstream(script=[Reply(503)] * 20, default=Reply(200))
    clock = FakeClock()
    breaker = breaker_with(clock, min_calls=20, open_seconds=15.0)
    async with policy_client(upstream, policy=fast_policy(max_attempts=1), breaker=breaker) as c:
        for _ in range(20):
            await c.get("/v1/customers")
        assert state_of(breaker) is BreakerState.OPEN

        clock.now += 15.1
        assert state_of(breaker) is BreakerState.HALF_OPEN
        assert (await c.get("/v1/customers")).status_code == 200
        assert state_of(breaker) is BreakerState.CLOSED
        assert (await c.get("/v1/customers")).status_code == 200


async def test_half_open_probe_failure_opens_again():
    upstream = ScriptedUpstream(default=Reply(502))
    clock = FakeClock()
    breaker = breaker_with(clock, min_calls=20, open_seconds=15.0)
    async with policy_client(upstream, policy=fast_policy(max_attempts=1), breaker=breaker) as c:
        for _ in range(20):
            await c.get("/v1/customers")
        clock.now += 16
        assert (await c.get("/v1/customers")).status_code == 502
        assert state_of(breaker) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await c.get("/v1/customers")
    assert caught.value.retry_after == pytest.approx(15.0)
    assert len(upstream.seen) == 21


def test_half_open_lets_only_a_few_probes_through_at_once():
    clock = FakeClock()
    breaker = breaker_with(clock, min_calls=2, half_open_probes=2, open_seconds=1.0)
    for _ in range(2):
        breaker.record(breaker.acquire(), failed=True)
    clock.now += 2
    probes = [breaker.acquire(), breaker.acquire()]
    with pytest.raises(Exception, match="circuit for stripe is open"):
        breaker.acquire()
    breaker.cancel(probes[0])
    breaker.record(probes[1], failed=False)
    assert state_of(breaker) is BreakerState.CLOSED


def test_failures_must_be_recent_and_frequent_to_open():
    clock = FakeClock()
    breaker = breaker_with(clock, min_calls=20, window=10.0, failure_ratio=0.5)
    # Many failures spread thinly over time never fill the window.
    for _ in range(40):
        breaker.record(breaker.acquire(), failed=True)
        clock.now += 1.0
        breaker.record(breaker.acquire(), failed=False)
        breaker.record(breaker.acquire(), failed=False)
        breaker.record(breaker.acquire(), failed=False)
    assert state_of(breaker) is BreakerState.CLOSED
    # Few calls, all failed: below min_calls, still closed.
    clock.now += 60
    for _ in range(19):
        breaker.record(breaker.acquire(), failed=True)
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record(breaker.acquire(), failed=True)
    assert state_of(breaker) is BreakerState.OPEN


async def test_429_and_transport_errors_count_as_failures_but_404_does_not():
    clock = FakeClock()
    breaker = breaker_with(clock, min_calls=4, failure_ratio=0.5)
    answers = iter([404, 404, 404, 404, 404, 404])

    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers))

    async with policy_client(httpx.MockTransport(not_found), breaker=breaker) as client:
        for _ in range(6):
            await client.get("/v1/customers/cus_x")
    assert state_of(breaker) is BreakerState.CLOSED

    def throttled_or_down(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("a"):
            return httpx.Response(429)
        raise httpx.ConnectError("refused", request=request)

    async with policy_client(
        httpx.MockTransport(throttled_or_down), policy=fast_policy(max_attempts=1), breaker=breaker
    ) as client:
        await client.get("/v1/a")
        await client.get("/v1/a")
        for _ in range(4):
            with pytest.raises(httpx.ConnectError):
                await client.get("/v1/b")
    assert state_of(breaker) is BreakerState.OPEN
