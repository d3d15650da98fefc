"""One way for a test to wait: poll a condition until it holds, never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    predicate: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 (a polling deadline, the name tests read)
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `predicate` (sync or async) until it returns something truthy, and return that.

    Raises:
        AssertionError: after `timeout` seconds, naming `what` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)
