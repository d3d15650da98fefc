"""The usage tables: records as clients reported them, and the batches that push them.

A record is keyed by the reporting client and the client's own id, so a record reported again
(in the same request, another request, any day) is the same row: the insert does nothing. A
push batch claims the unclaimed records once (`batch_id`), pushes their sums, and is marked
pushed; the records' batch says whether billing has them. Schema: migration `0006`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from process_apis.engine.store import as_utc, insert_for, utcnow

__all__ = [
    "MAX_BATCH_RECORDS",
    "PeriodTotals",
    "UsageAggregate",
    "UsageRow",
    "UsageStore",
    "usage_batches",
    "usage_records",
]

MAX_BATCH_RECORDS: Final = 200_000
"""Records one push batch claims at most, so a backlog is pushed in bounded batches."""

_metadata = sa.MetaData()

usage_records = sa.Table(
    "usage_records",
    _metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("subscription_id", sa.String(64), nullable=False),
    sa.Column("subscription_item_id", sa.String(64), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("legal_entity", sa.String(32), nullable=True),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("batch_id", sa.String(200), nullable=True),
)

usage_batches = sa.Table(
    "usage_batches",
    _metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
)


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """An accepted record, placed in its subscription item and billing period."""

    record_id: str
    subscription_id: str
    subscription_item_id: str
    metric: str
    quantity: int
    occurred_at: datetime
    period_start: datetime
    period_end: datetime
    legal_entity: str | None


class UsageAggregate(msgspec.Struct, frozen=True, kw_only=True):
    """What one push sends billing: a batch's usage of one item in one period."""

    batch_id: str
    subscription_id: str
    subscription_item_id: str
    metric: str
    period_start: datetime
    period_end: datetime
    quantity: int
    records: int


class PeriodTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Accepted and pushed usage of one subscription, metric and period."""

    subscription_id: str = ""
    legal_entity: str | None = None
    subscription_item_id: str
    metric: str
    period_start: datetime
    period_end: datetime
    accepted: int
    pushed: int


class UsageStore:
    """Reads and writes the usage tables of the app database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, client_id: str, rows: Sequence[UsageRow]) -> int:
        """Store `rows` for `client_id` in one transaction; returns how many were new (a
        record id already stored, or twice in `rows`, is not)."""
        if not rows:
            return 0
        now = utcnow()
        values = [
            {
                "client_id": client_id,
                "record_id": row.record_id,
                "subscription_id": row.subscription_id,
                "subscription_item_id": row.subscription_item_id,
                "metric": row.metric,
                "quantity": row.quantity,
                "occurred_at": row.occurred_at,
                "period_start": row.period_start,
                "period_end": row.period_end,
                "legal_entity": row.legal_entity,
                "accepted_at": now,
            }
            for row in rows
        ]
        async with self._engine.begin() as conn:
            if conn.dialect.driver == "asyncpg":
                return await _add_unnested(conn, values)
            statement = (
                insert_for(conn, usage_records)
                .on_conflict_do_nothing(
                    index_elements=[usage_records.c.client_id, usage_records.c.record_id]
                )
                .returning(usage_records.c.record_id)
            )
            inserted = await conn.execute(statement, values)
            return len(inserted.all())

    async def claim(self, batch_id: str) -> list[UsageAggregate]:
        """The batch `batch_id`'s usage per item and period: the records it claimed before
        (a repeat after a crash), else the unclaimed ones it claims now."""
        async with self._engine.begin() as conn:
            exists = await conn.execute(
                sa.select(usage_batches.c.id).where(usage_batches.c.id == batch_id)
            )
            if exists.first() is None:
                await conn.execute(
                    sa.insert(usage_batches).values(id=batch_id, created_at=utcnow())
                )
                unclaimed = (
                    sa.select(usage_records.c.client_id, usage_records.c.record_id)
                    .where(usage_records.c.batch_id.is_(None))
                    .limit(MAX_BATCH_RECORDS)
                )
                if conn.dialect.name == "postgresql":
                    # Replicas flushing at once claim disjoint records without waiting.
                    unclaimed = unclaimed.with_for_update(skip_locked=True)
                await conn.execute(
                    sa.update(usage_records)
                    .where(
                        sa.tuple_(usage_records.c.client_id, usage_records.c.record_id).in_(
                            unclaimed
                        )
                    )
                    .values(batch_id=batch_id)
                )
            rows = await conn.execute(_aggregate().where(usage_records.c.batch_id == batch_id))
            return [_aggregate_of(batch_id, row) for row in rows]

    async def mark_pushed(self, batch_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(usage_batches)
                .where(usage_batches.c.id == batch_id, usage_batches.c.pushed_at.is_(None))
                .values(pushed_at=utcnow())
            )

    async def pending(self) -> int:
        """Records accepted and not yet claimed by a batch."""
        async with self._engine.connect() as conn:
            count = await conn.execute(
                sa.select(sa.func.count()).where(usage_records.c.batch_id.is_(None))
            )
            return int(count.scalar_one())

    async def totals(self, subscription_id: str) -> list[PeriodTotals]:
        """Accepted and pushed usage of a subscription per item, metric and period, newest
        period first."""
        return await self._totals(usage_records.c.subscription_id == subscription_id)

    async def entity_totals(self, entities: Sequence[str] | None) -> list[PeriodTotals]:
        """The same for every subscription of `entities` (None: all)."""
        condition: sa.ColumnElement[bool] = sa.true()
        if entities is not None:
            condition = usage_records.c.legal_entity.in_(sorted(entities))
        return await self._totals(condition)

    async def _totals(self, condition: sa.ColumnElement[bool]) -> list[PeriodTotals]:
        pushed = sa.case(
            (usage_batches.c.pushed_at.is_not(None), usage_records.c.quantity), else_=0
        )
        keys = (
            usage_records.c.subscription_id,
            usage_records.c.legal_entity,
            usage_records.c.subscription_item_id,
            usage_records.c.metric,
            usage_records.c.period_start,
            usage_records.c.period_end,
        )
        statement = (
            sa.select(
                *keys,
                sa.func.sum(usage_records.c.quantity).label("accepted"),
                sa.func.coalesce(sa.func.sum(pushed), 0).label("pushed"),
            )
            .select_from(
                usage_records.outerjoin(
                    usage_batches, usage_batches.c.id == usage_records.c.batch_id
                )
            )
            .where(condition)
            .group_by(*keys)
            .order_by(usage_records.c.period_start.desc(), usage_records.c.metric)
        )
        async with self._engine.connect() as conn:
            rows = await conn.execute(statement)
            return [
                PeriodTotals(
                    subscription_id=row.subscription_id,
                    legal_entity=row.legal_entity,
                    subscription_item_id=row.subscription_item_id,
                    metric=row.metric,
                    period_start=_utc(row.period_start),
                    period_end=_utc(row.period_end),
                    accepted=int(row.accepted),
                    pushed=int(row.pushed),
                )
                for row in rows
            ]


