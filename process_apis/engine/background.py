"""Background loops of a process plugin (a schedule, a dispatcher, a flusher), run for as long
as the app serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

__all__ = ["running_in_background"]


@contextlib.asynccontextmanager
async def running_in_background(*loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run each of `loops` as a task while the block runs; cancel them as it ends and wait
    until they have stopped (an app's lifespan: nothing outlives the app's shutdown)."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
