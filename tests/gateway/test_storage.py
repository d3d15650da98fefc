"""The SQLite file the gateway keeps: in WAL mode from its migration on, so replicas opening
connections at the same moment never find it locked."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from gateway import storage


async def test_a_migrated_file_is_in_wal_mode_and_replicas_connect_at_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    await storage.upgrade_async(url)
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    replicas = [storage.create_engine(url), storage.create_engine(url)]
    try:

        async def one_query(engine: sa.ext.asyncio.AsyncEngine) -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(sa.text("SELECT 1"))).scalar_one())

        # Each engine opens up to five connections (its pool): ten at once in all.
        answers = await asyncio.gather(*(one_query(replicas[n % 2]) for n in range(10)))
    finally:
        for engine in replicas:
            await engine.dispose()
    assert answers == [1] * 10