_UNNEST_INSERT: Final = """
INSERT INTO usage_records (client_id, record_id, subscription_id, subscription_item_id, metric,
    quantity, occurred_at, period_start, period_end, legal_entity, accepted_at)
SELECT $1, r.record_id, r.subscription_id, r.item, r.metric, r.quantity, r.occurred_at,
    r.period_start, r.period_end, r.legal_entity, $2
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::timestamptz[],
    $9::timestamptz[], $10::timestamptz[], $11::text[])
    AS r(record_id, subscription_id, item, metric, quantity, occurred_at, period_start,
         period_end, legal_entity)
ON CONFLICT (client_id, record_id) DO NOTHING
RETURNING record_id
"""


async def _add_unnested(conn: AsyncConnection, values: list[dict[str, Any]]) -> int:
    """The same insert on PostgreSQL as one statement of eleven arrays: a batch costs one
    round trip and no per-row statement building (intake's hot path)."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection

    def column(name: str) -> list[Any]:
        return [value[name] for value in values]

    rows = await driver.fetch(
        _UNNEST_INSERT,
        values[0]["client_id"],
        values[0]["accepted_at"],
        column("record_id"),
        column("subscription_id"),
        column("subscription_item_id"),
        column("metric"),
        column("quantity"),
        column("occurred_at"),
        column("period_start"),
        column("period_end"),
        column("legal_entity"),
    )
    return len(rows)


def _aggregate() -> sa.Select[tuple[str, str, str, datetime, datetime, int, int]]:
    return (
        sa.select(
            usage_records.c.subscription_id,
            usage_records.c.subscription_item_id,
            usage_records.c.metric,
            usage_records.c.period_start,
            usage_records.c.period_end,
            sa.func.sum(usage_records.c.quantity).label("quantity"),
            sa.func.count().label("records"),
        )
        .group_by(
            usage_records.c.subscription_id,
            usage_records.c.subscription_item_id,
            usage_records.c.metric,
            usage_records.c.period_start,
            usage_records.c.period_end,
        )
        .order_by(usage_records.c.subscription_item_id, usage_records.c.period_start)
    )


def _aggregate_of(
    batch_id: str, row: sa.Row[tuple[str, str, str, datetime, datetime, int, int]]
) -> UsageAggregate:
    return UsageAggregate(
        batch_id=batch_id,
        subscription_id=row.subscription_id,
        subscription_item_id=row.subscription_item_id,
        metric=row.metric,
        period_start=_utc(row.period_start),
        period_end=_utc(row.period_end),
        quantity=int(row.quantity),
        records=int(row.records),
    )


def _utc(value: datetime) -> datetime:
    stamp = as_utc(value)
    assert stamp is not None
    return stamp
