"""Traces by business key: which deal, customer, subscription and invoice each trace (one
correlation id) touched, and which flow touched each first.

A flow records the keys it starts with (`FlowEngine.start(trace_keys=...)`) and the records its
steps report creating (`report_external_ids`). A flow started about a record that a trace
already holds (the invoice posting of a deal's subscription, a payment failure of its invoice,
an amendment of its subscription) joins that trace: it takes the trace's correlation id and
names the flow that made the record as its cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final, Literal, get_args

import msgspec
import sqlalchemy as sa

from process_apis.engine._batches import Write
from process_apis.engine.store import Executor, trace_keys

__all__ = [
    "JOINING_KINDS",
    "TraceKeyKind",
    "TraceOrigin",
    "find_origin",
    "keys_of_external_ids",
    "keys_touched",
    "record_trace_keys",
    "trace_kinds",
]

TraceKeyKind = Literal["deal", "customer", "subscription", "invoice"]

JOINING_KINDS: Final[tuple[TraceKeyKind, ...]] = ("invoice", "subscription", "deal")
"""Keys a new flow joins a trace by, most specific first. A customer has many deals, hence
many traces: it finds traces but never decides which one a flow joins."""

_KIND_OF_ID: Final[dict[str, TraceKeyKind]] = {
    "salesforce_opportunity": "deal",
    "stripe_subscription": "subscription",
    "stripe_invoice": "invoice",
    "netsuite_invoice": "invoice",
    "stripe_customer": "customer",
    "netsuite_customer": "customer",
    "zendesk_customer": "customer",
    "salesforce_customer": "customer",
}
"""Which `report_external_ids` names are business keys of a trace."""


class TraceOrigin(msgspec.Struct, frozen=True, kw_only=True):
    """The trace a record belongs to, and the flow that first touched it."""

    correlation_id: str
    flow_id: str
    legal_entity: str | None


def trace_kinds() -> tuple[str, ...]:
    return get_args(TraceKeyKind)


def keys_of_external_ids(ids: Mapping[str, str]) -> list[tuple[TraceKeyKind, str]]:
    """The business keys among the ids a step reported creating or finding."""
    return [
        (_KIND_OF_ID[name], value) for name, value in ids.items() if name in _KIND_OF_ID and value
    ]


_TOUCHED = sa.text(
    """
    INSERT INTO trace_keys (kind, value, correlation_id, flow_id, legal_entity, created_at)
    VALUES (:kind, :value, :correlation_id, :flow_id, :legal_entity, :created_at)
    ON CONFLICT (kind, value, correlation_id) DO NOTHING
    """
).bindparams(sa.bindparam("created_at", type_=trace_keys.c.created_at.type))
"""Written by every flow's start and most of its steps, so built once (as `records`' upserts);
the same text serves PostgreSQL and SQLite."""


def keys_touched(
    keys: Iterable[tuple[str, str]],
    *,
    correlation_id: str | None,
    flow_id: str,
    legal_entity: str | None,
    now: datetime,
) -> list[Write]:
    """That trace `correlation_id` touched `keys`, as writes for `BatchWriter` (idempotent:
    the first flow to touch a key in a trace stays its origin)."""
    if correlation_id is None:
        return []
    return [
        (
            _TOUCHED,
            {
                "kind": kind,
                "value": value[:200],
                "correlation_id": correlation_id,
                "flow_id": flow_id,
                "legal_entity": legal_entity,
                "created_at": now,
            },
        )
        for kind, value in dict.fromkeys(keys)
        if value
    ]


async def record_trace_keys(
    executor: Executor,
    keys: Iterable[tuple[str, str]],
    *,
    correlation_id: str | None,
    flow_id: str,
    legal_entity: str | None,
    now: datetime,
) -> None:
    """`keys_touched`, written on `executor`."""
    rows = [
        params
        for _, params in keys_touched(
            keys,
            correlation_id=correlation_id,
            flow_id=flow_id,
            legal_entity=legal_entity,
            now=now,
        )
    ]
    if rows:
        await executor.execute(_TOUCHED, rows)


async def find_origin(
    executor: Executor, keys: Mapping[str, str], *, excluding: str | None = None
) -> TraceOrigin | None:
    """The trace a new flow about `keys` joins: that of the most specific key a trace already
    holds (`JOINING_KINDS`), the earliest such trace; None when none holds one. `excluding`:
    the new flow's own id (a repeated start finds its own keys)."""
    for kind in JOINING_KINDS:
        value = keys.get(kind)
        if not value:
            continue
        statement = (
            sa.select(trace_keys.c.correlation_id, trace_keys.c.flow_id, trace_keys.c.legal_entity)
            .where(trace_keys.c.kind == kind, trace_keys.c.value == value)
            .order_by(trace_keys.c.created_at, trace_keys.c.correlation_id)
            .limit(1)
        )
        if excluding is not None:
            statement = statement.where(trace_keys.c.flow_id != excluding)
        row = (await executor.execute(statement)).first()
        if row is not None:
            return TraceOrigin(
                correlation_id=row.correlation_id,
                flow_id=row.flow_id,
                legal_entity=row.legal_entity,
            )
    return None
