"""Stored webhook events into flows: the background dispatcher of each gateway process.

`InboxDispatcher.run` claims `received` rows of `webhook_inbox` in batches under a lease, asks
the registered handlers about each event, starts the flows they want (`FlowEngine.start`) and
settles the row `enqueued` or `ignored` with its flow ids. It wakes as soon as this process
stored an event (`wake`) and otherwise looks every `poll_seconds`, so other replicas' events
and rows whose dispatcher died (lease run out) are dispatched too. A dispatcher dying between
starting a flow and settling its row is harmless: a flow's business key makes the second start
the same flow.

At most `concurrency` events are dispatched at once, so dispatch never takes more than that
many database connections from interactive requests. A failed attempt waits (doubling
backoff) and is tried again; after `attempts` the row is `failed` and the integration team
gets an exception. That exception belongs to no durable flow: its `flow_id` is the event's
dispatch record (`dispatch_record_id`) and its input names the inbox row; an operator's retry
reaches `decide`, which queues the row again, and its next successful dispatch resolves the
exception. While the flow engine is not running, rows stay `received`: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.audit import system_actor
from contracts.context import current_context
from contracts.errors import Conflict, ServiceUnavailable
from process_apis.engine.durable import Decision
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.queue import close_exception, new_exception_id, open_exception
from process_apis.engine.store import exceptions, utcnow
from process_apis.exceptions import ExceptionEntry
from process_apis.webhooks.events import WebhookEvent
from process_apis.webhooks.inbox import (
    InboxKey,
    InboxRow,
    claim_due,
    fail_attempt,
    queue_again,
    release,
    settle,
)
from process_apis.webhooks.registry import WebhookDispatcher

__all__ = [
    "DISPATCH_FLOW_TYPE",
    "DISPATCH_STEP",
    "InboxDispatcher",
    "dispatch_record_id",
    "start_flows",
]

DISPATCH_FLOW_TYPE: Final = "webhook_dispatch"
"""The `flow_type` of a dispatch record's exception (an event whose flows could not start)."""
DISPATCH_STEP: Final = "dispatch"
LEASE_SECONDS: Final = 60.0
"""How long a claimed row is held: far above one dispatch, so only a dead dispatcher's rows
are taken over."""
QUIET_SECONDS: Final = 0.05
"""Dispatch waits until this process has stored no delivery for this long ..."""
DEFER_SECONDS: Final = 10.0
"""... but a backlog waits no longer than this in all (the default of `defer_seconds`): a
burst's answers come first, its flows next, and a steady stream of deliveries (never this
quiet) still has its flows started at the rate it arrives."""
BACKOFF_CAP_SECONDS: Final = 300.0
_RECORD_ID_LENGTH: Final = 200

log = structlog.get_logger("process_apis.webhooks.dispatch")


async def start_flows(
    handlers: WebhookDispatcher, event: WebhookEvent, engine: FlowEngine
) -> list[str]:
    """Ask the handlers about `event` and start the flows they want; the flows' ids."""
    flow_ids: list[str] = []
    for start in await handlers.starts_for(event):
        if isinstance(start, str):
            flow_ids.append(start)
            continue
        handle = await engine.start(
            start.flow_type,
            start.business_key,
            start.fn,
            *start.args,
            correlation_id=current_context().correlation_id,
            crm_account=start.crm_account,
            legal_entity=start.legal_entity,
            trace_keys=start.trace_keys,
            record_correlation_id=start.correlation_id,
            source="webhook",
            actor=system_actor(f"webhook:{event.source}"),
        )
        flow_ids.append(handle.flow_id)
    return flow_ids


def dispatch_record_id(key: InboxKey) -> str:
    """The id an event's dispatch exception goes by: readable for a signed event, a digest
    where the sender (a callout's client) or a long id would not fit or could collide."""
    readable = f"webhook:{key.source}:{key.event_type}:{key.event_id}"
    if not key.sender and len(readable) <= _RECORD_ID_LENGTH:
        return readable
    digest = hashlib.sha256("\x00".join(key.to_builtins().values()).encode()).hexdigest()
    return f"webhook:{key.source}:{digest[:40]}"


