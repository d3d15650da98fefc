"""The audit trail: one append-only, hash-chained record per governed operation.

Each record carries the SHA-256 of the one before it (`prev_hash`) and its own `hash` over its
fields and `prev_hash`, so changing, removing or inserting a record breaks the chain at that
record; `erp-gateway audit verify` walks it (`AuditLog.verify`). Appenders are serialized on the
chain's one-row head (`audit_head`): an append's first statement updates it, which takes the
row lock on PostgreSQL (every replica waits its turn) and the write lock on SQLite, so each
record is chained to the one committed before it and `seq` has no gaps.

Pruning (`ERPGW_AUDIT_RETENTION_DAYS`) removes the oldest records and moves the head's anchor
to the last removed record's seq and hash: `verify` starts there, so the chain stays checkable
and a removal of records past the anchor still shows.

`GET /gateway/v1/audit` lists records (scope `audit:read`) of the caller's legal entities,
newest first, in pages with sealed cursors; records of no legal entity (clients, keys,
sign-ins) only for callers of every entity.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
import structlog
from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.audit import AuditActor, AuditEvent, AuditQuery, AuditRecord, AuditTarget
from contracts.context import current_context
from contracts.errors import InvalidRequest
from contracts.principal import Principal
from contracts.v1 import Page
from gateway.storage import audit_head, audit_log
from system_apis.outbound import CursorSeal
from system_apis.params import DEFAULT_LIMIT, Instant, PageCursor, PageLimit, instant
from system_apis.visibility import caller

__all__ = ["GENESIS", "AuditLog", "ChainReport", "audit_router", "keep_pruning"]

GENESIS = "0" * 64
"""The `prev_hash` of the first record ever."""
PRUNE_EVERY_SECONDS = 3600.0
_HEAD = 1
_LIST_NAME = "gateway:audit"
_VERIFY_BATCH = 1000

log = structlog.get_logger("gateway.audit")


@dataclass(frozen=True)
class ChainReport:
    """What `verify` found: how many records it checked, and the first bad one (if any)."""

    checked: int
    first_bad: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad is None


class AuditLog:
    """The audit trail in the app database (`AuditTrail` of `contracts.audit`)."""

    def __init__(
        self, engine: AsyncEngine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._engine = engine
        self._clock = clock
        # One append at a time in this process: the head serializes them anyway, and a writer
        # waiting on SQLite's lock sleeps in its busy handler (bench/audit_append.py).
        self._turn = asyncio.Lock()

    async def record(self, event: AuditEvent) -> AuditRecord:
        """Append `event` as the next record of the chain (its own transaction)."""
        correlation_id = event.correlation_id or current_context().correlation_id
        async with self._turn, self._engine.begin() as conn:
            # First statement of the transaction: takes the head's lock before anything is read.
            head = (
                await conn.execute(
                    sa.update(audit_head)
                    .where(audit_head.c.id == _HEAD)
                    .values(seq=audit_head.c.seq + 1)
                    .returning(audit_head.c.seq, audit_head.c.hash)
                )
            ).one()
            row = _row_of(
                event,
                seq=head.seq,
                at=self._clock(),
                prev_hash=head.hash,
                correlation_id=correlation_id,
            )
            row["hash"] = chain_hash(row)
            await conn.execute(sa.insert(audit_log).values(**row))
            await conn.execute(
                sa.update(audit_head).where(audit_head.c.id == _HEAD).values(hash=row["hash"])
            )
        return _record_of(row)

    async def query(
        self, query: AuditQuery, *, principal: Principal, after_seq: int | None, limit: int
    ) -> list[AuditRecord]:
        """Records matching `query` of the legal entities `principal` may see, newest first,
        older than `after_seq` when given."""
        statement = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
        for condition in _conditions(query, principal):
            statement = statement.where(condition)
        if after_seq is not None:
            statement = statement.where(audit_log.c.seq < after_seq)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_record_of(dict(row)) for row in rows]

    async def verify(self) -> ChainReport:
        """Walk the chain from the pruning anchor to the head, recomputing every hash."""
        async with self._engine.connect() as conn:
            head = (await conn.execute(sa.select(audit_head).where(audit_head.c.id == _HEAD))).one()
            expected_seq, expected_prev = head.anchor_seq + 1, head.anchor_hash
            checked = 0
            async for row in _rows_from(conn, head.anchor_seq):
                problem = _problem(row, expected_seq, expected_prev)
                if problem is not None:
                    return ChainReport(checked=checked, first_bad=row["seq"], problem=problem)
                checked += 1
                expected_seq, expected_prev = row["seq"] + 1, row["hash"]
        if expected_seq - 1 != head.seq or expected_prev != head.hash:
            return ChainReport(
                checked=checked,
                first_bad=expected_seq,
                problem=f"records {expected_seq} to {head.seq} are missing from the chain",
            )
        return ChainReport(checked=checked)

    async def prune(self, *, older_than: timedelta) -> int:
        """Remove the records older than `older_than`; the anchor moves to the last removed."""
        cutoff = self._clock() - older_than
        async with self._engine.connect() as conn:  # most hours there is nothing to prune
            if await _last_before(conn, cutoff) is None:
                return 0
        async with self._turn, self._engine.begin() as conn:
            await conn.execute(  # the head's lock: no append interleaves with the prune
                sa.update(audit_head)
                .where(audit_head.c.id == _HEAD)
                .values(anchor_seq=audit_head.c.anchor_seq)
            )
            last = await _last_before(conn, cutoff)
            if last is None:
                return 0
            last_seq, last_hash = last
            removed = (
                await conn.execute(sa.delete(audit_log).where(audit_log.c.seq <= last_seq))
            ).rowcount
            await conn.execute(
                sa.update(audit_head)
                .where(audit_head.c.id == _HEAD)
                .values(anchor_seq=last_seq, anchor_hash=last_hash)
            )
        return int(removed or 0)


async def keep_pruning(audit: AuditLog, *, retention_days: int) -> None:
    """Prune the records past their retention every hour, until cancelled (the first time an
    hour after start: start-up is busy enough on the database)."""
    while True:
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
        try:
            removed = await audit.prune(older_than=timedelta(days=retention_days))
            if removed:
                log.info("audit_records_pruned", count=removed)
        except Exception as exc:
            log.warning("audit_prune_failed", error=str(exc))


def chain_hash(row: dict[str, Any]) -> str:
    """SHA-256 (hex) of a record's stored fields and its `prev_hash`, in a fixed order."""
    fields = [
        row["seq"],
        _utc(row["at"]).isoformat(timespec="microseconds"),
        row["actor_kind"],
        row["actor_id"],
        row["actor_name"],
        row["action"],
        row["target_system"],
        row["target_id"],
        row["legal_entity"],
        row["correlation_id"],
        row["before"],
        row["after"],
        row["detail"],
        row["prev_hash"],
    ]
    return hashlib.sha256(msgspec.json.encode(fields)).hexdigest()


