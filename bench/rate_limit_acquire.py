"""Cost of the rate-limit policy: `RateLimiter.acquire()` per call, and a route's throughput
with and without `RateLimitMiddleware`, in-process (ASGI calls, no sockets).

Run: `.venv/bin/python bench/rate_limit_acquire.py [--redis redis://127.0.0.1:6379/15]`.
With `--redis` (or `ERPGW_BENCH_REDIS_URL`) it also times acquire() against a shared Redis
store, where store round trips happen once per leased block.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

from litestar import Litestar, get
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from contracts.principal import Principal
from gateway.rate_limits import RateLimitConfig, RateLimiter, parse_tiers, storage_uri_for

CALLS = 200_000
REQUESTS = 20_000
ROUNDS = 5


class _SetPrincipal(ASGIMiddleware):
    """What the authentication policy leaves behind: a principal in the scope."""

    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = self.principal
        await next_app(scope, receive, send)


@get("/items", opt={"rate_limit_group": "system"}, sync_to_thread=False)
def _items() -> dict[str, str]:
    return {"id": "1"}


async def _per_call(limiter: RateLimiter, key: str, calls: int) -> float:
    """Microseconds per acquire() call, best of ROUNDS."""
    limit = limiter.config.tiers.policy("gold", "system")
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            await limiter.acquire(key, limit)
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


async def _requests_per_second(app: Litestar, requests: int) -> tuple[float, float]:
    """(requests/s, p50 µs) of GET /items called straight through ASGI."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    async def call() -> None:
        await app(dict(scope), receive, send)  # type: ignore[arg-type]

    for _ in range(1000):
        await call()
    timings: list[float] = []
    started = time.perf_counter()
    for _ in range(requests):
        begun = time.perf_counter()
        await call()
        timings.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    return requests / elapsed, statistics.median(timings) * 1e6


def _app(limiter: RateLimiter | None) -> Litestar:
    principal = Principal(client_id="bench", name="bench", scopes=frozenset(), tier="gold")
    middleware: list[Any] = [_SetPrincipal(principal)]
    if limiter is not None:
        middleware.append(limiter.middleware)
    return Litestar(route_handlers=[_items], middleware=middleware, openapi_config=None)


async def main(redis_url: str | None) -> None:
    # Limits far above what the loop can spend, so every call is an admission.
    tiers = parse_tiers("gold=100000000/minute")
    memory = RateLimiter(RateLimitConfig(tiers=tiers))
    hot = await _per_call(memory, "c:a/x", CALLS)
    print(f"acquire() hot path, memory store:     {hot:6.2f} µs")
    exhausted = RateLimiter(RateLimitConfig(tiers=parse_tiers("gold=1/hour")))
    await exhausted.acquire("c:a/x", exhausted.config.tiers.policy("gold", "system"))
    print(
        "acquire() refusal, answered locally:  "
        f"{await _per_call(exhausted, 'c:a/x', CALLS // 4):6.2f} µs"
    )
    if redis_url:
        config = RateLimitConfig(
            tiers=tiers,
            storage_uri=storage_uri_for(redis_url),
            key_prefix=f"erpgw-bench-{uuid.uuid4().hex}",
        )
        shared = RateLimiter(config)
        per_call = await _per_call(shared, "c:a/x", CALLS // 4)
        print(f"acquire() with Redis, blocks of 64:   {per_call:6.2f} µs (amortized)")
        await shared.storage.reset()
        await shared.close()

    bare, limited = _app(None), _app(RateLimiter(RateLimitConfig(tiers=tiers)))
    # Alternate the two and keep each one's best round, so drift hits both alike.
    bare_rps = bare_p50 = limited_rps = limited_p50 = 0.0
    for _ in range(ROUNDS):
        rps, p50 = await _requests_per_second(bare, REQUESTS)
        if rps > bare_rps:
            bare_rps, bare_p50 = rps, p50
        rps, p50 = await _requests_per_second(limited, REQUESTS)
        if rps > limited_rps:
            limited_rps, limited_p50 = rps, p50
    print(f"route without the policy: {bare_rps:8.0f} req/s, p50 {bare_p50:6.1f} µs")
    print(f"route with the policy:    {limited_rps:8.0f} req/s, p50 {limited_p50:6.1f} µs")
    print(
        f"ratio {limited_rps / bare_rps:.2f}x throughput, "
        f"+{limited_p50 - bare_p50:.1f} µs p50 per request"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("ERPGW_BENCH_REDIS_URL"))
    asyncio.run(main(parser.parse_args().redis))
