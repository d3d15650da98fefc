"""Customer master: one customer per CRM account in billing, ERP and support, linked by id.

For each platform the flow first looks for the customer it already has, then creates it:
a recorded cross-reference; the platform's own link to the account (Stripe customer metadata
`crm_account_id`, with the canonical id beside it in `canonical_id`; NetSuite customer
externalId and Zendesk organization `external_id` both set to the canonical id); the tax id;
the exact name and country. A second customer for one account is never created: creates are
keyed (Stripe Idempotency-Key, NetSuite and Zendesk upserts by the canonical id). No
compensation: a failure waits in the exception queue.

Owner teams follow `exceptions.owner_for`: outages and refused credentials go to integration,
the ERP steps to finance, the support steps to support ops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Literal

import msgspec

from contracts.errors import UpstreamError
from contracts.v1 import AddressInput, Customer, CustomerCreate, Page
from process_apis.cross_references import CrossReferences
from process_apis.engine.durable import (
    BUSY_PLATFORM,
    FlowInstance,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
)
from system_apis.billing.port import BillingPort
from system_apis.erp.port import ErpPort
from system_apis.support.port import SupportPort

__all__ = [
    "CUSTOMER",
    "FLOW_TYPE",
    "CustomerLinks",
    "CustomerMaster",
    "Match",
    "canonical_customer_id",
    "customer_create",
    "customer_flow_id",
    "matches_name",
    "matches_tax_id",
]

FLOW_TYPE: Final = "customer_master"
CUSTOMER: Final = "customer"
"""The cross-reference entity of customers."""
CANONICAL_PREFIX: Final = "cus-"
PAGE_SIZE: Final = 100
"""The largest page every platform's list of customers accepts."""

MatchedBy = Literal["cross_reference", "external_id", "tax_id", "name"]


class Match(msgspec.Struct, frozen=True, kw_only=True):
    """A platform record found for an account, and how it was found."""

    id: str
    by: MatchedBy

    @property
    def linked(self) -> bool:
        """Whether the platform record already carries the canonical id."""
        return self.by in ("cross_reference", "external_id")


class CustomerLinks(msgspec.Struct, frozen=True, kw_only=True):
    """The customer of one CRM account in every platform."""

    canonical_id: str
    crm_account_id: str
    legal_entity: str
    billing_customer_id: str
    erp_customer_id: str
    support_organization_id: str


def canonical_customer_id(crm_account_id: str) -> str:
    """The canonical id of the account's customer: derived, so every replay agrees."""
    return CANONICAL_PREFIX + crm_account_id


def customer_flow_id(crm_account_id: str) -> str:
    """The id of the account's customer-master flow."""
    return f"customer:{crm_account_id}"


def customer_create(account: Customer) -> CustomerCreate:
    """What billing and the ERP are asked to create for a CRM account."""
    address = account.billing_address
    return CustomerCreate(
        legal_name=account.legal_name,
        legal_entity=account.legal_entity,
        currency=account.currency,
        country=account.country,
        billing_address=None
        if address is None
        else AddressInput(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            region=address.region,
            postal_code=address.postal_code,
            country=address.country,
        ),
        tax_id=account.tax_id,
        email=account.email,
        phone=account.phone,
        website=account.website,
        payment_terms_days=account.payment_terms_days,
    )


def matches_tax_id(candidate: Customer, account: Customer) -> bool:
    return bool(account.tax_id) and candidate.tax_id == account.tax_id


def matches_name(candidate: Customer, account: Customer) -> bool:
    """The exact name, and the same country where the platform knows one."""
    same_country = candidate.country is None or candidate.country == account.country
    return candidate.legal_name == account.legal_name and same_country


