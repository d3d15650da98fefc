"""The last event applied to each object, so an event that arrives late does not undo a newer
one (vendors retry deliveries for days, in no particular order).

A version orders by the event's time (whole seconds, as Stripe gives it), then by a rank the
caller gives for events of the same second (e.g. a payment after a failed attempt). Versions
are kept in `cross_references` under entity `applied:<kind>`: canonical id = the object's id,
external id = the version text, so claiming one is a single conditional upsert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from process_apis.engine.store import cross_references, insert_for, utcnow

__all__ = ["AppliedVersions", "Claim"]

_ENTITY_PREFIX: Final = "applied:"
_EVERY_ENTITY: Final = ""


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    applied: bool
    """The version is not older than the last one applied: go ahead and apply it."""
    previous: str | None
    """The version applied before (None: nothing was applied to this object yet)."""


class AppliedVersions:
    """Claims and reads the version last applied to an object, per kind of state."""

    def __init__(self, database: AsyncEngine) -> None:
        self._database = database

    @staticmethod
    def version(at: datetime | None, rank: int, object_id: str) -> str:
        """Text that sorts like (time, rank) for one object; the object id keeps the texts of
        different objects apart (the table keeps external ids unique)."""
        seconds = int(at.timestamp()) if at is not None else 0
        return f"{seconds:012d}.{rank:02d}:{object_id}"

    async def claim(
        self, kind: str, system: str, object_id: str, *, at: datetime | None, rank: int = 0
    ) -> Claim:
        """Record this version as applied unless a newer one is. The same version claimed
        again is applied again, so a step that runs twice decides the same way twice."""
        version = self.version(at, rank, object_id)
        keys = _keys(kind, system, object_id)
        now = utcnow()
        async with self._database.begin() as conn:
            previous = await _current(conn, keys)
            insert = insert_for(conn, cross_references).values(
                **keys,
                legal_entity=_EVERY_ENTITY,
                external_id=version,
                created_at=now,
                updated_at=now,
            )
            statement = insert.on_conflict_do_update(
                index_elements=[
                    cross_references.c.entity,
                    cross_references.c.canonical_id,
                    cross_references.c.system,
                    cross_references.c.legal_entity,
                ],
                set_={"external_id": version, "updated_at": now},
                where=cross_references.c.external_id <= version,
            ).returning(cross_references.c.external_id)
            applied = (await conn.execute(statement)).first() is not None
        return Claim(applied=applied, previous=previous)

    async def latest(self, kind: str, system: str, object_id: str) -> str | None:
        """The version last applied to the object, if any."""
        async with self._database.connect() as conn:
            return await _current(conn, _keys(kind, system, object_id))


def _keys(kind: str, system: str, object_id: str) -> dict[str, str]:
    return {"entity": _ENTITY_PREFIX + kind, "canonical_id": object_id, "system": system}


async def _current(conn: Any, keys: dict[str, str]) -> str | None:
    statement = sa.select(cross_references.c.external_id).where(
        cross_references.c.entity == keys["entity"],
        cross_references.c.canonical_id == keys["canonical_id"],
        cross_references.c.system == keys["system"],
        cross_references.c.legal_entity == _EVERY_ENTITY,
    )
    value: str | None = (await conn.execute(statement)).scalar_one_or_none()
    return value
