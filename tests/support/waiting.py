"""One way for a test to wait: poll a condition until it holds, never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ["eventually"]

T = TypeVar("T")


@overload
async def eventually(
    predicate: Callable[[], Awaitable[T | None]],
    until: None = None,
    *,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    predicate: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    predicate: Callable[[], T | None],
    until: None = None,
    *,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    predicate: Callable[[], T],
    until: Callable[[T], bool],
    *,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    what: str = ...,
) -> T: ...


async def eventually(
    predicate: Callable[[], Any],
    until: Callable[[Any], bool] | None = None,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 (a polling deadline, the name tests read)
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Call `predicate` (sync or async) until its value is truthy, or until `until(value)`
    holds when given, and return that value.

    Raises:
        AssertionError: after `timeout` seconds, naming `what` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if until(value) if until is not None else value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)