@dataclass(eq=False)
class InboxDispatcher:
    """Dispatches stored events into flows (see the module docstring)."""

    database: AsyncEngine
    handlers: WebhookDispatcher
    engine: FlowEngine
    poll_seconds: float = 2.0
    attempts: int = 5
    concurrency: int = 4
    backoff_seconds: float = 1.0
    """The wait after a first failed attempt; it doubles with each one (capped)."""
    lease_seconds: float = LEASE_SECONDS
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This dispatcher's lease name (a new one per process)."""
    defer_seconds: float = DEFER_SECONDS
    """How long a backlog may wait for this process's intake to pause."""
    last_stored: Callable[[], float] | None = None
    """When (`time.monotonic`) this process last stored a delivery; dispatch yields to a
    burst of deliveries (`QUIET_SECONDS`, `defer_seconds`)."""
    _wake: asyncio.Event | None = None

    def wake(self) -> None:
        """This process stored an event: dispatch now rather than at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled."""
        self._wake = asyncio.Event()
        yields_until: float | None = None
        while True:
            if yields_until is None:  # a new backlog: it may yield to intake a while
                yields_until = time.monotonic() + self.defer_seconds
            await self._behind_intake(yields_until)
            try:
                claimed = await self.dispatch_due()
            except Exception as exc:  # the database is away: look again at the next poll
                log.warning("webhook_dispatch_failed", error=str(exc))
                claimed = 0
            if claimed < self._batch:  # a full batch means more are waiting
                yields_until = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                self._wake.clear()

    async def _behind_intake(self, deadline: float) -> None:
        """Wait while deliveries are being stored here, until `deadline`: the vendor waits
        on each answer, while a stored event's flows can start a moment later."""
        if self.last_stored is None:
            return
        while True:
            now = time.monotonic()
            wait = min(QUIET_SECONDS - (now - self.last_stored()), deadline - now)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def dispatch_due(self) -> int:
        """Claim and dispatch one batch of due rows; how many were claimed."""
        if not self.engine.running:
            return 0  # rows stay received until an engine runs
        async with self.database.begin() as conn:
            rows = await claim_due(
                conn, owner=self.owner, limit=self._batch, lease_seconds=self.lease_seconds
            )
        if rows:
            gate = asyncio.Semaphore(self.concurrency)

            async def dispatch(row: InboxRow) -> None:
                async with gate:
                    await self._dispatch(row)

            await asyncio.gather(*(dispatch(row) for row in rows))
        return len(rows)

    async def decide(self, entry: ExceptionEntry, decision: Decision) -> None:
        """An operator's decision on a dispatch exception: a retry queues the event again (its
        next successful dispatch resolves the exception); a resolve leaves it `failed`.

        Raises:
            Conflict: the exception names no inbox row, or its row is no longer failed.
        """
        if decision.action != "retry":
            return
        key = _key_of(entry)
        async with self.database.begin() as conn:
            queued = await queue_again(conn, key)
        if not queued:
            raise Conflict(
                f"Event {key.event_id} of {key.source} is not failed; nothing to retry",
                code="exception_not_open",
            )
        self.wake()

    @property
    def _batch(self) -> int:
        return self.concurrency * 4

    async def _dispatch(self, row: InboxRow) -> None:
        event = row.event()
        try:
            flow_ids = await start_flows(self.handlers, event, self.engine)
        except ServiceUnavailable:
            # The engine stopped or the database is away: not the event's fault.
            async with self.database.begin() as conn:
                await release(conn, row.key, owner=self.owner, retry_in=self.poll_seconds)
            return
        except Exception as exc:
            await self._failed(row, exc)
            return
        status: Literal["enqueued", "ignored"] = "enqueued" if flow_ids else "ignored"
        async with self.database.begin() as conn:
            settled = await settle(
                conn, row.key, owner=self.owner, status=status, flow_ids=flow_ids
            )
            # Only a row that failed before (an operator's retry keeps its error) can have an
            # exception to close: the others cost no look-up.
            if settled and row.failed_before:
                await _resolve_exception(conn, row.key)
        now = utcnow()
        self.engine.observer.webhook_processed(
            event.source,
            processing_seconds=max((now - row.received_at).total_seconds(), 0.0),
            event_age_seconds=(
                max((now - event.created).total_seconds(), 0.0) if event.created else None
            ),
        )
        log.debug(
            "webhook_dispatched",
            source=event.source,
            event_id=event.id,
            type=event.type,
            status=status,
            flows=flow_ids,
        )

    async def _failed(self, row: InboxRow, exc: Exception) -> None:
        cause = f"{type(exc).__name__}: {exc}"
        attempt = row.attempts + 1
        final = attempt >= self.attempts
        retry_in = (
            None if final else min(self.backoff_seconds * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
        )
        async with self.database.begin() as conn:
            counted = await fail_attempt(
                conn, row.key, owner=self.owner, error=cause, retry_in_seconds=retry_in
            )
            if counted and final:
                await _open_dispatch_exception(conn, row, type(exc).__name__, cause)
        log.warning(
            "webhook_dispatch_attempt_failed",
            source=row.key.source,
            event_id=row.key.event_id,
            type=row.key.event_type,
            attempt=attempt,
            final=final,
            error=cause,
        )


async def _open_dispatch_exception(
    conn: AsyncConnection, row: InboxRow, error_class: str, cause: str
) -> None:
    now = utcnow()
    await open_exception(
        conn,
        exception_id=new_exception_id(),
        flow_id=dispatch_record_id(row.key),
        flow_type=DISPATCH_FLOW_TYPE,
        step=DISPATCH_STEP,
        step_ref="process_apis.webhooks.dispatch",
        system=row.key.source,
        owner="integration",
        error_class=error_class[:100],
        cause=f"{row.key.source} event {row.key.event_id} ({row.key.event_type}): {cause}",
        input_json=msgspec.json.encode(row.key.to_builtins()).decode(),
        legal_entity=None,
        now=now,
    )


async def _resolve_exception(conn: AsyncConnection, key: InboxKey) -> None:
    """Close the dispatch exception an operator's retry left, if any."""
    found = (
        await conn.execute(
            sa.select(exceptions.c.id).where(
                exceptions.c.flow_id == dispatch_record_id(key),
                exceptions.c.step == DISPATCH_STEP,
                exceptions.c.status != "resolved",
            )
        )
    ).first()
    if found is not None:
        await close_exception(conn, found.id, now=utcnow(), resolution="dispatched on retry")


def _key_of(entry: ExceptionEntry) -> InboxKey:
    named = entry.input if isinstance(entry.input, dict) else {}
    parts = [named.get(name) for name in ("source", "sender", "event_type", "event_id")]
    if not all(isinstance(part, str) for part in parts):
        raise Conflict(f"Exception {entry.id} names no stored webhook event", code="no_workflow")
    return InboxKey(*(str(part) for part in parts))
