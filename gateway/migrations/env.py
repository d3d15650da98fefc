"""Alembic environment: runs the migrations on a synchronous connection, one process at a time."""

from __future__ import annotations

from alembic import context
from filelock import FileLock
from sqlalchemy import create_engine, pool, text

from gateway.storage import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""

# Two gateway processes starting together must not both migrate: PostgreSQL takes an advisory
# lock inside the database; SQLite serialises on a lock file beside the database file.
MIGRATION_LOCK_ID = 7_320_415


def run_migrations() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
                connection.commit()
    engine.dispose()


if url.startswith("sqlite") and ":memory:" not in url:
    with FileLock(url.split(":///", 1)[-1] + ".migrate.lock", timeout=60):
        run_migrations()
else:
    run_migrations()
