"""Audit append bench: records/s into the hash chain from one writer, and from two replicas
writing at once (each its own engine, as two gateway processes), measured in one run.

Every append takes the chain head's lock, so replicas do not add up: the ratio shows what a
second replica costs or gains. A bare one-row commit per transaction is measured first, as the
database's own ceiling here. Prints each rate and the ratios.

    .venv/bin/python bench/audit_append.py [--records 400] [--database-url URL]

Default database: a fresh SQLite file in a temporary folder; pass a PostgreSQL URL
(`postgresql+asyncpg://...`) to measure there (the bench appends to its audit trail).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from contracts.audit import AuditEvent, AuditTarget, system_actor
from gateway import storage
from gateway.audit import AuditLog

__all__ = ["main"]

CONCURRENT_PER_REPLICA = 8


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        action="crm.account.update",
        actor=system_actor("bench"),
        target=AuditTarget(system="salesforce", id=f"001bench{n:07d}"),
        legal_entity="US01",
        before={"phone": "+1 555 0100"},
        after={"phone": f"+1 555 {n % 10_000:04d}"},
    )


async def _bare_commits(url: str, records: int) -> float:
    """Transactions/s of a one-row update each: the database's own commit rate here."""
    engine = storage.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("CREATE TABLE bench_commit (id INTEGER PRIMARY KEY, n INTEGER)")
            )
            await conn.execute(sa.text("INSERT INTO bench_commit VALUES (1, 0)"))
        started = time.perf_counter()
        for _ in range(records):
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE bench_commit SET n = n + 1 WHERE id = 1"))
        rate = records / (time.perf_counter() - started)
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE bench_commit"))
        return rate
    finally:
        await engine.dispose()


async def _one_writer(url: str, records: int) -> float:
    engine = storage.create_engine(url)
    try:
        audit = AuditLog(engine)
        started = time.perf_counter()
        for n in range(records):
            await audit.record(_event(n))
        return records / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def _two_replicas(url: str, records: int) -> float:
    engines = [storage.create_engine(url), storage.create_engine(url)]
    try:
        logs = [AuditLog(engine) for engine in engines]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(records):
            queue.put_nowait(n)

        async def worker(audit: AuditLog) -> None:
            while not queue.empty():
                await audit.record(_event(queue.get_nowait()))

        started = time.perf_counter()
        await asyncio.gather(*(worker(logs[i % 2]) for i in range(2 * CONCURRENT_PER_REPLICA)))
        elapsed = time.perf_counter() - started
        report = await logs[0].verify()
        if not report.intact:
            raise SystemExit(f"the chain broke: {report.problem}")
        return records / elapsed
    finally:
        for engine in engines:
            await engine.dispose()


async def _run(url: str, records: int) -> None:
    await storage.upgrade_async(url)
    await _one_writer(url, 20)  # warm-up: connections, statement caches
    bare = await _bare_commits(url, records)
    single = await _one_writer(url, records)
    double = await _two_replicas(url, records)
    print(f"database: {url.split('://', 1)[0]}")
    print(f"bare one-row commits:     {bare:8.0f} /s")
    print(f"one writer:               {single:8.0f} records/s")
    print(f"two replicas, 16 at once: {double:8.0f} records/s")
    print(f"ratio one writer / bare commits: {single / bare:.2f}")
    print(f"ratio two replicas / one writer: {double / single:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        asyncio.run(_run(url, args.records))


if __name__ == "__main__":
    main()
