"""Operations the views use when a platform's adapter offers them; the domain ports do not
declare them (yet), so a view checks for each and leaves its field null without it.

- `AccountDeals` (CRM): the open opportunities of one account.
- `AccountOwners` (CRM): the user who owns an account.
- `CreditHolds` (ERP): whether a customer is on credit hold (not in the canonical Customer).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from contracts.v1 import Contact, Deal

__all__ = ["AccountDeals", "AccountOwners", "CreditHolds"]


@runtime_checkable
class AccountDeals(Protocol):
    async def list_open_deals(self, account_id: str) -> list[Deal]:
        """The account's opportunities that are not closed, with their lines."""
        ...


@runtime_checkable
class AccountOwners(Protocol):
    async def get_account_owner(self, account_id: str) -> Contact | None:
        """The CRM user who owns the account (as a person: name, email, title)."""
        ...


@runtime_checkable
class CreditHolds(Protocol):
    async def get_credit_hold(self, customer_id: str) -> bool:
        """Whether the ERP holds new orders of the customer for credit reasons."""
        ...
