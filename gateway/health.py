"""Liveness (the process answers) and readiness (this replica can serve).

Readiness answers 503 only when this replica cannot serve: its database is unreachable or
lacks its tables (the gateway's and the durable engine's), or Redis is unreachable while rate
limits refuse without it (`ERPGW_RATE_LIMIT_ON_STORE_ERROR=deny`). With `allow`, every route
works without Redis, so the replica stays ready and says `"redis": "degraded"`: pulling it
would pull every replica at once. Each check's outcome is also the gauge
`erpgw_dependency_up{dependency}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import get
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import ServiceUnavailable
from gateway.metrics import GatewayMetrics

__all__ = ["HEALTH_ROUTES", "Readiness", "ReadinessChecks"]

CHECK_TIMEOUT = 2.0
READY_RETRY_AFTER = 5
PUBLIC = {"public": True, "rate_limit": False}


class Readiness(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class ReadinessChecks:
    """What readiness looks at, built by the gateway core."""

    engine: AsyncEngine
    tables: Collection[str]
    """Tables the gateway database must hold (a database re-created empty answers `SELECT 1`
    but serves nothing)."""
    redis: Redis | None
    redis_required: bool
    """True when the rate limiter refuses requests without Redis (deny mode)."""
    metrics: GatewayMetrics
    engine_storage: Callable[[], Awaitable[None]] | None = None
    """Raises when the durable engine's own tables are missing."""
    rate_limit_store: Callable[[], Awaitable[None]] | None = None
    """Raises when the rate limiter cannot reach its store (deny mode then refuses requests
    even though a fresh Redis connection answers)."""


@get("/health/live", opt=PUBLIC, tags=["health"], summary="The process is up", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", opt=PUBLIC, tags=["health"], summary="This replica can serve")
async def ready(readiness: ReadinessChecks) -> Readiness:
    database = await _check(_database(readiness.engine, readiness.tables))
    if database == "ok" and readiness.engine_storage is not None:
        database = await _check(readiness.engine_storage())
    checks = {"database": database}
    if readiness.redis is not None:
        redis = await _check(_redis(readiness.redis))
        if redis == "ok" and readiness.redis_required and readiness.rate_limit_store is not None:
            redis = await _check(readiness.rate_limit_store())
        if redis != "ok" and not readiness.redis_required:
            redis = "degraded"
        checks["redis"] = redis
    for name, state in checks.items():
        readiness.metrics.dependency_up.labels(name).set(1 if state == "ok" else 0)
    failing = sorted(name for name, state in checks.items() if state not in ("ok", "degraded"))
    if failing:
        described = ", ".join(f"{name} {checks[name]}" for name in failing)
        raise ServiceUnavailable(f"not ready: {described}", retry_after=READY_RETRY_AFTER)
    return Readiness(status="ok", checks=checks)


async def _check(probe: Awaitable[Any]) -> str:
    try:
        await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT)
    except LookupError:
        return "schema_missing"
    except Exception:
        return "unreachable"
    return "ok"


async def _database(engine: AsyncEngine, tables: Collection[str]) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        present = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    missing = sorted(set(tables) - present)
    if missing:
        raise LookupError(f"missing tables: {', '.join(missing)}")


async def _redis(redis: Redis) -> None:
    await redis.ping()


HEALTH_ROUTES = [live, ready]
