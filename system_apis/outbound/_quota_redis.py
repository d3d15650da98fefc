"""Quota budgets kept in Redis, so every gateway replica draws on the same budget.

Each decision is one Lua script (atomic across replicas) using Redis' own clock: a moving
window of request timestamps for rate budgets, a sorted set of expiring leases for
concurrency (a lease left by a dead process expires), a hash of the vendor-reported usage for
daily budgets. One Redis round trip per vendor attempt is cheap next to the vendor call it
guards. Redis calls have short timeouts; when Redis fails, the budget logs a warning and uses
its in-process twin for a while, because a Redis outage must not stop vendor calls.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from system_apis.outbound._policy import (
    ConcurrencyQuota,
    DailyQuota,
    PlatformPolicy,
    QuotaSettings,
    RateQuota,
)
from system_apis.outbound._quota import (
    QuotaBudget,
    QuotaExhaustedError,
    QuotaPermit,
    allowed_for,
    build_local_quota,
)

__all__ = [
    "KEY_PREFIX",
    "RedisConcurrencyBudget",
    "RedisDailyBudget",
    "RedisRateBudget",
    "build_redis_quota",
]

KEY_PREFIX = "erpgw:quota"

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

# KEYS[1] zset of attempt timestamps (us); ARGV: window us, allowed, member.
# Returns 0 when taken, else microseconds until a slot frees.
_RATE_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local allowed = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < allowed then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 0
end
local entry = redis.call('ZRANGE', KEYS[1], count - allowed, count - allowed, 'WITHSCORES')
return math.max(1, tonumber(entry[2]) + window - now)
"""

# KEYS[1] zset lease id -> expiry (ms); ARGV: allowed, lease ms, lease id. Returns 1 if taken.
_LEASE_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_LEASE_GIVE = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

# KEYS[1] hash {used, limit}; ARGV: priority, batch share. Returns 1 if within budget.
_DAILY_TAKE = """
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit'))
if not limit then return 1 end
local used = tonumber(redis.call('HGET', KEYS[1], 'used') or '0')
local allowed = limit
if ARGV[1] == 'batch' then
  allowed = math.max(1, math.floor(limit * tonumber(ARGV[2])))
end
if used >= allowed then return 0 end
redis.call('HINCRBY', KEYS[1], 'used', 1)
return 1
"""

