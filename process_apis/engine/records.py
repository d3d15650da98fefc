"""Flow and step records: the writes the engine makes to record what a flow is and did, and
`FlowReader`, which reads them back as the flow resource (`process_apis.flows`).

Writes take an `Executor` (a connection, or a datasource transaction's session) so the engine
can run them exactly once inside DBOS transactions, or as keyed upserts inside a step. Reads
go through `FlowReader`, which filters by the caller's legal entities and pages by cursor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.principal import Principal
from contracts.v1 import Page
from process_apis.engine._batches import Write
from process_apis.engine.store import (
    Executor,
    as_utc,
    decode_cursor,
    encode_cursor,
    flow_steps,
    flows,
    insert_for,
)
from process_apis.flows import Flow, FlowStatus, FlowStep, StepStatus

__all__ = [
    "FlowMeta",
    "FlowQuery",
    "FlowReader",
    "UnfinishedFlow",
    "create_flow",
    "fail_unfinished",
    "flow_ended",
    "read_flow_meta",
    "record_attempt",
    "record_step_outcome",
    "set_flow_status",
    "start_running",
    "step_ended",
    "unfinished_flows",
]

UNFINISHED: tuple[FlowStatus, ...] = ("pending", "running", "waiting_approval", "waiting")
"""Statuses of a flow whose workflow should still be running or waiting."""


class FlowMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What a running flow needs to know about itself (recorded once, replayed on recovery)."""

    id: str
    type: str
    correlation_id: str | None = None
    crm_account: str | None = None
    legal_entity: str | None = None


class FlowQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of `GET /process/v1/flows`; every given filter must match."""

    type: str | None = None
    status: FlowStatus | None = None
    correlation_id: str | None = None
    business_key: str | None = None
    crm_account: str | None = None
    since: datetime | None = None
    """Created at or after."""
    until: datetime | None = None
    """Created before."""
    cursor: str | None = None
    limit: int = 50


_CREATE_FLOW = sa.text(
    """
    INSERT INTO flows (id, flow_type, business_key, status, correlation_id, crm_account,
                       legal_entity, caused_by, created_at, updated_at)
    VALUES (:id, :flow_type, :id, 'pending', :correlation_id, :crm_account, :legal_entity,
            :caused_by, :now, :now)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
).bindparams(sa.bindparam("now", type_=flows.c.created_at.type))
"""Every flow's start, so built once (see `_STEP_ENDED`)."""


async def create_flow(
    executor: Executor,
    *,
    flow_id: str,
    flow_type: str,
    correlation_id: str | None,
    crm_account: str | None,
    legal_entity: str | None,
    now: datetime,
    caused_by: str | None = None,
) -> bool:
    """Record a new pending flow; False when the flow already exists (a duplicate start)."""
    result = await executor.execute(
        _CREATE_FLOW,
        {
            "id": flow_id,
            "flow_type": flow_type,
            "correlation_id": correlation_id,
            "crm_account": crm_account,
            "legal_entity": legal_entity,
            "caused_by": caused_by,
            "now": now,
        },
    )
    # RETURNING rather than rowcount: drivers disagree on rowcount after DO NOTHING.
    return result.first() is not None


async def read_flow_meta(executor: Executor, flow_id: str) -> FlowMeta | None:
    row = (
        await executor.execute(
            sa.select(
                flows.c.id,
                flows.c.flow_type,
                flows.c.correlation_id,
                flows.c.crm_account,
                flows.c.legal_entity,
            ).where(flows.c.id == flow_id)
        )
    ).first()
    if row is None:
        return None
    return FlowMeta(
        id=row.id,
        type=row.flow_type,
        correlation_id=row.correlation_id,
        crm_account=row.crm_account,
        legal_entity=row.legal_entity,
    )


async def set_flow_status(
    executor: Executor,
    flow_id: str,
    status: FlowStatus,
    *,
    now: datetime,
    reason: str | None = None,
) -> None:
    await executor.execute(
        sa.update(flows)
        .where(flows.c.id == flow_id)
        .values(status=status, reason=reason, updated_at=now)
    )


