"""Parties: the company's legal entities, its customers, their contacts and addresses."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.v1.base import (
    CountryCode,
    CurrencyCode,
    Entity,
    InputStruct,
    LegalEntityCode,
    Refs,
    UtcDateTime,
    ValueObject,
)

__all__ = [
    "Address",
    "AddressInput",
    "Contact",
    "ContactCreate",
    "Customer",
    "CustomerCreate",
    "CustomerPatch",
    "CustomerStatus",
    "LegalEntity",
    "PaymentStatus",
    "RiskLevel",
]

PaymentStatus = Literal["current", "past_due", "delinquent"]
"""`current`: nothing overdue; `past_due`: a payment failed and is being retried;
`delinquent`: retries are exhausted and the account is in collections."""

RiskLevel = Literal["low", "medium", "high"]
CustomerStatus = Literal["active", "churned"]
"""Whether the customer still buys from us: `churned` once its last contract was not renewed."""

_Email = Annotated[str, msgspec.Meta(pattern="^[^@\\s]+@[^@\\s]+$", max_length=254)]
_PaymentTerms = Annotated[int, msgspec.Meta(ge=0, le=365)]


class Address(ValueObject, frozen=True, kw_only=True):
    """A postal address."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    """State, province or county."""
    postal_code: str | None = None
    country: CountryCode | None = None


class AddressInput(InputStruct, frozen=True, kw_only=True):
    """A postal address in a request body (unknown fields refused)."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: CountryCode | None = None

    def to_address(self) -> Address:
        return Address(
            line1=self.line1,
            line2=self.line2,
            city=self.city,
            region=self.region,
            postal_code=self.postal_code,
            country=self.country,
        )


class LegalEntity(Entity, frozen=True, kw_only=True):
    """A subsidiary of the company that books revenue (the ERP's subsidiary)."""

    id: str
    code: LegalEntityCode
    name: str
    country: CountryCode
    currency: CurrencyCode
    """The subsidiary's functional (base) currency."""
    refs: Refs = {}


class Customer(Entity, frozen=True, kw_only=True):
    """A customer account, the same company in every platform."""

    id: str
    legal_name: str
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    """The currency the customer is billed in."""
    country: CountryCode | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    tax_id: str | None = None
    email: str | None = None
    """Billing email."""
    phone: str | None = None
    website: str | None = None
    payment_terms_days: int | None = None
    payment_status: PaymentStatus | None = None
    risk_level: RiskLevel | None = None
    updated_at: UtcDateTime | None = None
    status: CustomerStatus | None = None
    refs: Refs = {}


class CustomerCreate(InputStruct, frozen=True, kw_only=True):
    """A new customer account."""

    legal_name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    legal_entity: LegalEntityCode
    currency: CurrencyCode
    country: CountryCode | None = None
    billing_address: AddressInput | None = None
    shipping_address: AddressInput | None = None
    tax_id: str | None = None
    email: _Email | None = None
    phone: str | None = None
    website: str | None = None
    payment_terms_days: _PaymentTerms | None = None


class CustomerPatch(InputStruct, frozen=True, kw_only=True):
    """A partial update of a customer account: only the fields present are written.

    An absent field is left as it is; `null` clears it. Which platform may receive which field
    is decided by `contracts.ownership`, not here.
    """

    legal_name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | UnsetType = UNSET
    phone: str | UnsetType | None = UNSET
    website: str | UnsetType | None = UNSET
    email: _Email | UnsetType | None = UNSET
    billing_address: AddressInput | UnsetType | None = UNSET
    shipping_address: AddressInput | UnsetType | None = UNSET
    country: CountryCode | UnsetType | None = UNSET
    tax_id: str | UnsetType | None = UNSET
    legal_entity: LegalEntityCode | UnsetType = UNSET
    payment_terms_days: _PaymentTerms | UnsetType | None = UNSET
    payment_status: PaymentStatus | UnsetType | None = UNSET
    risk_level: RiskLevel | UnsetType | None = UNSET

    def fields_set(self) -> tuple[str, ...]:
        """Names of the fields this patch writes, in declaration order."""
        return tuple(
            name for name in self.__struct_fields__ if getattr(self, name) is not UNSET
        )


class Contact(Entity, frozen=True, kw_only=True):
    """A person at a customer."""

    id: str
    customer_id: str | None = None
    first_name: str | None = None
    last_name: str
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    refs: Refs = {}


class ContactCreate(InputStruct, frozen=True, kw_only=True):
    """A new contact at a customer."""

    customer_id: str
    last_name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    first_name: str | None = None
    email: _Email | None = None
    phone: str | None = None
    title: str | None = None
