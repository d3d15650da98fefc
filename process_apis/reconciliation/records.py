"""Runs and mismatches in the app database: written by the reconciliation and repair flows'
steps (keyed writes, so a step that runs again writes nothing twice), read by the routes.

A mismatch's status is `repaired` once its repair flow fixed it; otherwise it is `explained`
when an operator resolved its exception with a reason, else `open`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import NotFound
from contracts.principal import Principal
from contracts.v1 import Page
from process_apis.engine.queue import close_exception, new_exception_id, open_exception
from process_apis.engine.store import (
    as_utc,
    decode_cursor,
    encode_cursor,
    exceptions,
    insert_for,
    utcnow,
)
from process_apis.exceptions import OwnerTeam
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

NO_LONGER_FOUND = "no longer found by "
"""How a run that found a mismatch fixed closes its exception (`resolution`)."""

RunStatus = Literal["running", "completed", "failed"]
MismatchStatus = Literal["open", "repaired", "explained"]
LIST_NAME = "process:reconciliations"
_BATCH = 200
_STEP_LENGTH = 100
"""The exception queue's step column: a mismatch's fingerprint, hashed when longer."""
OWNERS: dict[str, tuple[OwnerTeam, str]] = {
    "deals": ("revenue_ops", "salesforce"),
    "invoices": ("finance", "netsuite"),
    "payments": ("finance", "netsuite"),
    "credits": ("finance", "netsuite"),
    "customers": ("integration", "gateway"),
    "usage": ("finance", "stripe"),
}
"""Who owns a mismatch of each kind, and the system it is shown against."""
STEP_REF = "process_apis.reconciliation.flow.ReconciliationFlows.record_results"


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
    incremental: bool = False
    """True: the run compared only records changed since `since` in any system (and their
    counterparts), so `checked`, `totals` and `summary` cover those records only; false: it
    read every record of its entities."""
    since: datetime | None = None
    """Where an incremental run's reading began (the last scheduled run's start, less the
    settle window)."""


class MismatchRow(msgspec.Struct, frozen=True, kw_only=True):
    """What the repair flow needs of a mismatch."""

    id: str
    run_id: str
    fingerprint: str
    finding: Finding
    status: str
    exception_id: str | None
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

    async def last_full(self, *, before: str) -> datetime | None:
        """The start of the last completed scheduled run that read everything (no
        watermark), other than `before`."""
        statement = (
            sa.select(runs.c.started_at)
            .where(
                runs.c.scheduled.is_(True),
                runs.c.status == "completed",
                runs.c.watermark.is_(None),
                runs.c.id != before,
            )
            .order_by(runs.c.started_at.desc())
            .limit(1)
        )
        async with self._db.connect() as conn:
            return as_utc((await conn.execute(statement)).scalar_one_or_none())

    async def record(
        self,
        run_id: str,
        comparison: Comparison,
        *,
        kinds: Collection[str],
        entities: Collection[str] | None,
        partial: bool = False,
    ) -> None:
        """The run's counts, totals and mismatches, each with its exception, in one
        transaction (run again, it writes nothing twice).

        A mismatch found before and not repaired keeps its exception (one an operator asked to
        retry is reopened: it is still there); a new one, or one found again after a repair,
        opens an exception for its owner team. An open exception of a mismatch this run looked
        for (its kind and entity) and no longer found is closed; a `partial` run (it read only
        what changed) closes one only when it compared that mismatch's record again.
        """
        now = utcnow()
        found = {finding.fingerprint for finding in comparison.findings}
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
            known = set(
                (
                    await conn.execute(
                        sa.select(mismatches.c.fingerprint).where(mismatches.c.run_id == run_id)
                    )
                ).scalars()
            )
            for finding in comparison.findings:
                if finding.fingerprint in known:
                    continue
                known.add(finding.fingerprint)
                exception_id = await _exception_for(conn, run_id, finding, now)
                await conn.execute(
                    sa.insert(mismatches).values(
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
                        exception_id=exception_id,
                        created_at=now,
                    )
                )
            checked = comparison.keys if partial else None
            await _close_gone(
                conn, run_id, found, kinds=kinds, entities=entities, checked=checked, now=now
            )

    async def mark_repaired(self, exception_id: str, *, repaired_by: str) -> None:
        """Every record of this occurrence of the mismatch is repaired, its exception closed."""
        now = utcnow()
        async with self._db.begin() as conn:
            await conn.execute(
                sa.update(mismatches)
                .where(mismatches.c.exception_id == exception_id, mismatches.c.status == "open")
                .values(status="repaired", repaired_at=now)
            )
            status = (
                await conn.execute(
                    sa.select(exceptions.c.status).where(exceptions.c.id == exception_id)
                )
            ).scalar_one_or_none()
            if status in ("open", "retrying"):
                await close_exception(
                    conn, exception_id, now=now, resolution=f"repaired by {repaired_by}"
                )

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
            exception_id=row.exception_id,
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
                batch = (await conn.execute(statement.offset(offset).limit(_BATCH))).all()
                rows.extend(row for row in batch if _visible(row, principal))
                if len(batch) < _BATCH:
                    break
                offset += _BATCH
            page = [await _run(conn, row, principal, with_mismatches=False) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(page[-1].started_at, page[-1].id, list_name=LIST_NAME)
        return Page[Run](data=page, next_cursor=next_cursor)

    async def latest_counts(self) -> dict[tuple[str, str, str, str], int]:
        """The mismatches standing now, by (kind, entity, currency, status): those of the
        latest completed full run and of every incremental run completed since, each record
        counted once (its latest finding), less those a later run found fixed."""
        async with self._db.connect() as conn:
            full = (
                await conn.execute(
                    sa.select(runs.c.started_at)
                    .where(runs.c.status == "completed", runs.c.watermark.is_(None))
                    .order_by(runs.c.completed_at.desc())
                    .limit(1)
                )
            ).first()
            if full is None:
                return {}
            rows = (
                await conn.execute(
                    sa.select(
                        mismatches.c.fingerprint,
                        mismatches.c.kind,
                        mismatches.c.legal_entity,
                        mismatches.c.currency,
                        mismatches.c.status,
                        exceptions.c.status.label("exception_status"),
                        exceptions.c.resolution,
                    )
                    .select_from(
                        mismatches.join(runs, runs.c.id == mismatches.c.run_id).outerjoin(
                            exceptions, exceptions.c.id == mismatches.c.exception_id
                        )
                    )
                    .where(runs.c.status == "completed", runs.c.started_at >= full.started_at)
                    .order_by(runs.c.started_at)
                )
            ).all()
        standing = {row.fingerprint: row for row in rows}  # the latest finding of each
        counts: dict[tuple[str, str, str, str], int] = {}
        for row in standing.values():
            status = _standing_status(row)
            if status is None:
                continue
            label = (row.kind, row.legal_entity, row.currency or "", status)
            counts[label] = counts.get(label, 0) + 1
        return counts


def _standing_status(row: Any) -> MismatchStatus | None:
    """What a finding is now: repaired, explained by a person, open, or (None) fixed since."""
    if row.status == "repaired":
        return "repaired"
    if row.exception_status == "resolved":
        fixed = (row.resolution or "").startswith(NO_LONGER_FOUND)
        return None if fixed else "explained"
    return "open"


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
        sa.select(mismatches, exceptions.c.status.label("exception_status"))
        .select_from(mismatches.outerjoin(exceptions, exceptions.c.id == mismatches.c.exception_id))
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
    watermark = as_utc(row.watermark)
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
        incremental=watermark is not None,
        since=watermark - timedelta(seconds=row.settle_seconds) if watermark else None,
    )


def exception_step(fingerprint: str) -> str:
    """The exception's step: the mismatch's fingerprint (hashed to fit when long)."""
    if len(fingerprint) <= _STEP_LENGTH:
        return fingerprint
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:24]
    return f"{fingerprint[: _STEP_LENGTH - 25]}#{digest}"


async def _exception_for(conn: Any, run_id: str, finding: Finding, now: datetime) -> str:
    """The exception of this occurrence of the mismatch: the last one's unless it was
    repaired (then the drift is back: a new exception)."""
    previous = (
        await conn.execute(
            sa.select(mismatches.c.exception_id, mismatches.c.status, exceptions.c.status)
            .select_from(
                mismatches.outerjoin(exceptions, exceptions.c.id == mismatches.c.exception_id)
            )
            .where(
                mismatches.c.fingerprint == finding.fingerprint,
                mismatches.c.exception_id.is_not(None),
            )
            .order_by(mismatches.c.created_at.desc())
            .limit(1)
        )
    ).first()
    if previous is not None and previous[1] != "repaired":
        exception_id: str = previous[0]
        if previous[2] == "retrying":
            # An operator asked to check again: it is still there.
            row = (
                await conn.execute(
                    sa.select(exceptions.c.flow_id, exceptions.c.step).where(
                        exceptions.c.id == exception_id
                    )
                )
            ).one()
            await _open(conn, row.flow_id, row.step, finding, now)
        return exception_id
    return await _open(conn, run_id, exception_step(finding.fingerprint), finding, now)


async def _open(conn: Any, flow_id: str, step: str, finding: Finding, now: datetime) -> str:
    owner, system = OWNERS[finding.kind]
    opened, _ = await open_exception(
        conn,
        exception_id=new_exception_id(),
        flow_id=flow_id,
        flow_type="reconciliation",
        step=step,
        step_ref=STEP_REF,
        system=system,
        owner=owner,
        error_class="BooksDisagree",
        cause=finding.reason,
        input_json=None,
        legal_entity=finding.legal_entity,
        now=now,
    )
    return opened


async def _close_gone(
    conn: Any,
    run_id: str,
    found: set[str],
    *,
    kinds: Collection[str],
    entities: Collection[str] | None,
    checked: Mapping[str, Collection[str]] | None,
    now: datetime,
) -> None:
    """Close the exceptions of mismatches of these kinds and entities this run did not find;
    with `checked` (a partial run), only those whose record (kind and key) it compared."""
    statement = (
        sa.select(
            mismatches.c.exception_id,
            mismatches.c.fingerprint,
            mismatches.c.kind,
            mismatches.c.key,
        )
        .select_from(mismatches.join(exceptions, exceptions.c.id == mismatches.c.exception_id))
        .where(
            exceptions.c.status.in_(("open", "retrying")),
            mismatches.c.kind.in_(sorted(kinds)),
        )
        .distinct()
    )
    if entities is not None:
        statement = statement.where(mismatches.c.legal_entity.in_(sorted(entities)))
    compared = {kind: set(keys) for kind, keys in (checked or {}).items()}
    for exception_id, fingerprint, kind, key in (await conn.execute(statement)).all():
        if checked is not None and key not in compared.get(kind, ()):
            continue
        if fingerprint not in found:
            await close_exception(
                conn, exception_id, now=now, resolution=f"{NO_LONGER_FOUND}{run_id}"
            )
