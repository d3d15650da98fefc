"""Finance workspace (`/experience/finance/v1/workspace`): the exception queue by owner team
and age and the drift of the latest reconciliation per legal entity and currency (process,
required), credits waiting for approval and AR aging per legal entity and currency (ERP), and
failed payments (billing). Everything is limited to the legal entities
of the caller's token (`Principal.entities`; None: all).

Aging buckets count days past the due date of each open ERP invoice's remaining amount:
`current` (not due yet, or no due date), `1-30`, `31-60`, `61-90`, `90+`. Exception ages are
`<1h`, `1-24h`, `1-7d`, `>7d` since the exception was opened.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from litestar import Response, Router, get
from litestar.openapi.datastructures import ResponseSpec

from contracts.money import Money
from contracts.principal import Principal
from contracts.v1 import ApprovalTask, Invoice, Page, Subscription
from experience_apis._process_reads import ExceptionSummary, ProcessReads
from experience_apis._reconciliation_reads import DriftRow, ReconciliationReads, may_open
from experience_apis._services import (
    AuthedRequest,
    BillingDep,
    ErpDep,
    ViewsDep,
    principal_of,
    require_port,
)
from experience_apis.compose import (
    Source,
    SourceRule,
    SourceState,
    ViewRules,
    conditional_response,
    wants_fresh,
)
from system_apis.billing.port import BillingPort
from system_apis.erp.port import ErpPort

__all__ = [
    "AGING_BUCKETS",
    "FINANCE_WORKSPACE",
    "FinanceWorkspace",
    "aging",
    "aging_bucket",
    "create_router",
    "exception_age",
]

PREFIX = "/experience/finance/v1"
_OPT: dict[str, Any] = {"scopes": ["experience:finance"], "rate_limit_group": "experience"}
FINANCE_WORKSPACE = ViewRules(
    name="finance_workspace",
    sources={
        "process": SourceRule(required=True, budget_seconds=1.5),
        "erp": SourceRule(budget_seconds=2.0),
        "billing": SourceRule(budget_seconds=2.0),
    },
)
AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
EXCEPTION_AGES = ("<1h", "1-24h", "1-7d", ">7d")
PAGE = 100
MAX_PAGES = 20
T = TypeVar("T")


class ProcessData(msgspec.Struct, frozen=True, kw_only=True):
    unresolved: list[ExceptionSummary]
    drift: list[DriftRow]


class ErpData(msgspec.Struct, frozen=True, kw_only=True):
    pending_approvals: list[ApprovalTask]
    open_invoices: list[Invoice]


class BillingData(msgspec.Struct, frozen=True, kw_only=True):
    past_due: list[Subscription]
    open_invoices: list[Invoice]


class OwnerQueue(msgspec.Struct, frozen=True, kw_only=True):
    owner: str
    total: int
    by_age: dict[str, int]
    oldest: list[ExceptionSummary]
    """The five oldest, to start with."""


class WaitingCredit(msgspec.Struct, frozen=True, kw_only=True):
    approval_task_id: str
    kind: str
    subject: str
    amount: Money | None = None
    legal_entity: str | None = None
    flow_id: str | None = None
    requested_at: datetime


class FailedPayment(msgspec.Struct, frozen=True, kw_only=True):
    subscription_id: str
    customer_id: str
    legal_entity: str | None = None
    status: str
    open_invoices: list[str]
    amount_remaining: Money | None = None


class AgingRow(msgspec.Struct, frozen=True, kw_only=True):
    legal_entity: str
    currency: str
    buckets: dict[str, int]
    """Minor units of `currency` per bucket."""
    total: int


class FinanceWorkspace(msgspec.Struct, frozen=True, kw_only=True):
    """A section is null when its source did not answer (see `sources`)."""

    entities: list[str] | None
    """The legal entities shown (None: all)."""
    exceptions: list[OwnerQueue]
    credits_waiting: list[WaitingCredit] | None = None
    failed_payments: list[FailedPayment] | None = None
    ar_aging: list[AgingRow] | None = None
    reconciliation: list[DriftRow] = []
    """The latest completed reconciliation per legal entity and currency: open mismatches,
    their drift and the oldest of them, with a link to the run's mismatches."""
    sources: dict[str, SourceState]


@get(
    "/workspace",
    opt=_OPT,
    summary="Exceptions, reconciliation drift, credits to approve, failed payments and AR aging",
    responses={
        200: ResponseSpec(FinanceWorkspace, description="The workspace", generate_examples=False),
        304: ResponseSpec(None, description="Not modified (If-None-Match)"),
    },
)
async def workspace(
    request: AuthedRequest,
    views: ViewsDep,
    billing: BillingDep = None,
    erp: ErpDep = None,
) -> Response[bytes]:
    principal = principal_of(request)
    entities = principal.entities
    # Cached answers are shared by every caller; each caller's entities are applied after.
    sources = (
        Source("process", "workspace", lambda: _process(views.process), ProcessData),
        Source("erp", "workspace", lambda: _erp(erp), ErpData),
        Source("billing", "workspace", lambda: _billing(billing), BillingData),
    )
    composition = await views.composer.compose(
        views.rules(FINANCE_WORKSPACE), *sources, use_cache=not wants_fresh(request)
    )
    now = views.clock()
    process_data = composition.get(sources[0])
    queue = [
        entry
        for entry in (process_data.unresolved if process_data else [])
        if principal.may_see_entity(entry.legal_entity)
    ]
    drift = [
        row if may_open(row, entities) else msgspec.structs.replace(row, link=None)
        for row in (process_data.drift if process_data else [])
        if principal.may_see_entity(row.legal_entity)
    ]
    erp_data, billing_data = composition.get(sources[1]), composition.get(sources[2])
    view = FinanceWorkspace(
        entities=sorted(entities) if entities is not None else None,
        exceptions=_by_owner(queue, now),
        reconciliation=drift,
        credits_waiting=_credits(erp_data.pending_approvals, principal) if erp_data else None,
        ar_aging=aging(_visible(erp_data.open_invoices, principal), now.date())
        if erp_data
        else None,
        failed_payments=_failed(billing_data, principal) if billing_data else None,
        sources=composition.states,
    )
    return conditional_response(request, view)


