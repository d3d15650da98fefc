"""The gateway's database: async engine, table definitions and Alembic migrations.

SQLite (aiosqlite, WAL, busy timeout) by default, PostgreSQL (asyncpg) in production. The
schema is owned by Alembic migrations in `gateway/migrations/`, applied on start and by
`erp-gateway db upgrade`; the tables below mirror them for queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = [
    "api_clients",
    "audit_head",
    "audit_log",
    "create_engine",
    "idempotency_records",
    "metadata",
    "sync_url",
    "upgrade",
    "upgrade_async",
    "vendor_calls",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000

metadata = sa.MetaData()

api_clients = sa.Table(
    "api_clients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("tier", sa.String(32), nullable=False),
    sa.Column("entities", sa.Text, nullable=True),
    sa.Column("customer", sa.String(128), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

idempotency_records = sa.Table(
    "idempotency_records",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("headers", sa.Text, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

vendor_calls = sa.Table(
    "vendor_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("path_template", sa.String(500), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=True, index=True),
    sa.Column("flow_id", sa.String(200), nullable=True, index=True),
    sa.Column("step", sa.String(100), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False, index=True),
    sa.Column("actor_name", sa.String(200), nullable=True),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("target_system", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(300), nullable=False, index=True),
    sa.Column("legal_entity", sa.String(32), nullable=True, index=True),
    sa.Column("correlation_id", sa.String(128), nullable=True),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
"""One row per governed operation, chained by hash (see `gateway.audit`; migration 0008)."""

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("anchor_seq", sa.BigInteger, nullable=False),
    sa.Column("anchor_hash", sa.String(64), nullable=False),
)
"""The chain's one head row: the last record's seq and hash (every append updates it in its
own transaction, which serializes appenders on every replica), and the anchor left by
pruning (the seq and hash of the last record removed)."""


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The async engine for `url`; SQLite gets WAL and a busy timeout for concurrent writers.
    PostgreSQL: at most `pool_size` connections (`ERPGW_DATABASE_POOL_SIZE`)."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_size=5
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)


def sync_url(url: str) -> str:
    """The synchronous twin of an async URL (for Alembic and DBOS)."""
    return url.replace("sqlite+aiosqlite", "sqlite").replace(
        "postgresql+asyncpg", "postgresql+psycopg"
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations to `url` (blocking; safe when several processes start at once)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    command.upgrade(config, revision)
    if url.startswith("sqlite"):
        _write_ahead_log(url)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # WAL stays set in the file (`upgrade` sets it): switching takes the file to itself, so
    # a connection opened while another replica's is open would fail with "database is
    # locked", whatever the busy timeout. Only a file not switched yet is switched here.
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _write_ahead_log(url: str) -> None:
    """Put the SQLite file in WAL mode, which it keeps, before any replica connects."""
    _, separator, path = url.partition(":///")
    if separator and path and not path.startswith(":memory:"):
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as db:
            db.execute("PRAGMA journal_mode=WAL")


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
