"""Billing: subscriptions, invoices, payments and credit notes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from contracts.v1.base import (
    CurrencyCode,
    Entity,
    InputStruct,
    LegalEntityCode,
    MinorUnits,
    Refs,
    TaxRateBps,
    UtcDateTime,
    ValueObject,
)

__all__ = [
    "CollectionMethod",
    "CreditNote",
    "CreditNoteCreate",
    "CreditNoteLine",
    "CreditNoteLineInput",
    "CreditNoteReason",
    "CreditNoteStatus",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "Payment",
    "PaymentMethod",
    "PaymentState",
    "Subscription",
    "SubscriptionCreate",
    "SubscriptionItem",
    "SubscriptionItemInput",
    "SubscriptionPatch",
    "SubscriptionStatus",
    "TaxRate",
    "UsageSummary",
]

SubscriptionStatus = Literal[
    "incomplete", "active", "past_due", "canceled", "unpaid", "trialing", "paused"
]
CollectionMethod = Literal["charge_automatically", "send_invoice"]
InvoiceStatus = Literal["draft", "open", "paid", "uncollectible", "void"]
PaymentState = Literal["pending", "succeeded", "failed", "refunded"]
PaymentMethod = Literal["card", "bank_transfer", "direct_debit", "check", "cash", "other"]
CreditNoteStatus = Literal["issued", "void"]
CreditNoteReason = Literal[
    "duplicate", "fraudulent", "order_change", "product_unsatisfactory", "service_credit"
]
"""`service_credit`: a credit owed under a support SLA (see Entitlement)."""

_Quantity = Annotated[int, msgspec.Meta(ge=0)]
_PositiveQuantity = Annotated[int, msgspec.Meta(ge=1)]
_PositiveAmount = Annotated[int, msgspec.Meta(ge=1, description="Minor units, above zero.")]


class SubscriptionItem(Entity, frozen=True, kw_only=True):
    """One price on a subscription with its quantity."""

    id: str
    price_id: str
    product_id: str | None = None
    product_code: str | None = None
    quantity: _Quantity = 1
    unit_amount: MinorUnits | None = None
    """None when the price is tiered."""
    usage_metric: str | None = None
    """Set on a metered item: the metric its usage is reported under (its quantity is 0; the
    period's reported usage is billed at its end)."""
    refs: Refs = {}


class Subscription(Entity, frozen=True, kw_only=True):
    """Recurring billing of a customer for one or more prices."""

    id: str
    customer_id: str
    status: SubscriptionStatus
    currency: CurrencyCode
    current_period_start: UtcDateTime | None = None
    current_period_end: UtcDateTime | None = None
    cancel_at_period_end: bool = False
    canceled_at: UtcDateTime | None = None
    collection_method: CollectionMethod = "charge_automatically"
    days_until_due: int | None = None
    """Set when `collection_method` is `send_invoice`."""
    items: list[SubscriptionItem] = []
    deal_id: str | None = None
    legal_entity: LegalEntityCode | None = None
    correlation_id: str | None = None
    """The trace of the deal that created the subscription: the flows it causes join it."""
    refs: Refs = {}


class SubscriptionItemInput(InputStruct, frozen=True, kw_only=True):
    """A price and quantity to subscribe to (or, in `one_time_items`, to bill once)."""

    price_id: str
    quantity: _PositiveQuantity = 1
    unit_amount: MinorUnits | None = None
    """The sold unit price when it is not the catalog price's (a discount, a negotiated
    price): billed at this amount for the catalog price's product and interval."""
    product_code: str | None = None
    """The catalog product code of the line, kept on the billed item."""
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """What the invoice line says (one-time items)."""
    usage_metric: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    """A metered item: billed for the usage reported under this metric, `quantity` ignored."""


class SubscriptionCreate(InputStruct, frozen=True, kw_only=True):
    """A new subscription."""

    customer_id: str
    currency: CurrencyCode
    items: Annotated[list[SubscriptionItemInput], msgspec.Meta(min_length=1)]
    collection_method: CollectionMethod = "charge_automatically"
    days_until_due: Annotated[int, msgspec.Meta(ge=0, le=365)] | None = None
    deal_id: str | None = None
    legal_entity: LegalEntityCode | None = None
    one_time_items: list[SubscriptionItemInput] = []
    """Charged once, on this subscription's first invoice only (each item names the deal)."""
    tax_rate_ids: list[str] = []
    """Billing tax rates applied to every item and one-time item of the subscription."""
    correlation_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    """The trace the subscription and its invoices belong to (kept in their metadata)."""


class SubscriptionPatch(InputStruct, frozen=True, kw_only=True):
    """A change to a subscription (an amendment); only the fields present are written.

    `items` replaces the whole item list: prices left out are removed.
    """

    items: Annotated[list[SubscriptionItemInput], msgspec.Meta(min_length=1)] | UnsetType = (
        UNSET
    )
    cancel_at_period_end: bool | UnsetType = UNSET


class InvoiceLine(Entity, frozen=True, kw_only=True):
    """One line of an invoice; amounts are in the invoice's currency."""

    id: str
    description: str | None = None
    quantity: _Quantity = 1
    unit_amount: MinorUnits | None = None
    amount: MinorUnits
    tax_rate_bps: TaxRateBps | None = None
    period_start: UtcDateTime | None = None
    period_end: UtcDateTime | None = None
    product_id: str | None = None
    price_id: str | None = None
    product_code: str | None = None
    """The catalog product code billed on the line, when billing knows it."""
    tax_amount: MinorUnits | None = None
    """The line's tax (rounded half up once, on the line); None when the line is untaxed."""
    tax_code: str | None = None
    """The tax code the line is taxed under (see `TaxRate.code`)."""
    refs: Refs = {}


class Invoice(Entity, frozen=True, kw_only=True):
    """A bill to a customer. The ERP is its system of record; billing owns its status."""

    id: str
    customer_id: str
    subscription_id: str | None = None
    deal_id: str | None = None
    """The CRM deal a billing invoice bills (its subscription's deal, or the deal of a one-time
    invoice), so the invoice is posted against that deal's sales order."""
    correlation_id: str | None = None
    """The trace of the deal the invoice bills (its own or its subscription's metadata)."""
    number: str | None = None
    status: InvoiceStatus
    currency: CurrencyCode
    lines: list[InvoiceLine] = []
    subtotal: MinorUnits
    tax: MinorUnits = 0
    total: MinorUnits
    amount_due: MinorUnits
    amount_paid: MinorUnits = 0
    amount_remaining: MinorUnits
    due_date: date | None = None
    issued_at: UtcDateTime | None = None
    paid_at: UtcDateTime | None = None
    legal_entity: LegalEntityCode
    sales_order_id: str | None = None
    external_id: str | None = None
    """ERP invoices: the billing invoice the ERP invoice was posted for."""
    tax_note: str | None = None
    """Why the invoice charges no tax (reverse charge, exemption), as printed on it."""
    refs: Refs = {}


class TaxRate(Entity, frozen=True, kw_only=True):
    """A tax rate billing applies to invoice lines (exclusive of the line amounts)."""

    id: str
    code: str | None = None
    """The company's tax code the rate stands for (e.g. `DE-VAT-19`, `EU-RC`)."""
    rate_bps: TaxRateBps
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    """What the invoice shows beside the tax amount."""
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Why no tax is charged (reverse charge, exemption); printed on the invoice."""
    jurisdiction: str | None = None
    country: str | None = None
    active: bool = True
    refs: Refs = {}


class Payment(Entity, frozen=True, kw_only=True):
    """Money received from (or refunded to) a customer against an invoice."""

    id: str
    invoice_id: str | None = None
    customer_id: str
    amount: MinorUnits
    currency: CurrencyCode
    status: PaymentState
    received_at: UtcDateTime | None = None
    method: PaymentMethod | None = None
    legal_entity: LegalEntityCode
    refs: Refs = {}


class CreditNoteLine(Entity, frozen=True, kw_only=True):
    """One line of a credit note; amounts are in the credit note's currency."""

    id: str
    description: str | None = None
    quantity: _Quantity = 1
    unit_amount: MinorUnits | None = None
    amount: MinorUnits
    invoice_line_id: str | None = None
    refs: Refs = {}


class CreditNote(Entity, frozen=True, kw_only=True):
    """A billing-side reduction of an invoice (the ERP records it as a credit memo)."""

    id: str
    invoice_id: str
    customer_id: str
    currency: CurrencyCode
    amount: MinorUnits
    reason: CreditNoteReason | None = None
    status: CreditNoteStatus = "issued"
    lines: list[CreditNoteLine] = []
    memo: str | None = None
    created_at: UtcDateTime | None = None
    legal_entity: LegalEntityCode | None = None
    refs: Refs = {}


class CreditNoteLineInput(InputStruct, frozen=True, kw_only=True):
    """A line to credit: an invoice line (or a free description) and an amount."""

    amount: _PositiveAmount
    description: str | None = None
    invoice_line_id: str | None = None
    quantity: _PositiveQuantity = 1


class CreditNoteCreate(InputStruct, frozen=True, kw_only=True):
    """A credit note to issue against an invoice: either `amount` or `lines`.

    `currency` must be the invoice's; it is asked for so a caller states what it means.
    """

    invoice_id: str
    currency: CurrencyCode
    amount: _PositiveAmount | None = None
    lines: list[CreditNoteLineInput] = []
    reason: CreditNoteReason | None = None
    memo: Annotated[str, msgspec.Meta(max_length=1000)] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.amount is None) == (not self.lines):
            raise ValueError("give either amount or lines, not both and not neither")


class UsageSummary(ValueObject, frozen=True, kw_only=True):
    """The usage billing holds for one metered subscription item over one period."""

    subscription_item_id: str
    period_start: UtcDateTime
    period_end: UtcDateTime
    total_usage: _Quantity
    invoice_id: str | None = None
    """The invoice that billed the period; None while the period is open."""
