"""The exception queue: flows stopped at a step that needs a person, whose team owns it, and
what operators did about it (retry, edit-and-retry, assign, resolve), every action audited;
each kept as an `ExceptionEntry` (`process_apis.exceptions`).

The engine opens and closes exceptions inside its flows (exactly once, in DBOS datasource
transactions); `ExceptionQueue` is the operators' side, used by the routes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import (
    Conflict,
    NotFound,
    UpstreamAuthFailed,
    UpstreamUnavailable,
)
from contracts.principal import Principal
from contracts.v1 import Page
from process_apis.engine.records import FlowMeta, record_step_outcome, set_flow_status
from process_apis.engine.store import (
    Executor,
    as_utc,
    decode_cursor,
    encode_cursor,
    exception_history,
    exceptions,
    utcnow,
)
from process_apis.exceptions import ExceptionEntry, ExceptionStatus, HistoryEntry, OwnerTeam

__all__ = [
    "ExceptionQueue",
    "close_exception",
    "new_exception_id",
    "open_exception",
    "owner_for",
    "stop_at_step",
]

SYSTEM_ACTOR = "system"

_ERP_SYSTEMS = frozenset({"netsuite", "erp"})
_SUPPORT_SYSTEMS = frozenset({"zendesk", "support"})
_FINANCE_WORDS = ("credit", "journal", "posting", "refund")
_REVENUE_WORDS = ("price", "pricing", "catalog", "product", "discount")


def owner_for(system: str, step: str, error_class: type[BaseException]) -> OwnerTeam:
    """The team that owns a failure of `step` on `system`.

    Our own access or an outage is the integration team's whatever the step; then the ERP and
    money movements (postings, credits) are finance's, pricing and catalog revenue ops',
    support sync support ops'. Anything else lands with integration.
    """
    name = step.lower()
    if issubclass(error_class, UpstreamAuthFailed | UpstreamUnavailable):
        return "integration"
    if system.lower() in _ERP_SYSTEMS or any(word in name for word in _FINANCE_WORDS):
        return "finance"
    if any(word in name for word in _REVENUE_WORDS):
        return "revenue_ops"
    if system.lower() in _SUPPORT_SYSTEMS:
        return "support_ops"
    return "integration"


def new_exception_id() -> str:
    return uuid.uuid4().hex


async def open_exception(
    executor: Executor,
    *,
    exception_id: str,
    flow_id: str,
    flow_type: str,
    step: str,
    step_ref: str,
    system: str,
    owner: OwnerTeam,
    error_class: str,
    cause: str,
    input_json: str | None,
    legal_entity: str | None,
    now: datetime,
) -> tuple[str, int]:
    """Open an exception for (flow, step), or reopen the one a retry of it left.

    Returns its id and occurrence (1 when new): a decision answers one occurrence.
    """
    existing = (
        await executor.execute(
            sa.select(exceptions.c.id, exceptions.c.occurrences).where(
                exceptions.c.flow_id == flow_id, exceptions.c.step == step
            )
        )
    ).first()
    if existing is None:
        await executor.execute(
            sa.insert(exceptions).values(
                id=exception_id,
                flow_id=flow_id,
                flow_type=flow_type,
                step=step,
                step_ref=step_ref,
                system=system,
                owner=owner,
                status="open",
                error_class=error_class,
                cause=cause,
                input=input_json,
                legal_entity=legal_entity,
                occurrences=1,
                created_at=now,
                updated_at=now,
            )
        )
        action, occurrence = "opened", 1
    else:
        exception_id = existing.id
        await executor.execute(
            sa.update(exceptions)
            .where(exceptions.c.id == exception_id)
            .values(
                status="open",
                owner=owner,
                error_class=error_class,
                cause=cause,
                input=input_json,
                occurrences=exceptions.c.occurrences + 1,
                resolution=None,
                updated_at=now,
            )
        )
        action, occurrence = "reopened", existing.occurrences + 1
    await _audit(executor, exception_id, SYSTEM_ACTOR, action, cause, now)
    return exception_id, occurrence


async def stop_at_step(
    executor: Executor,
    meta: FlowMeta,
    *,
    step: str,
    step_ref: str,
    system: str,
    owner: OwnerTeam,
    error_class: str,
    cause: str,
    input_json: str | None,
    now: datetime,
) -> tuple[str, int]:
    """A step failed for good: the step and its flow are `failed` and an exception is open
    for the owner team. Returns what `open_exception` returns."""
    await record_step_outcome(executor, meta.id, step, status="failed", now=now, error=cause)
    await set_flow_status(executor, meta.id, "failed", now=now, reason=cause)
    return await open_exception(
        executor,
        exception_id=new_exception_id(),
        flow_id=meta.id,
        flow_type=meta.type,
        step=step,
        step_ref=step_ref,
        system=system,
        owner=owner,
        error_class=error_class,
        cause=cause,
        input_json=input_json,
        legal_entity=meta.legal_entity,
        now=now,
    )


async def close_exception(
    executor: Executor,
    exception_id: str,
    *,
    now: datetime,
    resolution: str = "retried step succeeded",
) -> str:
    """The retried step went through: the exception is resolved by the flow itself."""
    await executor.execute(
        sa.update(exceptions)
        .where(exceptions.c.id == exception_id)
        .values(status="resolved", resolution=resolution, updated_at=now)
    )
    await _audit(executor, exception_id, SYSTEM_ACTOR, "closed", resolution, now)
    return exception_id


class ExceptionQueue:
    """The operators' side of the queue: list, assign, claim a retry, resolve; each audited
    in `exception_history` and counted in `erpgw_exception_actions_total`."""

    def __init__(self, engine: AsyncEngine, *, registry: CollectorRegistry | None = None) -> None:
        self._engine = engine
        self._actions = Counter(
            "erpgw_exception_actions_total",
            "Operator actions on the exception queue, by action and owner team",
            ("action", "owner"),
            registry=registry,
        )

    async def list(
        self,
        *,
        principal: Principal,
        owner: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[ExceptionEntry]:
        """Oldest first (the queue's order of work)."""
        statement = sa.select(exceptions)
        if owner is not None:
            statement = statement.where(exceptions.c.owner == owner)
        if status is not None:
            statement = statement.where(exceptions.c.status == status)
        if principal.entities is not None:
            statement = statement.where(exceptions.c.legal_entity.in_(sorted(principal.entities)))
        if cursor:
            created_at, last_id = decode_cursor(cursor, list_name="process:exceptions")
            statement = statement.where(
                sa.or_(
                    exceptions.c.created_at > created_at,
                    sa.and_(exceptions.c.created_at == created_at, exceptions.c.id > last_id),
                )
            )
        statement = statement.order_by(exceptions.c.created_at, exceptions.c.id).limit(limit + 1)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        page = [_entry(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(last.created_at, last.id, list_name="process:exceptions")
        return Page[ExceptionEntry](data=page, next_cursor=next_cursor)

    async def get(self, exception_id: str, *, principal: Principal) -> ExceptionEntry:
        """The exception with its history; NotFound when unknown or not visible."""
        async with self._engine.connect() as conn:
            return await _visible(conn, exception_id, principal, with_history=True)

    async def assign(
        self, exception_id: str, *, assignee: str, principal: Principal
    ) -> ExceptionEntry:
        async with self._engine.begin() as conn:
            entry = await _visible(conn, exception_id, principal)
            now = utcnow()
            await conn.execute(
                sa.update(exceptions)
                .where(exceptions.c.id == exception_id)
                .values(assignee=assignee, updated_at=now)
            )
            await _audit(conn, exception_id, principal.actor_name, "assigned", assignee, now)
        self._actions.labels("assign", entry.owner).inc()
        return await self.get(exception_id, principal=principal)

    async def claim_retry(
        self, exception_id: str, *, principal: Principal, edited_input: str | None
    ) -> ExceptionEntry:
        """Move an open exception to `retrying` (only one operator wins a double click)."""
        detail = "edited input: " + edited_input if edited_input is not None else "same input"
        entry = await self._transition(
            exception_id, principal, to="retrying", action="retry", detail=detail
        )
        self._actions.labels("retry", entry.owner).inc()
        return entry

    async def release(self, exception_id: str) -> None:
        """Reopen an exception whose retry or resolve could not reach its flow."""
        async with self._engine.begin() as conn:
            now = utcnow()
            await conn.execute(
                sa.update(exceptions)
                .where(exceptions.c.id == exception_id, exceptions.c.status != "open")
                .values(status="open", resolution=None, updated_at=now)
            )
            await _audit(conn, exception_id, SYSTEM_ACTOR, "decision_undelivered", None, now)

    async def resolve(
        self, exception_id: str, *, reason: str, principal: Principal
    ) -> ExceptionEntry:
        """Close an open exception by hand: its flow ends `cancelled` with `reason`."""
        entry = await self._transition(
            exception_id,
            principal,
            to="resolved",
            action="resolve",
            detail=reason,
            resolution=reason,
        )
        self._actions.labels("resolve", entry.owner).inc()
        return entry

    async def _transition(
        self,
        exception_id: str,
        principal: Principal,
        *,
        to: ExceptionStatus,
        action: str,
        detail: str,
        resolution: str | None = None,
    ) -> ExceptionEntry:
        async with self._engine.begin() as conn:
            entry = await _visible(conn, exception_id, principal)
            now = utcnow()
            values: dict[str, Any] = {"status": to, "updated_at": now}
            if resolution is not None:
                values["resolution"] = resolution
            result = await conn.execute(
                sa.update(exceptions)
                .where(exceptions.c.id == exception_id, exceptions.c.status == "open")
                .values(**values)
            )
            if not result.rowcount:
                raise Conflict(
                    f"Exception {exception_id} is {entry.status}; only an open exception "
                    "can be retried or resolved",
                    code="exception_not_open",
                )
            await _audit(conn, exception_id, principal.actor_name, action, detail, now)
        return msgspec.structs.replace(entry, status=to, updated_at=now)


async def _visible(
    conn: Executor, exception_id: str, principal: Principal, *, with_history: bool = False
) -> ExceptionEntry:
    row = (
        await conn.execute(sa.select(exceptions).where(exceptions.c.id == exception_id))
    ).first()
    if row is None or not principal.may_see_entity(row.legal_entity):
        raise NotFound(f"No exception {exception_id}")
    history = None
    if with_history:
        rows = await conn.execute(
            sa.select(exception_history)
            .where(exception_history.c.exception_id == exception_id)
            .order_by(exception_history.c.id)
        )
        history = [
            HistoryEntry(
                at=as_utc(item.at) or item.at,
                actor=item.actor,
                action=item.action,
                detail=item.detail,
            )
            for item in rows
        ]
    return _entry(row, history)


async def _audit(
    executor: Executor,
    exception_id: str,
    actor: str,
    action: str,
    detail: str | None,
    now: datetime,
) -> None:
    await executor.execute(
        sa.insert(exception_history).values(
            exception_id=exception_id, at=now, actor=actor, action=action, detail=detail
        )
    )


def _entry(row: sa.Row[Any], history: list[HistoryEntry] | None = None) -> ExceptionEntry:
    mapping = row._mapping
    created_at = as_utc(mapping["created_at"])
    updated_at = as_utc(mapping["updated_at"])
    assert created_at is not None and updated_at is not None
    return ExceptionEntry(
        id=mapping["id"],
        flow_id=mapping["flow_id"],
        flow_type=mapping["flow_type"],
        step=mapping["step"],
        step_ref=mapping["step_ref"],
        system=mapping["system"],
        owner=mapping["owner"],
        status=mapping["status"],
        error_class=mapping["error_class"],
        cause=mapping["cause"],
        input=msgspec.json.decode(mapping["input"]) if mapping["input"] else None,
        assignee=mapping["assignee"],
        legal_entity=mapping["legal_entity"],
        occurrences=mapping["occurrences"],
        resolution=mapping["resolution"],
        created_at=created_at,
        updated_at=updated_at,
        history=history,
    )
