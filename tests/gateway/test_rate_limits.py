"""The rate-limit policy: headers, refusals, keys, windows, exactness across replicas, outages."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio
import structlog
import time_machine
from limits import parse
from litestar import Litestar, Request, Response, Router, get
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry

import gateway._rate_limit_leases as _leases
import gateway.rate_limits as rate_limits
from contracts.errors import RateLimited, ServiceUnavailable
from contracts.principal import Principal
from gateway.rate_limits import (
    RateLimitConfig,
    RateLimiter,
    parse_tiers,
    storage_uri_for,
)

STRATEGIES = ["moving-window", "sliding-window-counter"]
TIERS = "bronze=5/minute;silver=8/minute;gold=20/minute;gold.process=3/minute;anonymous=2/minute"


class BearerPrincipal(ASGIMiddleware):
    """Test convention: `Authorization: Bearer <client_id>:<tier>` authenticates as that."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        for name, value in scope["headers"]:
            if name == b"authorization" and value.startswith(b"Bearer "):
                client_id, _, tier = value[7:].decode().partition(":")
                scope["user"] = Principal(
                    client_id=client_id, name=client_id, scopes=frozenset(), tier=tier
                )
        await next_app(scope, receive, send)


def problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Stands in for gateway/errors.py: status, Retry-After and the policy's headers."""
    assert isinstance(exc, RateLimited | ServiceUnavailable)
    status = 429 if isinstance(exc, RateLimited) else 503
    headers = dict(request.scope["state"].get("rate_limit_headers", ()))
    headers["Retry-After"] = str(exc.retry_after)
    return Response(
        {"status": status, "detail": exc.message},
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


@get("/items", opt={"rate_limit_group": "system"}, sync_to_thread=False)
def items() -> dict[str, str]:
    return {"group": "system"}


@get("/flows", opt={"rate_limit_group": "process"}, sync_to_thread=False)
def flows() -> dict[str, str]:
    return {"group": "process"}


@get("/plain", sync_to_thread=False)
def plain() -> dict[str, str]:
    return {"group": "default"}


@get("/health", opt={"rate_limit": False}, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/docs", opt={"skip_rate_limit": True}, sync_to_thread=False)
def docs() -> dict[str, str]:
    return {"docs": "here"}


def make_app(limiter: RateLimiter) -> Litestar:
    return Litestar(
        route_handlers=[items, flows, plain, health, docs],
        middleware=[BearerPrincipal(), limiter.middleware],
        exception_handlers={RateLimited: problem, ServiceUnavailable: problem},
    )


def client_for(app: Any, address: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")


def bearer(client_id: str, tier: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {client_id}:{tier}"}


@pytest.fixture
async def limiter() -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter(RateLimitConfig(tiers=parse_tiers(TIERS)), registry=CollectorRegistry())
    yield limiter
    await limiter.close()


@pytest.fixture
def frozen_clock() -> Any:
    with time_machine.travel(1_900_000_000.0, tick=False) as traveller:
        yield traveller


# --- headers, refusals, keys -------------------------------------------------------------


async def test_limited_response_carries_policy_and_decreasing_remaining(limiter, frozen_clock):
    async with client_for(make_app(limiter)) as client:
        answers = [await client.get("/items", headers=bearer("acme", "bronze")) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.headers["RateLimit-Policy"] for a in answers} == {'"bronze-system";q=5;w=60'}
    fields = [a.headers["RateLimit"] for a in answers]
    assert [f.split(";")[1] for f in fields] == ["r=4", "r=3", "r=2"]
    assert all(f.startswith('"bronze-system";') for f in fields)
    seconds_to_reset = int(fields[0].split("t=")[1])
    assert 0 <= seconds_to_reset <= 60


async def test_spent_limit_answers_429_with_retry_after_and_fields(limiter, frozen_clock):
    registry = CollectorRegistry()
    limiter = RateLimiter(limiter.config, registry=registry)
    async with client_for(make_app(limiter)) as client:
        answers = [await client.get("/items", headers=bearer("acme", "bronze")) for _ in range(7)]

    assert [a.status_code for a in answers] == [200] * 5 + [429, 429]
    refusal = answers[5]
    assert refusal.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refusal.headers["Retry-After"]) <= 60
    assert refusal.headers["RateLimit-Policy"] == '"bronze-system";q=5;w=60'
    assert refusal.headers["RateLimit"].startswith('"bronze-system";r=0;t=')
    assert "bronze-system" in refusal.json()["detail"]
    refused = registry.get_sample_value(
        "erpgw_rate_limit_refusals_total", {"tier": "bronze", "group": "system"}
    )
    assert refused == 2


async def test_anonymous_callers_are_keyed_by_address_with_their_own_limit(limiter, frozen_clock):
    app = make_app(limiter)
    async with client_for(app, "203.0.113.1") as first, client_for(app, "203.0.113.2") as second:
        from_first = [(await first.get("/items")).status_code for _ in range(3)]
        from_second = [(await second.get("/items")).status_code for _ in range(3)]
        policy = (await second.get("/plain")).headers["RateLimit-Policy"]

    assert from_first == [200, 200, 429]
    assert from_second == [200, 200, 429]
    assert policy == '"anonymous-default";q=2;w=60'


async def test_route_opted_out_is_not_limited(limiter, frozen_clock):
    async with client_for(make_app(limiter)) as client:
        health_answers = [await client.get("/health") for _ in range(10)]
        docs_answers = [await client.get("/docs") for _ in range(10)]
        limited = [(await client.get("/items")).status_code for _ in range(3)]

    assert all(a.status_code == 200 for a in health_answers + docs_answers)
    assert not any("RateLimit" in a.headers for a in health_answers + docs_answers)
    assert limited == [200, 200, 429]


async def test_route_groups_are_counted_separately(limiter, frozen_clock):
    async with client_for(make_app(limiter)) as client:
        system = [(await client.get("/items", headers=bearer("acme", "gold"))) for _ in range(4)]
        process = [(await client.get("/flows", headers=bearer("acme", "gold"))) for _ in range(4)]

    assert [a.status_code for a in system] == [200] * 4
    assert system[-1].headers["RateLimit"].startswith('"gold-system";r=16;')
    assert [a.status_code for a in process] == [200, 200, 200, 429]
    assert process[0].headers["RateLimit-Policy"] == '"gold-process";q=3;w=60'


async def test_group_declared_on_a_router_applies_to_its_routes(limiter, frozen_clock):
    router = Router(path="/process/v1", route_handlers=[plain], opt={"rate_limit_group": "process"})
    app = Litestar(
        route_handlers=[router],
        middleware=[BearerPrincipal(), limiter.middleware],
        exception_handlers={RateLimited: problem, ServiceUnavailable: problem},
    )
    async with client_for(app) as client:
        answer = await client.get("/process/v1/plain", headers=bearer("acme", "gold"))

    assert answer.headers["RateLimit-Policy"] == '"gold-process";q=3;w=60'


async def test_tiers_have_their_own_limits(limiter, frozen_clock):
    async with client_for(make_app(limiter)) as client:
        bronze = [(await client.get("/plain", headers=bearer("b", "bronze"))) for _ in range(8)]
        silver = [(await client.get("/plain", headers=bearer("s", "silver"))) for _ in range(8)]
        unknown = await client.get("/plain", headers=bearer("p", "platinum"))

    assert [a.status_code for a in bronze].count(200) == 5
    assert [a.status_code for a in silver].count(200) == 8
    assert silver[0].headers["RateLimit-Policy"] == '"silver-default";q=8;w=60'
    assert unknown.headers["RateLimit-Policy"] == '"bronze-default";q=5;w=60'


async def test_every_rate_of_an_entry_applies(frozen_clock):
    tiers = parse_tiers("bronze=3/minute|1/second")
    limiter = RateLimiter(RateLimitConfig(tiers=tiers, strategy="moving-window"))
    statuses = []
    async with client_for(make_app(limiter)) as client:
        first = await client.get("/plain", headers=bearer("acme", "bronze"))
        second = await client.get("/plain", headers=bearer("acme", "bronze"))
        statuses += [first.status_code, second.status_code]
        for _ in range(3):
            frozen_clock.shift(1.5)
            statuses.append(
                (await client.get("/plain", headers=bearer("acme", "bronze"))).status_code
            )
    await limiter.close()

    assert first.headers["RateLimit-Policy"] == (
        '"bronze-default";q=3;w=60, "bronze-default-2";q=1;w=1'
    )
    assert second.headers["RateLimit"].startswith('"bronze-default-2";r=0;')
    # The per-second refusal handed its per-minute permit back: three admitted, not two.
    assert statuses == [200, 429, 200, 200, 429]


# --- windows --------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_permits_return_when_the_window_has_passed(strategy, frozen_clock):
    config = RateLimitConfig(tiers=parse_tiers(TIERS), strategy=strategy)
    limiter = RateLimiter(config)
    async with client_for(make_app(limiter)) as client:
        spent = [(await client.get("/items", headers=bearer("acme", "bronze"))) for _ in range(6)]
        retry_after = int(spent[-1].headers["Retry-After"])
        frozen_clock.shift(retry_after + 60)
        again = [(await client.get("/items", headers=bearer("acme", "bronze"))) for _ in range(6)]
    await limiter.close()

    assert [a.status_code for a in spent] == [200] * 5 + [429]
    assert [a.status_code for a in again] == [200] * 5 + [429]
    assert again[0].headers["RateLimit"].startswith('"bronze-system";r=4;')


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_one_process_admits_exactly_the_limit_and_leases_in_blocks(strategy, frozen_clock):
    limiter = RateLimiter(RateLimitConfig(strategy=strategy, store_timeout=5.0))
    store = spy_on_store(limiter)
    limit = parse("600/minute")

    decisions = await asyncio.gather(*(limiter.acquire("c:acme/x", limit) for _ in range(900)))
    await limiter.close()

    assert not any(d.degraded for d in decisions)
    assert sum(d.allowed for d in decisions) == 600
    assert sum(store.granted) == 600
    assert len(store.hits) < 600 / 8  # blocks, not one store call per request


# --- exactness across replicas (Redis) -----------------------------------------------------


class StoreSpy:
    """Records what the store was asked: each hit's cost and whether it was granted."""

    def __init__(self) -> None:
        self.hits: list[int] = []
        self.granted: list[int] = []
        self.reads = 0

    @property
    def calls(self) -> int:
        return len(self.hits) + self.reads


def spy_on_store(limiter: RateLimiter, spy: StoreSpy | None = None) -> StoreSpy:
    spy = spy or StoreSpy()
    storage = limiter.storage

    def hit_spy(original: Callable[..., Awaitable[bool]]) -> Callable[..., Awaitable[bool]]:
        async def hit(*args: Any, **kwargs: Any) -> bool:
            cost = kwargs.get("amount", args[3] if len(args) > 3 else 1)
            spy.hits.append(cost)
            granted = await original(*args, **kwargs)
            if granted:
                spy.granted.append(cost)
            return granted

        return hit

    def read_spy(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def read(*args: Any, **kwargs: Any) -> Any:
            spy.reads += 1
            return await original(*args, **kwargs)

        return read

    for name in ("acquire_entry", "acquire_sliding_window_entry"):
        setattr(storage, name, hit_spy(getattr(storage, name)))
    for name in ("get_moving_window", "get_sliding_window"):
        setattr(storage, name, read_spy(getattr(storage, name)))
    return spy


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"erpgw-test-rl-{uuid.uuid4().hex}"
    yield prefix
    client = redis.asyncio.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def shared_config(redis_url: str, prefix: str, **options: Any) -> RateLimitConfig:
    # All replicas share one event loop here, so the loop's own delay in resuming a finished
    # store call counts against the timeout; a generous one keeps a busy machine from
    # turning this into a store-outage test.
    return RateLimitConfig(
        storage_uri=storage_uri_for(redis_url), key_prefix=prefix, store_timeout=5.0, **options
    )


async def hammer(limiters: list[RateLimiter], limit_text: str, per_replica: int) -> int:
    """Every replica gets `per_replica` concurrent requests of one client; returns admitted."""
    limit = parse(limit_text)
    decisions = await asyncio.gather(
        *(
            limiter.acquire("c:acme/system", limit)
            for limiter in limiters
            for _ in range(per_replica)
        )
    )
    # Admitted because the store failed would prove nothing about exactness.
    assert not any(decision.degraded for decision in decisions)
    return sum(decision.allowed for decision in decisions)


@pytest.mark.redis
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("replicas", [2, 4])
async def test_replicas_sharing_redis_never_pass_the_limit(
    redis_url, redis_prefix, strategy, replicas
):
    config = shared_config(redis_url, redis_prefix, strategy=strategy)
    limiters = [RateLimiter(config) for _ in range(replicas)]
    spy = StoreSpy()
    for limiter in limiters:
        spy_on_store(limiter, spy)

    admitted = await hammer(limiters, "1000/minute", per_replica=2400 // replicas)
    for limiter in limiters:
        await limiter.close()

    assert admitted <= 1000
    assert admitted >= 1000 - replicas * config.max_block
    assert sum(spy.granted) <= 1000
    # Asked about once per block (a read and a hit), not once per request.
    assert len(spy.granted) < 1000 / 8
    assert spy.calls <= 2 * len(spy.hits) + 4 * replicas


@pytest.mark.redis
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_small_tier_is_not_starved_across_replicas(redis_url, redis_prefix, strategy):
    config = shared_config(redis_url, redis_prefix, strategy=strategy)
    limiters = [RateLimiter(config) for _ in range(4)]

    admitted = await hammer(limiters, "10/minute", per_replica=25)
    for limiter in limiters:
        await limiter.close()

    assert 10 - 4 <= admitted <= 10


@pytest.mark.redis
async def test_headers_show_the_shared_remaining_count(redis_url, redis_prefix):
    config = shared_config(redis_url, redis_prefix, tiers=parse_tiers(TIERS))
    first, second = RateLimiter(config), RateLimiter(config)
    async with client_for(make_app(first)) as one, client_for(make_app(second)) as two:
        a = await one.get("/items", headers=bearer("acme", "bronze"))
        b = await two.get("/items", headers=bearer("acme", "bronze"))
    await first.close()
    await second.close()

    assert a.headers["RateLimit"].startswith('"bronze-system";r=4;')
    assert b.headers["RateLimit"].startswith('"bronze-system";r=3;')


# --- store failure ----------------------------------------------------------------------


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers: a hung Redis."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture(params=["refused", "silent"])
def broken_store(request: pytest.FixtureRequest, silent_server: str) -> str:
    return "redis://127.0.0.1:1/0" if request.param == "refused" else silent_server


async def timed_requests(limiter: RateLimiter, count: int) -> tuple[list[httpx.Response], float]:
    started = time.monotonic()
    async with client_for(make_app(limiter)) as client:
        answers = [
            await client.get("/items", headers=bearer("acme", "bronze")) for _ in range(count)
        ]
    await limiter.close()
    return answers, time.monotonic() - started


async def test_store_outage_with_allow_admits_and_warns(broken_store):
    config = RateLimitConfig(
        tiers=parse_tiers(TIERS), storage_uri=storage_uri_for(broken_store), on_store_error="allow"
    )
    registry = CollectorRegistry()
    with structlog.testing.capture_logs() as logs:
        answers, elapsed = await timed_requests(RateLimiter(config, registry=registry), 8)

    assert [a.status_code for a in answers] == [200] * 8  # beyond bronze's 5: not enforced
    assert elapsed < 2.0
    assert answers[0].headers["RateLimit-Policy"] == '"bronze-system";q=5;w=60'
    warnings = [log for log in logs if log["event"] == "rate_limit_store_unavailable"]
    assert len(warnings) == 1
    store_errors = registry.get_sample_value("erpgw_rate_limit_store_errors_total")
    assert store_errors is not None and store_errors >= 1


async def test_store_outage_with_deny_answers_503(broken_store):
    config = RateLimitConfig(
        tiers=parse_tiers(TIERS), storage_uri=storage_uri_for(broken_store), on_store_error="deny"
    )
    answers, elapsed = await timed_requests(RateLimiter(config), 3)

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert answers[0].headers["Retry-After"] == "1"
    assert elapsed < 2.0


@pytest.mark.redis
async def test_store_check_fails_while_requests_skip_the_store(redis_url):
    """Readiness asks the limiter itself: a fresh Redis connection answering does not mean
    requests are counted, while the limiter still skips a store that just failed."""
    live = RateLimiter(
        RateLimitConfig(tiers=parse_tiers(TIERS), storage_uri=storage_uri_for(redis_url))
    )
    await live.check_store()
    await live.close()

    config = RateLimitConfig(
        tiers=parse_tiers(TIERS),
        storage_uri=storage_uri_for("redis://127.0.0.1:1/0"),
        on_store_error="deny",
        store_retry_interval=60.0,
    )
    limiter = RateLimiter(config)
    with pytest.raises(ConnectionError, match="does not answer"):
        await limiter.check_store()
    answers, _ = await timed_requests(limiter, 1)
    assert [a.status_code for a in answers] == [503]
    with pytest.raises(ConnectionError, match="failed within its retry interval"):
        await limiter.check_store()


# --- configuration ------------------------------------------------------------------------


def test_parse_tiers_accepts_the_documented_forms():
    tiers = parse_tiers(
        " gold=6000/minute; gold.process=100/minute ;silver=600 per minute;"
        "partner=10/second|1000/hour;trial=5/minute,50/day;"
    )

    assert tiers.policy("gold", "process").policy_header == b'"gold-process";q=100;w=60'
    assert tiers.policy("gold", "system").policy_header == b'"gold-system";q=6000;w=60'
    assert tiers.policy("partner", "default").policy_header == (
        b'"partner-default";q=10;w=1, "partner-default-2";q=1000;w=3600'
    )
    assert len(tiers.policy("trial", "default").rates) == 2
    # Tiers not named keep their defaults.
    assert tiers.policy("bronze", "x").policy_header == b'"bronze-x";q=60;w=60'
    assert tiers.policy("anonymous", "x").policy_header == b'"anonymous-x";q=300;w=60'


def test_parse_tiers_defaults():
    tiers = parse_tiers("")

    limits = {name: rates[0].amount for name, rates in tiers.rates.items()}
    assert limits == {
        "bronze": 60,
        "silver": 600,
        "gold": 6000,
        "anonymous": 300,
        "anonymous.webhooks": 300000,
    }


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("gold", "'gold'"),
        ("gold=lots", "'lots'"),
        ("gold=0/minute", "'0/minute'"),
        ("gold=10/fortnight", "'10/fortnight'"),
        ("=10/minute", "'=10/minute'"),
        ("gold.a.b=10/minute", "'gold.a.b'"),
        ("gold=10/minute;gold=20/minute", "'gold'"),
        ("gold=10/minute|", "'gold=10/minute|'"),
        ("platinum.process=10/minute", "'platinum'"),
    ],
)
def test_parse_tiers_refuses_bad_entries_naming_them(spec, named):
    with pytest.raises(ValueError, match="rate-limit entry") as refused:
        parse_tiers(spec)

    assert named in str(refused.value)


def test_storage_uri_for_redis_urls():
    assert storage_uri_for(None) == "async+memory://"
    assert storage_uri_for("redis://cache:6379/2") == "async+redis://cache:6379/2"
    assert storage_uri_for("rediss://cache:6380/0") == "async+rediss://cache:6380/0"
    assert (
        storage_uri_for("unix:///run/redis.sock?db=1") == "async+redis+unix:///run/redis.sock?db=1"
    )


def test_exported_members_match_the_module():
    public = {
        name
        for name, value in vars(rate_limits).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "") == "gateway.rate_limits"
        and callable(value)
    }
    assert public <= set(rate_limits.__all__)
    assert all(hasattr(rate_limits, name) for name in rate_limits.__all__)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_block_that_lapses_before_its_first_use_is_leased_again_not_refused(
    strategy, frozen_clock, monkeypatch
):
    """A block leased in the last moments of a counting bucket can lapse before the request
    that leased it uses it (a loaded event loop). Quota is left, so the answer is 200."""
    real_read = _leases.read_window
    reads: list[float] = []

    async def bucket_ending_now(strategy_: Any, item: Any, ident: str) -> _leases.Window:
        window = await real_read(strategy_, item, ident)
        reads.append(window.lease_until)
        return dataclasses.replace(window, lease_until=time.time()) if len(reads) == 1 else window

    monkeypatch.setattr(_leases, "read_window", bucket_ending_now)
    limiter = RateLimiter(RateLimitConfig(tiers=parse_tiers(TIERS), strategy=strategy))
    async with client_for(make_app(limiter)) as client:
        answer = await client.get("/items", headers=bearer("acme", "bronze"))
    await limiter.close()

    assert answer.status_code == 200, answer.text
    assert len(reads) == 2
