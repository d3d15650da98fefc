"""The audit trail's records as the gateway publishes them (`GET /gateway/v1/audit`), and the
audit port: what every layer hands the audit trail, and what it can ask of it.

A record carries the hash of the one before it (a hash chain), so a changed or removed
record shows.

Each layer receives one `AuditTrail` from the app factory and records a governed operation
with `record(AuditEvent(...))`; the trail stamps the time, the correlation id of the current
unit of work (when the event names none) and the chain hashes. Who acted comes from
`actor_of(principal)` for a caller, or `system_actor(name)` for the gateway itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from contracts.principal import Principal

__all__ = [
    "ActorKind",
    "AuditActor",
    "AuditEvent",
    "AuditQuery",
    "AuditRecord",
    "AuditTarget",
    "AuditTrail",
    "FlowSource",
    "actor_of",
    "gateway_target",
    "system_actor",
]

ActorKind = Literal["client", "person", "system"]


class AuditActor(msgspec.Struct, frozen=True, kw_only=True):
    """Who did it: an API client (its id), a person signed in to the console (the identity
    provider's subject and the person's name), or the gateway itself (a poller, a schedule,
    a vendor's webhook, the command line)."""

    kind: ActorKind
    id: str
    name: str | None = None


class AuditTarget(msgspec.Struct, frozen=True, kw_only=True):
    """What it was done to: the system that holds the record (`gateway` for the gateway's
    own records: flows, exceptions, clients, keys, sign-ins) and the record's id there."""

    system: str
    id: str


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One governed operation, in the order the gateway recorded it."""

    seq: int
    """The record's place in the chain (1, 2, ...; older records may have been pruned)."""
    at: datetime
    actor: AuditActor
    action: str
    """What was done, e.g. `flow.start`, `crm.account.update`, `exception.retry`,
    `service_credit.approve`, `client.create`, `console.sign_in`."""
    target: AuditTarget
    legal_entity: str | None = None
    correlation_id: str | None = None
    before: dict[str, Any] | None = None
    """For writes: the written fields as they were."""
    after: dict[str, Any] | None = None
    """For writes: the written fields as they became."""
    detail: dict[str, Any] | None = None
    """What else the action says (a flow start's `source` and whether it `created` the
    flow, a decision's reason)."""
    prev_hash: str
    """SHA-256 (hex) of the record before this one."""
    hash: str
    """SHA-256 (hex) of this record's fields and `prev_hash`."""


FlowSource = Literal["api", "callout", "poller", "webhook", "schedule", "console"]
"""Where a request to start a flow came from."""


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A governed operation as a layer reports it (the trail adds time and hashes)."""

    action: str
    actor: AuditActor
    target: AuditTarget
    legal_entity: str | None = None
    correlation_id: str | None = None
    """None: the correlation id of the current request or flow step."""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which records to list (every given filter must match)."""

    actor: str | None = None
    """An actor's id (client id, person's subject, system name) or a person's name."""
    target: str | None = None
    """A target's bare id in any system (`006...` finds `q2c:006...` too)."""
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditTrail(Protocol):
    """The append-only, hash-chained audit log (`gateway.audit.AuditLog` fits)."""

    async def record(self, event: AuditEvent) -> AuditRecord:
        """Append `event` as the chain's next record and return it."""
        ...

    async def query(
        self, query: AuditQuery, *, principal: Principal, after_seq: int | None, limit: int
    ) -> list[AuditRecord]:
        """Records matching `query` of the legal entities `principal` may see, newest first,
        older than `after_seq` when given."""
        ...


def actor_of(principal: Principal | None) -> AuditActor:
    """The caller as an actor: the person when one signed in, else the API client (None:
    the gateway itself)."""
    if principal is None:
        return system_actor("gateway")
    if principal.subject is not None:
        return AuditActor(kind="person", id=principal.subject, name=principal.name)
    return AuditActor(kind="client", id=principal.client_id, name=principal.name)


def system_actor(name: str) -> AuditActor:
    """The gateway acting on its own (`crm-poller`, `schedule`, `webhook:stripe`, `cli:...`)."""
    return AuditActor(kind="system", id=name)


def gateway_target(record_id: str) -> AuditTarget:
    """A record the gateway itself holds (a flow, an exception, a client, a key)."""
    return AuditTarget(system="gateway", id=record_id)
