"""Usage intake: a client's batch of usage records, checked one by one and stored durably.

Each record is checked on its own: its shape, its time (not after now, not before the open
billing period less the grace), its subscription (one of the caller's legal entities and, for a
portal client, its own customer; another's answers exactly as an unknown one) and its metric (a
metered item of that subscription). A bad record is rejected with its JSON pointer; the good
ones are stored in one transaction before the answer, deduplicated by the client's record id
for ever. A record up to the grace before the open period counts in the open period: billing
has closed the one before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import msgspec

from contracts.principal import Principal
from process_apis.usage.records import UsageRow, UsageStore
from process_apis.usage.subscriptions import MeteredSubscription, SubscriptionDirectory

__all__ = [
    "MAX_RECORDS",
    "MAX_USAGE_QUANTITY",
    "Rejection",
    "UsageAccepted",
    "UsageBatch",
    "UsageIntake",
    "UsageRecordIn",
]

MAX_RECORDS: Final = 1_000
"""Records one request may carry."""
MAX_USAGE_QUANTITY: Final = 10**12
"""Units one record may report (an API call counter, not money)."""
_MISSING = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")
_AT_PATH = re.compile(r" - at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)`$")


class UsageRecordIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One usage record as a client reports it."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """The client's id of the record; a record reported again under it counts once."""
    subscription_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=0, le=MAX_USAGE_QUANTITY)]
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)]
    """When the usage happened (RFC 3339 with an offset)."""


class UsageBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /process/v1/usage-records`: up to 1,000 records, each checked on its own."""

    records: Annotated[
        list[Any],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_RECORDS,
            description="Usage records: {id, subscription_id, metric, quantity, timestamp}",
        ),
    ]


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    pointer: str
    """JSON Pointer into the request body of what is wrong (`/records/3/timestamp`)."""
    detail: str


class UsageAccepted(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    """Records stored now."""
    duplicates: int
    """Records already stored under the same id (earlier, or twice in this batch)."""
    rejected: list[Rejection]


class UsageIntake:
    """Checks and stores usage batches."""

    def __init__(
        self,
        *,
        store: UsageStore,
        directory: SubscriptionDirectory,
        grace_seconds: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.directory = directory
        self.grace = timedelta(seconds=grace_seconds)
        self._now = now

    async def accept(
        self, batch: UsageBatch, *, principal: Principal
    ) -> tuple[UsageAccepted, list[UsageRow]]:
        """The answer, and the rows stored new or again (their periods tell the flusher
        how soon they must reach billing)."""
        now = self._now()
        rejected: list[Rejection] = []
        rows: list[UsageRow] = []
        subscriptions: dict[str, MeteredSubscription | None] = {}
        for index, raw in enumerate(batch.records):
            record, problem = _decode(index, raw)
            if record is not None:
                if record.subscription_id not in subscriptions:
                    subscriptions[record.subscription_id] = await self.directory.find(
                        record.subscription_id
                    )
                found = subscriptions[record.subscription_id]
                row, problem = self._place(index, record, found, principal, now)
                if row is not None:
                    rows.append(row)
            if problem is not None:
                rejected.append(problem)
        stored = await self.store.add(principal.client_id, rows)
        return UsageAccepted(
            accepted=stored, duplicates=len(rows) - stored, rejected=rejected
        ), rows

    def _place(
        self,
        index: int,
        record: UsageRecordIn,
        subscription: MeteredSubscription | None,
        principal: Principal,
        now: datetime,
    ) -> tuple[UsageRow | None, Rejection | None]:
        at = f"/records/{index}"
        if subscription is None or not subscription.visible_to(principal):
            return None, Rejection(
                index=index,
                pointer=f"{at}/subscription_id",
                detail=f"no subscription {record.subscription_id} among those this client may "
                "report usage for",
            )
        if not subscription.open:
            return None, Rejection(
                index=index,
                pointer=f"{at}/subscription_id",
                detail=f"subscription {subscription.id} is canceled",
            )
        item = subscription.items.get(record.metric)
        if item is None:
            metrics = ", ".join(sorted(subscription.items)) or "none"
            return None, Rejection(
                index=index,
                pointer=f"{at}/metric",
                detail=f"subscription {subscription.id} meters no {record.metric!r} "
                f"(it meters: {metrics})",
            )
        if record.timestamp > now:
            return None, Rejection(
                index=index, pointer=f"{at}/timestamp", detail="is later than now"
            )
        earliest = subscription.period_start - self.grace
        if record.timestamp < earliest:
            return None, Rejection(
                index=index,
                pointer=f"{at}/timestamp",
                detail="is before the open billing period (which began "
                f"{subscription.period_start.isoformat()}) less the grace of "
                f"{int(self.grace.total_seconds())} s",
            )
        return UsageRow(
            record_id=record.id,
            subscription_id=subscription.id,
            subscription_item_id=item,
            metric=record.metric,
            quantity=record.quantity,
            occurred_at=record.timestamp.astimezone(UTC),
            period_start=subscription.period_start,
            period_end=subscription.period_end,
            legal_entity=subscription.legal_entity,
        ), None


def _decode(index: int, raw: Any) -> tuple[UsageRecordIn | None, Rejection | None]:
    try:
        return msgspec.convert(raw, UsageRecordIn, strict=True), None
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _AT_PATH.search(message)
        path = ""
        if found:
            message = message[: found.start()]
            path = re.sub(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", _segment, found.group(1))
        missing = _MISSING.search(message)
        if missing:
            path = f"{path}/{missing.group(1)}"
        return None, Rejection(index=index, pointer=f"/records/{index}{path}", detail=message)


def _segment(match: re.Match[str]) -> str:
    return "/" + (match.group(1) or match.group(2))
