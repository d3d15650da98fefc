"""Stripe's JSON objects (API version 2023-08-16) as lenient msgspec Structs.

Only the fields the gateway reads; anything else Stripe sends is ignored, so a newer field or
a field of a newer version does not break decoding. Expandable references decode either as an
id string or, when expanded, as the object (`str | CustomerWire`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

__all__ = [
    "AddressWire",
    "CreditNoteLineWire",
    "CreditNoteWire",
    "CustomerWire",
    "DeletedWire",
    "ErrorBodyWire",
    "ErrorWire",
    "EventDataWire",
    "EventWire",
    "InvoiceLineWire",
    "InvoiceRefWire",
    "InvoiceWire",
    "ListWire",
    "PaymentIntentWire",
    "PeriodWire",
    "PriceWire",
    "ProductWire",
    "RecurringWire",
    "SearchResultWire",
    "ShippingWire",
    "StatusTransitionsWire",
    "SubscriptionDetailsWire",
    "SubscriptionItemWire",
    "SubscriptionWire",
    "TaxAmountWire",
    "TaxRateWire",
    "TestClockWire",
    "TierWire",
    "UsagePeriodWire",
    "UsageRecordSummaryWire",
    "UsageRecordWire",
    "WebhookEndpointWire",
]

T = TypeVar("T")


class _Wire(msgspec.Struct, kw_only=True, frozen=True):
    """Base: unknown fields are ignored (msgspec's default), every field has a default."""


class ListWire(_Wire, Generic[T], kw_only=True, frozen=True):
    """`{"object": "list", "data": [...], "has_more": ..., "url": "/v1/..."}`."""

    data: list[T] = []
    has_more: bool = False
    url: str | None = None
    total_count: int | None = None


class SearchResultWire(_Wire, Generic[T], kw_only=True, frozen=True):
    """`{"object": "search_result", "data": [...], "has_more": ..., "next_page": ...}`."""

    data: list[T] = []
    has_more: bool = False
    next_page: str | None = None


class AddressWire(_Wire, kw_only=True, frozen=True):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class ShippingWire(_Wire, kw_only=True, frozen=True):
    name: str | None = None
    phone: str | None = None
    address: AddressWire | None = None


class CustomerWire(_Wire, kw_only=True, frozen=True):
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: AddressWire | None = None
    shipping: ShippingWire | None = None
    currency: str | None = None
    delinquent: bool | None = None
    balance: int = 0
    created: int | None = None
    metadata: dict[str, str] = {}
    test_clock: str | None = None
    deleted: bool = False


class RecurringWire(_Wire, kw_only=True, frozen=True):
    interval: str = "month"
    interval_count: int = 1
    usage_type: str = "licensed"


class TierWire(_Wire, kw_only=True, frozen=True):
    up_to: int | None = None
    unit_amount: int | None = None
    unit_amount_decimal: str | None = None
    flat_amount: int | None = None
    flat_amount_decimal: str | None = None


class ProductWire(_Wire, kw_only=True, frozen=True):
    id: str
    name: str | None = None
    description: str | None = None
    active: bool = True
    metadata: dict[str, str] = {}
    default_price: str | PriceWire | None = None
    created: int | None = None
    deleted: bool = False


class PriceWire(_Wire, kw_only=True, frozen=True):
    id: str
    product: str | ProductWire | None = None
    currency: str = ""
    unit_amount: int | None = None
    unit_amount_decimal: str | None = None
    billing_scheme: str = "per_unit"
    tiers: list[TierWire] | None = None
    tiers_mode: str | None = None
    recurring: RecurringWire | None = None
    type: str | None = None
    active: bool = True
    lookup_key: str | None = None
    metadata: dict[str, str] = {}
    created: int | None = None


class SubscriptionItemWire(_Wire, kw_only=True, frozen=True):
    id: str
    price: PriceWire
    quantity: int | None = None
    metadata: dict[str, str] = {}


class InvoiceRefWire(_Wire, kw_only=True, frozen=True):
    """An expanded reference read only for its id (latest invoice, parent invoice...)."""

    id: str


class SubscriptionWire(_Wire, kw_only=True, frozen=True):
    id: str
    customer: str | CustomerWire
    status: str
    currency: str = ""
    current_period_start: int | None = None
    current_period_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    collection_method: str = "charge_automatically"
    days_until_due: int | None = None
    items: ListWire[SubscriptionItemWire] = ListWire()
    latest_invoice: str | InvoiceRefWire | None = None
    metadata: dict[str, str] = {}
    created: int | None = None
    test_clock: str | None = None


class PeriodWire(_Wire, kw_only=True, frozen=True):
    start: int | None = None
    end: int | None = None


class TaxRateWire(_Wire, kw_only=True, frozen=True):
    id: str
    display_name: str = ""
    description: str | None = None
    percentage: Decimal = Decimal(0)
    inclusive: bool = False
    active: bool = True
    jurisdiction: str | None = None
    country: str | None = None
    metadata: dict[str, str] = {}


class TaxAmountWire(_Wire, kw_only=True, frozen=True):
    amount: int = 0
    inclusive: bool = False
    tax_rate: str | TaxRateWire | None = None
    taxable_amount: int | None = None


class InvoiceLineWire(_Wire, kw_only=True, frozen=True):
    id: str
    amount: int = 0
    currency: str | None = None
    description: str | None = None
    quantity: int | None = None
    price: PriceWire | None = None
    period: PeriodWire | None = None
    proration: bool = False
    type: str | None = None
    subscription: str | None = None
    subscription_item: str | None = None
    invoice_item: str | None = None
    unit_amount_excluding_tax: str | None = None
    metadata: dict[str, str] = {}
    tax_amounts: list[TaxAmountWire] = []
    tax_rates: list[TaxRateWire] = []


class StatusTransitionsWire(_Wire, kw_only=True, frozen=True):
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None


class SubscriptionDetailsWire(_Wire, kw_only=True, frozen=True):
    metadata: dict[str, str] | None = None


class InvoiceWire(_Wire, kw_only=True, frozen=True):
    id: str
    customer: str | CustomerWire
    subscription: str | InvoiceRefWire | None = None
    number: str | None = None
    status: str | None = None
    currency: str = ""
    collection_method: str | None = None
    lines: ListWire[InvoiceLineWire] = ListWire()
    subtotal: int = 0
    tax: int | None = None
    total: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    amount_remaining: int = 0
    due_date: int | None = None
    created: int | None = None
    status_transitions: StatusTransitionsWire | None = None
    subscription_details: SubscriptionDetailsWire | None = None
    metadata: dict[str, str] | None = None
    payment_intent: str | InvoiceRefWire | None = None
    attempt_count: int = 0
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    default_tax_rates: list[TaxRateWire] = []
    total_tax_amounts: list[TaxAmountWire] = []


class CreditNoteLineWire(_Wire, kw_only=True, frozen=True):
    id: str
    amount: int = 0
    description: str | None = None
    quantity: int | None = None
    unit_amount: int | None = None
    unit_amount_decimal: str | None = None
    invoice_line_item: str | None = None
    type: str | None = None


class CreditNoteWire(_Wire, kw_only=True, frozen=True):
    id: str
    invoice: str | InvoiceRefWire
    customer: str | CustomerWire
    currency: str = ""
    amount: int = 0
    total: int | None = None
    reason: str | None = None
    status: str = "issued"
    type: str | None = None
    lines: ListWire[CreditNoteLineWire] = ListWire()
    memo: str | None = None
    number: str | None = None
    created: int | None = None
    metadata: dict[str, str] | None = None
    pdf: str | None = None


class PaymentIntentWire(_Wire, kw_only=True, frozen=True):
    id: str
    amount: int = 0
    amount_received: int = 0
    currency: str = ""
    status: str = "requires_payment_method"
    customer: str | CustomerWire | None = None
    invoice: str | InvoiceRefWire | None = None
    created: int | None = None
    payment_method_types: list[str] = []
    metadata: dict[str, str] = {}


class EventDataWire(_Wire, kw_only=True, frozen=True):
    object: dict[str, Any] = {}
    previous_attributes: dict[str, Any] | None = None


class EventWire(_Wire, kw_only=True, frozen=True):
    id: str
    type: str
    created: int
    data: EventDataWire = EventDataWire()
    api_version: str | None = None
    livemode: bool = False


class WebhookEndpointWire(_Wire, kw_only=True, frozen=True):
    id: str
    url: str
    enabled_events: list[str] = []
    status: str = "enabled"
    secret: str | None = None
    description: str | None = None
    created: int | None = None


class TestClockWire(_Wire, kw_only=True, frozen=True):
    id: str
    frozen_time: int
    status: str = "ready"
    name: str | None = None
    created: int | None = None


class DeletedWire(_Wire, kw_only=True, frozen=True):
    id: str
    deleted: bool = False


class ErrorBodyWire(_Wire, kw_only=True, frozen=True):
    type: str = "api_error"
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    param: str | None = None
    doc_url: str | None = None
    request_log_url: str | None = None


class ErrorWire(_Wire, kw_only=True, frozen=True):
    """`{"error": {...}}`, Stripe's one error shape."""

    error: ErrorBodyWire


class UsageRecordWire(_Wire, kw_only=True, frozen=True):
    id: str
    quantity: int = 0
    subscription_item: str = ""
    timestamp: int = 0


class UsagePeriodWire(_Wire, kw_only=True, frozen=True):
    start: int
    end: int


class UsageRecordSummaryWire(_Wire, kw_only=True, frozen=True):
    id: str
    subscription_item: str
    period: UsagePeriodWire
    total_usage: int = 0
    invoice: str | None = None
