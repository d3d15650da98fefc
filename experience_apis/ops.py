"""Operations views (`/experience/ops/v1`): a trace of everything that carried one correlation
id, in time order: the flows started under it and their steps, every vendor call attempt made
under it or by those flows, and the webhooks that fed those flows. A trace is found by its
correlation id or by a business key it touched (`?deal=`, `?invoice=`, `?customer=`,
`?subscription=`): the flows a deal causes (its invoices' postings, payment failures,
amendments) join the deal's trace, each naming the flow that caused it.

Vendor call attempts are read from the gateway's `vendor_calls` table, declared here read-only
(same columns as the gateway's definition; this layer never imports the gateway). A caller
limited to some legal entities sees only the flows of those entities, and vendor calls only
when they belong to such a flow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
from litestar import Response, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import FieldError, InvalidRequest, NotFound, ValidationFailed
from contracts.principal import Principal
from contracts.v1 import Page
from experience_apis._services import (
    AuthedRequest,
    ViewsDep,
    principal_of,
)
from experience_apis.compose import conditional_response
from process_apis.engine.store import as_utc, flow_steps, flows, trace_keys, webhook_inbox
from system_apis.params import PageLimit

__all__ = [
    "Trace",
    "TraceEvent",
    "TraceFlow",
    "TraceKey",
    "TraceReader",
    "TraceSummary",
    "create_router",
    "vendor_calls",
]

PREFIX = "/experience/ops/v1"
_OPT: dict[str, Any] = {"scopes": ["ops:read"], "rate_limit_group": "experience"}
MAX_EVENTS = 2000
CorrelationId = Annotated[str, PathParameter(min_length=1, max_length=128)]
KeyKind = Literal["deal", "invoice", "customer", "subscription"]
KEY_KINDS: tuple[KeyKind, ...] = ("deal", "invoice", "customer", "subscription")
_KeyParam = Annotated[
    str | None,
    QueryParameter(
        min_length=1, max_length=200, description="Find the trace that touched this record"
    ),
]

_metadata = sa.MetaData()
vendor_calls = sa.Table(
    "vendor_calls",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("path_template", sa.String(500), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("flow_id", sa.String(200), nullable=True),
    sa.Column("step", sa.String(100), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
)
"""The gateway's record of every vendor call attempt (read-only here)."""

EventKind = Literal["flow", "step", "vendor_call", "webhook"]


class TraceEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One thing that happened, placed in time; fields not relevant to its kind are absent."""

    kind: EventKind
    at: datetime
    system: str
    """The platform (salesforce, stripe, zendesk, netsuite) or `gateway`."""
    flow_id: str | None = None
    name: str | None = None
    """Flow type, step name, webhook event type."""
    status: str | None = None
    """Flow or step status, webhook processing status, or the vendor's HTTP status."""
    finished_at: datetime | None = None
    attempts: int | None = None
    method: str | None = None
    path_template: str | None = None
    latency_ms: float | None = None
    attempt: int | None = None
    error: str | None = None
    external_ids: dict[str, str] | None = None


class TraceFlow(msgspec.Struct, frozen=True, kw_only=True):
    """A flow of the trace and how it hangs together with the others."""

    id: str
    type: str
    status: str
    legal_entity: str | None = None
    created_at: datetime
    updated_at: datetime
    caused_by: str | None = None
    """The flow that made the record this one was started about."""
    caused: list[str] = []
    """The flows started about records this one made."""


class TraceKey(msgspec.Struct, frozen=True, kw_only=True):
    """The business key a trace was found by."""

    kind: KeyKind
    value: str


class Trace(msgspec.Struct, frozen=True, kw_only=True):
    correlation_id: str
    flow_ids: list[str]
    events: list[TraceEvent]
    flows: list[TraceFlow] = []
    """The flows in the order they started."""
    found_by: TraceKey | None = None
    other_traces: list[str] = []
    """Other traces that touched the key it was found by (a customer's other deals), newest
    first."""


class TraceSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """The correlation id."""
    flows: int
    last_at: datetime


