"""Client-side quota budgets per platform, with interactive traffic served before batch.

A budget is asked for a permit before every attempt and given it back afterwards. Batch
traffic may use only `batch_share` of a budget; interactive traffic may use all of it. When
the budget is spent the caller waits up to its deadline, then gets `QuotaExhaustedError`.
These in-process budgets are exact for one process; `system_apis.outbound._quota_redis` shares
them across replicas and falls back to these when Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from system_apis.outbound._policy import (
    ConcurrencyQuota,
    DailyQuota,
    PlatformPolicy,
    QuotaSettings,
    RateQuota,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "LocalConcurrencyBudget",
    "LocalDailyBudget",
    "LocalRateBudget",
    "QuotaBudget",
    "QuotaExhaustedError",
    "QuotaPermit",
    "allowed_for",
    "build_quota",
]

# Interactive callers waiting for a slot re-check at least this often.
_MIN_WAIT = 0.005


class QuotaExhaustedError(Exception):
    """No capacity before the deadline; `retry_after` estimates when there will be some."""

    def __init__(self, platform: str, retry_after: float) -> None:
        super().__init__(f"{platform} quota exhausted; retry in {retry_after:.1f} s")
        self.platform = platform
        self.retry_after = retry_after


@dataclass(kw_only=True)
class QuotaPermit:
    """What `acquire` hands out and `release` takes back."""

    lease: str | None = None
    """The lease id held in a shared store, if any."""
    local: bool = True
    """Held by the in-process budget (also when a shared budget fell back to it)."""
    waited: bool = False
    """The caller had to wait for capacity (counted in metrics)."""


class QuotaBudget(Protocol):
    """A platform's budget: a permit per attempt, given back when the attempt ends."""

    platform: str

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        """A permit within `max_wait` seconds, or `QuotaExhaustedError`."""
        ...

    async def release(self, permit: QuotaPermit) -> None:
        """Give back a permit (frees a concurrency slot; a no-op for rate budgets)."""
        ...

    def report_usage(self, used: int, limit: int) -> None:
        """Usage reported by the vendor itself (a daily API counter); others may ignore it."""
        ...


def allowed_for(limit: int, priority: str, batch_share: float) -> int:
    """How much of `limit` traffic of `priority` may use (batch: a share, at least one)."""
    if priority != "batch":
        return limit
    return max(1, math.floor(limit * batch_share))


def build_quota(
    policy: PlatformPolicy, *, redis: Redis | None = None, key_prefix: str | None = None
) -> QuotaBudget | None:
    """The budget of `policy`: shared through `redis` when given (keys under `key_prefix`,
    default `erpgw:quota`), else in this process; None when the policy has no quota."""
    if policy.quota is None:
        return None
    if redis is not None:
        # Imported here so a gateway without Redis never loads the Redis budget code.
        from system_apis.outbound._quota_redis import KEY_PREFIX, build_redis_quota

        return build_redis_quota(policy, redis, key_prefix=key_prefix or KEY_PREFIX)
    return build_local_quota(policy.name, policy.quota)


def build_local_quota(platform: str, settings: QuotaSettings) -> QuotaBudget:
    """The in-process budget for `settings`."""
    if isinstance(settings, RateQuota):
        return LocalRateBudget(platform, settings)
    if isinstance(settings, ConcurrencyQuota):
        return LocalConcurrencyBudget(platform, settings)
    return LocalDailyBudget(platform, settings)


class LocalRateBudget:
    """At most `limit` attempts per moving `window`, in this process."""

    def __init__(self, platform: str, settings: RateQuota) -> None:
        self.platform = platform
        self.settings = settings
        self._sent: deque[float] = deque()

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        deadline = time.monotonic() + max_wait
        waited = False
        while True:
            wait = self.try_take(priority)
            if wait is None:
                return QuotaPermit(waited=waited)
            remaining = deadline - time.monotonic()
            if wait > remaining:
                raise QuotaExhaustedError(self.platform, retry_after=wait)
            waited = True
            await asyncio.sleep(max(wait, _MIN_WAIT))

    def try_take(self, priority: str) -> float | None:
        """Take a slot now (None) or say how many seconds until one frees."""
        now = time.monotonic()
        horizon = now - self.settings.window
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        allowed = allowed_for(self.settings.limit, priority, self.settings.batch_share)
        count = len(self._sent)
        if count < allowed:
            self._sent.append(now)
            return None
        # The slot frees when the entry that keeps the count at `allowed` leaves the window.
        return self._sent[count - allowed] + self.settings.window - now

    async def release(self, permit: QuotaPermit) -> None:
        return None

    def report_usage(self, used: int, limit: int) -> None:
        return None


class LocalConcurrencyBudget:
    """At most `limit` attempts in flight at once, in this process."""

    def __init__(self, platform: str, settings: ConcurrencyQuota) -> None:
        self.platform = platform
        self.settings = settings
        self._in_flight = 0
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def in_flight(self) -> int:
        """Attempts holding a slot now."""
        return self._in_flight

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        allowed = allowed_for(self.settings.limit, priority, self.settings.batch_share)
        if self._in_flight < allowed:
            self._in_flight += 1
            return QuotaPermit()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(max_wait, 0.0)
        while self._in_flight >= allowed:
            freed = loop.create_future()
            self._waiters.add(freed)
            try:
                async with asyncio.timeout_at(deadline):
                    await freed
            except TimeoutError:
                raise QuotaExhaustedError(self.platform, retry_after=1.0) from None
            finally:
                self._waiters.discard(freed)
        self._in_flight += 1
        return QuotaPermit(waited=True)

    async def release(self, permit: QuotaPermit) -> None:
        # No await in here: a release during cancellation must never be lost.
        self._in_flight = max(0, self._in_flight - 1)
        for freed in self._waiters:
            if not freed.done():
                freed.set_result(None)

    def report_usage(self, used: int, limit: int) -> None:
        return None


class LocalDailyBudget:
    """A vendor-reported daily budget: refuse once the reported usage reaches the share."""

    def __init__(self, platform: str, settings: DailyQuota) -> None:
        self.platform = platform
        self.settings = settings
        self.used = 0
        self.limit: int | None = None

    async def acquire(self, *, priority: str, max_wait: float) -> QuotaPermit:
        if self.limit is None:
            return QuotaPermit()
        allowed = allowed_for(self.limit, priority, self.settings.batch_share)
        if self.used >= allowed:
            # The vendor's day rolls over hours, not seconds: waiting out the deadline is futile.
            raise QuotaExhaustedError(self.platform, self.settings.exhausted_retry_after)
        # Count our own call until the vendor's next report corrects the number.
        self.used += 1
        return QuotaPermit()

    async def release(self, permit: QuotaPermit) -> None:
        return None

    def report_usage(self, used: int, limit: int) -> None:
        self.used = used
        self.limit = limit
