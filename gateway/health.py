"""Liveness (the process answers) and readiness (its database, and Redis where configured)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import get
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import ServiceUnavailable

__all__ = ["HEALTH_ROUTES", "Readiness"]

CHECK_TIMEOUT = 2.0
PUBLIC = {"public": True, "rate_limit": False}


class Readiness(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str]


@get("/health/live", opt=PUBLIC, tags=["health"], summary="The process is up", sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", opt=PUBLIC, tags=["health"], summary="Dependencies are reachable")
async def ready(engine: AsyncEngine, redis: Redis | None) -> Readiness:
    checks = {"database": await _check(_database(engine))}
    if redis is not None:
        checks["redis"] = await _check(_redis(redis))
    failing = sorted(name for name, state in checks.items() if state != "ok")
    if failing:
        raise ServiceUnavailable(f"not ready: {', '.join(failing)} unreachable", retry_after=5)
    return Readiness(status="ok", checks=checks)


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT)
    except Exception:
        return "unreachable"
    return "ok"


async def _database(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def _redis(redis: Redis) -> None:
    await redis.ping()


HEALTH_ROUTES = [live, ready]
