"""The webhook inbox table as the intake writes and the dispatcher works it.

`InboxWriter` stores deliveries by group commit: the deliveries that arrive while one INSERT
is committing are written together by the next, one multi-row `INSERT ... ON CONFLICT DO
NOTHING RETURNING` of at most `max_batch` rows, and each delivery learns whether its row is
new or was there already only once that INSERT has committed.

The rest are the dispatcher's statements: claim received rows under a lease (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; SQLite serialises writers, so the conditional UPDATE is enough), settle
them, put them back after a failed attempt, mark them failed, and queue them again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from process_apis.engine.store import as_utc, insert_for, utcnow, webhook_inbox
from process_apis.webhooks.events import SignedEvent, WebhookEvent

__all__ = [
    "InboxKey",
    "InboxRow",
    "InboxWriter",
    "claim_due",
    "fail_attempt",
    "inbox_row",
    "queue_again",
    "read_row",
    "release",
    "settle",
]

FLOW_ID_LENGTH: Final = 200


@dataclass(frozen=True)
class InboxKey:
    """A row's primary key: an event id is only unique per source, sender and type."""

    source: str
    sender: str
    event_type: str
    event_id: str

    @classmethod
    def of(cls, event: WebhookEvent | SignedEvent) -> InboxKey:
        return cls(event.source, event.sender_id, event.type, event.id)

    def to_builtins(self) -> dict[str, str]:
        return {
            "source": self.source,
            "sender": self.sender,
            "event_type": self.event_type,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, kw_only=True)
class InboxRow:
    """A row as the dispatcher claims it."""

    key: InboxKey
    payload: str
    attempts: int
    received_at: datetime
    failed_before: bool = False
    """An earlier attempt failed (`error` is set): a dispatch exception may be open for it."""

    def event(self) -> WebhookEvent:
        return msgspec.json.decode(self.payload, type=WebhookEvent)


@dataclass
class _Pending:
    values: dict[str, Any]
    outcome: asyncio.Future[bool]


@dataclass(eq=False)
class InboxWriter:
    """Stores deliveries by group commit (see the module docstring)."""

    database: AsyncEngine
    max_batch: int = 500
    inserts: int = 0
    """INSERT statements committed so far (a delivery's row is in exactly one)."""
    rows: int = 0
    """Rows offered to those statements."""
    last_stored: float = float("-inf")
    """When (`time.monotonic`) a delivery last asked to be stored."""
    _queue: list[_Pending] = field(default_factory=list)
    _writer: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._autocommit = self.database.execution_options(isolation_level="AUTOCOMMIT")

    async def store(
        self,
        event: WebhookEvent | SignedEvent,
        *,
        lease_owner: str | None = None,
        lease_seconds: float = 0.0,
    ) -> bool:
        """Store `event` as a received row; True when it is new, False when a row of its
        key was there already. Returns only once the row is committed. With `lease_owner`,
        the new row is held for it `lease_seconds` (no dispatcher claims it before).

        Raises:
            Exception: the database's error; nothing was stored for this delivery.
        """
        self.last_stored = time.monotonic()
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        values = _row_values(event)
        if lease_owner is not None:
            values["lease_owner"] = lease_owner
            values["lease_until"] = values["received_at"] + timedelta(seconds=lease_seconds)
        self._queue.append(_Pending(values, outcome))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        return await outcome

    async def _write_batches(self) -> None:
        # One connection for as long as deliveries keep coming: a checkout pings the database,
        # which would cost each batch a round trip. A failed statement answers its batch with
        # the error; the deliveries after it are written on a fresh connection.
        while self._queue:
            batch: list[_Pending] = []
            try:
                async with self._autocommit.connect() as conn:
                    while self._queue:
                        # Let the deliveries whose bodies are already in join this batch: one
                        # more row costs next to nothing, one more statement a round trip.
                        await asyncio.sleep(0)
                        batch = self._take()
                        _settle(batch, await self._insert(conn, batch))
                        batch = []
            except Exception as exc:
                for pending in batch or self._take():
                    if not pending.outcome.done():
                        pending.outcome.set_exception(exc)

    def _take(self) -> list[_Pending]:
        batch = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        return batch

    async def _insert(self, conn: AsyncConnection, batch: Sequence[_Pending]) -> set[InboxKey]:
        # One row per key in a statement: PostgreSQL's ON CONFLICT takes each key once.
        unique = list({_key_of(p.values): p.values for p in batch}.values())
        self.rows += len(batch)
        # One statement whatever the batch's size, its rows as parameter sets: SQLAlchemy
        # compiles it once (a `.values(rows)` statement compiles anew for every row count) and
        # sends the rows as one multi-row INSERT ("insertmanyvalues"). One statement is atomic
        # by itself, so it runs in autocommit: no BEGIN and COMMIT round trips.
        result = await conn.execute(_insert_new_rows(conn), unique)
        inserted = {InboxKey(*row) for row in result}
        self.inserts += 1
        return inserted


def _settle(batch: Sequence[_Pending], inserted: set[InboxKey]) -> None:
    """Tell each delivery of a committed batch whether its row is new."""
    for pending in batch:
        key = _key_of(pending.values)
        if not pending.outcome.done():
            pending.outcome.set_result(key in inserted)
        # A second delivery of the same event in the batch is a duplicate of the first.
        inserted.discard(key)


_INSERTS: dict[str, Any] = {}


