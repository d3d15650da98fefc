"""Rate limits per client tier and route group, exact across replicas through leased quota blocks.

Who is counted: the authentication policy leaves a `contracts.principal.Principal` in
`scope["user"]`; such a caller is counted by client id and route group, with its tier's limit.
A request without one is counted by client address and route group, with the `anonymous`
limit. The group is the route handler's `opt["rate_limit_group"]` ("default" when absent);
`opt["rate_limit"] = False` (health, docs, metrics, JWKS) or a truthy
`opt[config.exclude_opt_key]` takes a route out of rate limiting altogether.

How it stays exact without a store round trip per request: each replica leases blocks of
permits from the shared `limits` counter (`hit(cost=n)`, atomic in Redis), admits locally
only what it holds and asks the store again when the block is spent or lapses. Blocks are
`clamp(remaining // 8, 1, max_block)` of what the store has left, so the replicas together
never pass the limit and hold back little near its end (see `_rate_limit_leases`).

Headers: an admitted response gets `RateLimit-Policy: "<tier>-<group>";q=<limit>;w=<window>`
and `RateLimit: "<tier>-<group>";r=<remaining>;t=<seconds to reset>`
(draft-ietf-httpapi-ratelimit-headers) added to its `http.response.start` message. A refused
request raises `contracts.errors.RateLimited(retry_after=...)` after putting the same two
fields, as a list of `(name, value)` tuples, on `scope["state"]["rate_limit_headers"]`:
`gateway/errors.py` renders the 429 problem with `Retry-After` and copies those headers onto
it, since the refusal's response never passes through this middleware's `send`.

When the store fails or is slower than `store_timeout`, `on_store_error="allow"` admits (with
a throttled warning) and `"deny"` raises `contracts.errors.ServiceUnavailable` (503).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.aio.strategies import RateLimiter as Strategy
from limits.errors import StorageError
from limits.storage import storage_from_string
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter

from contracts.errors import RateLimited, ServiceUnavailable
from contracts.principal import Principal
from gateway._rate_limit_leases import (
    Decision,
    Lease,
    LeaseBook,
    PolicyRate,
    RatePolicy,
    allowed,
)

__all__ = [
    "DEFAULT_TIERS",
    "Decision",
    "PolicyRate",
    "RateLimitConfig",
    "RateLimitMiddleware",
    "RateLimitTiers",
    "RateLimiter",
    "RatePolicy",
    "parse_tiers",
    "remote_address",
    "storage_uri_for",
]

# Webhooks come from the vendors (anonymous, by IP): a month-end burst from one Stripe address
# runs at thousands a second, and a delivery costs an HMAC check and a share of one batched
# INSERT, so their group allows 5,000 a second per address.
# Anonymous callers get 300 a minute per group: a partner's contract suite probes every
# operation without and with a wrong token (schemathesis's ignored_auth, ~100 a minute on the
# system group) and must meet 401s, not 429s; a secret or a signed token is not guessed in 300.
DEFAULT_TIERS = (
    "bronze=60/minute;silver=600/minute;gold=6000/minute;anonymous=300/minute;"
    "anonymous.webhooks=300000/minute"
)
ANONYMOUS = "anonymous"
DEFAULT_GROUP = "default"
StrategyName = Literal["moving-window", "sliding-window-counter"]

_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?")
_RATE_SEPARATORS = re.compile(r"[|,]")
_WARN_EVERY = 10.0
_STRATEGIES: dict[str, type[Strategy]] = {
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}
_log = structlog.get_logger("gateway.rate_limits")


def remote_address(scope: Scope) -> str:
    """The peer address of the connection; `X-Forwarded-For` is not read (anyone can send it)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def storage_uri_for(redis_url: str | None) -> str:
    """The `limits` storage URI for `ERPGW_REDIS_URL` (`redis://`, `rediss://`, `unix://`),
    or in-process memory when there is none."""
    if not redis_url:
        return "async+memory://"
    if redis_url.startswith("async+"):
        return redis_url
    if redis_url.startswith("unix://"):
        return f"async+redis+{redis_url}"
    return f"async+{redis_url}"


