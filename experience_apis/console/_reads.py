"""What the console pages read from the app database: flows with filters, live counts, the
last hour's throughput and failures, queue depth, and a flow's vendor calls and webhooks.
Read-only queries over the process layer's tables and the gateway's `vendor_calls`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from experience_apis._process_reads import UNRESOLVED
from experience_apis._reconciliation_reads import ReconciliationReads
from experience_apis.ops import vendor_calls
from process_apis.engine.store import as_utc, exceptions, flows, webhook_inbox

__all__ = ["CallRow", "ConsoleReads", "FlowFilter", "FlowRow", "HookRow", "MinuteBar", "Pulse"]

MAX_FLOWS = 100
MAX_CALLS = 500


@dataclass(frozen=True, kw_only=True)
class FlowFilter:
    type: str | None = None
    status: str | None = None
    owner: str | None = None
    """Flows with an unresolved exception owned by this team."""
    age: timedelta | None = None
    """Flows created at most this long ago."""
    search: str | None = None
    """A business key (flow id) or a correlation id, exactly, or the start of a flow id."""
    before: datetime | None = None
    """Flows created before this (the next page)."""


@dataclass(frozen=True, kw_only=True)
class FlowRow:
    id: str
    type: str
    status: str
    crm_account: str | None
    legal_entity: str | None
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    owner: str | None
    """The owner team of the flow's unresolved exception, if it has one."""


@dataclass(frozen=True, kw_only=True)
class CallRow:
    system: str
    method: str
    path_template: str
    status: int | None
    latency_ms: float
    attempt: int
    step: str | None
    error: str | None
    started_at: datetime


@dataclass(frozen=True, kw_only=True)
class HookRow:
    source: str
    event_id: str
    event_type: str
    status: str
    received_at: datetime


@dataclass(frozen=True, kw_only=True)
class MinuteBar:
    start: datetime
    started: int
    failed: int


@dataclass(frozen=True, kw_only=True)
class Pulse:
    """The last hour: flows started and failed per minute, the failure rate, queue depth."""

    minutes: list[MinuteBar]
    started: int
    finished: int
    failed: int
    queue_depth: dict[str, int]

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def per_minute(self) -> float:
        return self.started / max(1, len(self.minutes))


class ConsoleReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.reconciliation = ReconciliationReads(engine)

    async def status_counts(self, entities: Collection[str] | None) -> dict[str, int]:
        statement = (
            sa.select(flows.c.status, sa.func.count())
            .where(*_entities(flows.c.legal_entity, entities))
            .group_by(flows.c.status)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return {str(status): int(count) for status, count in rows}

    async def flows(
        self, query: FlowFilter, entities: Collection[str] | None, *, now: datetime
    ) -> list[FlowRow]:
        owners = (
            sa.select(exceptions.c.flow_id, sa.func.min(exceptions.c.owner).label("owner"))
            .where(exceptions.c.status.in_(UNRESOLVED))
            .group_by(exceptions.c.flow_id)
            .subquery()
        )
        statement = (
            sa.select(flows, owners.c.owner)
            .outerjoin(owners, owners.c.flow_id == flows.c.id)
            .where(*_entities(flows.c.legal_entity, entities), *_filters(query, owners, now))
            .order_by(flows.c.created_at.desc(), flows.c.id.desc())
            .limit(MAX_FLOWS)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [_flow_row(row._mapping) for row in rows]

    async def related_flows(
        self, flow_id: str, caused_by: str | None, entities: Collection[str] | None
    ) -> tuple[FlowRow | None, list[FlowRow]]:
        """The flow that caused `flow_id` and the flows it caused, among those the operator
        may see (oldest first)."""
        cause = sa.false() if caused_by is None else flows.c.id == caused_by
        statement = (
            sa.select(flows, sa.null().label("owner"))
            .where(sa.or_(cause, flows.c.caused_by == flow_id))
            .where(*_entities(flows.c.legal_entity, entities))
            .order_by(flows.c.created_at, flows.c.id)
            .limit(MAX_FLOWS)
        )
        async with self._engine.connect() as conn:
            rows = [_flow_row(row._mapping) for row in await conn.execute(statement)]
        parent = next((row for row in rows if row.id == caused_by), None)
        return parent, [row for row in rows if row.id != caused_by]

    async def flow_exception_ids(self, flow_id: str) -> list[str]:
        statement = (
            sa.select(exceptions.c.id)
            .where(exceptions.c.flow_id == flow_id)
            .order_by(exceptions.c.created_at)
        )
        async with self._engine.connect() as conn:
            return [str(row.id) for row in await conn.execute(statement)]

    async def vendor_calls(self, flow_id: str) -> list[CallRow]:
        statement = (
            sa.select(vendor_calls)
            .where(vendor_calls.c.flow_id == flow_id)
            .order_by(vendor_calls.c.started_at, vendor_calls.c.id)
            .limit(MAX_CALLS)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            CallRow(
                system=row.system,
                method=row.method,
                path_template=row.path_template,
                status=row.status,
                latency_ms=float(row.latency_ms),
                attempt=row.attempt,
                step=row.step,
                error=row.error,
                started_at=_utc(row.started_at),
            )
            for row in rows
        ]

    async def webhooks(self, flow_id: str) -> list[HookRow]:
        statement = (
            sa.select(webhook_inbox)
            .where(webhook_inbox.c.flow_id == flow_id)
            .order_by(webhook_inbox.c.received_at)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            HookRow(
                source=row.source,
                event_id=row.event_id,
                event_type=row.event_type,
                status=row.status,
                received_at=_utc(row.received_at),
            )
            for row in rows
        ]

    async def pulse(self, entities: Collection[str] | None, *, now: datetime) -> Pulse:
        since = now - timedelta(hours=1)
        scope = _entities(flows.c.legal_entity, entities)
        async with self._engine.connect() as conn:
            created = (
                await conn.execute(
                    sa.select(flows.c.created_at).where(flows.c.created_at >= since, *scope)
                )
            ).all()
            ended = (
                await conn.execute(
                    sa.select(flows.c.status, flows.c.updated_at).where(
                        flows.c.updated_at >= since,
                        flows.c.status.in_(("succeeded", "failed", "cancelled")),
                        *scope,
                    )
                )
            ).all()
            depth = (
                await conn.execute(
                    sa.select(exceptions.c.owner, sa.func.count())
                    .where(
                        exceptions.c.status.in_(UNRESOLVED),
                        *_entities(exceptions.c.legal_entity, entities),
                    )
                    .group_by(exceptions.c.owner)
                )
            ).all()
        started = Counter(_minute(_utc(row.created_at), since) for row in created)
        failed = Counter(
            _minute(_utc(row.updated_at), since) for row in ended if row.status == "failed"
        )
        minutes = [
            MinuteBar(start=since + timedelta(minutes=i), started=started[i], failed=failed[i])
            for i in range(60)
        ]
        return Pulse(
            minutes=minutes,
            started=len(created),
            finished=len(ended),
            failed=sum(1 for row in ended if row.status == "failed"),
            queue_depth={str(owner): int(count) for owner, count in depth},
        )


def _filters(query: FlowFilter, owners: Any, now: datetime) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if query.type:
        where.append(flows.c.flow_type == query.type)
    if query.status:
        where.append(flows.c.status == query.status)
    if query.owner:
        where.append(owners.c.owner == query.owner)
    if query.age is not None:
        where.append(flows.c.created_at >= now - query.age)
    if query.before is not None:
        where.append(flows.c.created_at < query.before)
    if query.search:
        term = query.search
        where.append(
            sa.or_(
                flows.c.id == term,
                flows.c.business_key == term,
                flows.c.correlation_id == term,
                flows.c.id.startswith(term, autoescape=True),
            )
        )
    return where


def _entities(
    column: sa.ColumnElement[str | None], entities: Collection[str] | None
) -> list[sa.ColumnElement[bool]]:
    return [] if entities is None else [column.in_(sorted(entities))]


def _flow_row(m: Any) -> FlowRow:
    return FlowRow(
        id=m["id"],
        type=m["flow_type"],
        status=m["status"],
        crm_account=m["crm_account"],
        legal_entity=m["legal_entity"],
        correlation_id=m["correlation_id"],
        created_at=_utc(m["created_at"]),
        updated_at=_utc(m["updated_at"]),
        owner=m["owner"],
    )


def _minute(stamp: datetime, since: datetime) -> int:
    return min(59, max(0, int((stamp - since).total_seconds() // 60)))


def _utc(value: datetime) -> datetime:
    stamp = as_utc(value)
    assert stamp is not None
    return stamp
