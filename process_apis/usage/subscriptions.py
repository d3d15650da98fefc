"""What usage intake needs to know of a subscription, read from billing once a while.

A batch of a thousand records names a handful of subscriptions; each is read from billing at
most once a minute (and again as soon as its period has ended), so intake costs no billing call
per record. The subscription's metadata carries its legal entity and canonical customer, which
decide who may report usage for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import msgspec

from contracts.errors import UpstreamNotFound
from contracts.principal import Principal
from contracts.v1 import Subscription
from system_apis.billing.port import BillingPort

__all__ = ["MeteredSubscription", "SubscriptionDirectory"]

CACHE_SECONDS: Final = 60.0
"""How long a subscription read is reused: its entity never changes, its items and period
rarely; a period that has ended is read again at once."""
MAX_CACHED: Final = 100_000
_OPEN: Final = frozenset({"active", "past_due", "trialing", "unpaid", "incomplete"})


class MeteredSubscription(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription as usage intake sees it."""

    id: str
    legal_entity: str | None
    customer: str | None
    """The canonical customer (`cus-...`) it bills."""
    items: dict[str, str]
    """Metered subscription item id by usage metric."""
    period_start: datetime
    period_end: datetime
    open: bool
    """Still billing (not canceled): usage can be reported for it."""

    def visible_to(self, principal: Principal) -> bool:
        """The caller's own legal entity and, for a portal client, its own customer."""
        if not principal.may_see_entity(self.legal_entity):
            return False
        return principal.customer is None or principal.customer == self.customer


class SubscriptionDirectory:
    """Reads subscriptions through the billing port, caching each for a short while."""

    def __init__(
        self,
        billing: BillingPort,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._billing = billing
        self._ttl = ttl
        self._clock = clock
        self._now = now
        self._cache: dict[str, tuple[float, MeteredSubscription | None]] = {}

    async def find(self, subscription_id: str) -> MeteredSubscription | None:
        """The subscription, or None when billing has none of that id.

        Raises:
            UpstreamUnavailable: billing cannot be reached (the caller retries the batch).
        """
        cached = self._cache.get(subscription_id)
        if cached is not None and self._fresh(*cached):
            return cached[1]
        try:
            found: MeteredSubscription | None = _metered(
                await self._billing.get_subscription(subscription_id)
            )
        except UpstreamNotFound:
            found = None
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[subscription_id] = (self._clock(), found)
        return found

    def forget(self, subscription_id: str) -> None:
        self._cache.pop(subscription_id, None)

    def _fresh(self, read_at: float, found: MeteredSubscription | None) -> bool:
        if self._clock() - read_at >= self._ttl:
            return False
        return found is None or self._now() < found.period_end


def _metered(subscription: Subscription) -> MeteredSubscription:
    start = subscription.current_period_start or datetime.fromtimestamp(0, UTC)
    return MeteredSubscription(
        id=subscription.id,
        legal_entity=subscription.legal_entity,
        customer=subscription.refs.get("canonical"),
        items={item.usage_metric: item.id for item in subscription.items if item.usage_metric},
        period_start=start,
        period_end=subscription.current_period_end or start,
        open=subscription.status in _OPEN,
    )
