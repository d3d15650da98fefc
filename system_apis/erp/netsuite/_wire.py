"""NetSuite REST record and query payloads as the client decodes them (lenient: only the
fields the gateway uses; unknown fields are ignored)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

__all__ = [
    "ApplyLine",
    "ApprovalRecord",
    "Collection",
    "CreditMemoRecord",
    "CurrencyRecord",
    "CustomerPaymentRecord",
    "CustomerRecord",
    "ErrorDetail",
    "ErrorDocument",
    "InvoiceRecord",
    "ItemLine",
    "ItemRecord",
    "JournalEntryRecord",
    "JournalLineRecord",
    "Link",
    "ListItem",
    "PriceLine",
    "Ref",
    "SalesOrderRecord",
    "Sublist",
    "SubsidiaryRecord",
    "SuiteQLPage",
    "TaxCodeRecord",
    "TokenResponse",
]

T = TypeVar("T")


class _Wire(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """NetSuite writes body fields in camelCase; custom fields keep their script ids."""


class Link(_Wire, frozen=True, kw_only=True):
    rel: str
    href: str


class Ref(_Wire, frozen=True, kw_only=True):
    """A reference to another record (`{"id": "7", "refName": "..."}`) or a select value."""

    id: str
    ref_name: str | None = None


class ListItem(_Wire, frozen=True, kw_only=True):
    id: str
    links: list[Link] = []


class Collection(_Wire, frozen=True, kw_only=True):
    """A page of a record list: ids and links only."""

    items: list[ListItem] = []
    links: list[Link] = []
    count: int = 0
    has_more: bool = False
    offset: int = 0
    total_results: int | None = None


class SuiteQLPage(_Wire, frozen=True, kw_only=True):
    """A page of SuiteQL rows: every value a string, absent when NULL."""

    items: list[dict[str, Any]] = []
    links: list[Link] = []
    count: int = 0
    has_more: bool = False
    offset: int = 0
    total_results: int | None = None


class Sublist(_Wire, Generic[T], frozen=True, kw_only=True):
    """A sublist; `items` is present only when read with `expandSubResources=true`."""

    items: list[T] = []
    links: list[Link] = []


class SubsidiaryRecord(_Wire, frozen=True, kw_only=True):
    id: str
    name: str
    country: str | None = None
    currency: Ref | None = None
    external_id: str | None = None
    is_inactive: bool = False


class CurrencyRecord(_Wire, frozen=True, kw_only=True):
    id: str
    symbol: str
    name: str | None = None


class CustomerRecord(_Wire, frozen=True, kw_only=True):
    id: str
    company_name: str | None = None
    entity_id: str | None = None
    email: str | None = None
    phone: str | None = None
    url: str | None = None
    subsidiary: Ref
    currency: Ref | None = None
    external_id: str | None = None
    terms: Ref | None = None
    credit_hold_override: Ref | str | None = None
    balance: Decimal | None = None
    overdue_balance: Decimal | None = None
    last_modified_date: dt.datetime | None = None
    collections_status: str | None = msgspec.field(
        default=None, name="custentity_collections_status"
    )
    tax_id: str | None = msgspec.field(default=None, name="custentity_tax_id")
    risk_level: str | None = msgspec.field(default=None, name="custentity_risk_level")


class PriceLine(_Wire, frozen=True, kw_only=True):
    currency: Ref
    price: Decimal
    price_level: Ref | None = None


class ItemRecord(_Wire, frozen=True, kw_only=True):
    id: str
    item_id: str
    display_name: str | None = None
    sales_description: str | None = None
    external_id: str | None = None
    is_inactive: bool = False
    billing_interval: str | None = msgspec.field(
        default=None, name="custitem_erpgw_billing_interval"
    )
    price: Sublist[PriceLine] | None = None


class ItemLine(_Wire, frozen=True, kw_only=True):
    item: Ref
    quantity: Decimal = Decimal(1)
    amount: Decimal
    rate: Decimal | None = None
    description: str | None = None
    line: int | None = None
    tax_code: Ref | None = None
    tax_rate1: Decimal | None = msgspec.field(default=None, name="taxRate1")
    """Percent."""
    tax1_amt: Decimal | None = msgspec.field(default=None, name="tax1Amt")


class TaxCodeRecord(_Wire, frozen=True, kw_only=True):
    """A tax code (`salesTaxItem`): its external id is the company's tax code."""

    id: str
    item_id: str
    rate: Decimal = Decimal(0)
    external_id: str | None = None
    is_inactive: bool = False