def _insert_new_rows(conn: AsyncConnection) -> Any:
    """The writer's statement for the connection's dialect, built once."""
    statement = _INSERTS.get(conn.dialect.name)
    if statement is None:
        statement = (
            insert_for(conn, webhook_inbox)
            .on_conflict_do_nothing(index_elements=_KEY_COLUMNS)
            .returning(*_KEY_COLUMNS)
        )
        _INSERTS[conn.dialect.name] = statement
    return statement


async def read_row(executor: AsyncConnection, key: InboxKey) -> Any:
    """A row's status, flow ids and last error."""
    return (
        await executor.execute(
            sa.select(webhook_inbox.c.status, webhook_inbox.c.flow_id, webhook_inbox.c.error).where(
                *inbox_row(key)
            )
        )
    ).first()


async def claim_due(
    executor: AsyncConnection, *, owner: str, limit: int, lease_seconds: float
) -> list[InboxRow]:
    """Lease up to `limit` received rows nobody holds (oldest first) to `owner`."""
    now = utcnow()
    due = sa.and_(
        webhook_inbox.c.status == "received",
        sa.or_(webhook_inbox.c.lease_until.is_(None), webhook_inbox.c.lease_until <= now),
    )
    oldest = sa.select(*_KEY_COLUMNS).where(due).order_by(webhook_inbox.c.received_at).limit(limit)
    if executor.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    result = await executor.execute(
        sa.update(webhook_inbox)
        .where(sa.tuple_(*_KEY_COLUMNS).in_(oldest), due)
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(
            *_KEY_COLUMNS,
            webhook_inbox.c.payload,
            webhook_inbox.c.attempts,
            webhook_inbox.c.received_at,
            webhook_inbox.c.error,
        )
    )
    return [
        InboxRow(
            key=InboxKey(row.source, row.sender, row.event_type, row.event_id),
            payload=row.payload,
            attempts=row.attempts,
            received_at=as_utc(row.received_at) or now,
            failed_before=row.error is not None,
        )
        for row in result
    ]


async def settle(
    executor: AsyncConnection, key: InboxKey, *, owner: str, status: str, flow_ids: Sequence[str]
) -> bool:
    """The row's flows are enqueued (or nobody wanted it); False when `owner` no longer
    held it (its lease ran out and another dispatcher settled it)."""
    result = await executor.execute(
        sa.update(webhook_inbox)
        .where(*inbox_row(key), webhook_inbox.c.status == "received")
        .where(webhook_inbox.c.lease_owner == owner)
        .values(
            status=status,
            flow_id=" ".join(flow_ids)[:FLOW_ID_LENGTH] or None,
            processed_at=utcnow(),
            lease_owner=None,
            lease_until=None,
            error=None,
        )
    )
    return bool(result.rowcount)


async def release(executor: AsyncConnection, key: InboxKey, *, owner: str, retry_in: float) -> None:
    """Give a claimed row back untried (the flow engine stopped, the database is away), to
    be claimed again after `retry_in` seconds: no attempt is counted."""
    await executor.execute(
        sa.update(webhook_inbox)
        .where(*inbox_row(key), webhook_inbox.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=utcnow() + timedelta(seconds=retry_in))
    )


async def fail_attempt(
    executor: AsyncConnection,
    key: InboxKey,
    *,
    owner: str,
    error: str,
    retry_in_seconds: float | None,
) -> bool:
    """Count a failed attempt: the row waits `retry_in_seconds` before any dispatcher may
    claim it again, or, with None, is `failed` for good. False when `owner` lost the row."""
    now = utcnow()
    values: dict[str, Any] = {
        "attempts": webhook_inbox.c.attempts + 1,
        "error": error,
        "lease_owner": None,
    }
    if retry_in_seconds is None:
        values |= {"status": "failed", "lease_until": None, "processed_at": now}
    else:
        values["lease_until"] = now + timedelta(seconds=retry_in_seconds)
    result = await executor.execute(
        sa.update(webhook_inbox)
        .where(*inbox_row(key), webhook_inbox.c.status == "received")
        .where(webhook_inbox.c.lease_owner == owner)
        .values(**values)
    )
    return bool(result.rowcount)


async def queue_again(executor: AsyncConnection, key: InboxKey) -> bool:
    """A failed row is received again with its attempts reset (an operator's retry)."""
    result = await executor.execute(
        sa.update(webhook_inbox)
        .where(*inbox_row(key), webhook_inbox.c.status == "failed")
        .values(status="received", attempts=0, lease_owner=None, lease_until=None)
    )
    return bool(result.rowcount)


def inbox_row(key: InboxKey) -> list[sa.ColumnElement[bool]]:
    """The WHERE clause of the row of `key`."""
    return [
        webhook_inbox.c.source == key.source,
        webhook_inbox.c.sender == key.sender,
        webhook_inbox.c.event_type == key.event_type,
        webhook_inbox.c.event_id == key.event_id,
    ]


_KEY_COLUMNS = [
    webhook_inbox.c.source,
    webhook_inbox.c.sender,
    webhook_inbox.c.event_type,
    webhook_inbox.c.event_id,
]


def _row_values(event: WebhookEvent | SignedEvent) -> dict[str, Any]:
    return {
        "source": event.source,
        "sender": event.sender_id,
        "event_type": event.type,
        "event_id": event.id,
        "payload": msgspec.json.encode(event).decode(),
        "status": "received",
        "received_at": utcnow(),
        "attempts": 0,
        "lease_owner": None,
        "lease_until": None,
    }


def _key_of(values: dict[str, Any]) -> InboxKey:
    return InboxKey(values["source"], values["sender"], values["event_type"], values["event_id"])
