"""Executor heartbeats: which flow engines are alive, and which are dead and hold flows to
recover. A row per executor in `executors`, its heartbeat renewed every few seconds.

An executor id is `{host}:{port}/{slot}`. With a lock directory on the host, each slot is
also a file lock the process holds for its life (the kernel lets go of it when the process
dies, SIGKILL included): a process that gets a slot's lock knows no live process on this host
holds that slot, so it takes the slot over at once, however fresh the dead one's heartbeat
still looks, and DBOS resumes that executor's pending flows as it launches."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.engine.store import executors, insert_for, utcnow

__all__ = ["ExecutorRegistry", "SlotLock"]

MAX_SLOTS = 256


class SlotLock:
    """An exclusive lock on one executor slot's file, held until `release` or process exit."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls, directory: Path, executor_id: str) -> SlotLock | None:
        """The lock, or None when a live process on this host holds it."""
        directory.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", executor_id) + ".lock"
        try:
            fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        except PermissionError:
            return None  # another user's process holds (or held) this slot
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class ExecutorRegistry:
    """Heartbeats in the app database; an executor is dead once its heartbeat is older than
    `timeout_seconds` (keep it several heartbeats long: a busy loop must not look dead)."""

    def __init__(self, db: AsyncEngine, *, timeout_seconds: float) -> None:
        self._db = db
        self._timeout = timedelta(seconds=timeout_seconds)

    async def claim(self, prefix: str) -> str:
        """The lowest free `{prefix}/{n}`. A slot is free once no row holds it: a dead
        executor's row goes only after its flows are recovered, so a new process never takes
        an id whose flows someone else is recovering."""
        for index in range(MAX_SLOTS):
            candidate = f"{prefix}/{index}"
            now = utcnow()
            async with self._db.begin() as conn:
                inserted = await conn.execute(
                    insert_for(conn, executors)
                    .values(id=candidate, heartbeat_at=now, started_at=now)
                    .on_conflict_do_nothing(index_elements=[executors.c.id])
                    .returning(executors.c.id)
                )
                claimed = inserted.first() is not None
            if claimed:
                return candidate
        raise RuntimeError(f"all {MAX_SLOTS} executor slots under {prefix} are taken")

    async def claim_slot(self, prefix: str, lock_dir: Path) -> tuple[str, SlotLock]:
        """The lowest `{prefix}/{n}` whose slot lock is free on this host, with its lock.

        A free lock means the slot's last holder on this host is dead (a restart of the same
        host, port and worker slot), so its row, fresh-looking or not, is taken over: the
        executor keeps its id and DBOS resumes its pending flows at launch. `prefix` must name
        the host, or two hosts would share slots."""
        for index in range(MAX_SLOTS):
            candidate = f"{prefix}/{index}"
            lock = SlotLock.try_acquire(lock_dir, candidate)
            if lock is None:
                continue
            try:
                await self.beat(candidate)
            except BaseException:
                lock.release()
                raise
            return candidate, lock
        raise RuntimeError(f"all {MAX_SLOTS} executor slots under {prefix} are taken")

    async def beat(self, executor_id: str) -> None:
        now = utcnow()
        async with self._db.begin() as conn:
            await conn.execute(
                insert_for(conn, executors)
                .values(id=executor_id, heartbeat_at=now, started_at=now)
                .on_conflict_do_update(
                    index_elements=[executors.c.id], set_={"heartbeat_at": now}
                )
            )

    async def hand_over(self, executor_id: str) -> None:
        """Make the heartbeat stale at once (a clean shutdown), so a live engine takes over
        the flows left pending without waiting for the timeout."""
        stale = utcnow() - 2 * self._timeout
        async with self._db.begin() as conn:
            await conn.execute(
                sa.update(executors)
                .where(executors.c.id == executor_id)
                .values(heartbeat_at=stale)
            )

    async def dead(self, *, excluding: str) -> list[str]:
        """Executors with a stale heartbeat (never `excluding`)."""
        cutoff = utcnow() - self._timeout
        async with self._db.connect() as conn:
            rows = await conn.execute(
                sa.select(executors.c.id).where(
                    executors.c.heartbeat_at < cutoff, executors.c.id != excluding
                )
            )
            return [row.id for row in rows]

    async def lease(self, executor_id: str) -> datetime | None:
        """Take a dead executor's recovery: its heartbeat renewed at once if still stale (one
        atomic update, so only one engine wins). Returns the lease's stamp, or None when the
        executor is alive again or another engine took it first."""
        now = utcnow()
        async with self._db.begin() as conn:
            result = await conn.execute(
                sa.update(executors)
                .where(
                    executors.c.id == executor_id,
                    executors.c.heartbeat_at < now - self._timeout,
                )
                .values(heartbeat_at=now)
            )
            taken = result.rowcount == 1
        return now if taken else None

    async def forget(self, executor_id: str, *, lease: datetime) -> None:
        """Drop a recovered executor's row, unless it beat again since `lease`."""
        async with self._db.begin() as conn:
            await conn.execute(
                sa.delete(executors).where(
                    executors.c.id == executor_id, executors.c.heartbeat_at <= lease
                )
            )
