"""Console sign-ins kept on the server, so that signing out ends one for every copy of its cookie.

The cookie carries a random sign-in id; a sign-in is valid while its row exists and has not
expired. Sign-out deletes the row, so a cookie copied before it (from a shared machine, a
proxy log, a browser profile) is sent to sign in again. One primary-key read a console request;
the console is an operator's page, not a hot path, so nothing is cached (a revocation counts
at once, on every replica).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["ConsoleSessions", "console_sessions"]

_metadata = sa.MetaData()
console_sessions = sa.Table(
    "console_sessions",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
"""One row per console sign-in that has not ended (created by migration 0004)."""


class ConsoleSessions:
    """Opens, checks and ends console sign-ins in the app database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lifetime_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._lifetime = timedelta(seconds=lifetime_seconds)
        self._clock = clock

    async def open(self, client_id: str) -> str:
        """A new sign-in of `client_id`; returns its id (for the cookie). Sign-ins past their
        end are swept here, so the table holds only live ones."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(console_sessions).where(console_sessions.c.expires_at < now)
            )
            await conn.execute(
                sa.insert(console_sessions).values(
                    id=session_id, client_id=client_id, created_at=now,
                    expires_at=now + self._lifetime,
                )
            )
        return session_id

    async def active(self, session_id: str, client_id: str) -> bool:
        """Whether the sign-in `session_id` of `client_id` is still on and not expired."""
        async with self._engine.connect() as conn:
            expires_at = (
                await conn.execute(
                    sa.select(console_sessions.c.expires_at).where(
                        console_sessions.c.id == session_id,
                        console_sessions.c.client_id == client_id,
                    )
                )
            ).scalar_one_or_none()
        if expires_at is None:
            return False
        if expires_at.tzinfo is None:  # SQLite gives back naive datetimes
            expires_at = expires_at.replace(tzinfo=UTC)
        return bool(expires_at > self._clock())

    async def close(self, session_id: str) -> None:
        """End the sign-in: every copy of its cookie stops working."""
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(console_sessions).where(console_sessions.c.id == session_id)
            )