# --- the route -------------------------------------------------------------------------------

Filter = Annotated[str | None, QueryParameter(min_length=1, max_length=300)]


@get(
    "/audit",
    opt={"scopes": ["audit:read"], "rate_limit_group": "ops"},
    summary="The audit trail of the caller's legal entities, newest first",
)
async def list_audit(
    request: Request[Any, Any, Any],
    audit: NamedDependency[AuditLog],
    cursor_seal: NamedDependency[CursorSeal],
    actor: Filter = None,
    target: Filter = None,
    action: Filter = None,
    since: Instant = None,
    until: Instant = None,
    cursor: PageCursor = None,
    limit: PageLimit = DEFAULT_LIMIT,
) -> Page[AuditRecord]:
    """`target` matches a target's bare id in any system; `actor` a client id, a person's
    subject or name, or a system actor's name."""
    principal = caller(request)
    query = AuditQuery(
        actor=actor,
        target=target,
        action=action,
        since=instant("since", since),
        until=instant("until", until),
    )
    list_name = f"{_LIST_NAME}:{msgspec.json.encode(query).decode()}"
    position = cursor_seal.open(cursor, caller=principal.client_id, list_name=list_name)
    after_seq = _position(position) if position is not None else None
    # One record more than the page tells whether another page exists: no cursor to an
    # empty page.
    found = await audit.query(query, principal=principal, after_seq=after_seq, limit=limit + 1)
    records = found[:limit]
    next_position = str(records[-1].seq) if len(found) > limit else None
    return Page(
        data=records,
        next_cursor=cursor_seal.seal(
            next_position, caller=principal.client_id, list_name=list_name
        ),
    )


