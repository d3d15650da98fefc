"""Where the flow engine keeps DBOS's state, so that one URL holds all state: the PostgreSQL
app database itself, or a SQLite file beside the SQLite app database."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import sqlalchemy as sa

__all__ = ["default_system_database_url", "prepare_sqlite", "redact", "sync_database_url"]


def sync_database_url(url: str) -> str:
    """The synchronous twin of an async SQLAlchemy URL (DBOS's system database is sync)."""
    return url.replace("sqlite+aiosqlite", "sqlite").replace(
        "postgresql+asyncpg", "postgresql+psycopg"
    )


def default_system_database_url(database_url: str) -> str:
    """Where DBOS keeps its state, so that one URL holds all state: a PostgreSQL app database
    itself; beside a SQLite app database file, `<name>.dbos.sqlite` (`var/erp-gateway.db` ->
    `var/erp-gateway.dbos.sqlite`)."""
    if database_url.startswith("postgresql"):
        return sync_database_url(database_url)
    url = sa.make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise ValueError("the flow engine needs a file or server database, not an in-memory one")
    path = Path(url.database)
    return f"sqlite:///{path.with_name(path.stem + '.dbos.sqlite')}"


def prepare_sqlite(url: str) -> None:
    """The system database file with WAL on (DBOS sets a busy timeout but not the journal)."""
    path = Path(url.split(":///", 1)[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def redact(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
