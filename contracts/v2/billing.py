"""Billing contracts, version 2: invoices whose every amount is a `Money` object.

What partners asked for: each amount carries its currency (`{"amount": 1250, "currency":
"EUR"}`), each line shows its list price, discount, tax (rate, code and amount) and service
period, and the invoice's totals are grouped. A v2 invoice is the v1 invoice of the same
billing record seen another way (`invoice_from_v1`): one domain model, two published shapes.

The classes are named `InvoiceV2` and `InvoiceLineV2` and published as v2's `Invoice` and
`InvoiceLine` (`contracts.v2`): the OpenAPI names a component after its class, so a class
name shared with v1 would rename v1's components (and every type in v1 partners' generated
clients) to tell the two apart.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec

from contracts.money import Money
from contracts.v1 import Invoice as InvoiceV1
from contracts.v1 import InvoiceLine as InvoiceLineV1
from contracts.v1.base import (
    Entity,
    LegalEntityCode,
    Refs,
    TaxRateBps,
    UtcDateTime,
    ValueObject,
)
from contracts.v1.billing import InvoiceStatus

__all__ = [
    "InvoiceLineV2",
    "InvoiceTotals",
    "InvoiceV2",
    "LineTax",
    "ServicePeriod",
    "invoice_from_v1",
]

_Quantity = Annotated[int, msgspec.Meta(ge=0)]


class ServicePeriod(ValueObject, frozen=True, kw_only=True):
    """The period a line bills for (a subscription period, a proration's remainder)."""

    start: UtcDateTime
    end: UtcDateTime


class LineTax(ValueObject, frozen=True, kw_only=True):
    """The tax on one line: rounded half up once, on the line."""

    rate_bps: TaxRateBps | None = None
    code: str | None = None
    """The company's tax code (e.g. `DE-VAT-19`, `EU-RC`)."""
    amount: Money


class InvoiceLineV2(Entity, frozen=True, kw_only=True):
    """One line of an invoice."""

    id: str
    description: str | None = None
    product_code: str | None = None
    product_id: str | None = None
    price_id: str | None = None
    quantity: _Quantity = 1
    unit_price: Money | None = None
    """The unit price billed; None when the price is tiered."""
    list_amount: Money
    """quantity x unit price, before the discount (the line amount when no unit price)."""
    discount: Money
    """What the line takes off its list amount (zero when none)."""
    amount: Money
    """What the line bills before tax: list amount less discount."""
    tax: LineTax | None = None
    """None when the line is untaxed."""
    service_period: ServicePeriod | None = None
    refs: Refs = {}


class InvoiceTotals(ValueObject, frozen=True, kw_only=True):
    """The invoice's sums, each in the invoice's currency."""

    subtotal: Money
    discount: Money
    tax: Money
    total: Money
    amount_due: Money
    amount_paid: Money
    amount_remaining: Money


class InvoiceV2(Entity, frozen=True, kw_only=True):
    """A bill to a customer, every amount a `Money`. The ERP is its system of record."""

    id: str
    number: str | None = None
    customer_id: str
    subscription_id: str | None = None
    deal_id: str | None = None
    status: InvoiceStatus
    legal_entity: LegalEntityCode
    lines: list[InvoiceLineV2] = []
    totals: InvoiceTotals
    due_date: date | None = None
    issued_at: UtcDateTime | None = None
    paid_at: UtcDateTime | None = None
    tax_note: str | None = None
    """Why the invoice charges no tax (reverse charge, exemption), as printed on it."""
    refs: Refs = {}


def invoice_from_v1(invoice: InvoiceV1) -> InvoiceV2:
    """The v2 shape of a canonical invoice."""
    currency = invoice.currency
    lines = [_line(line, currency) for line in invoice.lines]
    discount = sum(line.discount.amount for line in lines)
    return InvoiceV2(
        id=invoice.id,
        number=invoice.number,
        customer_id=invoice.customer_id,
        subscription_id=invoice.subscription_id,
        deal_id=invoice.deal_id,
        status=invoice.status,
        legal_entity=invoice.legal_entity,
        lines=lines,
        totals=InvoiceTotals(
            subtotal=Money(amount=invoice.subtotal, currency=currency),
            discount=Money(amount=discount, currency=currency),
            tax=Money(amount=invoice.tax, currency=currency),
            total=Money(amount=invoice.total, currency=currency),
            amount_due=Money(amount=invoice.amount_due, currency=currency),
            amount_paid=Money(amount=invoice.amount_paid, currency=currency),
            amount_remaining=Money(amount=invoice.amount_remaining, currency=currency),
        ),
        due_date=invoice.due_date,
        issued_at=invoice.issued_at,
        paid_at=invoice.paid_at,
        tax_note=invoice.tax_note,
        refs=invoice.refs,
    )


def _line(line: InvoiceLineV1, currency: str) -> InvoiceLineV2:
    # A unit price times the quantity above the line's amount is a discount; a proration or a
    # credit (a negative amount) is billed as it stands.
    listed = line.amount
    if line.unit_amount is not None and line.amount >= 0:
        listed = max(line.amount, line.unit_amount * line.quantity)
    tax = None
    if line.tax_amount is not None:
        tax = LineTax(
            rate_bps=line.tax_rate_bps,
            code=line.tax_code,
            amount=Money(amount=line.tax_amount, currency=currency),
        )
    period = None
    if line.period_start is not None and line.period_end is not None:
        period = ServicePeriod(start=line.period_start, end=line.period_end)
    return InvoiceLineV2(
        id=line.id,
        description=line.description,
        product_code=line.product_code,
        product_id=line.product_id,
        price_id=line.price_id,
        quantity=line.quantity,
        unit_price=(
            Money(amount=line.unit_amount, currency=currency)
            if line.unit_amount is not None
            else None
        ),
        list_amount=Money(amount=listed, currency=currency),
        discount=Money(amount=listed - line.amount, currency=currency),
        amount=Money(amount=line.amount, currency=currency),
        tax=tax,
        service_period=period,
        refs=line.refs,
    )
