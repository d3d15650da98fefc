"""The operator's actions on the exception queue (assign, retry, edit-and-retry, resolve): one
service that the process routes and the operations console both call.

Each action is audited in the exception's history by the queue; retry and resolve then send
the flow waiting on the exception its `Decision`. A decision that cannot reach the flow
reopens the exception (its claim was committed already), so the operator can act again.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.errors import FieldError, ValidationFailed
from contracts.principal import Principal
from process_apis.engine.durable import Decision
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.queue import ExceptionQueue
from process_apis.exceptions import ExceptionEntry

__all__ = ["Operations"]


class Operations:
    """Operator actions, each checked against the caller's legal entities by the queue."""

    def __init__(self, *, engine: FlowEngine, queue: ExceptionQueue) -> None:
        self._engine = engine
        self._queue = queue

    async def assign(
        self, exception_id: str, *, assignee: str, principal: Principal
    ) -> ExceptionEntry:
        """Give the exception to `assignee`."""
        return await self._queue.assign(exception_id, assignee=assignee, principal=principal)

    async def retry(
        self, exception_id: str, *, principal: Principal, edited_input: Any | None = None
    ) -> ExceptionEntry:
        """Run the failed step again, with `edited_input` (raw JSON values) when given.

        Raises:
            ValidationFailed: the edited input does not fit the step's input contract (nothing
                is claimed then).
        """
        entry = await self._queue.get(exception_id, principal=principal)
        edited = (
            self._engine.validate_input(entry.step_ref, edited_input)
            if edited_input is not None
            else None
        )
        claimed = await self._queue.claim_retry(
            exception_id,
            principal=principal,
            edited_input=msgspec.json.encode(edited).decode() if edited is not None else None,
        )
        decision = Decision(
            action="retry",
            exception_id=exception_id,
            occurrence=entry.occurrences,
            actor=principal.client_id,
            input=edited,
        )
        await self._deliver(entry, decision)
        return claimed

    async def resolve(
        self, exception_id: str, *, reason: str, principal: Principal
    ) -> ExceptionEntry:
        """Close the exception by hand; its flow ends `cancelled` with `reason`.

        Raises:
            ValidationFailed: a blank reason.
        """
        reason = reason.strip()
        if not reason:
            raise ValidationFailed(
                "A reason is required", errors=[FieldError(pointer="/reason", detail="is blank")]
            )
        entry = await self._queue.resolve(exception_id, reason=reason, principal=principal)
        decision = Decision(
            action="resolve",
            exception_id=exception_id,
            occurrence=entry.occurrences,
            actor=principal.client_id,
            reason=reason,
        )
        await self._deliver(entry, decision)
        return entry

    async def _deliver(self, entry: ExceptionEntry, decision: Decision) -> None:
        try:
            await self._engine.decide(entry.flow_id, decision)
        except BaseException:
            await self._queue.release(entry.id)
            raise
