"""Bounded waits: a flow that has made no progress for longer than the step wait ceiling (a
step waiting on an open breaker or a spent quota, a vendor out for good, a flow nobody picked
up) gets one exception for the integration team. The flow keeps waiting and continues by
itself once it can; the exception then resolves itself with a note saying what happened.

Progress is what the flow and step records show: a status change of the flow, a step's first
attempt, a step's end. A step that waits on an open breaker is still on its first attempt, so
its record stands still while the platform is out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from process_apis.engine.queue import close_exception, new_exception_id, open_exception
from process_apis.engine.store import Executor, as_utc, exceptions, flow_steps, flows

__all__ = [
    "WAITING_CODES",
    "WAIT_ERROR_CLASS",
    "StalledFlow",
    "open_wait_exception",
    "resolve_waits",
    "stalled_flows",
]

WAIT_ERROR_CLASS = "WaitCeilingExceeded"
"""The `error_class` of the exceptions opened here (and the only ones closed here)."""

WAITING_CODES = frozenset({"circuit_open", "quota_exhausted"})
"""`UpstreamUnavailable` codes on which a step waits without spending an attempt: the
platform was never asked."""

_UNFINISHED = ("running", "pending")
_OPEN = ("open", "retrying")


class StalledFlow(msgspec.Struct, frozen=True, kw_only=True):
    """An unfinished flow with no open exception and no progress since `last_progress`."""

    id: str
    type: str
    status: str
    legal_entity: str | None
    step: str | None
    """The step it is in (the latest still running), None when no step has started."""
    system: str | None
    last_progress: datetime


async def stalled_flows(executor: Executor, *, cutoff: datetime) -> list[StalledFlow]:
    """Unfinished flows without an open exception whose last progress is before `cutoff`."""
    with_exception = sa.select(exceptions.c.flow_id).where(exceptions.c.status.in_(_OPEN))
    candidates = (
        await executor.execute(
            sa.select(
                flows.c.id,
                flows.c.flow_type,
                flows.c.status,
                flows.c.legal_entity,
                flows.c.updated_at,
            ).where(
                flows.c.status.in_(_UNFINISHED),
                flows.c.updated_at < cutoff,
                flows.c.id.not_in(with_exception),
            )
        )
    ).all()
    if not candidates:
        return []
    steps = await _steps_of(executor, [row.id for row in candidates])
    stalled = []
    for row in candidates:
        own = steps.get(row.id, [])
        last = _last_progress(as_utc(row.updated_at) or row.updated_at, own)
        if last >= cutoff:
            continue
        current = max(
            (step for step in own if step["status"] == "running"),
            key=lambda step: step["position"],
            default=None,
        )
        stalled.append(
            StalledFlow(
                id=row.id,
                type=row.flow_type,
                status=row.status,
                legal_entity=row.legal_entity,
                step=current["name"] if current else None,
                system=current["system"] if current else None,
                last_progress=last,
            )
        )
    return stalled


async def open_wait_exception(
    executor: Executor,
    *,
    flow_id: str,
    flow_type: str,
    step: str | None,
    system: str | None,
    legal_entity: str | None,
    cause: str,
    now: datetime,
    refine: bool = False,
) -> str:
    """Open (or reopen) the integration team's exception for a flow waiting past the
    ceiling; the flow's status is left as it is: it still runs, and resumes by itself. A flow
    that has an open exception already keeps that one (the step and the reaper may both see
    the same wait); with `refine`, a wait exception takes the step's own, sharper cause."""
    existing = (
        await executor.execute(
            sa.select(exceptions.c.id, exceptions.c.error_class).where(
                exceptions.c.flow_id == flow_id, exceptions.c.status.in_(_OPEN)
            )
        )
    ).first()
    if existing is not None:
        if refine and existing.error_class == WAIT_ERROR_CLASS:
            await executor.execute(
                sa.update(exceptions)
                .where(exceptions.c.id == existing.id)
                .values(cause=cause, updated_at=now)
            )
        return str(existing.id)
    exception_id, _ = await open_exception(
        executor,
        exception_id=new_exception_id(),
        flow_id=flow_id,
        flow_type=flow_type,
        step=step or "(not started)",
        step_ref=f"wait:{step or flow_type}",
        system=system or "engine",
        owner="integration",
        error_class=WAIT_ERROR_CLASS,
        cause=cause,
        input_json=None,
        legal_entity=legal_entity,
        now=now,
    )
    return exception_id


async def resolve_waits(
    executor: Executor, *, now: datetime, flow_id: str | None = None, note: str | None = None
) -> list[str]:
    """Close the open wait exceptions whose flow has moved on since they opened (a step
    ended or started, the flow ended), resolved with a note saying how long the flow waited.
    With `flow_id` and `note` (the waiting step went through), that flow's are closed with
    `note` at once. Returns the ids closed."""
    statement = sa.select(
        exceptions.c.id,
        exceptions.c.flow_id,
        exceptions.c.system,
        exceptions.c.created_at,
        flows.c.status,
        flows.c.updated_at,
    ).join(flows, flows.c.id == exceptions.c.flow_id)
    statement = statement.where(
        # `retrying`: an operator pressed retry, which a flow still inside its step never
        # hears; the wait ends the same way.
        exceptions.c.status.in_(_OPEN),
        exceptions.c.error_class == WAIT_ERROR_CLASS,
    )
    if flow_id is not None:
        statement = statement.where(exceptions.c.flow_id == flow_id)
    rows = (await executor.execute(statement)).all()
    if not rows:
        return []
    steps = await _steps_of(executor, [row.flow_id for row in rows])
    closed = []
    for row in rows:
        opened_at = as_utc(row.created_at) or row.created_at
        last = _last_progress(as_utc(row.updated_at) or row.updated_at, steps.get(row.flow_id, []))
        if note is None and row.status in _UNFINISHED and last <= opened_at:
            continue
        waited = int((now - opened_at).total_seconds())
        resolution = note or (
            f"Resolved by itself: {row.system} came back and the flow moved on "
            f"({waited} s after this exception opened)"
        )
        await close_exception(executor, row.id, now=now, resolution=resolution)
        closed.append(row.id)
    return closed


async def _steps_of(executor: Executor, flow_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    rows = await executor.execute(
        sa.select(
            flow_steps.c.flow_id,
            flow_steps.c.name,
            flow_steps.c.system,
            flow_steps.c.status,
            flow_steps.c.position,
            flow_steps.c.started_at,
            flow_steps.c.finished_at,
        ).where(flow_steps.c.flow_id.in_(flow_ids))
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row.flow_id, []).append(dict(row._mapping))
    return found


def _last_progress(flow_updated_at: datetime, steps: list[dict[str, Any]]) -> datetime:
    moments = [flow_updated_at]
    for step in steps:
        for key in ("started_at", "finished_at"):
            moment = as_utc(step[key])
            if moment is not None:
                moments.append(moment)
    return max(moments)
