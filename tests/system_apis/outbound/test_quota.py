"""Quota budgets: shared across replicas through Redis, interactive traffic served first."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from contracts.context import CallContext, use_context
from contracts.errors import UpstreamUnavailable
from system_apis.outbound import (
    ConcurrencyQuota,
    DailyQuota,
    OutboundMetrics,
    PlatformPolicy,
    QuotaBudget,
    RateQuota,
    Timeouts,
    build_quota,
)
from tests.support.servers import free_port
from tests.system_apis.outbound.upstream import policy_client


class InFlight:
    """A vendor stand-in that counts how many requests it serves at once."""

    def __init__(self, hold: float = 0.03) -> None:
        self.hold = hold
        self.now = 0
        self.peak = 0
        self.served = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.hold)
            await self.release.wait()
        finally:
            self.now -= 1
        self.served += 1
        return httpx.Response(200, json={"ok": True})


def netsuite_policy(limit: int, *, deadline: float = 5.0) -> PlatformPolicy:
    return PlatformPolicy(
        name="netsuite",
        quota=ConcurrencyQuota(limit=limit, batch_share=0.8, poll_interval=0.005),
        timeouts=Timeouts(interactive_deadline=deadline, batch_deadline=deadline),
    )


def rate_policy(limit: int, *, window: float, deadline: float = 5.0) -> PlatformPolicy:
    return PlatformPolicy(
        name="stripe",
        quota=RateQuota(limit=limit, window=window, batch_share=0.8),
        timeouts=Timeouts(attempt=1.0, interactive_deadline=deadline, batch_deadline=deadline),
    )


def as_priority(priority: str) -> None:
    use_context(CallContext(priority=priority))


async def get_as(client: httpx.AsyncClient, priority: str, path: str = "/x") -> httpx.Response:
    as_priority(priority)
    return await client.get(path)


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.Redis.from_url(redis_url, socket_timeout=1.0)
    yield client
    await client.aclose()


@pytest.fixture
async def key_prefix(redis_url):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:quota:{uuid.uuid4().hex}"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# --- in-process budgets --------------------------------------------------------------------


async def test_local_concurrency_budget_caps_requests_in_flight():
    policy = netsuite_policy(3)
    upstream = InFlight()
    async with policy_client(
        httpx.MockTransport(upstream), policy=policy, quota=build_quota(policy)
    ) as client:
        responses = await asyncio.gather(*(client.get("/x") for _ in range(15)))
    assert [r.status_code for r in responses] == [200] * 15
    assert upstream.peak == 3


async def test_batch_share_leaves_room_for_interactive_callers():
    patient = netsuite_policy(5, deadline=5.0)
    hurried = netsuite_policy(5, deadline=0.3)
    quota = build_quota(patient)
    upstream = InFlight()
    upstream.release.clear()
    registry = CollectorRegistry()
    async with (
        policy_client(httpx.MockTransport(upstream), policy=patient, quota=quota) as holder,
        policy_client(
            httpx.MockTransport(upstream),
            policy=hurried,
            quota=quota,
            metrics=OutboundMetrics(registry),
        ) as client,
    ):
        batch = [asyncio.create_task(get_as(holder, "batch")) for _ in range(4)]
        await asyncio.sleep(0.05)
        assert upstream.now == 4
        # A fifth batch request finds the batch share (4 of 5) spent and gives up at its deadline.
        with pytest.raises(UpstreamUnavailable) as caught:
            await get_as(client, "batch")
        # An interactive request still gets the slot kept for it.
        interactive = asyncio.create_task(get_as(client, "interactive"))
        await asyncio.sleep(0.05)
        assert upstream.now == 5
        upstream.release.set()
        assert (await interactive).status_code == 200
        assert [(await task).status_code for task in batch] == [200] * 4

    assert caught.value.code == "quota_exhausted"
    assert caught.value.vendor == "netsuite"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert (
        registry.get_sample_value(
            "erpgw_outbound_quota_refusals_total", {"platform": "netsuite", "priority": "batch"}
        )
        == 1
    )


async def test_rate_budget_refuses_batch_first_and_says_when_to_retry():
    policy = rate_policy(10, window=30.0, deadline=0.2)
    async with policy_client(
        httpx.MockTransport(InFlight(hold=0)), policy=policy, quota=build_quota(policy)
    ) as client:
        for _ in range(8):
            assert (await get_as(client, "batch")).status_code == 200
        with pytest.raises(UpstreamUnavailable) as caught:
            await get_as(client, "batch")
        assert (await get_as(client, "interactive")).status_code == 200
        assert (await get_as(client, "interactive")).status_code == 200
        with pytest.raises(UpstreamUnavailable):
            await get_as(client, "interactive")

    assert caught.value.code == "quota_exhausted"
    # The first slot frees when the first request leaves the 30 s window.
    assert caught.value.retry_after is not None
    assert 25 < caught.value.retry_after <= 30


async def test_rate_budget_waits_for_capacity_within_the_deadline():
    policy = rate_policy(2, window=0.3)
    registry = CollectorRegistry()
    async with policy_client(
        httpx.MockTransport(InFlight(hold=0)),
        policy=policy,
        quota=build_quota(policy),
        metrics=OutboundMetrics(registry),
    ) as client:
        started = time.monotonic()
        statuses = [(await get_as(client, "interactive")).status_code for _ in range(5)]
        elapsed = time.monotonic() - started
    assert statuses == [200] * 5
    # Two a window of 0.3 s: the fifth request cannot start before two windows passed.
    assert 0.55 <= elapsed < 3.0
    waits = registry.get_sample_value(
        "erpgw_outbound_quota_waits_total", {"platform": "stripe", "priority": "interactive"}
    )
    assert waits is not None and waits >= 2


async def test_daily_budget_follows_the_vendor_reported_usage():
    policy = PlatformPolicy(name="salesforce", quota=DailyQuota(batch_share=0.8))
    quota = build_quota(policy)
    assert quota is not None

    def usage_from_answer(response: httpx.Response) -> None:
        used, limit = response.headers["X-Test-Usage"].split("/")
        quota.report_usage(int(used), int(limit))

    usage = {"value": "3990/5000"}

    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"X-Test-Usage": usage["value"]})

    async with policy_client(
        httpx.MockTransport(vendor), policy=policy, quota=quota, observe=usage_from_answer
    ) as client:
        assert (await get_as(client, "batch")).status_code == 200
        usage["value"] = "4000/5000"
        assert (await get_as(client, "batch")).status_code == 200
        with pytest.raises(UpstreamUnavailable) as caught:
            await get_as(client, "batch")
        assert (await get_as(client, "interactive")).status_code == 200
        usage["value"] = "5000/5000"
        await get_as(client, "interactive")
        with pytest.raises(UpstreamUnavailable):
            await get_as(client, "interactive")
    assert caught.value.code == "quota_exhausted"
    assert caught.value.retry_after == 300.0


# --- budgets shared through Redis ----------------------------------------------------------


@pytest.mark.redis
async def test_redis_semaphore_caps_concurrency_across_two_replicas(redis_url, key_prefix):
    policy = netsuite_policy(3)
    upstream = InFlight(hold=0.03)
    replicas = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        clients = [
            policy_client(
                httpx.MockTransport(upstream),
                policy=policy,
                quota=build_quota(policy, redis=redis, key_prefix=key_prefix),
            )
            for redis in replicas
        ]
        responses = await asyncio.gather(
            *(clients[i % 2].get("/services/rest/record/v1/customer/1") for i in range(16))
        )
        for client in clients:
            await client.aclose()
        leases_left = await replicas[0].zcard(f"{key_prefix}:netsuite:concurrency")
    finally:
        for redis in replicas:
            await redis.aclose()

    assert [r.status_code for r in responses] == [200] * 16
    assert upstream.peak == 3
    assert leases_left == 0


@pytest.mark.redis
async def test_redis_leases_of_a_dead_process_expire(redis_client, key_prefix):
    settings = ConcurrencyQuota(limit=1, lease_seconds=0.2, poll_interval=0.01)
    policy = PlatformPolicy(name="netsuite", quota=settings)
    dead = build_quota(policy, redis=redis_client, key_prefix=key_prefix)
    alive = build_quota(policy, redis=redis_client, key_prefix=key_prefix)
    assert dead is not None and alive is not None
    await dead.acquire(priority="interactive", max_wait=0.1)  # never released
    permit = await alive.acquire(priority="interactive", max_wait=2.0)
    assert permit.waited and not permit.local


@pytest.mark.redis
async def test_redis_batch_share_leaves_room_for_interactive(redis_client, key_prefix):
    policy = netsuite_policy(5, deadline=0.2)
    budgets: list[QuotaBudget] = [
        b
        for b in (build_quota(policy, redis=redis_client, key_prefix=key_prefix) for _ in range(2))
        if b is not None
    ]
    for i in range(4):
        await budgets[i % 2].acquire(priority="batch", max_wait=0.1)
    with pytest.raises(Exception, match="quota exhausted"):
        await budgets[0].acquire(priority="batch", max_wait=0.1)
    permit = await budgets[1].acquire(priority="interactive", max_wait=0.1)
    assert not permit.local


@pytest.mark.redis
async def test_redis_rate_budget_is_shared_by_replicas(redis_url, key_prefix):
    policy = rate_policy(5, window=30.0, deadline=0.2)
    replicas = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        clients = [
            policy_client(
                httpx.MockTransport(InFlight(hold=0)),
                policy=policy,
                quota=build_quota(policy, redis=redis, key_prefix=key_prefix),
            )
            for redis in replicas
        ]
        as_priority("interactive")
        statuses = [(await clients[i % 2].get("/v1/customers")).status_code for i in range(5)]
        with pytest.raises(UpstreamUnavailable) as caught:
            await clients[1].get("/v1/customers")
        for client in clients:
            await client.aclose()
    finally:
        for redis in replicas:
            await redis.aclose()
    assert statuses == [200] * 5
    assert caught.value.code == "quota_exhausted"
    assert caught.value.retry_after is not None
    assert 25 < caught.value.retry_after <= 30


@pytest.mark.redis
async def test_redis_daily_budget_shares_reported_usage(redis_client, key_prefix):
    policy = PlatformPolicy(name="salesforce", quota=DailyQuota(batch_share=0.8))
    reporter = build_quota(policy, redis=redis_client, key_prefix=key_prefix)
    other = build_quota(policy, redis=redis_client, key_prefix=key_prefix)
    assert reporter is not None and other is not None
    reporter.report_usage(4500, 5000)
    await reporter.flush()  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="quota exhausted"):
        await other.acquire(priority="batch", max_wait=0.1)
    assert not (await other.acquire(priority="interactive", max_wait=0.1)).local


async def test_redis_down_degrades_to_the_in_process_budget(caplog):
    dead_redis = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    policy = netsuite_policy(2)
    quota = build_quota(policy, redis=dead_redis)
    upstream = InFlight()
    try:
        with caplog.at_level(logging.WARNING):
            async with policy_client(
                httpx.MockTransport(upstream), policy=policy, quota=quota
            ) as client:
                responses = await asyncio.gather(*(client.get("/x") for _ in range(6)))
    finally:
        await dead_redis.aclose()
    assert [r.status_code for r in responses] == [200] * 6
    assert upstream.peak == 2
    assert "using the in-process budget" in caplog.text


async def test_a_cancelled_request_gives_its_slot_back():
    policy = netsuite_policy(1, deadline=1.0)
    quota = build_quota(policy)
    upstream = InFlight()
    upstream.release.clear()
    async with policy_client(httpx.MockTransport(upstream), policy=policy, quota=quota) as client:
        stuck = asyncio.create_task(client.get("/x"))
        await asyncio.sleep(0.05)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        upstream.release.set()
        assert (await client.get("/x")).status_code == 200