class TraceReader:
    """Builds traces from the flows, steps, vendor call and webhook inbox tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def trace(self, correlation_id: str, principal: Principal) -> Trace | None:
        async with self._engine.connect() as conn:
            flow_rows = (
                await conn.execute(sa.select(flows).where(flows.c.correlation_id == correlation_id))
            ).all()
            visible = [r for r in flow_rows if principal.may_see_entity(r.legal_entity)]
            flow_ids = [row.id for row in visible]
            steps = (
                await conn.execute(sa.select(flow_steps).where(flow_steps.c.flow_id.in_(flow_ids)))
            ).all()
            calls = (await conn.execute(_calls_query(correlation_id, flow_ids, principal))).all()
            hooks = (
                await conn.execute(
                    sa.select(webhook_inbox).where(webhook_inbox.c.flow_id.in_(flow_ids))
                )
            ).all()
        if not visible and not calls:
            return None
        events = [
            *(_flow_event(row) for row in visible),
            *(_step_event(row) for row in steps),
            *(_call_event(row) for row in calls),
            *(_hook_event(row) for row in hooks),
        ]
        events.sort(key=lambda event: (event.at, _ORDER[event.kind]))
        return Trace(
            correlation_id=correlation_id,
            flow_ids=sorted(flow_ids),
            events=events,
            flows=_trace_flows(visible),
        )

    async def traces_of(self, kind: str, value: str, principal: Principal) -> list[str]:
        """The correlation ids of the traces that touched record `value` (a deal, invoice,
        customer or subscription id) in the legal entities the caller may see, newest first."""
        statement = (
            sa.select(trace_keys.c.correlation_id, trace_keys.c.legal_entity)
            .where(trace_keys.c.kind == kind, trace_keys.c.value == value)
            .order_by(trace_keys.c.created_at.desc(), trace_keys.c.correlation_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        found = [row.correlation_id for row in rows if principal.may_see_entity(row.legal_entity)]
        return list(dict.fromkeys(found))

    async def trace_by_key(self, key: TraceKey, principal: Principal) -> Trace | None:
        """The newest trace that touched `key`'s record, as the caller may see it; None when
        none did."""
        traces = await self.traces_of(key.kind, key.value, principal)
        for correlation_id in traces:
            trace = await self.trace(correlation_id, principal)
            if trace is not None and trace.flows:
                others = [other for other in traces if other != correlation_id]
                return msgspec.structs.replace(trace, found_by=key, other_traces=others)
        return None

    async def recent(self, principal: Principal, limit: int) -> list[TraceSummary]:
        """The correlation ids of the latest flows the caller may see."""
        where = [flows.c.correlation_id.is_not(None)]
        if principal.entities is not None:
            where.append(flows.c.legal_entity.in_(sorted(principal.entities)))
        last = sa.func.max(flows.c.updated_at)
        statement = (
            sa.select(flows.c.correlation_id, sa.func.count().label("flows"), last.label("last"))
            .where(*where)
            .group_by(flows.c.correlation_id)
            .order_by(last.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            TraceSummary(id=row.correlation_id, flows=row.flows, last_at=_utc(row.last))
            for row in rows
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER: dict[str, int] = {"webhook": 0, "flow": 1, "step": 2, "vendor_call": 3}


@get(
    "/traces",
    opt=_OPT,
    summary="The trace of a deal, invoice, customer or subscription; else the latest traces",
    description=(
        "With exactly one of `deal`, `invoice`, `customer`, `subscription`: the newest trace "
        "that touched that record (404 when none the caller may see did). Without any: the "
        "correlation ids of the latest flows."
    ),
    responses={
        200: ResponseSpec(
            Trace | Page[TraceSummary],  # type: ignore[arg-type]
            description="The trace found by key, or the latest traces",
            generate_examples=False,
        ),
        304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    },
)
async def list_traces(
    request: AuthedRequest,
    views: ViewsDep,
    limit: PageLimit = 20,
    deal: _KeyParam = None,
    invoice: _KeyParam = None,
    customer: _KeyParam = None,
    subscription: _KeyParam = None,
) -> Response[bytes]:
    reader = TraceReader(views.process.engine)
    principal = principal_of(request)
    given = {
        kind: value
        for kind, value in zip(KEY_KINDS, (deal, invoice, customer, subscription), strict=True)
        if value is not None
    }
    for kind in KEY_KINDS:
        if len(request.query_params.getall(kind, [])) > 1:
            raise InvalidRequest(
                f"Give {kind} once", errors=[FieldError(pointer=kind, detail="repeated")]
            )
    if not given:
        return conditional_response(request, Page(data=await reader.recent(principal, limit)))
    if len(given) > 1:
        # As a malformed parameter is answered: 422, naming each parameter given.
        raise ValidationFailed(
            "Find a trace by one key: deal, invoice, customer or subscription",
            errors=[FieldError(pointer=kind, detail="give only one key") for kind in given],
        )
    ((kind, value),) = given.items()
    trace = await reader.trace_by_key(TraceKey(kind=kind, value=value), principal)
    if trace is None:
        raise NotFound(f"No trace touched {kind} {value}")
    return conditional_response(request, trace)


@get(
    "/traces/{correlation_id:str}",
    opt=_OPT,
    summary="Every flow, step, vendor call and webhook of one correlation id, in time order",
    responses={
        200: ResponseSpec(Trace, description="The trace", generate_examples=False),
        304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    },
)
async def get_trace(
    request: AuthedRequest, correlation_id: CorrelationId, views: ViewsDep
) -> Response[bytes]:
    trace = await TraceReader(views.process.engine).trace(correlation_id, principal_of(request))
    if trace is None:
        raise NotFound(f"Nothing carried correlation id {correlation_id}")
    return conditional_response(request, trace)


def create_router() -> Router:
    return Router(path=PREFIX, route_handlers=[list_traces, get_trace], tags=["ops"])


def _calls_query(correlation_id: str, flow_ids: list[str], principal: Principal) -> sa.Select[Any]:
    of_flows = vendor_calls.c.flow_id.in_(flow_ids)
    if principal.entities is None:
        match = sa.or_(vendor_calls.c.correlation_id == correlation_id, of_flows)
    else:
        # A call outside any flow has no legal entity: only unrestricted callers see it.
        match = of_flows
    return (
        sa.select(vendor_calls)
        .where(match)
        .order_by(vendor_calls.c.started_at, vendor_calls.c.id)
        .limit(MAX_EVENTS)
    )


def _trace_flows(rows: list[Any]) -> list[TraceFlow]:
    """The trace's flows in the order they started, each with the flows it caused (among
    those the caller may see)."""
    ordered = sorted(rows, key=lambda row: (_utc(row.created_at), row.id))
    caused: dict[str, list[str]] = {}
    for row in ordered:
        if row.caused_by:
            caused.setdefault(row.caused_by, []).append(row.id)
    return [
        TraceFlow(
            id=row.id,
            type=row.flow_type,
            status=row.status,
            legal_entity=row.legal_entity,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            caused_by=row.caused_by,
            caused=caused.get(row.id, []),
        )
        for row in ordered
    ]


def _flow_event(row: Any) -> TraceEvent:
    return TraceEvent(
        kind="flow",
        at=_utc(row.created_at),
        system="gateway",
        flow_id=row.id,
        name=row.flow_type,
        status=row.status,
        finished_at=_utc(row.updated_at) if row.status in ("succeeded", "cancelled") else None,
        error=row.reason,
    )


def _step_event(row: Any) -> TraceEvent:
    return TraceEvent(
        kind="step",
        at=as_utc(row.started_at) or _EPOCH,
        system=row.system,
        flow_id=row.flow_id,
        name=row.name,
        status=row.status,
        finished_at=as_utc(row.finished_at),
        attempts=row.attempts,
        error=row.error,
        external_ids=msgspec.json.decode(row.external_ids, type=dict[str, str])
        if row.external_ids
        else None,
    )


def _call_event(row: Any) -> TraceEvent:
    return TraceEvent(
        kind="vendor_call",
        at=_utc(row.started_at),
        system=row.system,
        flow_id=row.flow_id,
        name=row.step,
        status=str(row.status) if row.status is not None else None,
        method=row.method,
        path_template=row.path_template,
        latency_ms=round(float(row.latency_ms), 3),
        attempt=row.attempt,
        error=row.error,
    )


def _hook_event(row: Any) -> TraceEvent:
    return TraceEvent(
        kind="webhook",
        at=_utc(row.received_at),
        system=row.source,
        flow_id=row.flow_id,
        name=row.event_type,
        status=row.status,
        finished_at=as_utc(row.processed_at),
        error=row.error,
    )


def _utc(value: datetime) -> datetime:
    stamp = as_utc(value)
    assert stamp is not None
    return stamp
