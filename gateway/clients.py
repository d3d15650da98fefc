"""API clients: created, listed and revoked in the database, with hashed secrets.

A client exists the moment it is written (token issuance always reads the database, so a
client the CLI just created can get a token at once). Secrets are 256-bit random tokens,
shown once and stored as SHA-256: for secrets of that entropy a slow password hash adds cost
on every token request and no protection.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import InvalidRequest, NotFound
from contracts.scopes import SCOPES, TIERS
from gateway.storage import api_clients

__all__ = ["ApiClient", "ClientRegistry", "NewClient"]


@dataclass(frozen=True, kw_only=True)
class ApiClient:
    client_id: str
    name: str
    scopes: frozenset[str]
    tier: str
    entities: frozenset[str] | None
    customer: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, kw_only=True)
class NewClient:
    """A client just created, with its secret (the only time the secret is known)."""

    client: ApiClient
    client_secret: str


class ClientRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self,
        *,
        name: str,
        scopes: Iterable[str],
        tier: str = "bronze",
        entities: Iterable[str] | None = None,
        customer: str | None = None,
    ) -> NewClient:
        scope_set = frozenset(scopes)
        _check_new_client(name, scope_set, tier)
        client_id = f"cl_{secrets.token_hex(8)}"
        secret = f"cs_{secrets.token_urlsafe(32)}"
        entity_set = frozenset(e.strip() for e in entities if e.strip()) if entities else None
        if entities is not None and not entity_set:
            # An empty list would be stored as "no restriction": all entities, not none.
            raise InvalidRequest("entities were given but name no entity; omit them for all")
        client = ApiClient(
            client_id=client_id,
            name=name,
            scopes=scope_set,
            tier=tier,
            entities=entity_set or None,
            customer=customer or None,
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                api_clients.insert().values(
                    client_id=client_id,
                    name=name,
                    secret_hash=_hash(secret),
                    scopes=" ".join(sorted(scope_set)),
                    tier=tier,
                    entities=",".join(sorted(entity_set)) if entity_set else None,
                    customer=client.customer,
                    created_at=client.created_at,
                )
            )
        return NewClient(client=client, client_secret=secret)

    async def get(self, client_id: str) -> ApiClient | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(api_clients).where(api_clients.c.client_id == client_id)
                )
            ).first()
        return _client(row) if row else None

    async def authenticate(self, client_id: str, secret: str) -> ApiClient | None:
        """The active client with this id and secret, or None (timing does not tell which)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(api_clients).where(api_clients.c.client_id == client_id)
                )
            ).first()
        expected = row.secret_hash if row else _hash("no-such-client")
        matches = hmac.compare_digest(expected, _hash(secret))
        if row is None or not matches or row.revoked_at is not None:
            return None
        return _client(row)

    async def list(self) -> list[ApiClient]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(sa.select(api_clients).order_by(api_clients.c.created_at))
            ).all()
        return [_client(row) for row in rows]

    async def revoke(self, client_id: str) -> ApiClient:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_clients.update()
                .where(api_clients.c.client_id == client_id, api_clients.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        client = await self.get(client_id)
        if client is None or (result.rowcount == 0 and client.active):
            raise NotFound(f"no client {client_id}")
        return client


def _check_new_client(name: str, scopes: frozenset[str], tier: str) -> None:
    if not name.strip():
        raise InvalidRequest("a client needs a name")
    unknown = sorted(scopes - SCOPES)
    if unknown:
        raise InvalidRequest(
            f"unknown scope(s) {', '.join(unknown)}; the catalog is: {' '.join(sorted(SCOPES))}"
        )
    if not scopes:
        raise InvalidRequest("a client needs at least one scope")
    if tier not in TIERS:
        raise InvalidRequest(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _client(row: sa.Row[tuple[object, ...]]) -> ApiClient:
    m = row._mapping
    return ApiClient(
        client_id=m["client_id"],
        name=m["name"],
        scopes=frozenset(str(m["scopes"]).split()),
        tier=m["tier"],
        entities=frozenset(str(m["entities"]).split(",")) if m["entities"] else None,
        customer=m["customer"],
        created_at=_aware(m["created_at"]),
        revoked_at=_aware(m["revoked_at"]) if m["revoked_at"] else None,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
