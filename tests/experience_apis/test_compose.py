"""The composition rules on their own: budgets, required and optional sources, the cache
(in process and in Redis) and stale answers."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from redis.asyncio import Redis

from contracts.errors import NotFound, UpstreamError, UpstreamUnavailable
from experience_apis.compose import (
    Composer,
    InMemoryViewCache,
    RedisViewCache,
    Source,
    SourceRule,
    ViewRules,
)
from tests.support.waiting import eventually

RULES = ViewRules(
    name="test_view",
    sources={
        "crm": SourceRule(required=True, budget_seconds=0.2),
        "billing": SourceRule(budget_seconds=0.2),
    },
)


class Answer(msgspec.Struct, frozen=True):
    value: int


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def answering(value: int, *, delay: float = 0.0, error: Exception | None = None) -> object:
    async def fetch() -> Answer:
        # A platform that takes `delay` seconds to answer: time must pass here, on purpose.
        await asyncio.sleep(delay)
        if error is not None:
            raise error
        return Answer(value)

    return fetch


def source(name: str, fetch: object) -> Source[Answer]:
    return Source(name, "key", fetch, Answer)  # type: ignore[arg-type]


async def test_sources_are_fetched_concurrently() -> None:
    composer = Composer(InMemoryViewCache())
    started = asyncio.get_running_loop().time()

    composition = await composer.compose(
        RULES,
        source("crm", answering(1, delay=0.1)),
        source("billing", answering(2, delay=0.1)),
    )

    assert asyncio.get_running_loop().time() - started < 0.18
    assert composition.states == {"crm": "ok", "billing": "ok"}


async def test_a_required_source_out_of_budget_is_a_timeout_naming_it() -> None:
    composer = Composer(InMemoryViewCache())

    with pytest.raises(UpstreamUnavailable) as raised:
        await composer.compose(RULES, source("crm", answering(1, delay=1.0)))

    assert raised.value.timeout is True
    assert raised.value.vendor == "crm"


async def test_a_required_source_failing_is_an_upstream_error_naming_it() -> None:
    composer = Composer(InMemoryViewCache())
    failure = UpstreamUnavailable("Salesforce answered 503", vendor="salesforce", status=503)

    with pytest.raises(UpstreamError) as raised:
        await composer.compose(RULES, source("crm", answering(1, error=failure)))

    assert type(raised.value) is UpstreamError
    assert raised.value.vendor == "crm"
    assert raised.value.__cause__ is failure


async def test_a_required_source_not_finding_the_record_says_so() -> None:
    composer = Composer(InMemoryViewCache())

    with pytest.raises(NotFound):
        await composer.compose(RULES, source("crm", answering(1, error=NotFound("no account"))))


async def test_a_vendor_timeout_counts_as_the_sources_timeout() -> None:
    composer = Composer(InMemoryViewCache())
    slow = UpstreamUnavailable("read timeout", vendor="stripe", timeout=True)

    composition = await composer.compose(
        RULES, source("crm", answering(1)), source("billing", answering(2, error=slow))
    )

    assert composition.states["billing"] == "timeout"


async def test_stale_answers_stand_in_until_the_stale_window_ends() -> None:
    clock = Clock()
    composer = Composer(
        InMemoryViewCache(clock=clock), fresh_seconds=5, stale_seconds=60, clock=clock
    )
    billing = source("billing", answering(7))
    await composer.compose(RULES, source("crm", answering(1)), billing)
    broken = source("billing", answering(0, error=RuntimeError("bug")))

    clock.now += 30
    stale = await composer.compose(RULES, source("crm", answering(1)), broken)
    clock.now += 31
    gone = await composer.compose(RULES, source("crm", answering(1)), broken)

    assert stale.states["billing"] == "stale"
    assert stale.get(broken) == Answer(7)
    assert gone.states["billing"] == "error"
    assert gone.get(broken) is None


class BrokenCache:
    async def get(self, key: str) -> tuple[float, bytes] | None:
        raise ConnectionError("cache down")

    async def put(self, key: str, payload: bytes, *, stored_at: float, keep_seconds: float) -> None:
        raise ConnectionError("cache down")


async def test_a_cache_that_is_down_never_fails_the_view() -> None:
    composer = Composer(BrokenCache())

    composition = await composer.compose(
        RULES, source("crm", answering(1)), source("billing", answering(2))
    )

    assert composition.states == {"crm": "ok", "billing": "ok"}


@pytest.mark.redis
async def test_redis_cache_is_shared_and_expires(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        first, second = RedisViewCache(redis), RedisViewCache(redis)
        await first.put("view:crm:1", b'{"value":1}', stored_at=123.5, keep_seconds=0.2)

        seen = await second.get("view:crm:1")
        expired = await eventually(
            lambda: second.get("view:crm:1"), lambda value: value is None,
            timeout=5.0, interval=0.05, what="the cached view to expire",
        )

        assert seen == (123.5, b'{"value":1}')
        assert expired is None
    finally:
        await redis.aclose()
