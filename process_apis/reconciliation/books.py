"""Reading the books: every page of what each system holds for a run's legal entities, as the
canonical records `compare` takes. Each function makes the calls of one platform."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.v1 import Deal, Page
from process_apis.engine.store import cross_references
from process_apis.reconciliation.compare import Books, Link, UsageBook
from process_apis.usage.records import UsageStore
from system_apis.billing.port import BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort

__all__ = ["EPOCH", "read_billing", "read_crm", "read_erp", "read_links", "read_usage"]

PAGE: Final = 100
DEALS_BATCH: Final = 200
EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
CUSTOMER: Final = "customer"
"""The cross-reference entity of customers (as the customer master writes them)."""

T = TypeVar("T")


async def every_page(read: Callable[[str | None], Awaitable[Page[T]]]) -> list[T]:
    """All records of a paged list; stops on a cursor that repeats (a vendor loop)."""
    records: list[T] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = await read(cursor)
        records.extend(page.data)
        if not page.next_cursor or page.next_cursor in seen:
            return records
        seen.add(page.next_cursor)
        cursor = page.next_cursor


def _in(entity: str | None, entities: Collection[str] | None) -> bool:
    return entities is None or (entity is not None and entity in entities)


async def read_crm(
    crm: CrmPort, entities: Collection[str] | None, *, since: datetime | None
) -> Books:
    """Accounts of the entities and their won deals (changed after `since`, when given), and
    which catalog products are metered (a deal's committed amount leaves them out)."""
    accounts = await every_page(
        lambda cursor: crm.list_accounts(legal_entities=entities, cursor=cursor, limit=PAGE)
    )
    products = await crm.list_products()
    deals: dict[str, Deal] = {}
    mark = since or EPOCH
    while True:
        batch = await crm.list_won_deals(since=mark, limit=DEALS_BATCH)
        fresh = [deal for deal in batch if deal.id not in deals]
        for deal in fresh:
            deals[deal.id] = deal
        last = batch[-1].updated_at if batch else None
        # A full batch may end inside a run of equal timestamps: ask again from its last one.
        if len(batch) < DEALS_BATCH or not fresh or last is None:
            break
        mark = last
    return Books(
        accounts=accounts,
        deals=[d for d in deals.values() if _in(d.legal_entity, entities)],
        metered_products=sorted(p.code for p in products if p.usage_metric),
    )


async def read_billing(billing: BillingPort, entities: Collection[str] | None) -> Books:
    customers = await every_page(lambda cursor: billing.list_customers(cursor=cursor, limit=PAGE))
    subscriptions = await every_page(
        lambda cursor: billing.list_subscriptions(status="all", cursor=cursor, limit=PAGE)
    )
    invoices = await every_page(lambda cursor: billing.list_invoices(cursor=cursor, limit=PAGE))
    notes = await every_page(lambda cursor: billing.list_credit_notes(cursor=cursor, limit=PAGE))
    customer_entity = {c.id: c.legal_entity for c in customers}
    return Books(
        billing_customers=[c for c in customers if _in(c.legal_entity, entities)],
        subscriptions=[
            s
            for s in subscriptions
            if _in(s.legal_entity or customer_entity.get(s.customer_id), entities)
        ],
        billing_invoices=[i for i in invoices if _in(i.legal_entity, entities)],
        credit_notes=[
            n for n in notes if _in(n.legal_entity or customer_entity.get(n.customer_id), entities)
        ],
    )


async def read_erp(erp: ErpPort, entities: Collection[str] | None) -> Books:
    # Independent lists, read at once (NetSuite's concurrency limit is the outbound
    # policy's to keep).
    customers, orders, invoices, memos = await asyncio.gather(
        every_page(lambda cursor: erp.list_customers(cursor=cursor, limit=PAGE)),
        # The comparison reads orders' and invoices' totals and tax, never their lines.
        every_page(lambda cursor: erp.list_sales_orders(cursor=cursor, limit=PAGE, lines=False)),
        every_page(lambda cursor: erp.list_invoices(cursor=cursor, limit=PAGE, lines=False)),
        every_page(lambda cursor: erp.list_credit_memos(cursor=cursor, limit=PAGE)),
    )
    return Books(
        erp_customers=[c for c in customers if _in(c.legal_entity, entities)],
        sales_orders=[o for o in orders if _in(o.legal_entity, entities)],
        erp_invoices=[i for i in invoices if _in(i.legal_entity, entities)],
        credit_memos=[m for m in memos if _in(m.legal_entity, entities)],
    )


async def read_links(database: AsyncEngine, entities: Collection[str] | None) -> list[Link]:
    statement = sa.select(
        cross_references.c.canonical_id,
        cross_references.c.system,
        cross_references.c.legal_entity,
        cross_references.c.external_id,
    ).where(cross_references.c.entity == CUSTOMER)
    if entities is not None:
        statement = statement.where(cross_references.c.legal_entity.in_(sorted(entities)))
    async with database.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [
        Link(
            canonical_id=row.canonical_id,
            system=row.system,
            legal_entity=row.legal_entity,
            external_id=row.external_id,
        )
        for row in rows
    ]


async def read_usage(
    database: AsyncEngine,
    billing: BillingPort,
    entities: Collection[str] | None,
    *,
    now: datetime,
) -> list[UsageBook]:
    """Usage of the closed periods (billing has invoiced them, or they ended by `now`):
    accepted and pushed units from the gateway's records, invoiced units from billing's
    summaries of each metered item."""
    totals = await UsageStore(database).entity_totals(
        sorted(entities) if entities is not None else None
    )
    invoiced: dict[tuple[str, datetime], int] = {}
    for item in sorted({t.subscription_item_id for t in totals}):
        for summary in await billing.list_usage_summaries(item):
            if summary.invoice_id is not None:
                invoiced[(item, summary.period_start)] = summary.total_usage
    return [
        UsageBook(
            subscription_id=t.subscription_id,
            metric=t.metric,
            legal_entity=t.legal_entity or "",
            period_start=t.period_start,
            period_end=t.period_end,
            accepted=t.accepted,
            pushed=t.pushed,
            invoiced=invoiced.get((t.subscription_item_id, t.period_start)),
        )
        for t in totals
        if (t.subscription_item_id, t.period_start) in invoiced or t.period_end <= now
    ]
