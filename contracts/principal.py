"""Who is calling: the authenticated client as every layer sees it (set by the gateway)."""

from __future__ import annotations

import msgspec

__all__ = ["Principal"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated API client and what its token allows."""

    client_id: str
    name: str
    scopes: frozenset[str]
    tier: str = "bronze"
    entities: frozenset[str] | None = None
    """Legal entities (ERP subsidiary codes) the client may see; None means all."""
    customer: str | None = None
    """Set for portal clients: the one canonical customer they act for."""

    def may_see_entity(self, entity: str | None) -> bool:
        return self.entities is None or (entity is not None and entity in self.entities)

    def has_scopes(self, *scopes: str) -> bool:
        return all(scope in self.scopes for scope in scopes)
