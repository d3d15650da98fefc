"""Runs and mismatches in the app database: written by the reconciliation and repair flows'
steps (keyed writes, so a step that runs again writes nothing twice), read by the routes.

A mismatch's status is `repaired` once its repair flow fixed it; otherwise it is `explained`
when an operator resolved its exception with a reason, else `open`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import NotFound
from contracts.principal import Principal
from contracts.v1 import Page
from process_apis.engine.store import (
    as_utc,
    decode_cursor,
    encode_cursor,
    exceptions,
    flows,
    insert_for,
    utcnow,
)
from process_apis.reconciliation.compare import Comparison, Finding, Kind, Total, Values
from process_apis.reconciliation.store import mismatches, runs

__all__ = [
    "Mismatch",
    "MismatchRow",
    "MismatchStatus",
    "Run",
    "RunStatus",
    "RunStore",
    "Summary",
]

RunStatus = Literal["running", "completed", "failed"]
MismatchStatus = Literal["open", "repaired", "explained"]
LIST_NAME = "process:reconciliations"
_BATCH = 200
_MAX_KEY = 150


def follow_up_id(fingerprint: str, *, occurrence: int = 1) -> str:
    """The follow-up flow of an occurrence of a mismatch (long keys hashed to fit a flow id)."""
    if len(fingerprint) > _MAX_KEY:
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
        fingerprint = f"{fingerprint[:100]}:{digest}"
    suffix = f"#{occurrence}" if occurrence > 1 else ""
    return f"reconcile-mismatch:{fingerprint}{suffix}"


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: Kind
    key: str
    legal_entity: str
    currency: str | None
    values: Values
    reason: str
    status: MismatchStatus
    exception_id: str | None = None
    repair: str | None = None
    """What a repair does (`post_invoice`, `apply_payment`, `post_credit_memo`,
    `relink_customer`); null when the mismatch needs a person."""


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    mismatches: int
    unexplained: int
    repaired: int
    pending: int = 0
    """Records younger than the settle window, not compared yet."""


class Run(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: RunStatus
    kinds: list[Kind]
    legal_entities: list[str] | None = None
    """The entities compared; null for every entity."""
    started_at: datetime
    completed_at: datetime | None = None
    checked: dict[str, int] = {}
    summary: Summary
    totals: list[Total] = []
    mismatches: list[Mismatch] = []
    error: str | None = None


class MismatchRow(msgspec.Struct, frozen=True, kw_only=True):
    """What the repair flow needs of a mismatch."""

    id: str
    run_id: str
    fingerprint: str
    finding: Finding
    status: str
    follow_up_id: str
    legal_entity: str


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class RunStore:
    """Reads and writes runs and mismatches."""

    def __init__(self, database: AsyncEngine) -> None:
        self._db = database

    async def open_run(
        self,
        run_id: str,
        *,
        kinds: Sequence[Kind],
        entities: Collection[str] | None,
        settle_seconds: float,
        scheduled: bool,
        watermark: datetime | None = None,
    ) -> bool:
        """Record a new running run; False when it exists (the same run started again)."""
        async with self._db.begin() as conn:
            statement = (
                insert_for(conn, runs)
                .values(
                    id=run_id,
                    status="running",
                    scheduled=scheduled,
                    kinds=_dumps(list(kinds)),
                    legal_entities=_dumps(sorted(entities)) if entities is not None else None,
                    settle_seconds=settle_seconds,
                    watermark=watermark,
                    started_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=[runs.c.id])
                .returning(runs.c.id)
            )
            created = (await conn.execute(statement)).first() is not None
            if not created and watermark is not None:
                # Recorded before its flow ran (by the route or the schedule): the flow's
                # first step adds where it reads from.
                await conn.execute(
                    sa.update(runs).where(runs.c.id == run_id).values(watermark=watermark)
                )
            return created

    async def watermark(self, *, before: str) -> datetime | None:
        """Where a scheduled run reads from: the start of the last completed scheduled run
        other than `before` (None: never ran, read everything)."""
        statement = (
            sa.select(runs.c.started_at)
            .where(runs.c.scheduled.is_(True), runs.c.status == "completed", runs.c.id != before)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        )
        async with self._db.connect() as conn:
            return as_utc((await conn.execute(statement)).scalar_one_or_none())

    async def record(self, run_id: str, comparison: Comparison, follow_ups: dict[str, str]) -> None:
        """The run's counts, totals and mismatches (a mismatch recorded once per run)."""
        now = utcnow()
        async with self._db.begin() as conn:
            await conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    checked=_dumps(comparison.checked),
                    pending=_dumps(comparison.pending),
                    totals=_dumps(comparison.totals),
                )
            )
            for finding in comparison.findings:
                statement = (
                    insert_for(conn, mismatches)
                    .values(
                        id=uuid.uuid4().hex,
                        run_id=run_id,
                        fingerprint=finding.fingerprint,
                        kind=finding.kind,
                        code=finding.code,
                        key=finding.key,
                        legal_entity=finding.legal_entity,
                        currency=finding.currency,
                        values=_dumps(finding.values),
                        reason=finding.reason,
                        repair=finding.repair,
                        subject=_dumps(finding.subject),
                        status="open",
                        follow_up_id=follow_ups[finding.fingerprint],
                        created_at=now,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[mismatches.c.run_id, mismatches.c.fingerprint]
                    )
                )
                await conn.execute(statement)

    async def finish(self, run_id: str, *, error: str | None = None) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status="failed" if error else "completed",
                    error=error,
                    completed_at=utcnow(),
                )
            )

    async def follow_ups(self, fingerprints: Collection[str]) -> dict[str, str]:
        """The follow-up flow each mismatch is found under: the same flow while it is open or
        explained; once repaired, drift found again is a new occurrence with a flow (and an
        exception) of its own (`...#2`, `...#3`)."""
        if not fingerprints:
            return {}
        statement = (
            sa.select(
                mismatches.c.fingerprint,
                sa.func.count(sa.distinct(mismatches.c.follow_up_id)).label("repaired"),
            )
            .where(
                mismatches.c.fingerprint.in_(sorted(fingerprints)),
                mismatches.c.status == "repaired",
            )
            .group_by(mismatches.c.fingerprint)
        )
        async with self._db.connect() as conn:
            repaired = {row.fingerprint: row.repaired for row in await conn.execute(statement)}
        return {
            fingerprint: follow_up_id(fingerprint, occurrence=repaired.get(fingerprint, 0) + 1)
            for fingerprint in fingerprints
        }

    async def is_repaired(self, follow_up: str) -> bool:
        statement = sa.select(sa.func.count()).where(
            mismatches.c.follow_up_id == follow_up, mismatches.c.status == "repaired"
        )
        async with self._db.connect() as conn:
            return bool((await conn.execute(statement)).scalar_one())

    async def mark_repaired(self, follow_up: str) -> None:
        """Every record of this occurrence of the mismatch, in every run that found it."""
        async with self._db.begin() as conn:
            await conn.execute(
                sa.update(mismatches)
                .where(mismatches.c.follow_up_id == follow_up, mismatches.c.status == "open")
                .values(status="repaired", repaired_at=utcnow())
            )

    async def open_exception_of(self, follow_up_id: str) -> tuple[str, int] | None:
        """The follow-up flow's exception while it is open: (id, occurrence)."""
        statement = sa.select(exceptions.c.id, exceptions.c.occurrences).where(
            exceptions.c.flow_id == follow_up_id, exceptions.c.status == "open"
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(statement)).first()
        return (row.id, row.occurrences) if row is not None else None

    async def awaiting_exceptions(self, follow_up_ids: Collection[str]) -> set[str]:
        """The follow-up flows among `follow_up_ids` that have not opened their exception
        yet and are still under way (a follow-up of a repaired mismatch opens none)."""
        if not follow_up_ids:
            return set()
        wanted = sorted(follow_up_ids)
        async with self._db.connect() as conn:
            with_exception = set(
                (
                    await conn.execute(
                        sa.select(exceptions.c.flow_id).where(exceptions.c.flow_id.in_(wanted))
                    )
                ).scalars()
            )
            ended = set(
                (
                    await conn.execute(
                        sa.select(flows.c.id).where(
                            flows.c.id.in_(wanted),
                            flows.c.status.in_(("succeeded", "cancelled")),
                        )
                    )
                ).scalars()
            )
        return set(wanted) - with_exception - ended

    async def mismatch(self, run_id: str, mismatch_id: str, principal: Principal) -> MismatchRow:
        """NotFound when unknown, or not the caller's to see."""
        await self.get(run_id, principal)
        statement = sa.select(mismatches).where(
            mismatches.c.id == mismatch_id, mismatches.c.run_id == run_id
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(statement)).first()
        if row is None or not principal.may_see_entity(row.legal_entity):
            raise NotFound(f"No mismatch {mismatch_id} in reconciliation {run_id}")
        return MismatchRow(
            id=row.id,
            run_id=row.run_id,
            fingerprint=row.fingerprint,
            finding=_finding(row),
            status=row.status,
            follow_up_id=row.follow_up_id,
            legal_entity=row.legal_entity,
        )

    async def get(self, run_id: str, principal: Principal) -> Run:
        async with self._db.connect() as conn:
            row = (await conn.execute(sa.select(runs).where(runs.c.id == run_id))).first()
            if row is None or not _visible(row, principal):
                raise NotFound(f"No reconciliation {run_id}")
            return await _run(conn, row, principal, with_mismatches=True)

    async def recent(
        self, principal: Principal, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Run]:
        """Newest first; runs the caller may see (all of whose entities are its own)."""
        statement = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc())
        if cursor:
            started_at, last_id = decode_cursor(cursor, list_name=LIST_NAME)
            statement = statement.where(
                sa.or_(
                    runs.c.started_at < started_at,
                    sa.and_(runs.c.started_at == started_at, runs.c.id < last_id),
                )
            )
        rows: list[Any] = []
        offset = 0
        async with self._db.connect() as conn:
            # Visibility is decided on the entity list, so read in batches until a page
            # (and one more, to know there is a next page) is found.
            while len(rows) <= limit:
                batch = (
                    await conn.execute(statement.offset(offset).limit(_BATCH))
                ).all()
                rows.extend(row for row in batch if _visible(row, principal))
                if len(batch) < _BATCH:
                    break
                offset += _BATCH
            page = [
                await _run(conn, row, principal, with_mismatches=False) for row in rows[:limit]
            ]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(page[-1].started_at, page[-1].id, list_name=LIST_NAME)
        return Page[Run](data=page, next_cursor=next_cursor)

    async def latest_counts(self) -> dict[tuple[str, str, str, str], int]:
        """Mismatches of each run's latest completed run, by (kind, entity, currency, status)."""
        async with self._db.connect() as conn:
            latest = (
                await conn.execute(
                    sa.select(runs)
                    .where(runs.c.status == "completed")
                    .order_by(runs.c.completed_at.desc())
                    .limit(1)
                )
            ).first()
            if latest is None:
                return {}
            found = await _mismatches(conn, latest.id, None)
        counts: dict[tuple[str, str, str, str], int] = {}
        for item in found:
            label = (item.kind, item.legal_entity, item.currency or "", item.status)
            counts[label] = counts.get(label, 0) + 1
        return counts