@flow_class("customer-master")
class CustomerMaster(FlowInstance):
    """The customer master's steps (used by every flow that needs a customer) and its own
    flow, `sync`, started by `POST /process/v1/customers/{crm_account_id}/sync`."""

    def __init__(
        self,
        *,
        billing: BillingPort,
        erp: ErpPort,
        support: SupportPort,
        references: CrossReferences,
    ) -> None:
        super().__init__()
        self.billing = billing
        self.erp = erp
        self.support = support
        self.references = references

    # -- billing (Stripe) ------------------------------------------------------------------

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def find_billing_customer(self, account: Customer) -> Match | None:
        """The account's Stripe customer: linked before, tagged with the account id in its
        metadata, or with its tax id or name; None when Stripe has none."""
        known = await self._known(account, "stripe")
        if known is not None:
            return known
        found = await self.billing.find_customer(crm_account_id=account.id)
        match = None if found is None else Match(id=found.id, by="external_id")
        if match is None:
            match = await _match_in(_pages("stripe", self._billing_page), account)
        return None if match is None else await self._link(account, "stripe", match)

    @flow_step(system="stripe", retry=BUSY_PLATFORM)
    async def create_billing_customer(self, account: Customer) -> Match:
        """A Stripe customer for the account, named after it, its ids in the metadata."""
        created = await self.billing.create_customer(
            customer_create(account),
            crm_account_id=account.id,
            canonical_id=canonical_customer_id(account.id),
            idempotency_key=_shared_key(account.id, "create_billing_customer"),
        )
        return await self._link(account, "stripe", Match(id=created.id, by="external_id"))

    # -- ERP (NetSuite) --------------------------------------------------------------------

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def find_erp_customer(self, account: Customer) -> Match | None:
        """The account's NetSuite customer: linked before, with the canonical id as its
        externalId, or with its tax id or name in the legal entity; None when there is none."""
        known = await self._known(account, "netsuite")
        if known is not None:
            return known
        canonical = canonical_customer_id(account.id)
        found = await self.erp.find_customer(external_id=canonical)
        match = None if found is None else Match(id=found.id, by="external_id")
        if match is None:

            async def erp_page(cursor: str | None) -> Page[Customer]:
                return await self.erp.list_customers(
                    legal_entity=account.legal_entity, cursor=cursor, limit=PAGE_SIZE
                )

            match = await _match_in(_pages("netsuite", erp_page), account)
        return None if match is None else await self._link(account, "netsuite", match)

    @flow_step(system="netsuite", retry=BUSY_PLATFORM)
    async def create_erp_customer(self, account: Customer) -> Match:
        """The NetSuite customer of the account in its subsidiary and currency."""
        # An upsert by the canonical id: a repeat (or a concurrent flow) lands on one record.
        customer = await self.erp.upsert_customer(
            customer_create(account), external_id=canonical_customer_id(account.id)
        )
        return await self._link(account, "netsuite", Match(id=customer.id, by="external_id"))

    # -- support (Zendesk) -----------------------------------------------------------------

    @flow_step(system="zendesk", retry=BUSY_PLATFORM)
    async def find_support_organization(self, account: Customer) -> Match | None:
        """The account's Zendesk organization: linked before, with the canonical id as its
        external_id, or with its name (not yet linked); None when there is none."""
        known = await self._known(account, "zendesk")
        if known is not None:
            return known
        found = await self.support.find_organization(canonical_customer_id(account.id))
        if found is not None:
            return await self._link(account, "zendesk", Match(id=found.id, by="external_id"))
        # The support desk may already hold the company (a seeded or hand-made organization,
        # whose name is unique there): it is linked, not created again.
        return await _match_in(_pages("zendesk", self._support_page), account)

    @flow_step(system="zendesk", retry=BUSY_PLATFORM)
    async def link_support_organization(
        self, account: Customer, organization_id: str | None
    ) -> Match:
        """Write the canonical id onto the organization found by name, or create one."""
        refs = {"salesforce": account.id}
        if organization_id is not None:
            refs["zendesk"] = organization_id
        canonical = canonical_customer_id(account.id)
        organization = await self.support.upsert_organization(
            Customer(
                id=canonical,
                legal_name=account.legal_name,
                legal_entity=account.legal_entity,
                currency=account.currency,
                country=account.country,
                refs=refs,
            ),
            external_id=canonical,
        )
        return await self._link(account, "zendesk", Match(id=organization.id, by="external_id"))

    # -- the flow --------------------------------------------------------------------------

    async def ensure(self, account: Customer) -> CustomerLinks:
        """The account's customer in every platform, found or created (flow code: call it
        from a flow body)."""
        billing = await self.find_billing_customer(account)
        if billing is None:
            billing = await self.create_billing_customer(account)
        erp = await self.find_erp_customer(account)
        if erp is None:
            erp = await self.create_erp_customer(account)
        support = await self.find_support_organization(account)
        if support is None or not support.linked:
            support = await self.link_support_organization(
                account, support.id if support is not None else None
            )
        return CustomerLinks(
            canonical_id=canonical_customer_id(account.id),
            crm_account_id=account.id,
            legal_entity=account.legal_entity,
            billing_customer_id=billing.id,
            erp_customer_id=erp.id,
            support_organization_id=support.id,
        )

    @flow()
    async def sync(self, account: Customer) -> CustomerLinks:
        """Make sure the account (as read when the sync was asked) is a customer everywhere."""
        return await self.ensure(account)

    # -- lookups ---------------------------------------------------------------------------

    async def _billing_page(self, cursor: str | None) -> Page[Customer]:
        return await self.billing.list_customers(cursor=cursor, limit=PAGE_SIZE)

    async def _support_page(self, cursor: str | None) -> Page[Customer]:
        return await self.support.list_organizations(cursor=cursor, limit=PAGE_SIZE)


    async def _known(self, account: Customer, system: str) -> Match | None:
        found = await self.references.find(
            CUSTOMER,
            canonical_customer_id(account.id),
            system,
            legal_entity=account.legal_entity,
        )
        if found is None:
            return None
        report_external_ids(**{f"{system}_customer": found})
        return Match(id=found, by="cross_reference")

    async def _link(self, account: Customer, system: str, match: Match) -> Match:
        await self.references.link(
            CUSTOMER,
            canonical_customer_id(account.id),
            system,
            match.id,
            legal_entity=account.legal_entity,
        )
        report_external_ids(**{f"{system}_customer": match.id})
        return match


