"""What every fake port shares: call and write records, fault injection, cursors, replays.

A fake is an in-memory implementation of one port (cosmicpython `FakeRepository`): plain dicts of
contract Structs a test can read, the same `contracts.errors` the real adapter raises, and no
HTTP. Every public port method is wrapped by `operation`, which records the call and raises a
fault queued with `fail_next` -- before the call takes effect, or after it (`applied=True`: the
vendor did the work and the answer was lost), which is how flow tests exercise retries.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from contracts.errors import (
    FieldError,
    GatewayError,
    InvalidRequest,
    UpstreamConflict,
    UpstreamUnavailable,
)
from contracts.v1 import Page

__all__ = ["FakePort", "operation"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound="FakePort")


def operation(
    method: Callable[Concatenate[F, P], Awaitable[R]],
) -> Callable[Concatenate[F, P], Coroutine[Any, Any, R]]:
    """Mark a port method: record the call, raise any fault queued for it."""
    name = method.__name__

    @functools.wraps(method)
    async def call(self: F, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.calls.append(name)
        self._raise_fault(name, applied=False)
        result = await method(self, *args, **kwargs)
        self._raise_fault(name, applied=True)
        return result

    call.__fake_operation__ = True  # type: ignore[attr-defined]
    return call


class _Fault:
    def __init__(self, error: BaseException, applied: bool) -> None:
        self.error = error
        self.applied = applied


class FakePort:
    """Base of the four fakes.

    Readable by tests:
        calls   every port method called, in order (faulted calls included)
        writes  (method, key) of every write that changed or created something, in order;
                a replayed write (same idempotency key or external id, nothing new) is not
                listed again
    """

    vendor: str = "fake"

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.calls: list[str] = []
        self.writes: list[tuple[str, str]] = []
        self.write_times: list[datetime] = []
        """When each of `writes` happened (this fake's clock): its change feed."""
        self._clock = clock or (lambda: datetime.now(UTC))
        self._faults: dict[str, deque[_Fault]] = {}
        self._numbers: Counter[str] = Counter()
        self._replays: dict[Hashable, tuple[Hashable, Any]] = {}

    # fault injection ---------------------------------------------------------------------

    def fail_next(
        self, method: str, error: BaseException, *, times: int = 1, applied: bool = False
    ) -> None:
        """The next `times` calls of `method` raise `error`.

        `applied=True` lets each call take effect first (the vendor wrote the record, the
        answer was lost): a retry must then find the first result, not make a second one.
        """
        if not getattr(getattr(self, method, None), "__fake_operation__", False):
            raise AttributeError(f"{type(self).__name__} has no port method {method!r}")
        self._faults.setdefault(method, deque()).extend(
            _Fault(error, applied) for _ in range(times)
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def unavailable(self, message: str = "injected outage", **details: Any) -> UpstreamUnavailable:
        """An `UpstreamUnavailable` of this fake's vendor (for `fail_next`)."""
        return UpstreamUnavailable(message, vendor=self.vendor, **details)

    def _raise_fault(self, method: str, *, applied: bool) -> None:
        queue = self._faults.get(method)
        if queue and queue[0].applied == applied:
            raise queue.popleft().error

    # records -----------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def _wrote(self, method: str, key: str) -> None:
        self.writes.append((method, key))
        self.write_times.append(self.now())

    def _writes_since(self, since: datetime) -> list[tuple[str, str]]:
        return [write for write, at in zip(self.writes, self.write_times, strict=True)
                if at >= since]

    def _next(self, kind: str) -> int:
        self._numbers[kind] += 1
        return self._numbers[kind]

    # idempotency -------------------------------------------------------------------------

    def _replayed(self, key: Hashable | None, fingerprint: Hashable) -> Any:
        """The stored outcome of an earlier request with `key` (None: not seen).

        The same key with other parameters raises `self._key_reused(key)`; a stored error is
        raised again, as the vendor replays it.
        """
        if key is None or key not in self._replays:
            return None
        seen, outcome = self._replays[key]
        if seen != fingerprint:
            raise self._key_reused(str(key))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _remember(self, key: Hashable | None, fingerprint: Hashable, outcome: Any) -> None:
        if key is not None:
            self._replays[key] = (fingerprint, outcome)

    def _key_reused(self, key: str) -> GatewayError:
        return UpstreamConflict(
            f"idempotency key {key!r} was first used with other parameters",
            vendor=self.vendor, status=400, code="idempotency_error",
        )

    # paging ------------------------------------------------------------------------------

    def _page(self, items: Sequence[T], cursor: str | None, limit: int) -> Page[T]:
        """One offset page of `items` behind an opaque cursor this fake issues."""
        start = self._offset(cursor)
        size = max(1, limit)
        chunk = list(items[start : start + size])
        more = start + size < len(items)
        return Page(data=chunk, next_cursor=self._cursor(start + size) if more else None)

    def _cursor(self, offset: int) -> str:
        raw = f"fake-{self.vendor}:{offset}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _offset(self, cursor: str | None) -> int:
        if not cursor:
            return 0
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            prefix, _, number = text.partition(":")
            offset = int(number)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            prefix, offset = "", -1
        if prefix != f"fake-{self.vendor}" or offset < 0:
            raise self._bad_cursor()
        return offset

    def _bad_cursor(self) -> GatewayError:
        return InvalidRequest(
            "invalid cursor", errors=[FieldError(pointer="cursor", detail="not a cursor we issued")]
        )