@dataclass(frozen=True)
class RateLimitTiers:
    """Parsed `ERPGW_RATE_LIMIT_TIERS`: rates by `tier` and by `tier.group`."""

    rates: Mapping[str, tuple[RateLimitItem, ...]]
    fallback_tier: str = "bronze"
    """The tier applied to a principal whose tier has no entry."""
    _policies: dict[tuple[str, str], RatePolicy] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def policy(self, tier: str, group: str) -> RatePolicy:
        """The policy for `tier` on `group`: `tier.group` if given, else `tier`."""
        policy = self._policies.get((tier, group))
        if policy is None:
            known = tier if tier in self.rates and "." not in tier else self.fallback_tier
            policy = self._policies.get((known, group))
            if policy is None:
                items = self.rates.get(f"{known}.{group}") or self.rates[known]
                policy = self._policies[(known, group)] = RatePolicy.build(known, group, items)
            # Unknown tiers are not remembered under their own name, so odd tier claims
            # cannot grow this map; route groups are fixed by the route table.
        return policy


def parse_tiers(spec: str) -> RateLimitTiers:
    """Parse `tier[.group]=RATE[|RATE...];...`, e.g. `gold=6000/minute;gold.process=100/minute`.

    RATE is a `limits` rate string (`60/minute`, `1000 per 2 hours`); several rates in one
    entry are separated by `|` or `,` and all apply. Entries override `DEFAULT_TIERS`; a
    base tier not named keeps its default, so `anonymous` always has a limit.

    Raises:
        ValueError: naming the first bad entry and what is wrong with it.
    """
    rates: dict[str, tuple[RateLimitItem, ...]] = {}
    for spec_text in (DEFAULT_TIERS, spec):
        seen: set[str] = set()
        for raw in spec_text.split(";"):
            entry = raw.strip()
            if not entry:
                continue
            name, items = _parse_entry(entry)
            if name in seen:
                raise ValueError(f"rate-limit entry {entry!r}: {name!r} is given twice")
            seen.add(name)
            rates[name] = items
    for name in rates:
        tier = name.split(".")[0]
        if tier not in rates:
            raise ValueError(
                f"rate-limit entry for {name!r}: tier {tier!r} has no base limit; add {tier}=RATE"
            )
    return RateLimitTiers(rates=rates)


def _parse_entry(entry: str) -> tuple[str, tuple[RateLimitItem, ...]]:
    name, sep, value = (part.strip() for part in entry.partition("="))
    if not sep:
        raise ValueError(
            f"rate-limit entry {entry!r}: expected tier[.group]=RATE, e.g. gold=6000/minute"
        )
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"rate-limit entry {entry!r}: {name!r} is not tier or tier.group "
            "(letters, digits, '_' and '-')"
        )
    items: list[RateLimitItem] = []
    for piece in (p.strip() for p in _RATE_SEPARATORS.split(value)):
        try:
            (item,) = parse_many(piece)
        except ValueError:
            raise ValueError(
                f"rate-limit entry {entry!r}: {piece!r} is not a rate like 60/minute"
            ) from None
        if item.amount < 1:
            raise ValueError(f"rate-limit entry {entry!r}: {piece!r} allows no request at all")
        if item in items:
            raise ValueError(f"rate-limit entry {entry!r}: {piece!r} is given twice")
        items.append(item)
    return name, tuple(items)


@dataclass(frozen=True, kw_only=True)
class RateLimitConfig:
    """Configuration of the rate-limit policy (`RateLimiter` + `RateLimitMiddleware`)."""

    tiers: RateLimitTiers = field(default_factory=lambda: parse_tiers(""))
    """Limits by tier and route group (`parse_tiers`). A principal of an unknown tier gets
    `tiers.fallback_tier`. Risk: a tier.group entry has its own counter, separate from the
    tier's, so it adds to what a client may do across groups rather than carving out of it."""
    strategy: StrategyName = "sliding-window-counter"
    """`limits` strategy of the shared counter. `moving-window` is exact over any window but
    keeps one Redis list entry per permit; `sliding-window-counter` keeps two integers and
    approximates the previous window's weight. Leases lapse where each strategy stops
    counting a permit (moving: one window after the lease; sliding: the bucket's end)."""
    storage_uri: str = "async+memory://"
    """`async+memory://` counts in this process only (correct for one replica);
    `async+redis://host:port/db` (see `storage_uri_for`) shares counts across replicas."""
    key_prefix: str = "erpgw:rl"
    """Prefix of every Redis key, so counters never collide with other data in the database."""
    on_store_error: Literal["allow", "deny"] = "allow"
    """What happens when the store fails or times out: `allow` admits (fails open: limits are
    not enforced while it lasts, beyond blocks already leased); `deny` answers 503 (fails
    closed: an outage of the store is an outage of every limited route)."""
    store_timeout: float = 0.25
    """Seconds allowed per store call (also the Redis socket timeouts). Too low refuses or
    lets through requests on a merely busy store; too high stalls the requests that lease."""
    store_retry_interval: float = 1.0
    """After a store failure, seconds during which it is not asked again (answers follow
    `on_store_error` at once), so an outage never costs every request a timeout."""
    max_block: int = 64
    """Most permits leased at once. Larger blocks mean fewer store calls but up to
    `replicas x max_block` permits held unused when demand moves between replicas."""
    lease_ttl: float | None = None
    """Longest a block is held (seconds); None holds it until the store stops counting it.
    Shorter tightens bursts at window edges but lets more leased permits lapse unused."""
    client_address: Callable[[Scope], str] = remote_address
    """Who an anonymous caller is. The default uses the connection's peer address and does
    not trust `X-Forwarded-For`: behind a proxy, every anonymous caller would share the
    proxy's limit. The gateway passes `gateway.client_address.ClientAddress`, which reads
    the forwarding headers of the proxies `ERPGW_TRUSTED_PROXIES` names."""
    exclude_opt_key: str = "skip_rate_limit"
    """A truthy `opt[exclude_opt_key]` on a route skips rate limiting (Litestar's own opt-out
    mechanism, checked before the middleware runs), as does `opt["rate_limit"] = False`."""

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"rate-limit strategy {self.strategy!r} is not supported")
        if self.on_store_error not in ("allow", "deny"):
            raise ValueError(f"on_store_error must be 'allow' or 'deny': {self.on_store_error!r}")
        if self.store_timeout <= 0 or self.max_block < 1:
            raise ValueError("store_timeout must be > 0 and max_block >= 1")


