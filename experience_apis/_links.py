"""Which records in each platform are one customer, read from the process layer's
cross-reference table (`process_apis.engine.store.cross_references`, entity `customer`).

The customer master flow links each canonical customer to its Stripe customer, Zendesk
organization and NetSuite customer (one row per platform and legal entity). A canonical
customer id is derived from its Salesforce account (`customer_master.canonical_customer_id`,
`cus-` + the account id), so the account and the canonical id give each other without a row.
A view starts from whichever id its caller has (a CRM account, a Zendesk organization, a
portal token's customer) and finds the others here. A customer with no rows yet has only the
ids derived from the one the view started with; views then fall back to the platform's own
link where one exists (the Stripe customer's `crm_account_id` metadata: `billing_customer`).

Links change rarely (once, when the customer master runs), so lookups are kept in process
for `ttl_seconds`: a new link may take that long to show in the views.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import UpstreamNotFound
from contracts.v1 import Customer
from process_apis.customer_master.flow import CANONICAL_PREFIX, canonical_customer_id
from process_apis.engine.store import cross_references
from system_apis.billing.port import BillingPort

__all__ = ["CUSTOMER_ENTITY", "CustomerLinks", "LinkResolver", "billing_customer"]

CUSTOMER_ENTITY = "customer"
_MAX_CACHED = 10_000


class CustomerLinks(msgspec.Struct, frozen=True, kw_only=True):
    """One customer's ids in each platform (None where not known)."""

    canonical_id: str | None = None
    salesforce: str | None = None
    stripe: str | None = None
    zendesk: str | None = None
    netsuite: str | None = None


class LinkResolver:
    """Looks customers up in the cross-reference table (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, CustomerLinks]] = {}

    async def for_crm_account(self, account_id: str) -> CustomerLinks:
        """The customer of a Salesforce account; at least the account and its canonical id."""
        found = await self._lookup("salesforce", account_id)
        return _completed(found, account_id=account_id)

    async def for_organization(self, organization_id: str) -> CustomerLinks:
        """The customer of a Zendesk organization; at least the organization itself."""
        found = await self._lookup("zendesk", organization_id)
        return _completed(found, organization_id=organization_id)

    async def for_portal(self, bound: str) -> CustomerLinks:
        """The customer a portal token is bound to: `bound` is a canonical customer id when
        it has the canonical form (`cus-...`) or the table knows it as one, else a Salesforce
        account id."""
        found = await self._lookup("canonical", bound)
        if found.canonical_id is not None or bound.startswith(CANONICAL_PREFIX):
            return _completed(found, canonical_id=bound)
        return await self.for_crm_account(bound)

    async def _lookup(self, system: str, external_id: str) -> CustomerLinks:
        key = (system, external_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        links = await self._query(system, external_id)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now, links)
        return links

    async def _query(self, system: str, external_id: str) -> CustomerLinks:
        table = cross_references
        if system == "canonical":
            match: sa.ColumnElement[bool] = table.c.canonical_id == external_id
        else:
            match = table.c.canonical_id.in_(
                sa.select(table.c.canonical_id).where(
                    table.c.entity == CUSTOMER_ENTITY,
                    table.c.system == system,
                    table.c.external_id == external_id,
                )
            )
            if system == "salesforce":
                match = sa.or_(match, table.c.canonical_id == canonical_customer_id(external_id))
        statement = (
            sa.select(table.c.canonical_id, table.c.system, table.c.external_id)
            .where(table.c.entity == CUSTOMER_ENTITY, match)
            # One canonical customer, and per platform the entity-wide row ("") first.
            .order_by(table.c.canonical_id, table.c.system, table.c.legal_entity)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        if not rows:
            return CustomerLinks()
        canonical = rows[0].canonical_id
        ids: dict[str, str] = {}
        for row in rows:
            if row.canonical_id == canonical:
                ids.setdefault(row.system, row.external_id)
        return CustomerLinks(
            canonical_id=canonical,
            salesforce=ids.get("salesforce"),
            stripe=ids.get("stripe"),
            zendesk=ids.get("zendesk"),
            netsuite=ids.get("netsuite"),
        )


def _completed(
    found: CustomerLinks,
    *,
    account_id: str | None = None,
    organization_id: str | None = None,
    canonical_id: str | None = None,
) -> CustomerLinks:
    """`found` with the ids the lookup started from and those derived from them."""
    canonical = found.canonical_id or canonical_id
    if canonical is None and account_id is not None:
        canonical = canonical_customer_id(account_id)
    salesforce = found.salesforce or account_id
    if salesforce is None and canonical is not None and canonical.startswith(CANONICAL_PREFIX):
        salesforce = canonical.removeprefix(CANONICAL_PREFIX)
    return msgspec.structs.replace(
        found,
        canonical_id=canonical,
        salesforce=salesforce,
        zendesk=found.zendesk or organization_id,
    )


async def billing_customer(billing: BillingPort, links: CustomerLinks) -> Customer | None:
    """The customer's billing record: by its cross-referenced Stripe id, else by the Stripe
    customer's `crm_account_id` metadata; None when billing does not know the customer."""
    if links.stripe:
        try:
            return await billing.get_customer(links.stripe)
        except UpstreamNotFound:
            return None
    if links.salesforce:
        return await billing.find_customer(crm_account_id=links.salesforce)
    return None