class SalesOrderRecord(_Wire, frozen=True, kw_only=True):
    id: str
    tran_id: str | None = None
    entity: Ref
    subsidiary: Ref
    currency: Ref
    tran_date: dt.date
    status: Ref | str | None = None
    total: Decimal = Decimal(0)
    external_id: str | None = None
    memo: str | None = None
    other_ref_num: str | None = None
    item: Sublist[ItemLine] | None = None


class InvoiceRecord(_Wire, frozen=True, kw_only=True):
    id: str
    tran_id: str | None = None
    entity: Ref
    subsidiary: Ref
    currency: Ref
    tran_date: dt.date
    due_date: dt.date | None = None
    status: Ref | str | None = None
    total: Decimal = Decimal(0)
    amount_remaining: Decimal | None = None
    created_from: Ref | None = None
    external_id: str | None = None
    memo: str | None = None
    collections_status: str | None = msgspec.field(
        default=None, name="custbody_collections_status"
    )
    subtotal: Decimal | None = None
    tax_total: Decimal | None = None
    tax_note: str | None = msgspec.field(default=None, name="custbody_erpgw_tax_note")
    item: Sublist[ItemLine] | None = None


class CreditMemoRecord(_Wire, frozen=True, kw_only=True):
    id: str
    tran_id: str | None = None
    entity: Ref
    subsidiary: Ref
    currency: Ref
    tran_date: dt.date | None = None
    total: Decimal = Decimal(0)
    created_from: Ref | None = None
    external_id: str | None = None
    memo: str | None = None


class ApplyLine(_Wire, frozen=True, kw_only=True):
    doc: Ref
    apply: bool = True
    amount: Decimal = Decimal(0)


class CustomerPaymentRecord(_Wire, frozen=True, kw_only=True):
    id: str
    tran_id: str | None = None
    customer: Ref
    subsidiary: Ref
    currency: Ref
    payment: Decimal
    tran_date: dt.date | None = None
    external_id: str | None = None
    apply: Sublist[ApplyLine] | None = None


class JournalLineRecord(_Wire, frozen=True, kw_only=True):
    account: Ref
    debit: Decimal | None = None
    credit: Decimal | None = None
    memo: str | None = None


class JournalEntryRecord(_Wire, frozen=True, kw_only=True):
    id: str
    tran_id: str | None = None
    subsidiary: Ref
    currency: Ref
    tran_date: dt.date
    memo: str | None = None
    external_id: str | None = None
    line: Sublist[JournalLineRecord] | None = None


class ApprovalRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The `customrecord_erpgw_approval` custom record (custom field script ids as named)."""

    id: str
    external_id: str | None = msgspec.field(default=None, name="externalId")
    kind: str = msgspec.field(name="custrecord_kind")
    subject: str = msgspec.field(name="custrecord_subject")
    status: str | Ref = msgspec.field(default="pending", name="custrecord_status")
    amount: Decimal | None = msgspec.field(default=None, name="custrecord_amount")
    currency: Ref | None = msgspec.field(default=None, name="custrecord_currency")
    requested_at: str | None = msgspec.field(default=None, name="custrecord_requested_at")
    requested_by: str | None = msgspec.field(default=None, name="custrecord_requested_by")
    decided_at: str | None = msgspec.field(default=None, name="custrecord_decided_at")
    decided_by: str | None = msgspec.field(default=None, name="custrecord_decided_by")
    reason: str | None = msgspec.field(default=None, name="custrecord_reason")
    flow_id: str | None = msgspec.field(default=None, name="custrecord_flow_id")
    subsidiary: Ref | None = None
    created: dt.datetime | None = None


class TokenResponse(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = 3600


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    detail: str = ""
    error_code: str | None = msgspec.field(default=None, name="o:errorCode")
    error_path: str | None = msgspec.field(default=None, name="o:errorPath")
    error_query_param: str | None = msgspec.field(default=None, name="o:errorQueryParam")
    error_header: str | None = msgspec.field(default=None, name="o:errorHeader")


class ErrorDocument(msgspec.Struct, frozen=True, kw_only=True):
    type: str | None = None
    title: str | None = None
    status: int | None = None
    details: list[ErrorDetail] = msgspec.field(default_factory=list, name="o:errorDetails")
