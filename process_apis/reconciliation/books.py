"""Reading the books: every page of what each system holds for a run's legal entities, as the
canonical records `compare` takes. Each function makes the calls of one platform.

An incremental read asks each system's change feed what changed since a time (billing: its
events; the ERP: records by last-modified date), widens that to the customers the changes
belong to, in every system (through the cross-references), and reads those customers' books
whole: a customer's invoices, payments, credits and orders are compared together, so nothing
it holds is missed or mistaken for missing. Counterparts booked under another customer are
read by key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import UpstreamNotFound
from contracts.v1 import CreditNote, Customer, Deal, Invoice, Page
from process_apis.engine.store import cross_references
from process_apis.reconciliation.compare import Books, Link, UsageBook
from process_apis.usage.records import UsageStore
from system_apis.billing.port import BillingChanges, BillingPort
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpChanges, ErpPort

__all__ = [
    "EPOCH",
    "accounts_in_scope",
    "billing_scope",
    "erp_scope",
    "read_billing",
    "read_billing_counterparts",
    "read_billing_customers",
    "read_crm",
    "read_erp",
    "read_erp_counterparts",
    "read_erp_customers",
    "read_links",
    "read_usage",
]

PAGE: Final = 100
DEALS_BATCH: Final = 200
EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
CUSTOMER: Final = "customer"
"""The cross-reference entity of customers (as the customer master writes them)."""
CUSTOMER_PREFIX: Final = "cus-"
"""A customer's canonical id is this prefix and its CRM account id."""
CONCURRENT_CUSTOMERS: Final = 8
"""Customers whose books are read at once in an incremental read."""
ERP_CUSTOMERS_AT_ONCE: Final = PAGE
"""Customers named in one ERP list read (SuiteQL's IN takes at most 1,000 values)."""

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


# -- incremental reads ---------------------------------------------------------------------


def billing_scope(
    changes: BillingChanges, erp_changes: ErpChanges, deals: Collection[Deal], links: list[Link]
) -> list[str]:
    """The billing customers to read: those that changed, and the billing customers of the
    accounts whose ERP customer changed or whose deals changed; never a deleted one (its
    account is compared all the same: see `accounts_in_scope`)."""
    accounts = {deal.customer_id for deal in deals}
    accounts |= _accounts_of(links, "netsuite", erp_changes.customers)
    accounts |= _accounts_of(links, "stripe", changes.customers)
    wanted = set(changes.customers) | _linked(links, "stripe", accounts)
    return sorted(wanted - set(changes.deleted_customers))


def erp_scope(
    changes: BillingChanges,
    erp_changes: ErpChanges,
    billing_customers: Collection[Customer],
    deals: Collection[Deal],
    links: list[Link],
) -> list[str]:
    """The ERP customers to read: those modified, and the ERP customers of the accounts read
    in billing, changed there (deleted ones too) or whose deals changed."""
    accounts = accounts_in_scope(changes, erp_changes, billing_customers, deals, links)
    return sorted(set(erp_changes.customers) | _linked(links, "netsuite", accounts))


def accounts_in_scope(
    changes: BillingChanges,
    erp_changes: ErpChanges,
    billing_customers: Collection[Customer],
    deals: Collection[Deal],
    links: list[Link],
) -> set[str]:
    """The CRM accounts an incremental run compares (its `customers` kind): those of the
    billing customers read or changed (a deleted one by its cross-reference), of the ERP
    customers modified, and of the deals changed."""
    accounts = {deal.customer_id for deal in deals}
    accounts |= {c.refs["salesforce"] for c in billing_customers if c.refs.get("salesforce")}
    accounts |= _accounts_of(links, "stripe", [c.id for c in billing_customers])
    accounts |= _accounts_of(links, "stripe", changes.customers)
    accounts |= _accounts_of(links, "netsuite", erp_changes.customers)
    return accounts


def _accounts_of(links: list[Link], system: str, external_ids: Collection[str]) -> set[str]:
    wanted = set(external_ids)
    return {
        link.canonical_id.removeprefix(CUSTOMER_PREFIX)
        for link in links
        if link.system == system and link.external_id in wanted
    }


def _linked(links: list[Link], system: str, accounts: Collection[str]) -> set[str]:
    wanted = {CUSTOMER_PREFIX + account for account in accounts}
    return {
        link.external_id for link in links if link.system == system and link.canonical_id in wanted
    }


