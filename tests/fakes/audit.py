"""`FakeAuditTrail`: an in-memory `AuditTrail` that keeps what it was given, chained like the
real one (each record carries the previous record's hash) and filtered the same way."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from contracts.audit import AuditEvent, AuditQuery, AuditRecord
from contracts.principal import Principal

__all__ = ["FakeAuditTrail"]


class FakeAuditTrail:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def record(self, event: AuditEvent) -> AuditRecord:
        prev = self.records[-1].hash if self.records else "0" * 64
        seq = len(self.records) + 1
        digest = hashlib.sha256(msgspec.json.encode([seq, event, prev])).hexdigest()
        record = AuditRecord(
            seq=seq,
            at=datetime.now(UTC),
            actor=event.actor,
            action=event.action,
            target=event.target,
            legal_entity=event.legal_entity,
            correlation_id=event.correlation_id,
            before=event.before,
            after=event.after,
            detail=event.detail,
            prev_hash=prev,
            hash=digest,
        )
        self.records.append(record)
        return record

    async def query(
        self, query: AuditQuery, *, principal: Principal, after_seq: int | None, limit: int
    ) -> list[AuditRecord]:
        found = [
            r
            for r in reversed(self.records)
            if (principal.entities is None or r.legal_entity in principal.entities)
            and (query.action is None or r.action == query.action)
            and (query.actor is None or query.actor in (r.actor.id, r.actor.name))
            and (
                query.target is None
                or r.target.id == query.target
                or r.target.id.endswith(":" + query.target)
            )
            and (after_seq is None or r.seq < after_seq)
        ]
        return found[:limit]
