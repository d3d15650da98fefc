"""The subscription engine: items and their prorations, subscription invoices, renewal, cancel.

A quantity or price change mid-period credits the unused time of the old item and charges the
remaining time of the new one as pending proration invoice items
(https://docs.stripe.com/billing/subscriptions/prorations); `always_invoice` bills them at once,
`none` skips them. A period end renews the subscription into the next period and drafts its
invoice, which Stripe finalizes about an hour later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sandbox.stripe import invoicing, routes_schedules, usage
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.pricing import add_interval, line_amount, prorated
from sandbox.stripe.render import render
from sandbox.stripe.store import Obj, Store, changed

__all__ = [
    "FINALIZE_DELAY",
    "ItemChange",
    "apply_item_changes",
    "bill_now",
    "cancel",
    "check_price",
    "credit_unused",
    "interval_of",
    "items_of",
    "new_item",
    "quantity_of",
    "renew",
    "subscription_invoice",
]

_TIMES = "\u00d7"
"""Stripe joins quantity and product name with a multiplication sign in line descriptions."""
FINALIZE_DELAY = 3_600
"""Stripe finalizes a renewal invoice about an hour after drafting it (the webhook window)."""


@dataclass(kw_only=True)
class ItemChange:
    """One entry of `items[...]`: a new item, a new price/quantity, or a deletion."""

    item: Obj | None
    price: Obj | None
    quantity: int | None
    deleted: bool = False
    metadata: dict[str, str] | None = None


def check_price(
    price: Obj, *, currency: str | None, interval: tuple[str, int] | None, param: str
) -> None:
    """A subscription takes active recurring prices of one currency and one billing interval."""
    if price["type"] != "recurring":
        raise invalid_request(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            param=param,
        )
    if not price["active"] and not price.get("_inline"):
        raise invalid_request(f"The price specified ({price['id']}) is inactive.", param=param)
    if currency is not None and price["currency"] != currency:
        raise invalid_request(
            f"The price specified ({price['currency']}) does not match the subscription "
            f"currency ({currency}).",
            param=param,
        )
    recurring = price["recurring"]
    if interval is not None and (recurring["interval"], recurring["interval_count"]) != interval:
        raise invalid_request(
            "All prices on a subscription must have the same `recurring.interval` and "
            "`recurring.interval_count`.",
            param=param,
        )


def new_item(
    store: Store,
    subscription: Obj,
    price: Obj,
    quantity: int | None,
    metadata: dict[str, str],
    at: int,
) -> Obj:
    """A subscription item; a metered price's item has no quantity (its usage is billed)."""
    item: Obj = {
        "id": store.mint("si"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": at,
        "metadata": metadata,
        "price": price["id"],
        "quantity": quantity,
        "subscription": subscription["id"],
        "tax_rates": [],
    }
    _set_quantity(item, quantity)
    return store.insert(item)


def items_of(store: Store, subscription: Obj) -> list[Obj]:
    return [
        i
        for i in store.oldest_first("subscription_item")
        if i["subscription"] == subscription["id"]
    ]


def interval_of(store: Store, subscription: Obj) -> tuple[str, int] | None:
    for item in items_of(store, subscription):
        recurring = store.get("price", item["price"])["recurring"]
        return recurring["interval"], recurring["interval_count"]
    return None


def apply_item_changes(
    store: Store, subscription: Obj, changes: list[ItemChange], *, behavior: str, at: int
) -> list[Obj]:
    """Apply `changes`; returns the proration invoice items created (none for `none`)."""
    prorations: list[Obj] = []
    for index, change in enumerate(changes):
        prorations.extend(
            _apply_one(store, subscription, change, behavior=behavior, at=at, index=index)
        )
    if not items_of(store, subscription):
        raise invalid_request("A subscription must keep at least one item.", param="items")
    return prorations


def _apply_one(
    store: Store, subscription: Obj, change: ItemChange, *, behavior: str, at: int, index: int
) -> list[Obj]:
    item = change.item
    old = (store.get("price", item["price"]), quantity_of(item)) if item else None
    if change.deleted:
        new = None
    else:
        price = change.price or (old[0] if old else None)
        if price is None:
            raise invalid_request(
                "Missing required param: price.",
                param=f"items[{index}][price]",
                code="parameter_missing",
            )
        quantity = change.quantity if change.quantity is not None else (old[1] if old else 1)
        # Changing the billing interval resets the billing cycle in Stripe; the sandbox keeps
        # one interval per subscription and refuses the change instead.
        interval = interval_of(store, subscription)
        check_price(
            price,
            currency=subscription["currency"],
            interval=interval,
            param=f"items[{index}][price]",
        )
        new = (price, quantity)
    prorations = []
    if behavior != "none" and old != new:
        prorations = _prorate(store, subscription, item, old, new, at=at)
    if change.deleted and item is not None:
        store.remove(item)
    elif item is None and new is not None:
        new_item(store, subscription, new[0], _stored(new), change.metadata or {}, at)
    elif item is not None and new is not None:
        item["price"] = new[0]["id"]
        _set_quantity(item, _stored(new))
        if change.metadata is not None:
            item["metadata"] = change.metadata
    return prorations


def credit_unused(store: Store, subscription: Obj, item: Obj, *, at: int) -> list[Obj]:
    """Credit the unused rest of the period of `item` (a canceled subscription with prorate)."""
    old = (store.get("price", item["price"]), quantity_of(item))
    return _prorate(store, subscription, item, old, None, at=at)


def _prorate(
    store: Store,
    subscription: Obj,
    item: Obj | None,
    old: tuple[Obj, int] | None,
    new: tuple[Obj, int] | None,
    *,
    at: int,
) -> list[Obj]:
    start, end = subscription["current_period_start"], subscription["current_period_end"]
    stamp = datetime.fromtimestamp(at, tz=UTC).strftime("%d %b %Y")
    created: list[Obj] = []
    # A metered item is billed for its usage in arrears: there is nothing to prorate.
    old = None if old is None or usage.is_metered(old[0]) else old
    new = None if new is None or usage.is_metered(new[0]) else new
    if old is not None:
        price, quantity = old
        amount = -prorated(line_amount(price, quantity), start=start, end=end, at=at)
        text = f"Unused time on {quantity} {_TIMES} {_product_name(store, price)} after {stamp}"
        created.append(
            _proration_item(store, subscription, item, price, quantity, amount, text, at)
        )
    if new is not None:
        price, quantity = new
        amount = prorated(line_amount(price, quantity), start=start, end=end, at=at)
        text = f"Remaining time on {quantity} {_TIMES} {_product_name(store, price)} after {stamp}"
        created.append(
            _proration_item(store, subscription, item, price, quantity, amount, text, at)
        )
    return created


def _proration_item(
    store: Store,
    subscription: Obj,
    item: Obj | None,
    price: Obj,
    quantity: int,
    amount: int,
    description: str,
    at: int,
) -> Obj:
    unit = Decimal(amount) / quantity if quantity else Decimal(0)
    whole = unit == unit.to_integral_value()
    invoice_item: Obj = {
        "id": store.mint("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": price["currency"],
        "customer": subscription["customer"],
        "date": at,
        "description": description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "period": {"start": at, "end": subscription["current_period_end"]},
        "price": price["id"],
        "proration": True,
        "quantity": quantity,
        "subscription": subscription["id"],
        "tax_rates": [],
        "test_clock": subscription["test_clock"],
        "unit_amount": int(unit) if whole else None,
        "unit_amount_decimal": format(unit.normalize(), "f") if quantity else "0",
    }
    if item is not None:
        # Stripe leaves `subscription_item` out (it is not nullable) when there is none.
        invoice_item["subscription_item"] = item["id"]
    store.insert(invoice_item)
    store.emit("invoiceitem.created", render(store, invoice_item), created=at)
    return invoice_item


def subscription_invoice(
    store: Store,
    subscription: Obj,
    *,
    reason: str,
    at: int,
    period: tuple[int, int],
    lines_period: tuple[int, int] | None,
    include_unattached: bool = False,
    usage_period: tuple[int, int] | None = None,
) -> Obj:
    """A draft invoice for `subscription`: its pending items, then a line per licensed item
    for `lines_period` (in advance) and per metered item for `usage_period` (in arrears)."""
    customer = store.get("customer", subscription["customer"])
    invoice = invoicing.new_invoice(
        store,
        customer,
        currency=subscription["currency"],
        collection_method=subscription["collection_method"],
        billing_reason=reason,
        created=at,
        subscription=subscription,
        days_until_due=subscription["days_until_due"],
        auto_advance=True,
        period=period,
    )
    for pending in store.oldest_first("invoiceitem"):
        ours = pending["subscription"] == subscription["id"]
        loose = include_unattached and pending["subscription"] is None
        if pending["customer"] == customer["id"] and pending["invoice"] is None and (ours or loose):
            invoicing.attach_item(store, invoice, pending)
    for item in items_of(store, subscription):
        metered = usage.is_metered(store.get("price", item["price"]))
        if metered and usage_period is not None:
            total = usage.close_usage_period(store, item, usage_period, invoice["id"])
            invoice["lines"]["data"].append(
                _subscription_line(store, subscription, item, usage_period, quantity=total)
            )
        elif not metered and lines_period is not None:
            invoice["lines"]["data"].append(
                _subscription_line(
                    store, subscription, item, lines_period, quantity=quantity_of(item)
                )
            )
    invoicing.recompute(invoice)
    subscription["latest_invoice"] = invoice["id"]
    return invoice


def bill_now(store: Store, subscription: Obj, invoice: Obj, *, at: int, collect: bool) -> None:
    """Finalize `invoice` now and, for automatic collection, charge it (a decline is recorded)."""
    invoicing.finalize(store, invoice, at=at)
    if (
        collect
        and invoice["status"] == "open"
        and subscription["collection_method"] == "charge_automatically"
    ):
        invoicing.collect(store, invoice, at=at, raise_on_decline=False)


def renew(store: Store, subscription: Obj, *, at: int) -> None:
    """Roll `subscription` into its next period at `at` (its period end) and draft the invoice."""
    if subscription["cancel_at_period_end"] or (
        subscription["cancel_at"] is not None and subscription["cancel_at"] <= at
    ):
        # Stripe bills what the ending period still owes (its metered usage, in arrears, and
        # any pending items) on a final invoice, then ends the subscription.
        final_invoice(store, subscription, at=at, reason="subscription_cycle")
        cancel(store, subscription, at=at, reason="cancellation_requested")
        return
    before = render(store, subscription)
    old = (subscription["current_period_start"], subscription["current_period_end"])
    interval = interval_of(store, subscription) or ("month", 1)
    new = (old[1], add_interval(old[1], interval[0], interval[1]))
    subscription["current_period_start"], subscription["current_period_end"] = new
    routes_schedules.enter_phase(store, subscription, period_start=new[0])
    subscription_invoice(
        store,
        subscription,
        reason="subscription_cycle",
        at=at,
        period=old,
        lines_period=new,
        usage_period=old,
    )
    after = render(store, subscription)
    store.emit("customer.subscription.updated", after, previous=changed(before, after), created=at)


def final_invoice(store: Store, subscription: Obj, *, at: int, reason: str) -> Obj | None:
    """The draft invoice of what `subscription` owes when it ends at `at`: the usage of its
    metered items from its period's start to `at` and its pending items; None when it owes
    nothing (no metered item, no pending item)."""
    metered = any(
        usage.is_metered(store.get("price", item["price"]))
        for item in items_of(store, subscription)
    )
    pending = any(
        item["subscription"] == subscription["id"] and item["invoice"] is None
        for item in store.oldest_first("invoiceitem")
    )
    if not metered and not pending:
        return None
    period = (int(subscription["current_period_start"]), at)
    return subscription_invoice(
        store,
        subscription,
        reason=reason,
        at=at,
        period=period,
        lines_period=None,
        usage_period=period,
    )


def cancel(
    store: Store,
    subscription: Obj,
    *,
    at: int,
    reason: str,
    comment: str | None = None,
    feedback: str | None = None,
) -> None:
    """End `subscription` now: status canceled, `customer.subscription.deleted` emitted."""
    subscription.update(status="canceled", canceled_at=at, ended_at=at, cancel_at_period_end=False)
    subscription["cancellation_details"] = {
        "comment": comment,
        "feedback": feedback,
        "reason": reason,
    }
    store.emit("customer.subscription.deleted", render(store, subscription), created=at)


def _stored(priced: tuple[Obj, int]) -> int | None:
    price, quantity = priced
    return None if usage.is_metered(price) else quantity


def quantity_of(item: Obj) -> int:
    """An item's quantity (a metered item has none: 0 licensed units)."""
    return int(item.get("quantity") or 0)


def _set_quantity(item: Obj, quantity: int | None) -> None:
    # Stripe leaves `quantity` out of a metered item (it is not nullable).
    if quantity is None:
        item.pop("quantity", None)
    else:
        item["quantity"] = quantity


def _subscription_line(
    store: Store, subscription: Obj, item: Obj, period: tuple[int, int], *, quantity: int
) -> Obj:
    price = store.get("price", item["price"])
    amount = line_amount(price, quantity)
    return {
        "id": store.mint("il"),
        "object": "line_item",
        "amount": amount,
        "amount_excluding_tax": amount,
        "currency": price["currency"],
        "description": f"{quantity} {_TIMES} {_product_name(store, price)}",
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "period": {"start": period[0], "end": period[1]},
        "price": price["id"],
        "proration": False,
        "proration_details": {"credited_items": None},
        "quantity": quantity,
        "subscription": subscription["id"],
        "subscription_item": item["id"],
        "tax_amounts": [],
        "tax_rates": [],
        "type": "subscription",
        "unit_amount_excluding_tax": price["unit_amount_decimal"],
    }


def _product_name(store: Store, price: Obj) -> str:
    product = store.find("product", price["product"])
    return str(product["name"]) if product else str(price["id"])
