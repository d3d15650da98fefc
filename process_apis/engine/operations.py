"""The operator's actions on the exception queue (assign, retry, edit-and-retry, resolve): one
service that the process routes and the operations console both call.

Each action is audited in the exception's history by the queue; retry and resolve then send
the flow waiting on the exception its `Decision`. A decision that cannot reach the flow
reopens the exception (its claim was committed already), so the operator can act again.

An edited input fixes the data a step failed on; it never points the step at other records.
Besides the step's input contract it keeps the flow's legal entity and currency and names only
the records the failed input named (see `_scope_problems`), so an operator cannot book one
customer's order for another, or in another entity or currency.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Protocol

import msgspec

from contracts.audit import AuditEvent, AuditTrail, actor_of, gateway_target
from contracts.errors import FieldError, ValidationFailed
from contracts.limits import MAX_AMOUNT, MAX_ITEMS, MAX_QUANTITY
from contracts.principal import Principal
from process_apis.engine.durable import Decision
from process_apis.engine.flow_engine import FlowEngine
from process_apis.engine.queue import ExceptionQueue
from process_apis.exceptions import ExceptionEntry

__all__ = ["DecisionTaker", "Operations"]

_SCOPE_KEYS: Final = frozenset({"legal_entity", "currency"})
"""Keys whose values an edit keeps: the flow's legal entity and currency."""
_RECORD_KEYS: Final = frozenset({"id", "customer", "account", "crm_account", "subscription"})
"""Keys naming a record (with every `*_id`, `*_ids` and `refs` value)."""
_BOUNDS: Final = {"quantity": MAX_QUANTITY}
"""The request bound of a number by key; any other number is an amount (`MAX_AMOUNT`)."""


class DecisionTaker(Protocol):
    """Takes the decisions on exceptions of a kind no durable flow waits on (e.g. a webhook
    event whose flows could not be started: its dispatch record)."""

    async def decide(self, entry: ExceptionEntry, decision: Decision) -> None: ...


class Operations:
    """Operator actions, each checked against the caller's legal entities by the queue."""

    def __init__(
        self, *, engine: FlowEngine, queue: ExceptionQueue, audit: AuditTrail | None = None
    ) -> None:
        self._engine = engine
        self._queue = queue
        self._audit = audit
        self._takers: dict[str, DecisionTaker] = {}

    def take_decisions(self, flow_type: str, taker: DecisionTaker) -> None:
        """Have `taker`, not a waiting flow, take the decisions on exceptions of `flow_type`."""
        self._takers[flow_type] = taker

    async def assign(
        self, exception_id: str, *, assignee: str, principal: Principal
    ) -> ExceptionEntry:
        """Give the exception to `assignee`."""
        entry = await self._queue.assign(exception_id, assignee=assignee, principal=principal)
        await self._record("exception.assign", entry, principal, {"assignee": assignee})
        return entry

    async def retry(
        self, exception_id: str, *, principal: Principal, edited_input: Any | None = None
    ) -> ExceptionEntry:
        """Run the failed step again, with `edited_input` (raw JSON values) when given.

        Raises:
            ValidationFailed: the edited input does not fit the step's input contract, or
                changes the flow's legal entity or currency, or names a record the failed
                input did not (nothing is claimed then).
        """
        entry = await self._queue.get(exception_id, principal=principal)
        edited = (
            self._engine.validate_input(entry.step_ref, edited_input)
            if edited_input is not None
            else None
        )
        if edited is not None:
            problems = _scope_problems(entry, edited, principal)
            if problems:
                raise ValidationFailed(
                    f"The edited input may not leave flow {entry.flow_id}'s records",
                    errors=problems,
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
            actor=principal.actor_name,
            input=edited,
        )
        await self._deliver(entry, decision)
        await self._record(
            "exception.retry",
            entry,
            principal,
            {"edited_input": edited is not None},
            before=entry.input if edited is not None else None,
            after=edited,
        )
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
            actor=principal.actor_name,
            reason=reason,
        )
        await self._deliver(entry, decision)
        await self._record("exception.resolve", entry, principal, {"reason": reason})
        return entry

    async def _record(
        self,
        action: str,
        entry: ExceptionEntry,
        principal: Principal,
        detail: dict[str, Any],
        *,
        before: Any | None = None,
        after: Any | None = None,
    ) -> None:
        if self._audit is None:
            return
        await self._audit.record(
            AuditEvent(
                action=action,
                actor=actor_of(principal),
                target=gateway_target(entry.id),
                legal_entity=entry.legal_entity,
                before={"input": before} if before is not None else None,
                after={"input": after} if after is not None else None,
                detail={"flow_id": entry.flow_id, "step": entry.step, **detail},
            )
        )

    async def _deliver(self, entry: ExceptionEntry, decision: Decision) -> None:
        taker = self._takers.get(entry.flow_type)
        try:
            if taker is not None:
                await taker.decide(entry, decision)
            else:
                await self._engine.decide(entry.flow_id, decision)
        except BaseException:
            await self._queue.release(entry.id)
            raise


def _scope_problems(
    entry: ExceptionEntry, edited: dict[str, Any], principal: Principal
) -> list[FieldError]:
    """What in `edited` reaches past the failed input: a legal entity other than the flow's
    (or one `principal` may not see), a currency the input did not have, a record id it did
    not name, an amount or quantity past the request bounds."""
    original: dict[str, set[Any]] = {}
    for _, key, value in _leaves(entry.input, ""):
        original.setdefault(key, set()).add(_hashable(value))
    problems = [
        FieldError(pointer=pointer, detail=f"lists more than {MAX_ITEMS} items")
        for pointer, length in _lists(edited, "/input")
        if length > MAX_ITEMS
    ]
    for pointer, key, value in _leaves(edited, "/input"):
        if (
            key == "legal_entity"
            and value is not None
            and (
                not principal.may_see_entity(value)
                or (entry.legal_entity is not None and value != entry.legal_entity)
            )
        ):
            problems.append(FieldError(pointer=pointer, detail="is not the flow's legal entity"))
        elif (
            (key in _SCOPE_KEYS or _names_record(key))
            and value is not None
            and (_hashable(value) not in original.get(key, set()))
        ):
            what = "currency" if key == "currency" else "record"
            problems.append(
                FieldError(pointer=pointer, detail=f"names a {what} the failed input did not")
            )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            bound = _BOUNDS.get(key, MAX_AMOUNT)
            if abs(value) > bound:
                problems.append(FieldError(pointer=pointer, detail=f"must be at most {bound}"))
    return problems


def _names_record(key: str) -> bool:
    return key in _RECORD_KEYS or key.endswith(("_id", "_ids")) or key.startswith("refs.")


def _leaves(value: Any, pointer: str, key: str = "") -> Iterator[tuple[str, str, Any]]:
    """(JSON pointer, key, value) of every scalar in `value`; a list's items carry the list's
    key and a `refs` map's values the key `refs.<system>`."""
    if isinstance(value, dict):
        for name, item in value.items():
            inner = f"refs.{name}" if key == "refs" else str(name)
            yield from _leaves(item, f"{pointer}/{name}", inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{pointer}/{index}", key)
    else:
        yield pointer, key, value


def _lists(value: Any, pointer: str) -> Iterator[tuple[str, int]]:
    """(JSON pointer, length) of every list in `value`."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _lists(item, f"{pointer}/{name}")
    elif isinstance(value, list):
        yield pointer, len(value)
        for index, item in enumerate(value):
            yield from _lists(item, f"{pointer}/{index}")


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)
