"""Composition of a channel view from its sources, with declared partial-failure semantics.

A view names its sources (`crm`, `billing`, `support`, `erp`, `process`) in `ViewRules`: each
is required or optional and has a time budget. `Composer.compose` fetches them concurrently.

- A source that answers is `ok`; its answer is cached for `fresh_seconds` (a fresh cached
  answer is served without asking the source).
- An optional source that fails is `error`, one that runs out of its budget `timeout`; its
  section is null and the view still answers 200, unless a cached answer younger than
  `stale_seconds` exists: that one is served and the source is `stale`.
- A required source that fails makes the whole view fail: `UpstreamError` (502) or
  `UpstreamUnavailable(timeout=True)` (504) naming the source as its `vendor`. A required
  source that says the record does not exist (`NotFound`, `UpstreamNotFound`) raises that
  error unchanged, for the view to answer 404. Required sources are never served stale.
- `use_cache=False` (a request with `Cache-Control: no-cache`) neither reads the cache nor
  serves stale answers; what it fetches still refreshes the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar, cast

import msgspec
import structlog

from contracts.errors import (
    RequestRejected,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from experience_apis._cache import InMemoryViewCache, RedisViewCache, ViewCache
from experience_apis._responses import conditional_response, etag_for, wants_fresh

__all__ = [
    "SOURCE_NAMES",
    "Composer",
    "Composition",
    "InMemoryViewCache",
    "RedisViewCache",
    "Source",
    "SourceName",
    "SourceRule",
    "SourceState",
    "ViewCache",
    "ViewRules",
    "conditional_response",
    "etag_for",
    "wants_fresh",
]

SourceName = Literal["crm", "billing", "support", "erp", "process"]
SourceState = Literal["ok", "timeout", "error", "stale"]
SOURCE_NAMES: tuple[SourceName, ...] = ("crm", "billing", "support", "erp", "process")

T = TypeVar("T")

log = structlog.get_logger("experience_apis.compose")


@dataclass(frozen=True, kw_only=True)
class SourceRule:
    """How a view treats one of its sources."""

    required: bool = False
    """A required source that fails fails the view (502/504); an optional one leaves its
    section null."""
    budget_seconds: float = 1.5
    """How long the view waits for the source. Keep it under the outbound deadline of the
    vendor calls behind it (5 s for interactive calls), or the budget never decides."""
    fresh_seconds: float | None = None
    """How long this source's answer is reused; None: the composer's `fresh_seconds`."""


@dataclass(frozen=True, kw_only=True)
class ViewRules:
    """A view's sources and how each is treated."""

    name: str
    sources: Mapping[SourceName, SourceRule]

    def with_budgets(self, budgets: Mapping[str, float]) -> ViewRules:
        """The same rules with the budgets of the sources named in `budgets` replaced."""
        return replace(
            self,
            sources={
                name: replace(rule, budget_seconds=budgets.get(name, rule.budget_seconds))
                for name, rule in self.sources.items()
            },
        )


@dataclass(frozen=True)
class Source(Generic[T]):
    """One source's part of one request: what it fetches and how its answer is identified."""

    name: SourceName
    key: str
    """Identifies the answer among the view's answers from this source (e.g. the account id);
    the cache key is view, source and this key."""
    fetch: Callable[[], Awaitable[T]]
    decode_as: type[T]
    """The type the cached answer decodes back into."""


@dataclass
class Composition:
    """The answers of one composition, and each source's state."""

    states: dict[str, SourceState] = field(default_factory=dict)
    _values: dict[str, Any] = field(default_factory=dict)

    def get(self, source: Source[T]) -> T | None:
        """The source's answer; None when it failed and nothing stale could stand in."""
        return cast("T | None", self._values.get(source.name))

    def ok(self, name: SourceName) -> bool:
        """Whether the source's section holds data (fresh or stale)."""
        return self.states.get(name) in ("ok", "stale")


@dataclass(frozen=True)
class _Outcome:
    name: SourceName
    state: SourceState
    value: Any = None
    error: BaseException | None = None


