"""Cross-references: which record in each platform stands for one canonical record.

A row of `cross_references` links a canonical id (a customer `cus-...`, a catalog product
code) to the id of its record in one system, per legal entity. The customer master and the
catalog sync write a link as soon as they matched or created the record, so the next flow
finds it here without asking the platform again. Writes are keyed upserts: a step that runs
again after a crash writes the same row.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import Conflict
from process_apis.engine.store import cross_references, insert_for, utcnow

__all__ = ["ALL_ENTITIES", "CrossReferences"]

ALL_ENTITIES: Final = ""
"""The legal entity of a reference that holds in every entity (catalog records)."""

_FIND = sa.text(
    "SELECT external_id FROM cross_references WHERE entity = :entity "
    "AND canonical_id = :canonical_id AND system = :system AND legal_entity = :legal_entity"
)
"""Asked by most steps of every flow, so built once: building the same `select()` on each call
(its cache key above all) cost more CPU than running it."""

_FIND_MANY = sa.text(
    "SELECT canonical_id, external_id FROM cross_references WHERE entity = :entity "
    "AND canonical_id IN :canonical_ids AND system = :system AND legal_entity = :legal_entity"
).bindparams(sa.bindparam("canonical_ids", expanding=True))


class CrossReferences:
    """Reads and writes links in the app database (`cross_references`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(
        self, entity: str, canonical_id: str, system: str, *, legal_entity: str = ALL_ENTITIES
    ) -> str | None:
        """The id in `system` linked to `canonical_id`, or None when none is recorded."""
        where = {
            "entity": entity,
            "canonical_id": canonical_id,
            "system": system,
            "legal_entity": legal_entity,
        }
        async with self._engine.connect() as conn:
            found: str | None = (await conn.execute(_FIND, where)).scalar_one_or_none()
            return found

    async def find_many(
        self,
        entity: str,
        canonical_ids: list[str],
        system: str,
        *,
        legal_entity: str = ALL_ENTITIES,
    ) -> dict[str, str]:
        """The ids in `system` linked to each of `canonical_ids` that has one, keyed by
        canonical id: one query for a whole order's lines."""
        if not canonical_ids:
            return {}
        where = {
            "entity": entity,
            "canonical_ids": sorted(set(canonical_ids)),
            "system": system,
            "legal_entity": legal_entity,
        }
        async with self._engine.connect() as conn:
            rows = await conn.execute(_FIND_MANY, where)
            return {row.canonical_id: row.external_id for row in rows}

    async def find_all(
        self, entity: str, canonical_id: str, *, legal_entity: str = ALL_ENTITIES
    ) -> dict[str, str]:
        """Every system's id linked to `canonical_id`, keyed by system."""
        statement = sa.select(cross_references.c.system, cross_references.c.external_id).where(
            cross_references.c.entity == entity,
            cross_references.c.canonical_id == canonical_id,
            cross_references.c.legal_entity == legal_entity,
        )
        async with self._engine.connect() as conn:
            return {row.system: row.external_id for row in await conn.execute(statement)}

    async def link(
        self,
        entity: str,
        canonical_id: str,
        system: str,
        external_id: str,
        *,
        legal_entity: str = ALL_ENTITIES,
    ) -> None:
        """Record that `external_id` in `system` is `canonical_id` (idempotent).

        Raises:
            Conflict: that record of `system` is already linked to another canonical id; a
                person must decide which of the two it is.
        """
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                statement = insert_for(conn, cross_references).values(
                    entity=entity,
                    canonical_id=canonical_id,
                    system=system,
                    legal_entity=legal_entity,
                    external_id=external_id,
                    created_at=now,
                    updated_at=now,
                )
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=[
                            cross_references.c.entity,
                            cross_references.c.canonical_id,
                            cross_references.c.system,
                            cross_references.c.legal_entity,
                        ],
                        set_={"external_id": external_id, "updated_at": now},
                    )
                )
        except IntegrityError as exc:
            raise Conflict(
                f"{system} {entity} {external_id} is already linked to another record than "
                f"{canonical_id}",
                code="cross_reference_taken",
            ) from exc
