"""Every vendor call attempt, recorded in the `vendor_calls` table that traces are built from.

Recording never slows a call: attempts are buffered in memory and written in batches by a
background task (and on shutdown). A database hiccup drops a batch with a warning rather than
failing vendor calls; the buffer is bounded so a dead database cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
from collections import deque

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage import vendor_calls
from system_apis.outbound import VendorCall

__all__ = ["DatabaseCallRecorder"]

FLUSH_INTERVAL = 0.5
BATCH_SIZE = 500
MAX_BUFFER = 50_000

log = structlog.get_logger("gateway.vendor_calls")


class DatabaseCallRecorder:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._buffer: deque[VendorCall] = deque(maxlen=MAX_BUFFER)
        self._task: asyncio.Task[None] | None = None
        # One writer at a time: a flush that found the buffer empty while the background
        # task still wrote its batch would return before those calls were in the table.
        self._writing = asyncio.Lock()

    async def record(self, call: VendorCall) -> None:
        self._buffer.append(call)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write every buffered call; on return, every call recorded before is in the table
        (or was dropped with a warning)."""
        async with self._writing:
            await self._write_buffer()

    async def _write_buffer(self) -> None:
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(vendor_calls.insert(), [_row(call) for call in batch])
            except Exception as exc:
                log.warning("vendor_calls_write_failed", dropped=len(batch), error=str(exc))
                return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()


def _row(call: VendorCall) -> dict[str, object]:
    return {
        "system": call.system,
        "method": call.method,
        "path_template": call.path_template[:500],
        "status": call.status,
        "latency_ms": float(call.latency_ms),
        "attempt": call.attempt,
        "correlation_id": call.correlation_id,
        "flow_id": call.flow_id,
        "step": call.step,
        "error": (call.error or None) and call.error[:500],
        "started_at": call.started_at,
    }
