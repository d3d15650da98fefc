"""The invoice engine: drafting, lines, totals, finalization, collection and their events.

Lifecycle (https://docs.stripe.com/invoicing/overview#invoice-lifecycle): draft -> finalize ->
open -> paid, or open -> void / uncollectible. A finalized invoice gets a number, a due date
(send_invoice) and a payment intent; paying it with a declining test card fails with a
card_error and `invoice.payment_failed`, and a subscription's status follows its invoices.
"""

from __future__ import annotations

from decimal import Decimal

from sandbox.stripe.errors import (
    StripeApiError,
    card_declined,
    invalid_request,
)
from sandbox.stripe.pricing import to_minor
from sandbox.stripe.render import render
from sandbox.stripe.store import Obj, Store

__all__ = [
    "DEFAULT_PAYMENT_METHOD",
    "attach_item",
    "check_item_currency",
    "collect",
    "finalize",
    "line_from_item",
    "new_invoice",
    "recompute",
    "refresh_snapshot",
    "set_customer_currency",
]

DEFAULT_PAYMENT_METHOD = "pm_card_visa"
"""The sandbox treats every customer as having Stripe's test Visa card on file unless its
`invoice_settings[default_payment_method]` names another test payment method."""

_DECLINES = {
    # Stripe's test payment methods that decline (https://docs.stripe.com/testing#declined-payments)
    "pm_card_chargeDeclined": ("generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
    "pm_card_chargeCustomerFail": ("generic_decline", "Your card was declined."),
}
_RETRY_DELAY = 3 * 86_400
"""Smart Retries would try again; the emulator names a fixed next attempt three days on."""
_ACCOUNT_NAME = "Northwind Cloud (sandbox)"


def new_invoice(
    store: Store,
    customer: Obj,
    *,
    currency: str,
    collection_method: str,
    billing_reason: str,
    created: int,
    subscription: Obj | None = None,
    days_until_due: int | None = None,
    auto_advance: bool = False,
    period: tuple[int, int] | None = None,
) -> Obj:
    """A draft invoice for `customer`, stored, with `invoice.created` emitted."""
    start, end = period or (created, created)
    invoice: Obj = {
        "id": store.mint("in"),
        "object": "invoice",
        "account_country": "US",
        "account_name": _ACCOUNT_NAME,
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "application_fee_amount": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": {"enabled": False, "status": None},
        "billing_reason": billing_reason,
        "charge": None,
        "collection_method": collection_method,
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [dict(rate) for rate in subscription["default_tax_rates"]]
        if subscription is not None
        else [],
        "description": None,
        "discount": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": ""},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "paid": False,
        "paid_out_of_band": False,
        "payment_intent": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "quote": None,
        "receipt_number": None,
        "rendering_options": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": subscription["id"] if subscription else None,
        "subscription_details": {
            "metadata": dict(subscription["metadata"]) if subscription else None
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "tax": None,
        "test_clock": customer["test_clock"],
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_tax_amounts": [],
        "transfer_data": None,
        "webhooks_delivered_at": None,
        "_days_until_due": days_until_due,
    }
    store.insert(invoice)
    store.emit("invoice.created", render(store, invoice), created=created)
    return invoice


def line_from_item(store: Store, item: Obj) -> Obj:
    """The invoice line for a (pending) invoice item."""
    line: Obj = {
        "id": store.mint("il"),
        "object": "line_item",
        "amount": item["amount"],
        "amount_excluding_tax": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "invoice_item": item["id"],
        "livemode": False,
        "metadata": dict(item["metadata"] or {}),
        "period": dict(item["period"]),
        "price": item["price"],
        "proration": item["proration"],
        "proration_details": {"credited_items": None},
        "quantity": item["quantity"],
        "subscription": item["subscription"],
        "tax_amounts": [],
        "tax_rates": [dict(rate) for rate in item["tax_rates"]],
        "type": "invoiceitem",
        "unit_amount_excluding_tax": item["unit_amount_decimal"],
    }
    if item.get("subscription_item"):
        line["subscription_item"] = item["subscription_item"]
    return line


def check_item_currency(item: Obj, currency: str) -> None:
    """An invoice item goes only on an invoice in its own currency."""
    if item["currency"] != currency:
        raise invalid_request(
            f"The currency of an invoice item must match the currency of its invoice ({currency}).",
            param="currency",
        )


def attach_item(store: Store, invoice: Obj, item: Obj) -> None:
    """Put a pending invoice item on a draft invoice."""
    check_item_currency(item, invoice["currency"])
    item["invoice"] = invoice["id"]
    invoice["lines"]["data"].append(line_from_item(store, item))
    recompute(invoice)


def recompute(invoice: Obj) -> None:
    """Totals from the lines (no discounts in the sandbox). Each line is taxed by its own tax
    rates, else the invoice's `default_tax_rates`: exclusive rates add
    `amount x percentage / 100` rounded half up once per line, inclusive ones show the tax
    contained in the amount; `total_tax_amounts` sums them per rate."""
    lines = invoice["lines"]["data"]
    subtotal = sum(int(line["amount"]) for line in lines)
    per_rate: dict[str, Obj] = {}
    added = 0
    for line in lines:
        rates = line["tax_rates"] or invoice["default_tax_rates"]
        line["tax_amounts"] = [_line_tax(line, rate) for rate in rates]
        for rate, tax in zip(rates, line["tax_amounts"], strict=True):
            total = per_rate.setdefault(rate["id"], {**tax, "amount": 0, "taxable_amount": 0})
            total["amount"] += tax["amount"]
            total["taxable_amount"] += tax["taxable_amount"]
            if not rate["inclusive"]:
                added += tax["amount"]
        line["amount_excluding_tax"] = int(line["amount"]) - sum(
            t["amount"] for t in line["tax_amounts"] if t["inclusive"]
        )
    invoice["total_tax_amounts"] = list(per_rate.values())
    invoice["tax"] = sum(t["amount"] for t in per_rate.values()) if per_rate else None
    invoice["lines"]["total_count"] = len(lines)
    invoice["subtotal"] = subtotal
    invoice["subtotal_excluding_tax"] = subtotal - sum(
        t["amount"] for t in per_rate.values() if t["inclusive"]
    )
    invoice["total"] = subtotal + added
    invoice["total_excluding_tax"] = invoice["subtotal_excluding_tax"]
    due = max(
        0,
        invoice["total"] + invoice["starting_balance"] - invoice["pre_payment_credit_notes_amount"],
    )
    invoice["amount_due"] = due
    invoice["amount_remaining"] = max(0, due - invoice["amount_paid"])


def _line_tax(line: Obj, rate: Obj) -> Obj:
    amount = int(line["amount"])
    percentage = Decimal(str(rate["percentage"]))
    if rate["inclusive"]:
        tax = to_minor(Decimal(amount) * percentage / (100 + percentage))
    else:
        tax = to_minor(Decimal(amount) * percentage / 100)
    return {
        "amount": tax,
        "inclusive": rate["inclusive"],
        "tax_rate": rate["id"],
        "taxability_reason": None,
        "taxable_amount": amount - tax if rate["inclusive"] else amount,
    }


def set_customer_currency(customer: Obj, currency: str, *, param: str) -> None:
    """A customer's currency is fixed by its first invoice or subscription."""
    if customer["currency"] is None:
        customer["currency"] = currency
    elif customer["currency"] != currency:
        raise invalid_request(
            f"You cannot combine currencies on a single customer. This customer has had a "
            f"subscription or payment in {customer['currency']}, but you are trying to pay "
            f"in {currency}.",
            param=param,
        )


def finalize(store: Store, invoice: Obj, *, at: int) -> None:
    """draft -> open (or straight to paid when nothing is due), with its events."""
    if invoice["status"] != "draft":
        raise invalid_request(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    customer = store.get("customer", invoice["customer"])
    _apply_credit_balance(customer, invoice)
    sequence = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = sequence + 1
    invoice["number"] = f"{customer['invoice_prefix']}-{sequence:04d}"
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = at
    invoice["effective_at"] = at
    if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
        invoice["due_date"] = at + 86_400 * int(invoice.get("_days_until_due") or 0)
    if invoice["amount_due"] > 0:
        invoice["payment_intent"] = _payment_intent(store, invoice, at)["id"]
    store.emit("invoice.finalized", render(store, invoice), created=at)
    if invoice["amount_due"] == 0:
        _mark_paid(store, invoice, at=at, out_of_band=False)


def collect(
    store: Store,
    invoice: Obj,
    *,
    at: int,
    payment_method: str | None = None,
    raise_on_decline: bool,
) -> None:
    """Charge an open invoice; a decline emits `invoice.payment_failed` (and raises if asked)."""
    if invoice["amount_remaining"] == 0:
        _mark_paid(store, invoice, at=at, out_of_band=False)
        return
    method = payment_method or _default_method(store, invoice)
    _check_method(method)
    intent = store.get("payment_intent", invoice["payment_intent"])
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    decline = _DECLINES.get(method)
    if decline is None:
        charge_id = store.mint("ch")
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=charge_id,
            payment_method=method,
            last_payment_error=None,
        )
        invoice["charge"] = charge_id
        store.emit("payment_intent.succeeded", render(store, intent), created=at)
        _mark_paid(store, invoice, at=at, out_of_band=False)
        return
    error = _decline(store, invoice, intent, method, decline, at=at)
    if raise_on_decline:
        raise error


def mark_paid_out_of_band(store: Store, invoice: Obj, *, at: int) -> None:
    _mark_paid(store, invoice, at=at, out_of_band=True)


def refresh_snapshot(store: Store, invoice: Obj, event_type: str, *, at: int, before: Obj) -> None:
    """Emit `event_type` for `invoice` with what changed since `before`."""
    after = render(store, invoice)
    previous = {key: before.get(key) for key in after if before.get(key) != after.get(key)}
    store.emit(event_type, after, previous=previous or None, created=at)


def _mark_paid(store: Store, invoice: Obj, *, at: int, out_of_band: bool) -> None:
    invoice["amount_paid"] += invoice["amount_remaining"]
    invoice["amount_remaining"] = 0
    invoice["paid"] = True
    invoice["paid_out_of_band"] = out_of_band
    invoice["status"] = "paid"
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["paid_at"] = at
    if out_of_band and invoice["payment_intent"]:
        intent = store.get("payment_intent", invoice["payment_intent"])
        intent.update(status="canceled", canceled_at=at, cancellation_reason="void_invoice")
    _update_delinquency(store, invoice["customer"])
    snapshot = render(store, invoice)
    store.emit("invoice.paid", snapshot, created=at)
    store.emit("invoice.payment_succeeded", snapshot, created=at)
    _subscription_follows(store, invoice, paid=True, at=at)


def _decline(
    store: Store, invoice: Obj, intent: Obj, method: str, decline: tuple[str, str], *, at: int
) -> StripeApiError:
    decline_code, message = decline
    charge_id = store.mint("ch")
    failure = {
        "charge": charge_id,
        "code": "card_declined",
        "decline_code": decline_code,
        "message": message,
        "type": "card_error",
    }
    intent.update(
        status="requires_payment_method",
        latest_charge=charge_id,
        payment_method=None,
        last_payment_error=failure,
    )
    invoice["charge"] = charge_id
    store.get("customer", invoice["customer"])["delinquent"] = True
    if invoice["auto_advance"]:
        invoice["next_payment_attempt"] = at + _RETRY_DELAY
    store.emit("payment_intent.payment_failed", render(store, intent), created=at)
    store.emit("invoice.payment_failed", render(store, invoice), created=at)
    _subscription_follows(store, invoice, paid=False, at=at)
    return card_declined(
        decline_code,
        message,
        extra={"charge": charge_id, "payment_intent": render(store, intent)},
    )


def _update_delinquency(store: Store, customer_id: str) -> None:
    """A customer is delinquent while an invoice of theirs has a failed, unsettled charge."""
    customer = store.find("customer", customer_id)
    if customer is None:
        return
    customer["delinquent"] = any(
        other["customer"] == customer_id and other["status"] == "open" and other["attempted"]
        for other in store.oldest_first("invoice")
    )


def _subscription_follows(store: Store, invoice: Obj, *, paid: bool, at: int) -> None:
    """A subscription's status follows the collection of its invoices."""
    if invoice["subscription"] is None:
        return
    subscription = store.find("subscription", invoice["subscription"])
    if subscription is None or subscription["status"] == "canceled":
        return
    if paid:
        status = (
            "active" if subscription["status"] in ("incomplete", "past_due", "unpaid") else None
        )
    elif invoice["billing_reason"] == "subscription_create":
        status = "incomplete"
    else:
        status = "past_due" if subscription["status"] == "active" else None
    if status is None or status == subscription["status"]:
        return
    previous = {"status": subscription["status"]}
    subscription["status"] = status
    store.emit(
        "customer.subscription.updated", render(store, subscription), previous=previous, created=at
    )


def _payment_intent(store: Store, invoice: Obj, at: int) -> Obj:
    intent: Obj = {
        "id": store.mint("pi"),
        "object": "payment_intent",
        "amount": invoice["amount_due"],
        "amount_capturable": 0,
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": None,
        "confirmation_method": "automatic",
        "created": at,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "description": f"Invoice {invoice['number']}",
        "invoice": invoice["id"],
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    intent["client_secret"] = f"{intent['id']}_secret_sandbox"
    store.insert(intent)
    return intent


def _apply_credit_balance(customer: Obj, invoice: Obj) -> None:
    """A negative customer balance (credit) pays down the invoice at finalization; an invoice
    whose total is below zero (a crediting proration) adds that credit to the balance
    (https://docs.stripe.com/billing/customer/balance)."""
    balance = int(customer["balance"])
    if invoice["total"] < 0:
        invoice["starting_balance"] = balance
        customer["balance"] = invoice["ending_balance"] = balance + int(invoice["total"])
        return
    if balance >= 0:
        invoice["ending_balance"] = balance
        return
    applied = min(-balance, invoice["total"])
    invoice["starting_balance"] = balance
    customer["balance"] = invoice["ending_balance"] = balance + applied
    recompute(invoice)


def _default_method(store: Store, invoice: Obj) -> str:
    if invoice["subscription"]:
        subscription = store.find("subscription", invoice["subscription"])
        if subscription and subscription.get("default_payment_method"):
            return str(subscription["default_payment_method"])
    customer = store.get("customer", invoice["customer"])
    method = customer["invoice_settings"]["default_payment_method"]
    return str(method) if method else DEFAULT_PAYMENT_METHOD


def _check_method(method: str) -> None:
    if not method.startswith("pm_card_"):
        raise invalid_request(
            f"No such PaymentMethod: '{method}'", param="payment_method", code="resource_missing"
        )