class UnfinishedFlow(msgspec.Struct, frozen=True, kw_only=True):
    """A flow record not (yet) ended, as the engine checks it against its workflow."""

    id: str
    status: FlowStatus
    created_at: datetime


async def unfinished_flows(
    executor: Executor, *, flow_ids: list[str] | None = None
) -> list[UnfinishedFlow]:
    """Flow records still pending, running or waiting (of `flow_ids` when given)."""
    statement = sa.select(flows.c.id, flows.c.status, flows.c.created_at).where(
        flows.c.status.in_(UNFINISHED)
    )
    if flow_ids is not None:
        statement = statement.where(flows.c.id.in_(flow_ids))
    rows = await executor.execute(statement.order_by(flows.c.created_at))
    found = []
    for row in rows:
        created_at = as_utc(row.created_at)
        assert created_at is not None
        found.append(UnfinishedFlow(id=row.id, status=row.status, created_at=created_at))
    return found


async def fail_unfinished(executor: Executor, flow_id: str, *, reason: str, now: datetime) -> bool:
    """End a flow `failed` with `reason`, unless it ended meanwhile; True when it did."""
    result = await executor.execute(
        sa.update(flows)
        .where(flows.c.id == flow_id, flows.c.status.in_(UNFINISHED))
        .values(status="failed", reason=reason, updated_at=now)
        .returning(flows.c.id)
    )
    return result.first() is not None


_START_PENDING = sa.text(
    """
    UPDATE flows SET status = 'running', reason = NULL, updated_at = :now
    WHERE id = :flow_id AND status = 'pending'
    RETURNING id, flow_type, correlation_id, crm_account, legal_entity
    """
).bindparams(sa.bindparam("now", type_=flows.c.updated_at.type))
"""Run as every flow starts, so built once (see `_STEP_ENDED`)."""

_FLOW_META = sa.text(
    "SELECT id, flow_type, correlation_id, crm_account, legal_entity FROM flows WHERE id = :flow_id"
)

_FLOW_ENDED = sa.text(
    "UPDATE flows SET status = :status, reason = :reason, updated_at = :now WHERE id = :flow_id"
).bindparams(sa.bindparam("now", type_=flows.c.updated_at.type))


async def start_running(
    executor: Executor, flow_id: str, flow_type: str, *, now: datetime
) -> FlowMeta:
    """The flow's body starts: a `pending` record becomes `running`, and what the flow needs
    to know about itself comes back, in one statement. Run again as a recovered flow replays
    (it is not a checkpointed step), it leaves the record's status as the flow left it
    (`waiting_approval`, `failed` on an open exception, ...) and only reads it. A flow started
    without `FlowEngine.start` is recorded here."""
    row = (await executor.execute(_START_PENDING, {"flow_id": flow_id, "now": now})).first()
    if row is None:
        row = (await executor.execute(_FLOW_META, {"flow_id": flow_id})).first()
    if row is not None:
        return FlowMeta(
            id=row.id,
            type=row.flow_type,
            correlation_id=row.correlation_id,
            crm_account=row.crm_account,
            legal_entity=row.legal_entity,
        )
    await create_flow(
        executor,
        flow_id=flow_id,
        flow_type=flow_type,
        correlation_id=None,
        crm_account=None,
        legal_entity=None,
        now=now,
    )
    await set_flow_status(executor, flow_id, "running", now=now)
    return FlowMeta(id=flow_id, type=flow_type)


def flow_ended(
    flow_id: str, status: FlowStatus, *, now: datetime, reason: str | None = None
) -> Write:
    """The flow's end (`succeeded`, ...) as a write for `BatchWriter`: idempotent, so it may
    run again should the flow be replayed before DBOS records it finished."""
    return _FLOW_ENDED, {"flow_id": flow_id, "status": status, "reason": reason, "now": now}


