"""Leased blocks of shared rate-limit quota: the engine behind `gateway.rate_limits`.

A replica never asks the shared store about a single request. It leases a block of permits
(one atomic `hit(cost=n)` on the shared `limits` counter), admits locally from that block,
and asks again only when the block is spent or has lapsed. Each lease costs two store calls
(read the window, then hit); nothing else touches the store.

Why the replicas together never pass the limit: every admitted request uses a permit that
the store granted in a hit, the store grants at most the limit per window, and a permit is
used only while the store still counts it (`Window.lease_until`). What it costs: permits a
replica leased and did not use before they lapse are lost for that window, at most one block
per replica, and blocks shrink as the window fills (`block_size`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from limits import RateLimitItem
from limits.aio.storage import SlidingWindowCounterSupport
from limits.aio.strategies import RateLimiter as Strategy
from limits.aio.strategies import SlidingWindowCounterRateLimiter

__all__ = [
    "BLOCK_DIVISOR",
    "Decision",
    "Lease",
    "LeaseBook",
    "PolicyRate",
    "RatePolicy",
    "StoreFailureHandler",
    "Window",
    "allowed",
    "block_size",
    "read_window",
]

BLOCK_DIVISOR = 8
"""A lease takes at most 1/8 of what the store has left, so blocks shrink as a window fills."""

REFUSAL_HOLD = 0.1
"""Seconds a refused key is answered locally before the store is asked again, at the least:
keeps a client hammering an exhausted limit from turning into store traffic."""

LEASE_ATTEMPTS = 3
"""Read-then-hit rounds before giving up on a counter other replicas are draining."""

SWEEP_MIN = 1024
"""New counters between two sweeps of lapsed leases, at the least."""


def block_size(remaining: int, max_block: int) -> int:
    """How many permits to lease when the store has `remaining` left in the window.

    `clamp(remaining // 8, 1, max_block)`, never more than `remaining`: a fresh gold window
    (6000) leases 64 at a time, the last 15 permits of any window go one by one, so replicas
    together hold back little near the end and a small tier (10/minute) is never starved.
    """
    return max(1, min(remaining // BLOCK_DIVISOR, max_block, remaining))


@dataclass(frozen=True, slots=True)
class Window:
    """What the store says about one counter before a lease is taken from it."""

    remaining: int
    """Permits the store would still grant in the current window."""
    reset_at: float
    """Epoch seconds at which the window resets (reported as `t` in the RateLimit field)."""
    retry_at: float
    """Epoch seconds at which at least one permit frees up, for `Retry-After`."""
    lease_until: float
    """Epoch seconds after which permits leased now must not be used: the store stops
    counting them then (moving window: one window after the hit; sliding-window counter:
    the end of the counting bucket they were added to)."""


async def read_window(strategy: Strategy, item: RateLimitItem, ident: str) -> Window:
    """One store call: the counter's remaining permits and its timing."""
    expiry = item.get_expiry()
    if isinstance(strategy, SlidingWindowCounterRateLimiter):
        # `get_window_stats` of this strategy drops the end of the counting bucket, which a
        # lease needs; the storage call it wraps returns it, so ask that directly.
        storage = cast(SlidingWindowCounterSupport, strategy.storage)
        now = time.time()
        previous, previous_ttl, current, current_ttl = await storage.get_sliding_window(
            item.key_for(ident), expiry
        )
        return _sliding_window(item, now, previous, previous_ttl, current, current_ttl)
    now = time.time()
    stats = await strategy.get_window_stats(item, ident)
    return Window(
        remaining=stats.remaining,
        reset_at=stats.reset_time,
        retry_at=stats.reset_time,
        lease_until=now + expiry,
    )


class Decision:
    """The answer for one request against one policy, and what its headers say."""

    __slots__ = ("allowed", "degraded", "limit", "name", "remaining", "reset_after", "window")

    def __init__(
        self,
        *,
        allowed: bool,
        name: str,
        limit: int,
        window: int,
        remaining: int,
        reset_after: int,
        degraded: bool = False,
    ) -> None:
        self.allowed = allowed
        self.name = name
        """The policy item's name in the RateLimit fields, e.g. `gold-process`."""
        self.limit = limit
        self.window = window
        """The window in seconds."""
        self.remaining = remaining
        self.reset_after = reset_after
        """Seconds until the window resets; for a refusal, until a permit frees (>= 1)."""
        self.degraded = degraded
        """True when admitted without the store (it failed and `on_store_error="allow"`)."""

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_after)

    def rate_limit_field(self) -> str:
        """The `RateLimit` field value (draft-ietf-httpapi-ratelimit-headers, structured)."""
        return f'"{self.name}";r={self.remaining};t={self.reset_after}'

    def __repr__(self) -> str:
        verdict = "allowed" if self.allowed else "refused"
        return f"Decision({verdict} {self.rate_limit_field()})"


