"""Reading a renewal's signals from billing and support: what `risk.Signals` is made of.

Each reader takes what one platform holds for one customer and counts what falls in the window
(`as_of - window_days`, `as_of`]. Pure counting is split from the reads so tests can check it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

import msgspec

from contracts.v1 import CreditNote, Invoice, Page, SupportCase
from system_apis.billing.port import BillingPort
from system_apis.support.port import SupportPort

__all__ = [
    "BillingSignals",
    "SupportSignals",
    "count_billing",
    "count_support",
    "read_billing",
    "read_support",
    "window_start",
]

PAGE = 100
MAX_PAGES = 20
"""At most this many pages of a customer's invoices, credit notes or cases are read: a
renewal's context needs the recent ones, and a customer with more is judged on those."""
_CLOSED_CASES = ("solved", "closed")

T = TypeVar("T")


class BillingSignals(msgspec.Struct, frozen=True, kw_only=True):
    service_credits: int = 0
    service_credit_amount: int = 0
    failed_payments: int = 0
    days_past_due: int = 0


class SupportSignals(msgspec.Struct, frozen=True, kw_only=True):
    urgent_cases: int = 0
    sla_breaches: int = 0


def window_start(as_of: date, window_days: int) -> datetime:
    """The first instant of the window that ends with the day `as_of` (UTC)."""
    return datetime.combine(as_of - timedelta(days=window_days - 1), time(0), tzinfo=UTC)


def _window_end(as_of: date) -> datetime:
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)


def count_billing(
    invoices: Sequence[Invoice], credits: Sequence[CreditNote], *, as_of: date, window_days: int
) -> BillingSignals:
    """Service credits issued in the window; invoices of the window whose payment failed
    (uncollectible, or open past their due date) and how late the oldest unpaid one is."""
    start, end = window_start(as_of, window_days), _window_end(as_of)
    service = [
        note
        for note in credits
        if note.reason == "service_credit"
        and note.status == "issued"
        and note.created_at is not None
        and start <= note.created_at < end
    ]
    overdue = [
        invoice
        for invoice in invoices
        if invoice.status == "open" and invoice.due_date is not None and invoice.due_date < as_of
    ]
    failed = [
        invoice
        for invoice in invoices
        if (invoice.status == "uncollectible" or invoice in overdue)
        and (invoice.issued_at is None or start <= invoice.issued_at < end)
    ]
    late = max(((as_of - i.due_date).days for i in overdue if i.due_date is not None), default=0)
    return BillingSignals(
        service_credits=len(service),
        service_credit_amount=sum(note.amount for note in service),
        failed_payments=len(failed),
        days_past_due=late,
    )


def count_support(
    cases: Sequence[SupportCase], *, sla_minutes: int | None, as_of: date, window_days: int
) -> SupportSignals:
    """Urgent (sev-1) cases opened in the window, and those whose first public response came
    after the SLA target (or, still open and unanswered, whose target passed by `as_of`)."""
    start, end = window_start(as_of, window_days), _window_end(as_of)
    urgent = [c for c in cases if c.priority == "urgent" and start <= c.created_at < end]
    breaches = 0
    if sla_minutes is not None:
        for case in urgent:
            target = case.created_at + timedelta(minutes=sla_minutes)
            answered = case.first_response_at
            if (answered is not None and answered > target) or (
                answered is None and case.status not in _CLOSED_CASES and end > target
            ):
                breaches += 1
    return SupportSignals(urgent_cases=len(urgent), sla_breaches=breaches)


async def read_billing(
    billing: BillingPort, customer_id: str, *, as_of: date, window_days: int
) -> BillingSignals:
    invoices = [
        i
        async for i in _every(
            lambda at: billing.list_invoices(customer_id=customer_id, cursor=at, limit=PAGE)
        )
    ]
    credits = [
        c
        async for c in _every(
            lambda at: billing.list_credit_notes(customer_id=customer_id, cursor=at, limit=PAGE)
        )
    ]
    return count_billing(invoices, credits, as_of=as_of, window_days=window_days)


async def read_support(
    support: SupportPort, organization_id: str, *, as_of: date, window_days: int
) -> SupportSignals:
    entitlement = await support.get_entitlement(organization_id)
    cases = [
        c
        async for c in _every(
            lambda at: support.list_cases(
                organization_id=organization_id, priority="urgent", cursor=at, limit=PAGE
            )
        )
    ]
    minutes = entitlement.sla_first_response_minutes if entitlement is not None else None
    return count_support(cases, sla_minutes=minutes, as_of=as_of, window_days=window_days)


async def _every(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        for item in page.data:
            yield item
        cursor = page.next_cursor
        if cursor is None:
            return