def audit_router() -> Router:
    """`/gateway/v1/audit` (dependencies: `audit`, `cursor_seal`)."""
    return Router(path="/gateway/v1", route_handlers=[list_audit], tags=["gateway"])


# --- helpers ---------------------------------------------------------------------------------


def _row_of(
    event: AuditEvent, *, seq: int, at: datetime, prev_hash: str, correlation_id: str | None
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at,
        "actor_kind": event.actor.kind,
        "actor_id": event.actor.id[:200],
        "actor_name": event.actor.name[:200] if event.actor.name else None,
        "action": event.action[:64],
        "target_system": event.target.system[:32],
        "target_id": event.target.id[:300],
        "legal_entity": event.legal_entity,
        "correlation_id": correlation_id[:128] if correlation_id else None,
        "before": _json(event.before),
        "after": _json(event.after),
        "detail": _json(event.detail),
        "prev_hash": prev_hash,
    }


def _record_of(row: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"],
        at=_utc(row["at"]),
        actor=AuditActor(kind=row["actor_kind"], id=row["actor_id"], name=row["actor_name"]),
        action=row["action"],
        target=AuditTarget(system=row["target_system"], id=row["target_id"]),
        legal_entity=row["legal_entity"],
        correlation_id=row["correlation_id"],
        before=_decoded(row["before"]),
        after=_decoded(row["after"]),
        detail=_decoded(row["detail"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _conditions(query: AuditQuery, principal: Principal) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if principal.entities is not None:
        conditions.append(audit_log.c.legal_entity.in_(sorted(principal.entities)))
    if query.actor:
        conditions.append(
            sa.or_(audit_log.c.actor_id == query.actor, audit_log.c.actor_name == query.actor)
        )
    if query.target:
        # A flow's key names its business record (`q2c:006...`): the bare id finds it too.
        conditions.append(
            sa.or_(
                audit_log.c.target_id == query.target,
                audit_log.c.target_id.endswith(":" + query.target, autoescape=True),
            )
        )
    if query.action:
        conditions.append(audit_log.c.action == query.action)
    if query.since:
        conditions.append(audit_log.c.at >= query.since)
    if query.until:
        conditions.append(audit_log.c.at <= query.until)
    return conditions


async def _last_before(conn: AsyncConnection, cutoff: datetime) -> tuple[int, str] | None:
    """The seq and hash of the newest record written before `cutoff`, if any."""
    row = (
        await conn.execute(
            sa.select(audit_log.c.seq, audit_log.c.hash)
            .where(audit_log.c.at < cutoff)
            .order_by(audit_log.c.seq.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (int(row.seq), str(row.hash))


async def _rows_from(conn: AsyncConnection, anchor_seq: int) -> AsyncIterator[dict[str, Any]]:
    """Every record after `anchor_seq` in chain order, read in batches."""
    last = anchor_seq
    while True:
        rows = (
            (
                await conn.execute(
                    sa.select(audit_log)
                    .where(audit_log.c.seq > last)
                    .order_by(audit_log.c.seq)
                    .limit(_VERIFY_BATCH)
                )
            )
            .mappings()
            .all()
        )
        for row in rows:
            yield dict(row)
        if len(rows) < _VERIFY_BATCH:
            return
        last = rows[-1]["seq"]


def _problem(row: dict[str, Any], expected_seq: int, expected_prev: str) -> str | None:
    seq = row["seq"]
    if seq != expected_seq:
        return f"record {seq} follows record {expected_seq - 1}: records are missing"
    if row["prev_hash"] != expected_prev:
        return f"record {seq} does not carry the hash of record {seq - 1}"
    if chain_hash(row) != row["hash"]:
        return f"record {seq} was changed after it was written"
    return None


def _position(position: str) -> int:
    try:
        return int(position)
    except ValueError:
        raise InvalidRequest("The cursor is not valid", code="invalid_cursor") from None


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value, order="sorted").decode()


def _decoded(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    decoded: dict[str, Any] = msgspec.json.decode(value)
    return decoded


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
