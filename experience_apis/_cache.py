"""Short-lived caches of source answers: in process, or in Redis shared by every replica.

A cache keeps each answer past its fresh lifetime so that an optional source that fails can
still be served stale (`Composer` decides what is fresh); it never decides freshness itself.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis

__all__ = ["CachedAnswer", "InMemoryViewCache", "RedisViewCache", "ViewCache"]

CachedAnswer = tuple[float, bytes]
"""(stored_at as Unix time, the encoded answer)."""

_STAMP = struct.Struct(">d")


@runtime_checkable
class ViewCache(Protocol):
    """Where source answers are kept between requests."""

    async def get(self, key: str) -> CachedAnswer | None:
        """The answer stored under `key` and when, or None when absent or expired."""
        ...

    async def put(self, key: str, payload: bytes, *, stored_at: float, keep_seconds: float) -> None:
        """Store `payload` under `key` for `keep_seconds` (fresh life plus stale window)."""
        ...


class InMemoryViewCache:
    """One process's cache: a bounded map, the least recently stored entry evicted first."""

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    async def get(self, key: str) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, stored_at, payload = entry
        if expires_at <= self._clock():
            self._entries.pop(key, None)
            return None
        return stored_at, payload

    async def put(self, key: str, payload: bytes, *, stored_at: float, keep_seconds: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + keep_seconds, stored_at, payload)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class RedisViewCache:
    """A cache every gateway replica shares: one Redis string per answer, expiring by itself.

    The value is the store time (8 bytes, big-endian double) followed by the answer.
    """

    def __init__(self, redis: Redis, *, prefix: str = "erpgw:view:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self._redis.get(self._prefix + key)
        if not isinstance(raw, bytes) or len(raw) < _STAMP.size:
            return None
        (stored_at,) = _STAMP.unpack_from(raw)
        return float(stored_at), raw[_STAMP.size :]

    async def put(self, key: str, payload: bytes, *, stored_at: float, keep_seconds: float) -> None:
        milliseconds = max(1, int(keep_seconds * 1000))
        await self._redis.set(self._prefix + key, _STAMP.pack(stored_at) + payload, px=milliseconds)
