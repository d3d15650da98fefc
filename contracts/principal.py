"""Who is calling: the authenticated client as every layer sees it (set by the gateway)."""

from __future__ import annotations

import msgspec

__all__ = ["Principal"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated API client (or a person signed in to the console) and what it may do."""

    client_id: str
    name: str
    scopes: frozenset[str]
    tier: str = "bronze"
    entities: frozenset[str] | None = None
    """Legal entities (ERP subsidiary codes) the client may see; None means all."""
    customer: str | None = None
    """Set for portal clients: the one canonical customer they act for."""
    subject: str | None = None
    """Set for a person signed in to the console: the identity provider's subject (`name`
    is then the person's name)."""

    def may_see_entity(self, entity: str | None) -> bool:
        return self.entities is None or (entity is not None and entity in self.entities)

    @property
    def actor_name(self) -> str:
        """Who acts, as histories show it: `name (subject)` for a person, else the client id."""
        if self.subject is not None:
            return f"{self.name} ({self.subject})"[:128]
        return self.client_id

    def has_scopes(self, *scopes: str) -> bool:
        return all(scope in self.scopes for scope in scopes)