async def record_attempt(
    executor: Executor,
    flow_id: str,
    step: str,
    *,
    system: str,
    position: int,
    now: datetime,
    started_at: datetime | None = None,
) -> None:
    """One more attempt of `step` is running: an upsert keyed by (flow, step), so the record
    stays one row however often the step runs (retries, replays after a crash, operator
    retries). `started_at` (default `now`) counts only for the step's first record."""
    statement = insert_for(executor, flow_steps).values(
        flow_id=flow_id,
        name=step,
        position=position,
        system=system,
        status="running",
        attempts=1,
        started_at=started_at or now,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[flow_steps.c.flow_id, flow_steps.c.name],
        set_={
            "status": "running",
            "attempts": flow_steps.c.attempts + 1,
            "finished_at": None,
        },
    )
    await executor.execute(statement)


_STEP_ENDED = sa.text(
    """
    INSERT INTO flow_steps (flow_id, name, position, system, status, attempts, started_at,
                            finished_at, error, external_ids)
    VALUES (:flow_id, :name, :position, :system, :status, 1, :started_at, :finished_at,
            :error, :external_ids)
    ON CONFLICT (flow_id, name) DO UPDATE SET
        status = excluded.status,
        error = excluded.error,
        finished_at = excluded.finished_at,
        attempts = flow_steps.attempts + :counted,
        external_ids = COALESCE(excluded.external_ids, flow_steps.external_ids)
    """
).bindparams(
    sa.bindparam("started_at", type_=flow_steps.c.started_at.type),
    sa.bindparam("finished_at", type_=flow_steps.c.finished_at.type),
)
"""Written once for every step attempt of every flow, so built once: building the same upsert
with `insert().values().on_conflict_do_update()` on each call cost more CPU than running it.
The same text serves PostgreSQL and SQLite (both have `ON CONFLICT ... excluded`)."""


def step_ended(
    flow_id: str,
    step: str,
    *,
    system: str,
    position: int,
    started_at: datetime,
    status: StepStatus,
    attempt_recorded: bool,
    now: datetime,
    error: str | None = None,
    external_ids: dict[str, str] | None = None,
) -> Write:
    """An attempt of `step` ended, as a write for `BatchWriter`: the attempt and its outcome
    in one upsert keyed by (flow, step). `attempt_recorded`: `record_attempt` already counted
    this attempt (it ran long enough to be shown running), so it is not counted again. A
    failed attempt that will be retried stays `running`, with its error."""
    return _STEP_ENDED, {
        "flow_id": flow_id,
        "name": step,
        "position": position,
        "system": system,
        "status": status,
        "started_at": started_at,
        "finished_at": None if status == "running" else now,
        "error": error,
        "external_ids": (msgspec.json.encode(external_ids).decode() if external_ids else None),
        "counted": 0 if attempt_recorded else 1,
    }


async def record_step_outcome(
    executor: Executor,
    flow_id: str,
    step: str,
    *,
    status: StepStatus,
    now: datetime,
    error: str | None = None,
    external_ids: dict[str, str] | None = None,
) -> None:
    values: dict[str, object] = {"status": status, "error": error}
    if status != "running":
        values["finished_at"] = now
    if external_ids:
        values["external_ids"] = msgspec.json.encode(external_ids).decode()
    await executor.execute(
        sa.update(flow_steps)
        .where(flow_steps.c.flow_id == flow_id, flow_steps.c.name == step)
        .values(**values)
    )


_FLOW_BY_ID = sa.text(f"SELECT {', '.join(flows.c.keys())} FROM flows WHERE id = :flow_id").columns(
    *flows.c
)
"""Read for every booking's answer and every poll of a flow, so built once (typed columns:
SQLite returns timestamps as text otherwise)."""

_STEPS_OF_FLOW = sa.text(
    f"SELECT {', '.join(flow_steps.c.keys())} FROM flow_steps WHERE flow_id = :flow_id "
    "ORDER BY position"
).columns(*flow_steps.c)


