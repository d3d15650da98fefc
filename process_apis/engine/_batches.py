"""Group commit of the engine's records: the writes that flows running at the same moment
make as their steps end (step records, trace keys, a flow's end) share one transaction.

Each caller still waits until its own rows are committed, so a step's record is durable
before DBOS checkpoints the step, exactly as with a transaction of its own; what changes is
that eight flows ending a step together cost one pooled checkout, one round of statements
(`executemany` of each statement) and one commit instead of eight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from process_apis.engine.store import transaction_retried_if_dropped, transient_failure

__all__ = ["BatchWriter", "Write"]

Write = tuple[sa.TextClause, Mapping[str, Any]]
"""One statement (built once, at import) and the parameters of one of its rows."""

log = structlog.get_logger("process_apis.engine.batches")


class _Pending:
    __slots__ = ("done", "writes")

    def __init__(self, writes: Sequence[Write], done: asyncio.Future[None]) -> None:
        self.writes = writes
        self.done = done


class BatchWriter:
    """Commits the writes handed to `write` in batches: whatever arrived while the previous
    batch committed goes in the next one, in one transaction. A batch the database refuses is
    written again one caller at a time, so one bad row fails only its own caller; through a
    transient failure (a dropped connection, a full server) the batch is tried again for a
    while (`store.transaction_retried_if_dropped`), then fails every caller."""

    def __init__(self, db: AsyncEngine) -> None:
        self._db = db
        self._queue: list[_Pending] = []
        self._committing: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def write(self, *writes: Write) -> None:
        """Commit `writes` (in one transaction, with other callers' writes); returns once
        they are committed, raises the database's error when they could not be."""
        if not writes:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="erpgw-record-batches")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(writes, done))
        self._arrived.set()
        await done

    async def close(self) -> None:
        """Stop writing; callers still waiting get `CancelledError`."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for pending in [*self._committing, *self._queue]:
            pending.done.cancel()
        self._queue, self._committing = [], []

    async def _drain(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._queue = self._queue, []
            self._committing = [pending for pending in batch if not pending.done.done()]
            if self._committing:
                await self._commit(self._committing)
            self._committing = []

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            await self._execute([write for pending in batch for write in pending.writes])
        except Exception as exc:
            if len(batch) == 1 or transient_failure(exc):
                # The database itself failed (and was tried again meanwhile): so would each.
                for pending in batch:
                    _settle(pending, exc)
                return
            log.warning("record_batch_failed", size=len(batch), error=str(exc))
            for pending in batch:
                try:
                    await self._execute(pending.writes)
                except Exception as own:
                    _settle(pending, own)
                else:
                    _settle(pending, None)
            return
        for pending in batch:
            _settle(pending, None)

    async def _execute(self, writes: Sequence[Write]) -> None:
        # One executemany a statement, in the order each statement first came (every caller
        # hands its statements in the same order). Rows go in a stable order, so two
        # processes' batches touching the same keys (a trace's) lock them in the same order.
        rows: dict[sa.TextClause, list[Mapping[str, Any]]] = {}
        for statement, params in writes:
            rows.setdefault(statement, []).append(params)
        for same_statement in rows.values():
            same_statement.sort(key=_row_order)

        async def run(conn: AsyncConnection) -> None:
            for statement, params in rows.items():
                await conn.execute(statement, params)

        await transaction_retried_if_dropped(self._db, run)


def _row_order(params: Mapping[str, Any]) -> str:
    return repr(sorted(params.items()))


def _settle(pending: _Pending, error: Exception | None) -> None:
    if pending.done.done():
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)
