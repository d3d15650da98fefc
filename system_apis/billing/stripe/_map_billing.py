"""Stripe subscriptions, invoices, payment intents and credit notes <-> canonical billing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from msgspec import UnsetType

from contracts.errors import FieldError, InvalidRequest
from contracts.v1 import (
    CreditNote,
    CreditNoteCreate,
    CreditNoteLine,
    CreditNoteLineInput,
    CreditNoteReason,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentState,
    Subscription,
    SubscriptionCreate,
    SubscriptionItem,
    SubscriptionItemInput,
    SubscriptionPatch,
    SubscriptionStatus,
    TaxRate,
)
from system_apis.billing.stripe._amounts import (
    decimal_minor,
    to_minor_units,
    to_stripe_amount,
    unit_amount,
)
from system_apis.billing.stripe._conventions import (
    META_CANONICAL_ID,
    META_CORRELATION,
    META_DEAL,
    META_LEGAL_ENTITY,
    META_NETSUITE_ID,
    META_PRODUCT_CODE,
    META_REASON,
    META_SALES_ORDER,
    META_TAX_CODE,
    META_USAGE_METRIC,
    UNASSIGNED_ENTITY,
    customer_id_of,
    day,
    entity_of,
    ref_id,
    refs,
    timestamp,
)
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._wire import (
    CreditNoteLineWire,
    CreditNoteWire,
    InvoiceLineWire,
    InvoiceWire,
    PaymentIntentWire,
    PriceWire,
    ProductWire,
    SubscriptionItemWire,
    SubscriptionWire,
    TaxRateWire,
)

__all__ = [
    "from_credit_note_create",
    "from_subscription_create",
    "from_subscription_patch",
    "from_tax_rate",
    "rate_bps",
    "to_credit_note",
    "to_invoice",
    "to_invoice_line",
    "to_payment",
    "to_subscription",
    "to_tax_rate",
]

_STRIPE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")
_SUBSCRIPTION_STATUSES = get_args(SubscriptionStatus)
_INVOICE_STATUSES = get_args(InvoiceStatus)


def to_subscription(wire: SubscriptionWire) -> Subscription:
    """The canonical subscription (`incomplete_expired` reads as canceled)."""
    currency = wire.currency.upper()
    status = "canceled" if wire.status == "incomplete_expired" else wire.status
    if status not in _SUBSCRIPTION_STATUSES:
        status = "incomplete"
    return Subscription(
        id=wire.id,
        customer_id=customer_id_of(wire.customer),
        status=status,  # type: ignore[arg-type]  # checked against the Literal above
        currency=currency,
        current_period_start=timestamp(wire.current_period_start),
        current_period_end=timestamp(wire.current_period_end),
        cancel_at_period_end=wire.cancel_at_period_end,
        canceled_at=timestamp(wire.canceled_at),
        collection_method="send_invoice"
        if wire.collection_method == "send_invoice"
        else ("charge_automatically"),
        days_until_due=wire.days_until_due,
        items=[_subscription_item(item, currency) for item in wire.items.data],
        deal_id=wire.metadata.get(META_DEAL),
        legal_entity=entity_of(wire.metadata, wire.customer),
        correlation_id=wire.metadata.get(META_CORRELATION),
        # The gateway's canonical customer: what a portal client is bound to.
        refs=refs(wire.id, canonical=wire.metadata.get(META_CANONICAL_ID)),
    )


def from_subscription_create(
    create: SubscriptionCreate,
    *,
    canonical_id: str | None = None,
    catalog: Mapping[str, PriceWire] | None = None,
) -> FormParams:
    """`POST /v1/subscriptions` parameters; `canonical_id` is the customer's canonical id.

    An item sold at its own unit price is billed through `price_data` (an inline price of the
    catalog price's product and interval, read from `catalog`); the one-time items go in
    `add_invoice_items`, so they are billed on this subscription's first invoice and no other.
    """
    metadata = {
        META_DEAL: create.deal_id,
        META_LEGAL_ENTITY: create.legal_entity,
        META_CANONICAL_ID: canonical_id,
        META_CORRELATION: create.correlation_id,
    }
    prices = catalog or {}
    currency = create.currency.lower()
    return {
        "customer": create.customer_id,
        "currency": currency,
        "items": [_item_params(item, prices, currency, recurring=True) for item in create.items],
        "add_invoice_items": [
            {
                **_item_params(item, prices, currency, recurring=False),
                "metadata": _compact({META_DEAL: create.deal_id,
                                      META_PRODUCT_CODE: item.product_code}),
            }
            for item in create.one_time_items
        ] or None,
        "default_tax_rates": list(create.tax_rate_ids) or None,
        "collection_method": create.collection_method,
        "days_until_due": create.days_until_due,
        "metadata": _compact(metadata) or None,
    }


def _item_params(
    item: SubscriptionItemInput,
    catalog: Mapping[str, PriceWire],
    currency: str,
    *,
    recurring: bool,
) -> dict[str, Any]:
    # Stripe refuses a quantity on a metered item: its usage is what is billed.
    metered = recurring and item.usage_metric is not None
    params: dict[str, Any] = {} if metered else {"quantity": item.quantity}
    if recurring and (item.product_code or item.usage_metric):
        params["metadata"] = _compact(
            {META_PRODUCT_CODE: item.product_code, META_USAGE_METRIC: item.usage_metric}
        )
    if item.unit_amount is None:
        params["price"] = item.price_id
        return params
    listed = catalog.get(item.price_id)
    if listed is None or listed.product is None:
        raise ValueError(f"price {item.price_id} was not read before pricing it inline")
    product = listed.product if isinstance(listed.product, str) else listed.product.id
    data: dict[str, Any] = {
        "currency": currency,
        "product": product,
        "unit_amount": to_stripe_amount(item.unit_amount, currency.upper()),
    }
    if recurring and listed.recurring is not None:
        data["recurring"] = {
            "interval": listed.recurring.interval,
            "interval_count": listed.recurring.interval_count,
        }
        if listed.recurring.usage_type == "metered":
            data["recurring"]["usage_type"] = "metered"
    params["price_data"] = data
    return params


def _compact(values: Mapping[str, str | None]) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


def from_subscription_patch(
    patch: SubscriptionPatch, *, current: SubscriptionWire, proration_behavior: str
) -> FormParams:
    """`POST /v1/subscriptions/{id}` parameters; `items` replaces the whole item list.

    A price already on the subscription keeps its item (only the quantity changes), a new
    price adds an item, and an item whose price is left out is deleted.
    """
    params: dict[str, Any] = {}
    if not isinstance(patch.items, UnsetType):
        wanted = {item.price_id: item.quantity for item in patch.items}
        existing = {item.price.id: item for item in current.items.data}
        changes: list[dict[str, Any]] = []
        for item in current.items.data:
            metered = item.price.recurring is not None and (
                item.price.recurring.usage_type == "metered"
            )
            if item.price.id not in wanted:
                changes.append({"id": item.id, "deleted": True})
            elif wanted[item.price.id] != item.quantity and not metered:
                changes.append({"id": item.id, "quantity": wanted[item.price.id]})
        for price_id, quantity in wanted.items():
            if price_id not in existing:
                changes.append({"price": price_id, "quantity": quantity})
        if changes:
            params["items"] = changes
            params["proration_behavior"] = proration_behavior
    if not isinstance(patch.cancel_at_period_end, UnsetType):
        params["cancel_at_period_end"] = patch.cancel_at_period_end
    return params


def _subscription_item(wire: SubscriptionItemWire, currency: str) -> SubscriptionItem:
    price = wire.price
    product = price.product
    metered = price.recurring is not None and price.recurring.usage_type == "metered"
    metric = wire.metadata.get(META_USAGE_METRIC)
    if metric is None and isinstance(product, ProductWire):
        metric = product.metadata.get(META_USAGE_METRIC)
    return SubscriptionItem(
        id=wire.id,
        price_id=price.id,
        product_id=product.id if isinstance(product, ProductWire) else product,
        product_code=price.metadata.get(META_PRODUCT_CODE) or wire.metadata.get(META_PRODUCT_CODE),
        # A metered item has no quantity: its usage is billed.
        quantity=0 if metered else (wire.quantity if wire.quantity is not None else 1),
        unit_amount=unit_amount(price, currency),
        usage_metric=(metric or price.metadata.get(META_USAGE_METRIC) or "usage")
        if metered
        else None,
        refs=refs(wire.id),
    )


def to_invoice(wire: InvoiceWire, *, lines: Sequence[InvoiceLineWire] | None = None) -> Invoice:
    """The canonical invoice; `lines` are all its lines when Stripe paged them."""
    currency = wire.currency.upper()
    status = wire.status if wire.status in _INVOICE_STATUSES else "draft"
    transitions = wire.status_transitions
    metadata = wire.metadata or {}
    details = wire.subscription_details.metadata if wire.subscription_details else None
    rates = _tax_rates(wire, lines)
    used = [_rate_id(t.tax_rate) for t in wire.total_tax_amounts]
    notes = [
        rates[rate].description for rate in used
        if rate in rates and rates[rate].percentage == 0 and rates[rate].description
    ]
    return Invoice(
        id=wire.id,
        customer_id=customer_id_of(wire.customer),
        subscription_id=ref_id(wire.subscription),
        deal_id=metadata.get(META_DEAL) or (details or {}).get(META_DEAL),
        correlation_id=metadata.get(META_CORRELATION) or (details or {}).get(META_CORRELATION),
        number=wire.number,
        status=status,  # type: ignore[arg-type]  # checked against the Literal above
        currency=currency,
        lines=[
            to_invoice_line(line, currency, rates)
            for line in (lines if lines is not None else wire.lines.data)
        ],
        subtotal=to_minor_units(wire.subtotal, currency),
        tax=to_minor_units(wire.tax or 0, currency),
        total=to_minor_units(wire.total, currency),
        amount_due=to_minor_units(wire.amount_due, currency),
        amount_paid=to_minor_units(wire.amount_paid, currency),
        amount_remaining=to_minor_units(wire.amount_remaining, currency),
        due_date=day(wire.due_date),
        issued_at=timestamp(transitions.finalized_at) if transitions else None,
        paid_at=timestamp(transitions.paid_at) if transitions else None,
        legal_entity=entity_of({**(details or {}), **metadata}, wire.customer) or UNASSIGNED_ENTITY,
        sales_order_id=metadata.get(META_SALES_ORDER),
        tax_note="; ".join(dict.fromkeys(str(note) for note in notes)) or None,
        refs=refs(wire.id, netsuite=metadata.get(META_NETSUITE_ID)),
    )


def to_invoice_line(
    wire: InvoiceLineWire, currency: str, rates: Mapping[str, TaxRateWire] | None = None
) -> InvoiceLine:
    """An invoice line (or a pending invoice item's line) in canonical minor units; `rates`
    are the invoice's tax rates by id (its default rates and the lines' own)."""
    known = {**(rates or {}), **{rate.id: rate for rate in wire.tax_rates}}
    taxed = [known[_rate_id(t.tax_rate)] for t in wire.tax_amounts
             if _rate_id(t.tax_rate) in known]
    price = wire.price
    product = price.product if price else None
    unit = unit_amount(price, currency) if price and price.billing_scheme == "per_unit" else None
    if unit is None or wire.proration:
        unit = decimal_minor(wire.unit_amount_excluding_tax, currency)
    period = wire.period
    return InvoiceLine(
        id=wire.id,
        description=wire.description,
        quantity=wire.quantity if wire.quantity is not None else 1,
        unit_amount=unit,
        amount=to_minor_units(wire.amount, currency),
        period_start=timestamp(period.start) if period else None,
        period_end=timestamp(period.end) if period else None,
        product_id=product.id if isinstance(product, ProductWire) else product,
        price_id=price.id if price else None,
        product_code=(price.metadata.get(META_PRODUCT_CODE) if price else None)
        or wire.metadata.get(META_PRODUCT_CODE)
        or (product.metadata.get(META_PRODUCT_CODE) if isinstance(product, ProductWire) else None),
        tax_rate_bps=sum(rate_bps(rate) for rate in taxed) if taxed else None,
        tax_amount=to_minor_units(sum(t.amount for t in wire.tax_amounts), currency)
        if wire.tax_amounts
        else None,
        tax_code=taxed[0].metadata.get(META_TAX_CODE) if taxed else None,
        refs=refs(wire.invoice_item or wire.id),
    )


def rate_bps(rate: TaxRateWire) -> int:
    """A Stripe percentage (19, 7.25) in basis points."""
    return int(rate.percentage * 100)


def to_tax_rate(wire: TaxRateWire) -> TaxRate:
    return TaxRate(
        id=wire.id,
        code=wire.metadata.get(META_TAX_CODE),
        rate_bps=rate_bps(wire),
        display_name=wire.display_name or wire.id,
        reason=wire.description,
        jurisdiction=wire.jurisdiction,
        country=wire.country,
        active=wire.active,
        refs=refs(wire.id),
    )


def from_tax_rate(rate: TaxRate) -> FormParams:
    """`POST /v1/tax_rates` parameters: an exclusive rate; the reason is its description
    (Stripe prints the display name beside the tax amount)."""
    whole, rest = divmod(rate.rate_bps, 100)
    return {
        "display_name": rate.display_name,
        "percentage": f"{whole}.{rest:02d}",
        "inclusive": False,
        "description": rate.reason,
        "jurisdiction": rate.jurisdiction,
        "country": rate.country,
        "metadata": {META_TAX_CODE: rate.code} if rate.code else None,
    }


def _tax_rates(
    wire: InvoiceWire, lines: Sequence[InvoiceLineWire] | None
) -> dict[str, TaxRateWire]:
    found = {rate.id: rate for rate in wire.default_tax_rates}
    for line in lines if lines is not None else wire.lines.data:
        found.update({rate.id: rate for rate in line.tax_rates})
    for amount in wire.total_tax_amounts:
        if isinstance(amount.tax_rate, TaxRateWire):
            found[amount.tax_rate.id] = amount.tax_rate
    return found


def _rate_id(rate: str | TaxRateWire | None) -> str:
    if isinstance(rate, TaxRateWire):
        return rate.id
    return rate or ""


def to_payment(wire: PaymentIntentWire, *, legal_entity: str | None = None) -> Payment:
    """A payment intent as the canonical payment against its invoice."""
    currency = wire.currency.upper()
    states: dict[str, PaymentState] = {"succeeded": "succeeded", "canceled": "failed"}
    state: PaymentState = states.get(wire.status, "pending")
    received = wire.amount_received if state == "succeeded" else wire.amount
    customer = wire.customer
    return Payment(
        id=wire.id,
        invoice_id=ref_id(wire.invoice),
        customer_id=customer_id_of(customer) if customer is not None else "",
        amount=to_minor_units(received, currency),
        currency=currency,
        status=state,
        received_at=timestamp(wire.created) if state == "succeeded" else None,
        method="card" if "card" in wire.payment_method_types else "other",
        legal_entity=legal_entity or entity_of(wire.metadata, customer) or UNASSIGNED_ENTITY,
        refs=refs(wire.id),
    )


def to_credit_note(wire: CreditNoteWire) -> CreditNote:
    """The canonical credit note; a reason Stripe lacks comes back from metadata."""
    currency = wire.currency.upper()
    metadata = wire.metadata or {}
    reason = metadata.get(META_REASON) or wire.reason
    known: tuple[str, ...] = get_args(CreditNoteReason)
    return CreditNote(
        id=wire.id,
        invoice_id=ref_id(wire.invoice) or "",
        customer_id=customer_id_of(wire.customer),
        currency=currency,
        amount=to_minor_units(wire.total if wire.total is not None else wire.amount, currency),
        reason=reason if reason in known else None,  # type: ignore[arg-type]
        status="void" if wire.status == "void" else "issued",
        lines=[_credit_note_line(line, currency) for line in wire.lines.data],
        memo=wire.memo,
        created_at=timestamp(wire.created),
        legal_entity=entity_of(metadata, wire.customer),
        refs=refs(wire.id),
    )


def from_credit_note_create(create: CreditNoteCreate, *, invoice: InvoiceWire) -> FormParams:
    """`POST /v1/credit_notes` parameters; the currency must be the invoice's."""
    currency = invoice.currency.upper()
    if create.currency != currency:
        raise InvalidRequest(
            f"credit note currency {create.currency} is not that of invoice {invoice.id}",
            errors=[FieldError(pointer="/currency", detail=f"the invoice is in {currency}")],
        )
    stripe_reason = create.reason if create.reason in _STRIPE_REASONS else None
    params: dict[str, Any] = {
        "invoice": invoice.id,
        "reason": stripe_reason,
        "memo": create.memo,
        "metadata": {META_REASON: create.reason} if create.reason and not stripe_reason else None,
    }
    if create.amount is not None:
        params["amount"] = to_stripe_amount(create.amount, currency)
    else:
        params["lines"] = [_credit_line_params(line, currency) for line in create.lines]
    return params


def _credit_line_params(line: CreditNoteLineInput, currency: str) -> dict[str, Any]:
    amount = to_stripe_amount(line.amount, currency)
    if line.invoice_line_id:
        return {
            "type": "invoice_line_item",
            "invoice_line_item": line.invoice_line_id,
            "amount": amount,
        }
    quantity = line.quantity if amount % line.quantity == 0 else 1
    return {
        "type": "custom_line_item",
        "description": line.description or "Credit",
        "quantity": quantity,
        "unit_amount": amount // quantity,
    }


def _credit_note_line(wire: CreditNoteLineWire, currency: str) -> CreditNoteLine:
    unit = wire.unit_amount
    return CreditNoteLine(
        id=wire.id,
        description=wire.description,
        quantity=wire.quantity if wire.quantity is not None else 1,
        unit_amount=to_minor_units(unit, currency)
        if unit is not None
        else (decimal_minor(wire.unit_amount_decimal, currency)),
        amount=to_minor_units(wire.amount, currency),
        invoice_line_id=wire.invoice_line_item,
        refs=refs(wire.id),
    )
