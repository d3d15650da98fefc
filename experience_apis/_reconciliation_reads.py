"""What the views read about reconciliation: the drift of the latest completed run per legal
entity and currency, and one run's mismatches. Read-only queries over the reconciliation
tables (`process_apis.reconciliation.store`), limited to the caller's legal entities.

A mismatch is open unless it was repaired or its exception was resolved with a reason (the
same rule as the reconciliation API). Its drift is the spread of the amounts the systems hold
(a record missing from a system counts as 0 there); customer mismatches compare record ids,
so they count but carry no amount.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.engine.store import as_utc, exceptions
from process_apis.reconciliation.compare import Total, Values
from process_apis.reconciliation.records import MismatchStatus
from process_apis.reconciliation.store import mismatches, runs

__all__ = [
    "DriftRow",
    "MismatchLine",
    "ReconciliationReads",
    "drift_amount",
    "may_open",
    "run_link",
]

RUNS_SCANNED = 50
"""Completed runs read, newest first, to find each entity's latest one."""


class DriftRow(msgspec.Struct, frozen=True, kw_only=True):
    legal_entity: str
    currency: str
    run_id: str
    completed_at: datetime
    open: int
    """Open mismatches of this entity and currency in that run."""
    amount: int
    """Sum of the open mismatches' drift, in minor units of `currency`."""
    oldest_open_since: datetime | None = None
    """When the oldest open mismatch was first found (its exception opened)."""
    oldest_open_id: str | None = None
    run_entities: list[str] | None = None
    """The legal entities the run compared (null: every entity)."""
    link: str | None = None
    """The run with its mismatches in the reconciliation API; null when the caller may not
    open it there (the API shows a run only to callers allowed every entity it compared)."""


class MismatchLine(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    key: str
    legal_entity: str
    currency: str | None
    reason: str
    status: MismatchStatus
    amount: int
    exception_id: str | None = None
    found_at: datetime


def run_link(run_id: str) -> str:
    return f"/process/v1/reconciliations/{run_id}"


def may_open(row: DriftRow, entities: Collection[str] | None) -> bool:
    """Whether the reconciliation API shows `row`'s run to a caller limited to `entities`."""
    if entities is None:
        return True
    return row.run_entities is not None and set(row.run_entities) <= set(entities)


def drift_amount(values: Values) -> int:
    amounts = [v for v in (values.crm, values.billing, values.erp) if not isinstance(v, str)]
    if not any(isinstance(v, int) for v in amounts):
        return 0
    present = [v or 0 for v in amounts]
    return max(present) - min(present)


class ReconciliationReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def drift(self, entities: Collection[str] | None) -> list[DriftRow]:
        """Per (entity, currency) the caller may see: its latest completed run's open drift."""
        statement = (
            sa.select(runs.c.id, runs.c.legal_entities, runs.c.totals, runs.c.completed_at)
            .where(runs.c.status == "completed")
            .order_by(runs.c.completed_at.desc(), runs.c.id.desc())
            .limit(RUNS_SCANNED)
        )
        rows: dict[tuple[str, str], DriftRow] = {}
        async with self._engine.connect() as conn:
            for run in (await conn.execute(statement)).all():
                found = await _lines(conn, run.id, entities)
                pairs = {(m.legal_entity, m.currency) for m in found if m.currency}
                if run.totals:
                    pairs |= {
                        (t.legal_entity, t.currency)
                        for t in msgspec.json.decode(run.totals, type=list[Total])
                    }
                for entity, currency in pairs:
                    if (entity, currency) in rows or not _allowed(entity, entities):
                        continue
                    open_ones = [
                        m
                        for m in found
                        if m.status == "open"
                        and m.legal_entity == entity
                        and m.currency == currency
                    ]
                    oldest = min(open_ones, key=lambda m: m.found_at, default=None)
                    completed_at = as_utc(run.completed_at)
                    assert completed_at is not None
                    rows[(entity, currency)] = DriftRow(
                        legal_entity=entity,
                        currency=currency,
                        run_id=run.id,
                        completed_at=completed_at,
                        open=len(open_ones),
                        amount=sum(m.amount for m in open_ones),
                        oldest_open_since=oldest.found_at if oldest else None,
                        oldest_open_id=oldest.id if oldest else None,
                        run_entities=msgspec.json.decode(run.legal_entities)
                        if run.legal_entities
                        else None,
                        link=run_link(run.id),
                    )
        return [rows[key] for key in sorted(rows)]

    async def mismatches(
        self, run_id: str, entities: Collection[str] | None
    ) -> list[MismatchLine] | None:
        """The run's mismatches of the caller's entities; None when there is no such run."""
        async with self._engine.connect() as conn:
            exists = (await conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id))).first()
            if exists is None:
                return None
            return await _lines(conn, run_id, entities)


def _allowed(entity: str, entities: Collection[str] | None) -> bool:
    return entities is None or entity in entities


async def _lines(conn: Any, run_id: str, entities: Collection[str] | None) -> list[MismatchLine]:
    statement = (
        sa.select(
            mismatches,
            exceptions.c.status.label("exception_status"),
            exceptions.c.created_at.label("exception_created_at"),
        )
        .select_from(mismatches.outerjoin(exceptions, exceptions.c.id == mismatches.c.exception_id))
        .where(mismatches.c.run_id == run_id)
        .order_by(mismatches.c.kind, mismatches.c.key)
    )
    if entities is not None:
        statement = statement.where(mismatches.c.legal_entity.in_(sorted(entities)))
    return [_line(row) for row in (await conn.execute(statement)).all()]


def _line(row: Any) -> MismatchLine:
    status: MismatchStatus = "open"
    if row.status == "repaired":
        status = "repaired"
    elif row.exception_status == "resolved":
        status = "explained"
    found_at = as_utc(row.exception_created_at) or as_utc(row.created_at)
    assert found_at is not None
    return MismatchLine(
        id=row.id,
        kind=row.kind,
        key=row.key,
        legal_entity=row.legal_entity,
        currency=row.currency,
        reason=row.reason,
        status=status,
        amount=drift_amount(msgspec.json.decode(row.values, type=Values)),
        exception_id=row.exception_id,
        found_at=found_at,
    )
