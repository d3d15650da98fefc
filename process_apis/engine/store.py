"""The process layer's tables (SQLAlchemy Core): flows and their steps, the exception queue and
its audit history, executor heartbeats, the webhook inbox and cross-references.

The schema is created by the gateway's Alembic migration `0002_process_tables`; these Table
objects mirror it for queries. All timestamps are UTC (SQLite keeps them without an offset, so
readers put UTC back with `as_utc`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from system_apis import outbound

__all__ = [
    "Executor",
    "as_utc",
    "create_process_engine",
    "cross_references",
    "decode_cursor",
    "encode_cursor",
    "exception_history",
    "exceptions",
    "executors",
    "flow_steps",
    "flows",
    "insert_for",
    "metadata",
    "trace_keys",
    "transaction_retried_if_dropped",
    "transient_failure",
    "utcnow",
    "webhook_inbox",
]

Executor = AsyncConnection | AsyncSession
"""Anything a statement can be executed on: a connection, or a datasource transaction's session."""

metadata = sa.MetaData()

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("flow_type", sa.String(64), nullable=False),
    sa.Column("business_key", sa.String(200), nullable=False, index=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("correlation_id", sa.String(128), nullable=True, index=True),
    sa.Column("crm_account", sa.String(128), nullable=True, index=True),
    sa.Column("legal_entity", sa.String(32), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The flow whose record (deal, subscription, invoice) this flow was started about.
    sa.Column("caused_by", sa.String(200), nullable=True, index=True),
)

flow_steps = sa.Table(
    "flow_steps",
    metadata,
    sa.Column("flow_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("external_ids", sa.Text, nullable=True),
)

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("flow_id", sa.String(200), nullable=False, index=True),
    sa.Column("flow_type", sa.String(64), nullable=False),
    sa.Column("step", sa.String(100), nullable=False),
    sa.Column("step_ref", sa.String(300), nullable=False),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(32), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("error_class", sa.String(100), nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("input", sa.Text, nullable=True),
    sa.Column("assignee", sa.String(128), nullable=True),
    sa.Column("legal_entity", sa.String(32), nullable=True),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("flow_id", "step", name="uq_exceptions_flow_step"),
)

exception_history = sa.Table(
    "exception_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("exception_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)

executors = sa.Table(
    "executors",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
)

webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    # An event id is unique only per sender and type: a callout's id is the caller's choice,
    # so one client's event must never make another's a duplicate.
    sa.Column("sender", sa.String(200), primary_key=True, server_default=""),
    sa.Column("event_type", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("flow_id", sa.String(200), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
)

cross_references = sa.Table(
    "cross_references",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("canonical_id", sa.String(128), primary_key=True),
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("legal_entity", sa.String(32), primary_key=True),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint(
        "entity", "system", "external_id", "legal_entity", name="uq_cross_references_external"
    ),
)
"""`legal_entity` is `""` for references that hold in every entity (a key cannot be NULL)."""

trace_keys = sa.Table(
    "trace_keys",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(200), primary_key=True),
    sa.Column("correlation_id", sa.String(128), primary_key=True),
    sa.Column("flow_id", sa.String(200), nullable=False),
    sa.Column("legal_entity", sa.String(32), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
"""The business records (deal, customer, subscription, invoice) each trace touched, and the
flow that first touched each: how a trace is found by a business key, and how a flow started
about a record joins the trace of the flow that made it."""


R = TypeVar("R")


TRANSIENT_RETRY_SECONDS = 30.0
"""How long the engine's own writes outside DBOS transactions keep trying through a transient
database failure (a dropped connection, a server full or restarting) before giving up."""


async def transaction_retried_if_dropped(
    db: AsyncEngine, fn: Callable[[AsyncConnection], Awaitable[R]]
) -> R:
    """`fn(connection)` in a transaction, run again while the database fails transiently (a
    dropped connection, which the pool then replaces, a connection refused or a server out of
    connections), for up to `TRANSIENT_RETRY_SECONDS`: what a DBOS datasource transaction
    does for the engine's writes that run outside one."""
    give_up = time.monotonic() + TRANSIENT_RETRY_SECONDS
    wait = 0.05
    while True:
        try:
            async with db.begin() as conn:
                return await fn(conn)
        except sa.exc.DBAPIError as exc:
            if not transient_failure(exc) or time.monotonic() + wait > give_up:
                raise
        await asyncio.sleep(wait)
        wait = min(wait * 2, 2.0)


def transient_failure(exc: BaseException) -> bool:
    """Whether `exc` is the database failing for the moment (not the statement's fault)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None) or ""
    # 08: connection exceptions; 53: out of resources ("too many clients"); 57P: the server
    # shutting down or starting. No state at all: the driver could not connect.
    if state.startswith(("08", "53", "57P")):
        return True
    return isinstance(exc, sa.exc.OperationalError) and not state


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite returns it without an offset)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_for(executor: Executor, table: sa.Table) -> Any:
    """An INSERT that supports `on_conflict_do_*` in the executor's dialect."""
    if isinstance(executor, AsyncSession):
        dialect = executor.get_bind().dialect.name
    else:
        dialect = executor.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def encode_cursor(created_at: datetime, row_id: str, *, list_name: str) -> str:
    """An opaque page cursor of the list `list_name`: the sort key of the last row of a page."""
    stamp = as_utc(created_at)
    assert stamp is not None
    return outbound.encode_cursor((stamp, row_id), list_name=list_name)


def decode_cursor(cursor: str, *, list_name: str) -> tuple[datetime, str]:
    """The sort key in `cursor`; InvalidRequest naming `cursor` when this list did not issue it."""
    position = outbound.decode_cursor(cursor, list_name=list_name, position=tuple[datetime, str])
    if position is None:
        raise outbound.invalid_cursor()
    created_at, row_id = position
    return created_at.astimezone(UTC), row_id


def create_process_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The flow engine's own pool on the app database (`url`: the gateway's async URL), of at
    most `pool_size` connections on PostgreSQL.

    SQLite: WAL, a long busy timeout and IMMEDIATE transactions (as DBOS uses), so concurrent
    writers queue instead of failing. PostgreSQL: psycopg 3, the driver DBOS's datasource
    transactions recognise retryable errors of.
    """
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    psycopg_url = sa.make_url(url).set(drivername="postgresql+psycopg")
    return create_async_engine(psycopg_url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = "IMMEDIATE"
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
