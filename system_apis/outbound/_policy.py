"""How the gateway talks to one vendor platform: timeouts, retries, breaker and quota settings.

One `PlatformPolicy` per platform, built by the app factory (usually `default_policy(name)`,
adjusted from settings). Every number here trades vendor protection against caller latency,
so each field says what it is for and what goes wrong when it is set badly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BreakerSettings",
    "ConcurrencyQuota",
    "DailyQuota",
    "Platform",
    "PlatformPolicy",
    "Priority",
    "QuotaSettings",
    "RateQuota",
    "RetrySettings",
    "Timeouts",
    "default_policy",
]

Platform = Literal["salesforce", "stripe", "zendesk", "netsuite"]
Priority = Literal["interactive", "batch"]


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Time limits of one vendor request: per attempt, and for the whole request."""

    connect: float = 2.0
    """Seconds to open a TCP/TLS connection. Too long and a dead host eats the deadline
    before a retry can try again; too short and a slow TLS handshake fails for nothing."""
    read: float = 4.0
    """Seconds to wait between bytes of the answer. Too short fails slow but healthy vendor
    queries (SOQL, SuiteQL); too long keeps a stuck call past the request deadline (the
    deadline still ends it)."""
    write: float = 4.0
    """Seconds to send the request body."""
    pool: float = 1.0
    """Seconds to wait for a free pooled connection. A long wait hides pool exhaustion."""
    attempt: float = 4.0
    """Seconds one attempt may take end to end (connect, send, answer and body). Must stay
    below `interactive_deadline`, or an interactive call never gets a second attempt."""
    interactive_deadline: float = 5.0
    """Seconds a request made while a caller waits (`priority=interactive`) may take in all,
    retries, backoff and quota waits included. Raising it makes callers wait longer on a sick
    vendor; the gateway promises interactive reads give up within 5 s."""
    batch_deadline: float = 30.0
    """Seconds a batch request (flows, pollers) may take in all. Flows also retry whole steps,
    so a long value here mostly buys patience with 429 `Retry-After` answers."""

    def deadline_for(self, priority: str) -> float:
        """The total deadline of a request of `priority` (unknown values count as interactive)."""
        return self.batch_deadline if priority == "batch" else self.interactive_deadline


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Retries of a failed attempt; only ever for requests that are safe to send twice."""

    max_attempts: int = 3
    """Attempts in all, the first included. More attempts multiply load on a sick vendor."""
    backoff_base: float = 0.1
    """Seconds of the first backoff ceiling; attempt n waits a random time in
    [0, min(backoff_cap, backoff_base * 2**(n-1))] ("full jitter"), so replicas do not retry
    in lockstep."""
    backoff_cap: float = 2.0
    """Largest backoff ceiling in seconds. A large cap spends the deadline sleeping."""
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    """Vendor statuses worth another attempt. 500 is included because vendors answer it for
    transient faults; a request is only retried when it is idempotent, so this is safe."""


@dataclass(frozen=True, kw_only=True)
class BreakerSettings:
    """When to stop calling a platform that keeps failing, and how to try it again."""

    window: float = 10.0
    """Seconds of history the failure ratio is computed over. Short windows react to bursts."""
    min_calls: int = 20
    """Attempts needed in the window before the breaker may open. Low values let a few
    scattered faults at low traffic refuse every caller for `open_seconds`."""
    failure_ratio: float = 0.5
    """Share of failed attempts (connection errors, timeouts, 5xx, 429) that opens the
    breaker. Too low and normal retried noise opens it; too high and a dead vendor is
    hammered until the window fills."""
    open_seconds: float = 15.0
    """Seconds the breaker refuses calls before letting probes through."""
    half_open_probes: int = 3
    """Attempts let through at once while half-open; one success closes the breaker, one
    failure opens it again."""


@dataclass(frozen=True, kw_only=True)
class RateQuota:
    """A request budget per time window (Stripe, Zendesk), shared by every replica via Redis."""

    limit: int
    """Requests allowed per `window` for the whole gateway (all replicas)."""
    window: float = 1.0
    """Seconds of the moving window the limit counts over."""
    batch_share: float = 0.8
    """Share of `limit` batch traffic may use; the rest is kept for interactive callers.
    At 1.0 a busy batch flow can starve interactive requests."""


@dataclass(frozen=True, kw_only=True)
class ConcurrencyQuota:
    """A cap on requests in flight at once (NetSuite), held as expiring leases in Redis."""

    limit: int
    """Requests in flight at once across every replica. Over the vendor's cap it answers 429."""
    batch_share: float = 0.8
    """Share of `limit` batch traffic may hold; at least one slot always stays interactive."""
    lease_seconds: float = 60.0
    """Seconds after which a lease whose holder died is reclaimed. Must exceed the longest
    attempt, or a slow request's slot is handed out twice."""
    poll_interval: float = 0.02
    """Seconds between tries while waiting for a free slot in Redis."""


@dataclass(frozen=True, kw_only=True)
class DailyQuota:
    """A daily API budget reported by the vendor itself (Salesforce), via `report_usage`."""

    batch_share: float = 0.8
    """Share of the daily limit batch traffic may use; the rest keeps interactive reads alive
    when a sync job would otherwise spend the whole day's quota."""
    exhausted_retry_after: float = 300.0
    """Seconds callers are told to wait once the budget is spent (the vendor's window rolls
    over 24 h, so no exact time is known)."""
    report_ttl: float = 86_400.0
    """Seconds a reported usage is trusted (Redis key expiry) without a newer report."""


QuotaSettings = RateQuota | ConcurrencyQuota | DailyQuota


@dataclass(frozen=True, kw_only=True)
class PlatformPolicy:
    """Everything the outbound policy needs to know about one vendor platform."""

    name: Platform
    """The platform: `salesforce`, `stripe`, `zendesk` or `netsuite` (metrics and errors)."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    """Per-attempt and per-request time limits."""
    retry: RetrySettings = field(default_factory=RetrySettings)
    """Retries for idempotent requests."""
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    """Circuit breaker thresholds for this platform."""
    quota: QuotaSettings | None = None
    """The platform's budget; None means no client-side budget (the vendor's 429 still
    applies)."""
    redis_timeout: float = 0.25
    """Seconds a quota call to Redis may take before the in-process budget is used instead.
    Long values put Redis latency on every vendor call when Redis is sick."""
    redis_retry_after: float = 5.0
    """Seconds the in-process budget stays in use after a Redis failure before Redis is
    tried again, so a dead Redis costs one timeout per interval, not one per call."""


def default_policy(name: Platform) -> PlatformPolicy:
    """The policy the gateway uses for `name` unless settings say otherwise."""
    return PlatformPolicy(name=name, quota=_DEFAULT_QUOTAS[name])


_DEFAULT_QUOTAS: dict[Platform, QuotaSettings] = {
    # Stripe allows about 100 read/write requests per second in live mode and 25 in test
    # mode (https://docs.stripe.com/rate-limits); 25 is safe for both.
    "stripe": RateQuota(limit=25, window=1.0),
    # Zendesk limits per minute by plan (200-2,500, https://developer.zendesk.com/api-reference/
    # introduction/rate-limits/); 11 a second stays under 700 a minute without bursts.
    "zendesk": RateQuota(limit=11, window=1.0),
    # NetSuite governs concurrent requests per account: about 5, plus 10 per SuiteCloud Plus
    # licence; over it the account answers 429 (or 400 on RESTlets).
    "netsuite": ConcurrencyQuota(limit=5),
    # Salesforce reports the day's usage on every answer; its client reports it to the budget.
    "salesforce": DailyQuota(),
}