def _visible(row: Any, principal: Principal) -> bool:
    if principal.entities is None:
        return True
    if row.legal_entities is None:
        return False
    return set(msgspec.json.decode(row.legal_entities)) <= principal.entities


def _finding(row: Any) -> Finding:
    return Finding(
        kind=row.kind,
        code=row.code,
        key=row.key,
        legal_entity=row.legal_entity,
        currency=row.currency,
        values=msgspec.json.decode(row.values, type=Values),
        reason=row.reason,
        repair=row.repair,
        subject=msgspec.json.decode(row.subject),
    )


async def _mismatches(conn: Any, run_id: str, principal: Principal | None) -> list[Mismatch]:
    statement = (
        sa.select(
            mismatches,
            exceptions.c.id.label("exception_id"),
            exceptions.c.status.label("exception_status"),
        )
        .select_from(
            mismatches.outerjoin(exceptions, exceptions.c.flow_id == mismatches.c.follow_up_id)
        )
        .where(mismatches.c.run_id == run_id)
        .order_by(mismatches.c.kind, mismatches.c.key)
    )
    result: list[Mismatch] = []
    for row in (await conn.execute(statement)).all():
        if principal is not None and not principal.may_see_entity(row.legal_entity):
            continue
        status: MismatchStatus = "open"
        if row.status == "repaired":
            status = "repaired"
        elif row.exception_status == "resolved":
            status = "explained"
        result.append(
            Mismatch(
                id=row.id,
                kind=row.kind,
                key=row.key,
                legal_entity=row.legal_entity,
                currency=row.currency,
                values=msgspec.json.decode(row.values, type=Values),
                reason=row.reason,
                status=status,
                exception_id=row.exception_id,
                repair=row.repair,
            )
        )
    return result


async def _run(conn: Any, row: Any, principal: Principal, *, with_mismatches: bool) -> Run:
    found = await _mismatches(conn, row.id, principal)
    pending = msgspec.json.decode(row.pending) if row.pending else {}
    started_at = as_utc(row.started_at)
    assert started_at is not None
    return Run(
        id=row.id,
        status=row.status,
        kinds=msgspec.json.decode(row.kinds),
        legal_entities=msgspec.json.decode(row.legal_entities) if row.legal_entities else None,
        started_at=started_at,
        completed_at=as_utc(row.completed_at),
        checked=msgspec.json.decode(row.checked) if row.checked else {},
        summary=Summary(
            mismatches=len(found),
            unexplained=sum(1 for m in found if m.status == "open"),
            repaired=sum(1 for m in found if m.status == "repaired"),
            pending=sum(pending.values()),
        ),
        totals=msgspec.json.decode(row.totals, type=list[Total]) if row.totals else [],
        mismatches=found if with_mismatches else [],
        error=row.error,
    )