_DAILY_REPORT = """
redis.call('HSET', KEYS[1], 'used', ARGV[1], 'limit', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class _RedisUnavailable(Exception):
    """Redis did not answer in time (or is being skipped after a recent failure)."""


class _RedisBudget:
    """What every Redis budget shares: the scripts' runner and the fallback switch."""

    kind = ""

    def __init__(
        self,
        policy: PlatformPolicy,
        settings: QuotaSettings,
        redis: Redis,
        *,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        self.platform: str = policy.name
        self.policy = policy
        self.key = f"{key_prefix}:{policy.name}:{self.kind}"
        self.fallback = build_local_quota(policy.name, settings)
        self._redis = redis
        self._scripts: dict[str, AsyncScript] = {}
        self._skip_until = 0.0

    async def _run(self, call: Callable[[], Awaitable[_T]]) -> _T:
        if time.monotonic() < self._skip_until:
            raise _RedisUnavailable
        try:
            async with asyncio.timeout(self.policy.redis_timeout):
                return await call()
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = time.monotonic() + self.policy.redis_retry_after
            _log.warning(
                "quota store unreachable for %s (%s: %s); using the in-process budget for %.0f s",
                self.platform,
                type(exc).__name__,
                exc,
                self.policy.redis_retry_after,
            )
            raise _RedisUnavailable from exc

    async def _script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis.register_script(source)
        return await self._run(lambda: script(keys=keys, args=args))

    async def release(self, permit: QuotaPermit) -> None:
        if permit.local:
            await self.fallback.release(permit)

    def report_usage(self, used: int, limit: int) -> None:
        self.fallback.report_usage(used, limit)


class RedisRateBudget(_RedisBudget):
    """At most `limit` attempts per moving `window`, across every replica."""

    kind = "rate"

    def __init__(
        self,
        policy: PlatformPolicy,
        settings: RateQuota,
        redis: Redis,
        *,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        super().__init__(policy, settings, redis, key_prefix=key_prefix)
        self.settings = settings

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        deadline = time.monotonic() + max_wait
        allowed = allowed_for(self.settings.limit, priority, self.settings.batch_share)
        window_us = int(self.settings.window * 1_000_000)
        waited = False
        while True:
            member = uuid.uuid4().hex
            try:
                wait_us = await self._script(_RATE_TAKE, [self.key], [window_us, allowed, member])
            except _RedisUnavailable:
                return await self.fallback.acquire(
                    priority=priority, max_wait=max(0.0, deadline - time.monotonic())
                )
            if int(wait_us) == 0:
                return QuotaPermit(local=False, waited=waited)
            wait = int(wait_us) / 1_000_000
            if wait > deadline - time.monotonic():
                raise QuotaExhaustedError(self.platform, retry_after=wait)
            waited = True
            await asyncio.sleep(wait)


class RedisConcurrencyBudget(_RedisBudget):
    """At most `limit` attempts in flight across every replica, as expiring leases."""

    kind = "concurrency"

    def __init__(
        self,
        policy: PlatformPolicy,
        settings: ConcurrencyQuota,
        redis: Redis,
        *,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        super().__init__(policy, settings, redis, key_prefix=key_prefix)
        self.settings = settings

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        deadline = time.monotonic() + max_wait
        allowed = allowed_for(self.settings.limit, priority, self.settings.batch_share)
        lease_ms = int(self.settings.lease_seconds * 1000)
        lease = uuid.uuid4().hex
        waited = False
        while True:
            try:
                taken = await self._script(_LEASE_TAKE, [self.key], [allowed, lease_ms, lease])
            except _RedisUnavailable:
                return await self.fallback.acquire(
                    priority=priority, max_wait=max(0.0, deadline - time.monotonic())
                )
            if int(taken) == 1:
                return QuotaPermit(lease=lease, local=False, waited=waited)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QuotaExhaustedError(self.platform, retry_after=1.0)
            waited = True
            # Jitter keeps replicas waiting for the same slot from polling in lockstep.
            pause = self.settings.poll_interval * random.uniform(0.5, 1.5)
            await asyncio.sleep(min(pause, remaining))

    async def release(self, permit: QuotaPermit) -> None:
        if permit.local or permit.lease is None:
            await self.fallback.release(permit)
            return
        try:
            await self._script(_LEASE_GIVE, [self.key], [permit.lease])
        except _RedisUnavailable:
            # The lease expires by itself after `lease_seconds`.
            return


class RedisDailyBudget(_RedisBudget):
    """A vendor-reported daily budget shared by every replica."""

    kind = "daily"

    def __init__(
        self,
        policy: PlatformPolicy,
        settings: DailyQuota,
        redis: Redis,
        *,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        super().__init__(policy, settings, redis, key_prefix=key_prefix)
        self.settings = settings
        self._reports: set[asyncio.Task[None]] = set()

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        try:
            taken = await self._script(
                _DAILY_TAKE, [self.key], [priority, self.settings.batch_share]
            )
        except _RedisUnavailable:
            return await self.fallback.acquire(priority=priority, max_wait=max_wait)
        if int(taken) != 1:
            raise QuotaExhaustedError(self.platform, self.settings.exhausted_retry_after)
        return QuotaPermit(local=False)

    def report_usage(self, used: int, limit: int) -> None:
        self.fallback.report_usage(used, limit)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        # The report is called from a synchronous response hook: write it in the background.
        task = loop.create_task(self._store_report(used, limit))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def flush(self) -> None:
        """Wait for reports still being written (tests and shutdown)."""
        if self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)

    async def _store_report(self, used: int, limit: int) -> None:
        ttl = int(self.settings.report_ttl)
        try:
            await self._script(_DAILY_REPORT, [self.key], [used, limit, ttl])
        except _RedisUnavailable:
            return


def build_redis_quota(
    policy: PlatformPolicy, redis: Redis, *, key_prefix: str = KEY_PREFIX
) -> QuotaBudget | None:
    """The Redis-shared budget of `policy` (None when the policy has no quota); keys are
    `{key_prefix}:{platform}:{rate|concurrency|daily}`."""
    settings = policy.quota
    if isinstance(settings, RateQuota):
        return RedisRateBudget(policy, settings, redis, key_prefix=key_prefix)
    if isinstance(settings, ConcurrencyQuota):
        return RedisConcurrencyBudget(policy, settings, redis, key_prefix=key_prefix)
    if isinstance(settings, DailyQuota):
        return RedisDailyBudget(policy, settings, redis, key_prefix=key_prefix)
    return None
