"""The CRM port: what the process and experience layers need from the CRM, in contracts.

`SalesforceClient` implements it structurally; tests use a fake with the same errors.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import msgspec

from contracts.v1 import (
    Contact,
    ContactCreate,
    Contract,
    Customer,
    CustomerCreate,
    CustomerPatch,
    Deal,
    DealPatch,
    Page,
    Price,
    Product,
    RenewalRisk,
)

__all__ = [
    "AccountNote",
    "ContractCreate",
    "CrmContractsPort",
    "CrmPort",
    "RenewalCreate",
    "RenewalLine",
]


class AccountNote(msgspec.Struct, frozen=True, kw_only=True):
    """A note on an account: its CRM id, title and text."""

    id: str
    title: str
    body: str


# Runtime-checkable: Litestar checks an injected dependency against its annotation.
@runtime_checkable
class CrmPort(Protocol):
    """Accounts, contacts, deals and the catalog of the CRM of record.

    Ids are the CRM's own record ids. Errors are `contracts.errors` upstream errors
    (UpstreamNotFound for an unknown id, UpstreamUnavailable when the CRM cannot answer now).
    """

    async def get_account(self, account_id: str) -> Customer:
        """One account as a customer."""
        ...

    async def list_accounts(
        self,
        *,
        legal_entities: Collection[str] | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Customer]:
        """A page of accounts of the given legal entities (None: all) whose name contains
        `name`; pass the page's `next_cursor` back as `cursor`."""
        ...

    async def update_account(self, account_id: str, patch: CustomerPatch) -> Customer:
        """Write the patch's fields; returns the account as it now is."""
        ...

    async def upsert_account(
        self, customer: Customer | CustomerCreate, *, external_id: str
    ) -> tuple[str, bool]:
        """Create or update the account keyed by `external_id`: (CRM id, created). Safe to
        repeat with the same key."""
        ...

    async def add_account_note(
        self, account_id: str, *, title: str, body: str, idempotency_key: str | None = None
    ) -> str:
        """Attach a note to an account; returns the note's id. Safe to repeat: a note of that
        title already on the account is returned instead of writing a second one, so give each
        note a title of its own."""
        ...

    async def list_account_notes(self, account_id: str) -> list[AccountNote]:
        """The notes of an account, oldest first."""
        ...

    async def list_contacts(self, account_id: str) -> list[Contact]:
        """The contacts of an account."""
        ...

    async def create_contacts(self, contacts: Sequence[ContactCreate]) -> list[str]:
        """Create contacts all or none; returns their ids in order."""
        ...

    async def get_deal(self, opportunity_id: str) -> Deal:
        """A deal with its lines."""
        ...

    async def list_won_deals(self, *, since: datetime, limit: int = 200) -> list[Deal]:
        """Deals won and changed after `since`, oldest change first."""
        ...

    async def update_deal(self, opportunity_id: str, patch: DealPatch) -> None:
        """Write back integration fields (ERP order number, subscription id, status)."""
        ...

    async def list_products(self, *, active_only: bool = False) -> list[Product]:
        """The product catalog."""
        ...

    async def list_prices(self, *, currency: str | None = None) -> list[Price]:
        """List prices of the standard price book, optionally of one currency."""
        ...


class ContractCreate(msgspec.Struct, frozen=True, kw_only=True):
    """The contract a won deal starts: activated from the deal's close date for its term."""

    customer_id: str
    """The CRM account."""
    deal_id: str
    start_date: date
    term_months: int
    currency: str


class RenewalLine(msgspec.Struct, frozen=True, kw_only=True):
    """A product the renewal sells again: quantity and unit price (minor units of the
    renewal's currency)."""

    product_code: str
    quantity: int
    unit_amount: int


class RenewalCreate(msgspec.Struct, frozen=True, kw_only=True):
    """The renewal opportunity of a contract, open at `Prospecting`."""

    customer_id: str
    renews_deal_id: str
    name: str
    close_date: date
    currency: str
    term_months: int
    legal_entity: str | None = None
    lines: list[RenewalLine] = []


# Runtime-checkable: Litestar checks an injected dependency against its annotation.
@runtime_checkable
class CrmContractsPort(Protocol):
    """Contracts and renewal opportunities of the CRM of record.

    A separate port from `CrmPort` so that what only renewals need stays out of every other
    caller's way; `SalesforceClient` implements both. Errors as `CrmPort`'s.
    """

    async def get_contract(self, contract_id: str) -> Contract:
        """One contract with the lines of the deal it was signed for."""
        ...

    async def list_contracts(
        self,
        *,
        customer_id: str | None = None,
        legal_entities: Collection[str] | None = None,
        ending_from: date | None = None,
        ending_to: date | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Contract]:
        """A page of contracts (by id) of an account and/or legal entities (None: all), whose
        end date falls in [`ending_from`, `ending_to`] when given."""
        ...

    async def upsert_contract(
        self, contract: ContractCreate, *, external_id: str
    ) -> tuple[str, bool]:
        """Create (or find) the contract keyed by `external_id`: (id, created). Safe to
        repeat and to run at once from several processes: one key, one record."""
        ...

    async def upsert_renewal(
        self, renewal: RenewalCreate, *, external_id: str
    ) -> tuple[str, bool]:
        """Create (or find) the renewal opportunity keyed by `external_id` with its lines:
        (id, created). A record that already exists is left as it is (a person may have
        worked on it), except that lines missing after an interrupted create are added."""
        ...

    async def list_renewals(self, customer_id: str) -> list[Deal]:
        """The renewal opportunities of an account (with their lines), oldest close first."""
        ...

    async def assess_renewal(
        self, opportunity_id: str, *, risk: RenewalRisk, context: str
    ) -> None:
        """Write the renewal's risk and its context summary to the opportunity."""
        ...

    async def mark_churned(self, account_id: str) -> None:
        """Show on the account that the customer has churned."""
        ...