class RateLimiter:
    """The engine: this process's leases of shared quota (all state lives here, not in the
    middleware). One instance per process; `close()` it on shutdown."""

    def __init__(
        self,
        config: RateLimitConfig | None = None,
        *,
        storage: Storage | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """`storage` overrides the one `config.storage_uri` names. The counters are
        registered in `registry` when given; else register `collectors` yourself."""
        self.config = config or RateLimitConfig()
        self.storage = storage or _make_storage(self.config)
        self._book = LeaseBook(
            _STRATEGIES[self.config.strategy](self.storage),
            max_block=self.config.max_block,
            store_timeout=self.config.store_timeout,
            store_retry_interval=self.config.store_retry_interval,
            lease_ttl=self.config.lease_ttl,
            store_errors=(TimeoutError, OSError, StorageError, *_as_tuple(self.storage)),
            on_store_failure=self._store_failed,
        )
        self._leases = self._book.leases
        self._adhoc: dict[RateLimitItem, RatePolicy] = {}
        self._warned_at = -_WARN_EVERY
        self._unwarned = 0
        self.refusals = Counter(
            "erpgw_rate_limit_refusals_total",
            "Requests refused with 429 by the rate-limit policy, by tier and route group",
            ("tier", "group"),
            registry=registry,
        )
        self.store_errors = Counter(
            "erpgw_rate_limit_store_errors_total",
            "Rate-limit store calls that failed or timed out",
            registry=registry,
        )
        self.collectors = (self.refusals, self.store_errors)

    @property
    def middleware(self) -> RateLimitMiddleware:
        """The middleware to put in the app's middleware list."""
        return RateLimitMiddleware(self)

    async def admit(self, scope: Scope) -> tuple[tuple[bytes, bytes], ...]:
        """Count one request against its caller's policy; returns the RateLimit fields to add
        to the response, or raises `RateLimited` (with the fields left on
        `scope["state"]["rate_limit_headers"]` for the 429)."""
        group: str = scope["route_handler"].opt.get("rate_limit_group", DEFAULT_GROUP)
        user = scope.get("user")
        tiers = self.config.tiers
        if isinstance(user, Principal):
            policy = tiers.policy(user.tier, group)
            key = f"c:{user.client_id}/{group}"
        else:
            policy = tiers.policy(ANONYMOUS, group)
            key = f"ip:{self.config.client_address(scope)}/{group}"
        decision = await self.acquire(key, policy)
        if not decision.allowed:
            scope.setdefault("state", {})["rate_limit_headers"] = [
                ("RateLimit-Policy", policy.policy_header.decode()),
                ("RateLimit", decision.rate_limit_field()),
            ]
            raise RateLimited(
                f"rate limit {decision.name} ({decision.limit} per {decision.window} s) "
                f"is spent; retry in {decision.retry_after} s",
                retry_after=decision.retry_after,
            )
        return (
            (b"ratelimit-policy", policy.policy_header),
            (b"ratelimit", decision.rate_limit_field().encode()),
        )

    def applies_to(self, scope: Scope) -> bool:
        """False for routes that opted out (`opt["rate_limit"] = False` or the exclude key)."""
        opt = scope["route_handler"].opt
        return opt.get("rate_limit", True) is not False and not opt.get(self.config.exclude_opt_key)

    async def acquire(self, key: str, limit: RatePolicy | RateLimitItem) -> Decision:
        """One permit for `key` under every rate of `limit`, or a refusal saying when to retry.

        Raises:
            ServiceUnavailable: the store failed and `on_store_error` is `deny`.
        """
        policy = limit if isinstance(limit, RatePolicy) else self._policy_for(limit)
        rates = policy.rates
        if len(rates) == 1:
            # Hot path: a leased permit is taken without awaiting anything.
            rate = rates[0]
            now = time.time()
            lease = self._leases.get(rate.head + key + rate.tail)
            if lease is not None and lease.take(now):
                return allowed(rate, lease, now)
            decision = (await self._book.acquire(key, rate))[0]
        else:
            decision = await self._book.acquire_all(key, rates)
        if not decision.allowed:
            self.refusals.labels(policy.tier, policy.group).inc()
        return decision

    async def check_store(self) -> None:
        """Nothing when requests that need the store would reach it now.

        Raises:
            ConnectionError: the store failed within the last retry interval (requests skip it
                meanwhile), or it does not answer a ping on this limiter's own connections
                (which may be stale after the store came back while another client is not).
        """
        if self._book.store_marked_down():
            raise ConnectionError("the rate-limit store failed within its retry interval")
        if not await self.storage.check():
            raise ConnectionError("the rate-limit store does not answer")

    async def close(self) -> None:
        """Release the store's connections (call on application shutdown)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()
        self._leases.clear()

    def _store_failed(self, rate: PolicyRate, lease: Lease, exc: BaseException | None) -> Decision:
        if exc is not None:
            self.store_errors.inc()
        if self.config.on_store_error == "deny":
            raise ServiceUnavailable("the rate-limit store is unavailable", retry_after=1)
        self._warn_store_down(exc)
        return Decision(
            allowed=True,
            name=rate.name,
            limit=rate.limit,
            window=rate.window,
            remaining=lease.remaining() if lease.generation else rate.limit,
            reset_after=rate.window,
            degraded=True,
        )

    def _warn_store_down(self, exc: BaseException | None) -> None:
        """Warn at most every 10 s, counting what was not logged, so an outage cannot flood."""
        self._unwarned += 1
        now = time.monotonic()
        if now - self._warned_at < _WARN_EVERY:
            return
        _log.warning(
            "rate_limit_store_unavailable",
            admitted_without_store=self._unwarned,
            error=repr(exc) if exc is not None else "store marked down after an error",
        )
        self._warned_at = now
        self._unwarned = 0

    def _policy_for(self, item: RateLimitItem) -> RatePolicy:
        policy = self._adhoc.get(item)
        if policy is None or policy.rates[0].item.namespace != item.namespace:
            policy = RatePolicy.build("custom", f"{item.amount}-per-{item.get_expiry()}s", (item,))
            self._adhoc[item] = policy
        return policy


class RateLimitMiddleware(ASGIMiddleware):
    """Counts each HTTP request against its caller's policy; state lives in the `RateLimiter`."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.exclude_opt_key = limiter.config.exclude_opt_key
        self.should_bypass_for_scope = _opted_out

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        extra = await self.limiter.admit(scope)

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await next_app(scope, receive, send_with_fields)


def _opted_out(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return handler is not None and handler.opt.get("rate_limit", True) is False


def _make_storage(config: RateLimitConfig) -> Storage:
    options: dict[str, float | str | bool] = {}
    if "redis" in config.storage_uri.split("://")[0]:
        # redis-py (already a dependency) rather than limits' default coredis; socket
        # timeouts bound every call even before `asyncio.wait_for` gives up on it.
        options = {
            "implementation": "redispy",
            "key_prefix": config.key_prefix,
            "socket_timeout": config.store_timeout,
            "socket_connect_timeout": config.store_timeout,
        }
    storage = storage_from_string(config.storage_uri, **options)
    if not isinstance(storage, Storage):
        raise ValueError(
            f"rate-limit storage {config.storage_uri!r} is not asynchronous; "
            "use async+memory:// or async+redis://..."
        )
    return storage


def _as_tuple(storage: Storage) -> tuple[type[BaseException], ...]:
    errors = storage.base_exceptions
    return errors if isinstance(errors, tuple) else (errors,)