class FlowReader:
    """Reads flows for the flow resource (`GET /process/v1/flows...`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, flow_id: str, *, principal: Principal | None = None) -> Flow | None:
        """The flow with its steps; None when unknown or not visible to `principal`."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_FLOW_BY_ID, {"flow_id": flow_id})).first()
            if row is None:
                return None
            if principal is not None and not principal.may_see_entity(row.legal_entity):
                return None
            steps = await conn.execute(_STEPS_OF_FLOW, {"flow_id": flow_id})
            return _flow(row, [_step(step) for step in steps])

    async def list(self, query: FlowQuery, *, principal: Principal) -> Page[Flow]:
        """Newest first; `next_cursor` continues after the last flow of this page."""
        statement = sa.select(flows).where(*_filters(query, principal))
        if query.cursor:
            created_at, last_id = decode_cursor(query.cursor, list_name="process:flows")
            statement = statement.where(
                sa.or_(
                    flows.c.created_at < created_at,
                    sa.and_(flows.c.created_at == created_at, flows.c.id < last_id),
                )
            )
        statement = statement.order_by(flows.c.created_at.desc(), flows.c.id.desc())
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement.limit(query.limit + 1))).all()
            page = rows[: query.limit]
            steps = await _steps_of(conn, [row.id for row in page])
        data = [_flow(row, steps.get(row.id, [])) for row in page]
        cursor = None
        if len(rows) > len(page):
            cursor = encode_cursor(page[-1].created_at, page[-1].id, list_name="process:flows")
        return Page[Flow](data=data, next_cursor=cursor)


def _filters(query: FlowQuery, principal: Principal) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    for column, value in (
        (flows.c.flow_type, query.type),
        (flows.c.status, query.status),
        (flows.c.correlation_id, query.correlation_id),
        (flows.c.business_key, query.business_key),
        (flows.c.crm_account, query.crm_account),
    ):
        if value is not None:
            conditions.append(column == value)
    if query.since is not None:
        conditions.append(flows.c.created_at >= as_utc(query.since))
    if query.until is not None:
        conditions.append(flows.c.created_at < as_utc(query.until))
    # The same rule as `Principal.may_see_entity`, in SQL, so pages stay full.
    if principal.entities is not None:
        conditions.append(flows.c.legal_entity.in_(sorted(principal.entities)))
    return conditions


async def _steps_of(conn: Executor, flow_ids: list[str]) -> dict[str, list[FlowStep]]:
    if not flow_ids:
        return {}
    rows = await conn.execute(
        sa.select(flow_steps)
        .where(flow_steps.c.flow_id.in_(flow_ids))
        .order_by(flow_steps.c.flow_id, flow_steps.c.position)
    )
    steps: dict[str, list[FlowStep]] = {}
    for row in rows:
        steps.setdefault(row.flow_id, []).append(_step(row))
    return steps


def _step(row: sa.Row[Any]) -> FlowStep:
    return FlowStep(
        name=row.name,
        system=row.system,
        status=row.status,
        attempts=row.attempts,
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        error=row.error,
        external_ids=(
            msgspec.json.decode(row.external_ids, type=dict[str, str]) if row.external_ids else {}
        ),
    )


def _flow(row: sa.Row[tuple[object, ...]], steps: list[FlowStep]) -> Flow:
    mapping = row._mapping
    created_at = as_utc(mapping["created_at"])
    updated_at = as_utc(mapping["updated_at"])
    assert created_at is not None and updated_at is not None
    return Flow(
        id=mapping["id"],
        type=mapping["flow_type"],
        business_key=mapping["business_key"],
        status=mapping["status"],
        crm_account=mapping["crm_account"],
        legal_entity=mapping["legal_entity"],
        correlation_id=mapping["correlation_id"],
        caused_by=mapping["caused_by"],
        reason=mapping["reason"],
        created_at=created_at,
        updated_at=updated_at,
        steps=steps,
    )
