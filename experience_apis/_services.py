"""What every view handler receives as its `views` dependency, and small pieces they share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from contracts.errors import Forbidden, UpstreamError
from contracts.principal import Principal
from contracts.v1 import Price
from experience_apis._links import LinkResolver
from experience_apis._process_reads import ProcessReads
from experience_apis.compose import Composer, ViewRules
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort

__all__ = [
    "AuthedRequest",
    "BillingDep",
    "CrmDep",
    "ErpDep",
    "PriceBook",
    "Shared",
    "SupportDep",
    "ViewServices",
    "ViewsDep",
    "principal_of",
    "require_port",
]

T = TypeVar("T")
AuthedRequest = Request[Principal, Any, Any]


# The ports are taken as the app provides them: Litestar would otherwise check each against
# its runtime-checkable Protocol on every request (a `hasattr` per operation). A platform
# the app does not wire is None, and a view reports that source as failed.
CrmDep = NamedDependency[SkipValidation[CrmPort | None]]
BillingDep = NamedDependency[SkipValidation[BillingPort | None]]
SupportDep = NamedDependency[SkipValidation[SupportPort | None]]
ErpDep = NamedDependency[SkipValidation[ErpPort | None]]


class PriceBook:
    """Prices by id, kept in process: a Stripe price's amount and interval never change
    (a new price is created instead), so a long lifetime is safe."""

    def __init__(self, *, ttl_seconds: float = 3600.0, max_entries: int = 5000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._prices: dict[str, tuple[float, Price]] = {}

    async def get_many(self, billing: BillingPort, price_ids: Collection[str]) -> dict[str, Price]:
        now = time.monotonic()
        found = {
            pid: entry[1]
            for pid in price_ids
            if (entry := self._prices.get(pid)) is not None and now - entry[0] < self._ttl
        }
        missing = sorted(set(price_ids) - set(found))
        fetched = await asyncio.gather(*(billing.get_price(pid) for pid in missing))
        if len(self._prices) + len(fetched) > self._max:
            self._prices.clear()
        for price in fetched:
            self._prices[price.id] = (now, price)
            found[price.id] = price
        return found


@dataclass
class ViewServices:
    """The composition machinery and the shared readers, built once by the app."""

    composer: Composer
    links: LinkResolver
    process: ProcessReads
    prices: PriceBook = field(default_factory=PriceBook)
    budgets: Mapping[str, float] = field(default_factory=dict)
    """Per-source budget overrides for every view (seconds), e.g. from settings."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def rules(self, rules: ViewRules) -> ViewRules:
        return rules.with_budgets(self.budgets) if self.budgets else rules


ViewsDep = NamedDependency[SkipValidation[ViewServices]]


class Shared(Generic[T]):
    """One awaitable several sources wait for (a lookup they all need), run once, on first
    use. A source that gives up (its budget ran out) does not cancel it for the others."""

    def __init__(self, factory: Callable[[], Awaitable[T]]) -> None:
        self._factory = factory
        self._task: asyncio.Future[T] | None = None

    async def get(self) -> T:
        if self._task is None:
            self._task = asyncio.ensure_future(self._factory())
            # Every waiter may have given up: the outcome is then read here, never lost.
            self._task.add_done_callback(_consume)
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def principal_of(request: AuthedRequest) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Forbidden("this view needs an authenticated API client")
    return user


def require_port(port: T | None, source: str) -> T:
    """The platform's port, or the error a source reports when the platform is not wired."""
    if port is None:
        raise UpstreamError(f"No {source} platform is configured", vendor=source)
    return port
