"""What the views read about flows and exceptions: a customer's flows in progress and open
exceptions, and the exception queue by owner. Read-only queries over the process layer's
tables (`process_apis.engine.store`), shaped for the views.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.engine.store import as_utc, exceptions, flows
from process_apis.exceptions import ExceptionStatus, OwnerTeam
from process_apis.flows import FlowStatus

__all__ = [
    "IN_PROGRESS",
    "ExceptionSummary",
    "FlowSummary",
    "ProcessActivity",
    "ProcessReads",
]

IN_PROGRESS: tuple[FlowStatus, ...] = ("pending", "running", "waiting_approval", "waiting")
UNRESOLVED: tuple[ExceptionStatus, ...] = ("open", "retrying")
_MAX_ROWS = 100


class FlowSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    status: FlowStatus
    legal_entity: str | None = None
    correlation_id: str | None = None
    created_at: datetime
    updated_at: datetime


class ExceptionSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    flow_id: str
    flow_type: str
    step: str
    system: str
    owner: OwnerTeam
    status: ExceptionStatus
    cause: str
    assignee: str | None = None
    legal_entity: str | None = None
    created_at: datetime


class ProcessActivity(msgspec.Struct, frozen=True, kw_only=True):
    """A customer's flows (newest first) and their unresolved exceptions (oldest first)."""

    flows: list[FlowSummary]
    open_exceptions: list[ExceptionSummary]

    @property
    def in_progress(self) -> list[FlowSummary]:
        return [flow for flow in self.flows if flow.status in IN_PROGRESS]


class ProcessReads:
    """Read-only queries for the views over the flows and exceptions tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def customer_activity(
        self,
        *,
        crm_account: str | None,
        flow_prefixes: Collection[str] = (),
        entities: Collection[str] | None = None,
    ) -> ProcessActivity:
        """Flows of the CRM account (or whose id starts with one of `flow_prefixes`, for flows
        keyed by another platform's id) and their unresolved exceptions."""
        matches: list[sa.ColumnElement[bool]] = []
        if crm_account:
            matches.append(flows.c.crm_account == crm_account)
        matches.extend(flows.c.id.startswith(prefix, autoescape=True) for prefix in flow_prefixes)
        if not matches:
            return ProcessActivity(flows=[], open_exceptions=[])
        where = [sa.or_(*matches), *_entity_filter(flows.c.legal_entity, entities)]
        latest = (
            sa.select(flows)
            .where(*where)
            .order_by(flows.c.created_at.desc(), flows.c.id.desc())
            .limit(_MAX_ROWS)
            .subquery()
        )
        # One round trip: each flow with its unresolved exceptions (a flow repeats per one).
        statement = (
            sa.select(latest, *_EXCEPTION_COLUMNS)
            .outerjoin(
                exceptions,
                sa.and_(
                    exceptions.c.flow_id == latest.c.id, exceptions.c.status.in_(UNRESOLVED)
                ),
            )
            .order_by(latest.c.created_at.desc(), latest.c.id.desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        found: dict[str, FlowSummary] = {}
        unresolved: list[ExceptionSummary] = []
        for row in rows:
            mapping = row._mapping
            if mapping["id"] not in found:
                found[mapping["id"]] = _flow(mapping)
            if mapping["x_id"] is not None:
                unresolved.append(_exception(_unprefixed(mapping)))
        unresolved.sort(key=lambda entry: (entry.created_at, entry.id))
        return ProcessActivity(flows=list(found.values()), open_exceptions=unresolved)

    async def unresolved_exceptions(
        self, *, entities: Collection[str] | None, limit: int = 1000
    ) -> list[ExceptionSummary]:
        """The queue's unresolved exceptions the caller may see, oldest first."""
        statement = (
            sa.select(exceptions)
            .where(
                exceptions.c.status.in_(UNRESOLVED),
                *_entity_filter(exceptions.c.legal_entity, entities),
            )
            .order_by(exceptions.c.created_at, exceptions.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [_exception(row._mapping) for row in rows]


def _entity_filter(
    column: sa.ColumnElement[str | None], entities: Collection[str] | None
) -> list[sa.ColumnElement[bool]]:
    # The rule of `Principal.may_see_entity`, in SQL: None sees every entity.
    return [] if entities is None else [column.in_(sorted(entities))]


_EXCEPTION_COLUMNS = [column.label(f"x_{column.name}") for column in exceptions.c]


def _unprefixed(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    return {key[2:]: value for key, value in mapping.items() if key.startswith("x_")}


def _flow(m: Mapping[Any, Any]) -> FlowSummary:
    return FlowSummary(
        id=m["id"],
        type=m["flow_type"],
        status=m["status"],
        legal_entity=m["legal_entity"],
        correlation_id=m["correlation_id"],
        created_at=_utc(m["created_at"]),
        updated_at=_utc(m["updated_at"]),
    )


def _exception(m: Mapping[Any, Any]) -> ExceptionSummary:
    return ExceptionSummary(
        id=m["id"],
        flow_id=m["flow_id"],
        flow_type=m["flow_type"],
        step=m["step"],
        system=m["system"],
        owner=m["owner"],
        status=m["status"],
        cause=m["cause"],
        assignee=m["assignee"],
        legal_entity=m["legal_entity"],
        created_at=_utc(m["created_at"]),
    )


def _utc(value: datetime) -> datetime:
    stamp = as_utc(value)
    assert stamp is not None
    return stamp