def _shared_key(crm_account_id: str, step: str) -> str:
    """The idempotency key of a customer create: the one the account's own customer-master
    flow uses (`customer:{account}:{step}`, what `current_idempotency_key()` gives there),
    whichever flow runs it, so two flows creating one customer at once create it once."""
    return f"{customer_flow_id(crm_account_id)}:{step}"


async def _pages(
    vendor: str, fetch: Callable[[str | None], Awaitable[Page[Customer]]]
) -> AsyncIterator[Customer]:
    """Every customer of a paged list, with loop detection."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = await fetch(cursor)
        for customer in page.data:
            yield customer
        cursor = page.next_cursor
        if cursor is None or not page.data:
            return
        if cursor in seen:
            raise UpstreamError(
                f"{vendor} customer paging loops at cursor {cursor}",
                vendor=vendor,
                code="pagination_loop",
            )
        seen.add(cursor)


async def _match_in(customers: AsyncIterator[Customer], account: Customer) -> Match | None:
    """The platform customer of `account`'s legal entity with its tax id, else its name."""
    by_name: Match | None = None
    async for candidate in customers:
        if candidate.legal_entity != account.legal_entity:
            continue
        linked_to = candidate.refs.get("salesforce")
        if linked_to is not None and linked_to != account.id:
            continue
        if matches_tax_id(candidate, account):
            return Match(id=candidate.id, by="tax_id")
        if by_name is None and matches_name(candidate, account):
            by_name = Match(id=candidate.id, by="name")
    return by_name