async def read_billing_customers(
    billing: BillingPort, entities: Collection[str] | None, customer_ids: Collection[str]
) -> Books:
    """The whole billing book of each customer: the customer (gone when deleted), its
    invoices and credit notes; and every subscription (one list for all customers: the deal
    and usage checks look subscriptions up by id, and they are few beside invoices)."""
    gate = asyncio.Semaphore(CONCURRENT_CUSTOMERS)

    async def one(customer_id: str) -> tuple[Customer, list[Invoice], list[CreditNote]] | None:
        async with gate:
            try:
                customer = await billing.get_customer(customer_id)
            except UpstreamNotFound:
                return None
            invoices, notes = await asyncio.gather(
                every_page(
                    lambda cursor: billing.list_invoices(
                        customer_id=customer_id, cursor=cursor, limit=PAGE
                    )
                ),
                every_page(
                    lambda cursor: billing.list_credit_notes(
                        customer_id=customer_id, cursor=cursor, limit=PAGE
                    )
                ),
            )
            return customer, invoices, notes

    found, subscriptions = await asyncio.gather(
        asyncio.gather(*map(one, sorted(customer_ids))),
        every_page(
            lambda cursor: billing.list_subscriptions(status="all", cursor=cursor, limit=PAGE)
        ),
    )
    wanted = [book for book in found if book and _in(book[0].legal_entity, entities)]
    customer_entity = {customer.id: customer.legal_entity for customer, _, _ in wanted}
    return Books(
        billing_customers=[customer for customer, _, _ in wanted],
        subscriptions=[
            s
            for s in subscriptions
            if _in(s.legal_entity or customer_entity.get(s.customer_id), entities)
        ],
        billing_invoices=[i for _, invoices, _ in wanted for i in invoices],
        credit_notes=[n for _, _, notes in wanted for n in notes],
    )


async def read_erp_customers(
    erp: ErpPort, entities: Collection[str] | None, customer_ids: Collection[str]
) -> Books:
    """The whole ERP book of each customer: the customer, its sales orders, invoices and
    credit memos (headers, as the full read takes them), each kind read for many customers
    at once."""
    gate = asyncio.Semaphore(CONCURRENT_CUSTOMERS)

    async def customer(customer_id: str) -> Customer | None:
        async with gate:
            try:
                return await erp.get_customer(customer_id)
            except UpstreamNotFound:
                return None

    found = await asyncio.gather(*map(customer, sorted(customer_ids)))
    customers = [c for c in found if c is not None and _in(c.legal_entity, entities)]
    ids = [c.id for c in customers]
    batches = [
        ids[start : start + ERP_CUSTOMERS_AT_ONCE]
        for start in range(0, len(ids), ERP_CUSTOMERS_AT_ONCE)
    ]
    orders, invoices, memos = await asyncio.gather(
        _each_batch(
            batches,
            lambda batch, cursor: erp.list_sales_orders(
                customer_ids=batch, cursor=cursor, limit=PAGE, lines=False
            ),
        ),
        _each_batch(
            batches,
            lambda batch, cursor: erp.list_invoices(
                customer_ids=batch, cursor=cursor, limit=PAGE, lines=False
            ),
        ),
        _each_batch(
            batches,
            lambda batch, cursor: erp.list_credit_memos(
                customer_ids=batch, cursor=cursor, limit=PAGE
            ),
        ),
    )
    return Books(
        erp_customers=customers, sales_orders=orders, erp_invoices=invoices, credit_memos=memos
    )


async def _each_batch(
    batches: list[list[str]], read: Callable[[list[str], str | None], Awaitable[Page[T]]]
) -> list[T]:
    records: list[T] = []
    for batch in batches:
        records.extend(await every_page(lambda cursor: read(batch, cursor)))  # noqa: B023
    return records


async def read_billing_counterparts(
    billing: BillingPort, entities: Collection[str] | None, invoice_ids: Collection[str]
) -> Books:
    """Billing invoices by id (those the ERP invoices read name, under customers not read);
    an unknown id is left out, so its ERP invoice shows as missing in billing. A credit
    (negative) invoice stays out: credits are compared per customer."""
    gate = asyncio.Semaphore(CONCURRENT_CUSTOMERS)

    async def one(invoice_id: str) -> Invoice | None:
        async with gate:
            try:
                return await billing.get_invoice(invoice_id)
            except UpstreamNotFound:
                return None

    found = await asyncio.gather(*map(one, sorted(invoice_ids)))
    return Books(
        billing_invoices=[
            i for i in found if i is not None and i.total >= 0 and _in(i.legal_entity, entities)
        ]
    )


async def read_erp_counterparts(
    erp: ErpPort, entities: Collection[str] | None, external_ids: Collection[str]
) -> Books:
    """ERP invoices by the billing invoice they post (those booked under a customer not
    read); none found: the billing invoice is missing in the ERP."""
    gate = asyncio.Semaphore(CONCURRENT_CUSTOMERS)

    async def one(external_id: str) -> Invoice | None:
        async with gate:
            return await erp.find_invoice(external_id=external_id)

    found = await asyncio.gather(*map(one, sorted(external_ids)))
    return Books(erp_invoices=[i for i in found if i is not None and _in(i.legal_entity, entities)])