@dataclass(frozen=True, slots=True)
class PolicyRate:
    """One rate of a policy, with the strings a request needs precomputed."""

    item: RateLimitItem
    name: str
    """Its name in the RateLimit fields: `<tier>-<group>`, then `-2`, `-3` for further rates."""
    head: str
    tail: str
    """`head + key + tail` equals `item.key_for(key)`, the counter's key in the store."""
    limit: int
    window: int
    """The window in seconds."""

    @classmethod
    def of(cls, item: RateLimitItem, name: str) -> PolicyRate:
        tail = f"/{item.amount}/{item.multiples}/{item.GRANULARITY.name}"
        return cls(
            item=item,
            name=name,
            head=f"{item.namespace}/",
            tail=tail,
            limit=item.amount,
            window=item.get_expiry(),
        )

    @property
    def policy_field(self) -> str:
        return f'"{self.name}";q={self.limit};w={self.window}'


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """The limits one tier has on one route group; a request must pass all its rates."""

    tier: str
    group: str
    rates: tuple[PolicyRate, ...]
    policy_header: bytes
    """The `RateLimit-Policy` value: every rate of the policy."""

    @classmethod
    def build(cls, tier: str, group: str, items: tuple[RateLimitItem, ...]) -> RatePolicy:
        base = f"{tier}-{group}"
        rates = tuple(
            PolicyRate.of(item, base if index == 0 else f"{base}-{index + 1}")
            for index, item in enumerate(items)
        )
        header = ", ".join(rate.policy_field for rate in rates)
        return cls(tier=tier, group=group, rates=rates, policy_header=header.encode())


class Lease:
    """The block of permits one replica holds for one counter, and what it knows of the rest.

    Only ever touched from the event loop thread; `take` never awaits, so the hot path needs
    no lock. `lock` serializes refills of this one counter so concurrent requests that find
    the block empty cause one store round trip, not one each.
    """

    __slots__ = (
        "base_remaining",
        "blocked_until",
        "expires",
        "generation",
        "lock",
        "permits",
        "reset_at",
        "used",
    )

    def __init__(self) -> None:
        self.permits = 0
        """Permits leased and not yet used."""
        self.used = 0
        """Permits used since the last lease (for the remaining estimate)."""
        self.expires = 0.0
        """Epoch seconds at which unused permits lapse."""
        self.base_remaining = 0
        """The store's remaining count just before the last lease, this block included."""
        self.reset_at = 0.0
        self.blocked_until = 0.0
        """Until then the store is known to be exhausted for this counter."""
        self.generation = 0
        """Bumped on every lease, so a permit is only handed back to the block it came from."""
        self.lock = asyncio.Lock()

    def take(self, now: float) -> bool:
        """Use one leased permit if the block still holds one and has not lapsed."""
        if self.permits > 0 and now < self.expires:
            self.permits -= 1
            self.used += 1
            return True
        return False

    def give_back(self, generation: int) -> None:
        """Return an unused permit (another limit of the same policy refused the request).

        The store counted it when the block was leased, so returning it locally is exact.
        """
        if generation == self.generation:
            self.permits += 1
            self.used -= 1

    def grant(self, permits: int, window: Window, expires: float) -> None:
        self.permits = permits
        self.used = 0
        self.expires = expires
        self.base_remaining = window.remaining
        self.reset_at = window.reset_at
        self.blocked_until = 0.0
        self.generation += 1

    def exhaust(self, window: Window, now: float) -> None:
        self.permits = 0
        self.used = 0
        self.base_remaining = 0
        self.reset_at = window.reset_at
        self.blocked_until = max(window.retry_at, now + REFUSAL_HOLD)

    def remaining(self) -> int:
        """The shared remaining count as best known: the store's at the last lease, less
        what this replica used since (other replicas' use is not seen until the next lease)."""
        return max(self.base_remaining - self.used, 0)

    def idle(self, now: float) -> bool:
        """Nothing worth keeping: lapsed, not blocking, and no request is refilling it."""
        return now >= self.expires and now >= self.blocked_until and not self.lock.locked()


StoreFailureHandler = Callable[[PolicyRate, Lease, BaseException | None], Decision]
"""Answers for a rate whose lease failed (the exception, or None while the store is marked
down): returns an admitting Decision or raises."""