def create_router() -> Router:
    return Router(path=PREFIX, route_handlers=[workspace], tags=["finance"])


def aging_bucket(due: date | None, today: date) -> str:
    if due is None or due >= today:
        return "current"
    days = (today - due).days
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


def aging(invoices: Iterable[Invoice], today: date) -> list[AgingRow]:
    """Remaining amounts of open invoices per legal entity, currency and bucket."""
    rows: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(AGING_BUCKETS, 0)
    )
    for invoice in invoices:
        if invoice.status != "open" or invoice.amount_remaining <= 0:
            continue
        buckets = rows[(invoice.legal_entity, invoice.currency)]
        buckets[aging_bucket(invoice.due_date, today)] += invoice.amount_remaining
    return [
        AgingRow(
            legal_entity=entity, currency=currency, buckets=buckets, total=sum(buckets.values())
        )
        for (entity, currency), buckets in sorted(rows.items())
    ]


def exception_age(opened: datetime, now: datetime) -> str:
    age = now - opened
    if age < timedelta(hours=1):
        return "<1h"
    if age < timedelta(days=1):
        return "1-24h"
    if age < timedelta(days=7):
        return "1-7d"
    return ">7d"


def _by_owner(queue: list[ExceptionSummary], now: datetime) -> list[OwnerQueue]:
    owners: dict[str, list[ExceptionSummary]] = defaultdict(list)
    for entry in queue:
        owners[entry.owner].append(entry)
    result = []
    for owner, entries in sorted(owners.items()):
        ages = dict.fromkeys(EXCEPTION_AGES, 0)
        for entry in entries:
            ages[exception_age(entry.created_at, now)] += 1
        result.append(OwnerQueue(owner=owner, total=len(entries), by_age=ages, oldest=entries[:5]))
    return result


def _credits(tasks: list[ApprovalTask], principal: Principal) -> list[WaitingCredit]:
    return [
        WaitingCredit(
            approval_task_id=task.id,
            kind=task.kind,
            subject=task.subject,
            amount=Money(amount=task.amount, currency=task.currency)
            if task.amount is not None and task.currency
            else None,
            legal_entity=task.legal_entity,
            flow_id=task.flow_id,
            requested_at=task.requested_at,
        )
        for task in tasks
        if principal.may_see_entity(task.legal_entity)
    ]


def _failed(data: BillingData, principal: Principal) -> list[FailedPayment]:
    invoices: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in data.open_invoices:
        if invoice.subscription_id:
            invoices[invoice.subscription_id].append(invoice)
    failed = []
    for sub in data.past_due:
        open_ones = invoices.get(sub.id, [])
        entity = sub.legal_entity or (open_ones[0].legal_entity if open_ones else None)
        if not principal.may_see_entity(entity):
            continue
        remaining = sum(i.amount_remaining for i in open_ones if i.currency == sub.currency)
        failed.append(
            FailedPayment(
                subscription_id=sub.id,
                customer_id=sub.customer_id,
                legal_entity=entity,
                status=sub.status,
                open_invoices=[i.id for i in open_ones],
                amount_remaining=Money(amount=remaining, currency=sub.currency),
            )
        )
    return failed


def _visible(invoices: list[Invoice], principal: Principal) -> list[Invoice]:
    return [i for i in invoices if principal.may_see_entity(i.legal_entity)]


async def _process(reads: ProcessReads) -> ProcessData:
    unresolved, drift = await asyncio.gather(
        reads.unresolved_exceptions(entities=None),
        ReconciliationReads(reads.engine).drift(None),
    )
    return ProcessData(unresolved=unresolved, drift=drift)


async def _erp(erp: ErpPort | None) -> ErpData:
    port = require_port(erp, "erp")
    approvals, invoices = await asyncio.gather(
        _all(lambda cursor: port.list_approval_tasks(status="pending", cursor=cursor, limit=PAGE)),
        _all(lambda cursor: port.list_invoices(status="open", cursor=cursor, limit=PAGE)),
    )
    return ErpData(pending_approvals=approvals, open_invoices=invoices)


async def _billing(billing: BillingPort | None) -> BillingData:
    port = require_port(billing, "billing")
    past_due, invoices = await asyncio.gather(
        _all(lambda cursor: port.list_subscriptions(status="past_due", cursor=cursor, limit=PAGE)),
        _all(lambda cursor: port.list_invoices(status="open", cursor=cursor, limit=PAGE)),
    )
    return BillingData(past_due=past_due, open_invoices=invoices)


async def _all(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> list[T]:
    """Every item of a cursor-paged list, at most `MAX_PAGES` pages."""
    items: list[T] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        items.extend(page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    return items