class Composer:
    """Fetches a view's sources concurrently within their budgets, through the cache."""

    def __init__(
        self,
        cache: ViewCache,
        *,
        fresh_seconds: float = 5.0,
        stale_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        Args:
            fresh_seconds: how long a source's answer is served from the cache without asking
                the source again; 0 asks every time (the answer is still kept for stale use).
            stale_seconds: how old a cached answer may be and still stand in for an optional
                source that fails.
        """
        self.cache = cache
        self.fresh_seconds = fresh_seconds
        self.stale_seconds = max(stale_seconds, fresh_seconds)
        self._clock = clock

    async def compose(
        self, rules: ViewRules, *sources: Source[Any], use_cache: bool = True
    ) -> Composition:
        """Fetch every source at once; raise when a required one failed (see module doc)."""
        outcomes = await asyncio.gather(
            *(self._run(rules, source, use_cache) for source in sources)
        )
        composition = Composition()
        for outcome in outcomes:
            composition.states[outcome.name] = outcome.state
            composition._values[outcome.name] = outcome.value
        for source, outcome in zip(sources, outcomes, strict=True):
            if rules.sources[source.name].required and outcome.state not in ("ok", "stale"):
                raise _required_failure(rules, source.name, outcome)
        return composition

    async def _run(self, rules: ViewRules, source: Source[T], use_cache: bool) -> _Outcome:
        rule = rules.sources[source.name]
        key = f"{rules.name}:{source.name}:{source.key}"
        cached = await self._read(key) if use_cache else None
        now = self._clock()
        fresh = self.fresh_seconds if rule.fresh_seconds is None else rule.fresh_seconds
        if cached is not None and now - cached[0] < fresh:
            value = self._decode(cached[1], source)
            if value is not None:
                return _Outcome(source.name, "ok", value)
        try:
            async with asyncio.timeout(rule.budget_seconds):
                value = await source.fetch()
        except TimeoutError as exc:
            failure = _Outcome(source.name, "timeout", error=exc)
        except Exception as exc:
            failure = _Outcome(source.name, _state_of(exc), error=exc)
            if not isinstance(exc, RequestRejected | UpstreamError):
                log.warning("view_source_failed", view=rules.name, source=source.name, exc_info=exc)
        else:
            await self._write(key, value)
            return _Outcome(source.name, "ok", value)
        if rule.required or not use_cache:
            return failure
        return self._stale(cached, source, failure, now)

    def _stale(
        self, cached: tuple[float, bytes] | None, source: Source[T], failure: _Outcome, now: float
    ) -> _Outcome:
        if cached is None or now - cached[0] >= self.stale_seconds:
            return failure
        value = self._decode(cached[1], source)
        return failure if value is None else _Outcome(source.name, "stale", value)

    async def _read(self, key: str) -> tuple[float, bytes] | None:
        # A cache that is down must never fail a view: it only costs the fast path.
        try:
            return await self.cache.get(key)
        except Exception as exc:
            log.warning("view_cache_read_failed", key=key, error=str(exc))
            return None

    async def _write(self, key: str, value: object) -> None:
        try:
            await self.cache.put(
                key,
                msgspec.json.encode(value),
                stored_at=self._clock(),
                keep_seconds=self.stale_seconds,
            )
        except Exception as exc:
            log.warning("view_cache_write_failed", key=key, error=str(exc))

    @staticmethod
    def _decode(payload: bytes, source: Source[T]) -> T | None:
        try:
            return msgspec.json.decode(payload, type=source.decode_as)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            # Written by an older version of the view: ask the source instead.
            return None


def _state_of(exc: BaseException) -> SourceState:
    if isinstance(exc, UpstreamUnavailable) and exc.timeout:
        return "timeout"
    return "error"


def _required_failure(rules: ViewRules, name: SourceName, outcome: _Outcome) -> Exception:
    error = outcome.error
    if isinstance(error, RequestRejected | UpstreamNotFound):
        return error
    budget = rules.sources[name].budget_seconds
    if outcome.state == "timeout":
        failure: Exception = UpstreamUnavailable(
            f"The {name} source of this view did not answer within {budget:g} s",
            vendor=name,
            timeout=True,
            code="source_timeout",
        )
    else:
        failure = UpstreamError(
            f"The {name} source of this view failed: {error}",
            vendor=name,
            code="source_failed",
        )
    failure.__cause__ = error
    return failure