class LeaseBook:
    """This process's leases, by counter key, and the procedure that refills them."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        max_block: int,
        store_timeout: float,
        store_retry_interval: float,
        lease_ttl: float | None,
        store_errors: tuple[type[BaseException], ...],
        on_store_failure: StoreFailureHandler,
    ) -> None:
        self.leases: dict[str, Lease] = {}
        self._strategy = strategy
        self._max_block = max_block
        self._timeout = store_timeout
        self._retry_interval = store_retry_interval
        self._lease_ttl = lease_ttl
        self._store_errors = store_errors
        self._on_store_failure = on_store_failure
        self._store_down_until = 0.0
        self._created_since_sweep = 0
        self._sweep_every = SWEEP_MIN

    def store_marked_down(self) -> bool:
        """True while requests skip the store after it failed (`store_retry_interval`)."""
        return time.time() < self._store_down_until

    async def acquire_all(self, key: str, rates: tuple[PolicyRate, ...]) -> Decision:
        """One permit under every rate; on a refusal the permits already taken go back."""
        taken: list[tuple[Lease, int]] = []
        tightest: Decision | None = None
        try:
            for rate in rates:
                decision, lease = await self.acquire(key, rate)
                if not decision.allowed:
                    self._give_back(taken)
                    return decision
                if lease is not None:
                    taken.append((lease, lease.generation))
                if tightest is None or decision.remaining < tightest.remaining:
                    tightest = decision
        except BaseException:
            self._give_back(taken)
            raise
        assert tightest is not None  # a policy has at least one rate
        return tightest

    async def acquire(self, key: str, rate: PolicyRate) -> tuple[Decision, Lease | None]:
        """One permit under one rate: from the local block, else by leasing a new block."""
        local_key = rate.head + key + rate.tail
        lease = self.leases.get(local_key)
        if lease is None:
            self._sweep_sometimes()  # before adding: a fresh lease looks idle too
            lease = self.leases[local_key] = Lease()
        now = time.time()
        if lease.take(now):
            return allowed(rate, lease, now), lease
        if lease.blocked_until > now:
            return refused(rate, lease, now), None
        async with lease.lock:
            # Whoever held the lock may have leased a block meanwhile.
            now = time.time()
            if lease.take(now):
                return allowed(rate, lease, now), lease
            # A block leased in the last moments of a counting bucket may lapse before it is
            # used (a loaded event loop): lease again rather than refuse with quota to spare.
            for _ in range(LEASE_ATTEMPTS):
                if lease.blocked_until > now:
                    break
                if now < self._store_down_until:
                    return self._on_store_failure(rate, lease, None), None
                try:
                    await self._lease(lease, rate, key)
                except self._store_errors as exc:
                    self._store_down_until = time.time() + self._retry_interval
                    return self._on_store_failure(rate, lease, exc), None
                now = time.time()
                if lease.take(now):
                    return allowed(rate, lease, now), lease
            return refused(rate, lease, now), None

    async def _lease(self, lease: Lease, rate: PolicyRate, key: str) -> None:
        """Read the window, then hit the shared counter with the block's cost (atomic)."""
        for _ in range(LEASE_ATTEMPTS):
            window = await asyncio.wait_for(
                read_window(self._strategy, rate.item, key), self._timeout
            )
            now = time.time()
            if window.remaining <= 0:
                lease.exhaust(window, now)
                return
            permits = block_size(window.remaining, self._max_block)
            hit = self._strategy.hit(rate.item, key, cost=permits)
            if await asyncio.wait_for(hit, self._timeout):
                expires = window.lease_until
                if self._lease_ttl is not None:
                    expires = min(expires, now + self._lease_ttl)
                lease.grant(permits, window, expires)
                return
        # Other replicas took what was left between each read and hit: refuse this request.
        lease.exhaust(window, time.time())

    @staticmethod
    def _give_back(taken: list[tuple[Lease, int]]) -> None:
        for lease, generation in taken:
            lease.give_back(generation)

    def _sweep_sometimes(self) -> None:
        """Forget lapsed leases. Amortized O(1): a sweep waits for as many new keys as there
        are leases left after the previous one."""
        self._created_since_sweep += 1
        if self._created_since_sweep < self._sweep_every:
            return
        now = time.time()
        for key in [key for key, lease in self.leases.items() if lease.idle(now)]:
            del self.leases[key]
        self._created_since_sweep = 0
        self._sweep_every = max(SWEEP_MIN, len(self.leases))


def allowed(rate: PolicyRate, lease: Lease, now: float) -> Decision:
    return Decision(
        allowed=True,
        name=rate.name,
        limit=rate.limit,
        window=rate.window,
        remaining=lease.remaining(),
        reset_after=seconds_until(lease.reset_at, now),
    )


def refused(rate: PolicyRate, lease: Lease, now: float) -> Decision:
    return Decision(
        allowed=False,
        name=rate.name,
        limit=rate.limit,
        window=rate.window,
        remaining=0,
        reset_after=max(1, seconds_until(lease.blocked_until, now)),
    )


def seconds_until(moment: float, now: float) -> int:
    """Whole seconds from `now` to `moment`, rounded up, never negative."""
    return max(0, math.ceil(moment - now))


def _sliding_window(
    item: RateLimitItem,
    now: float,
    previous: int,
    previous_ttl: float,
    current: int,
    current_ttl: float,
) -> Window:
    """The same arithmetic as limits' `SlidingWindowCounterRateLimiter.get_window_stats`."""
    expiry = item.get_expiry()
    weighted = previous * previous_ttl / expiry + current
    remaining = max(0, item.amount - math.floor(weighted))
    # The current bucket's key lives for two windows; past its first window it is shifted to
    # "previous". No key yet means the hit that follows opens a bucket ending one window on.
    bucket_end = now + current_ttl - expiry if current_ttl > expiry else now + expiry
    frees_in = bucket_end - now
    if previous:
        frees_in = min(frees_in, previous_ttl % (expiry / previous))
    return Window(
        remaining=remaining, reset_at=bucket_end, retry_at=now + frees_in, lease_until=bucket_end
    )
