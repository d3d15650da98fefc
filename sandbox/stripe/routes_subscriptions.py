"""Subscriptions and their items over HTTP (`/v1/subscriptions`, `/v1/subscription_items`)."""

from __future__ import annotations

from sandbox.stripe import cycle, invoicing
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.pricing import add_interval
from sandbox.stripe.render import created_filter, page, render
from sandbox.stripe.routes_catalog import inline_price
from sandbox.stripe.routes_invoices import new_invoice_item
from sandbox.stripe.routes_tax_rates import tax_rates_of
from sandbox.stripe.store import Obj, Store, changed
from sandbox.stripe.usage import item_quantity

__all__ = [
    "cancel_subscription",
    "create_subscription",
    "create_subscription_item",
    "delete_subscription_item",
    "get_subscription",
    "get_subscription_item",
    "list_subscription_items",
    "list_subscriptions",
    "update_subscription",
    "update_subscription_item",
]

_COLLECTION = ("charge_automatically", "send_invoice")
_PRORATION = ("create_prorations", "none", "always_invoice")
_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


def create_subscription(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "add_invoice_items",
            "cancel_at_period_end",
            "collection_method",
            "currency",
            "customer",
            "days_until_due",
            "default_payment_method",
            "default_tax_rates",
            "description",
            "items",
            "metadata",
            "off_session",
            "payment_behavior",
            "proration_behavior",
        )
    )
    customer = store.get("customer", params.required_text("customer"), param="customer")
    default_rates = [dict(rate) for rate in tax_rates_of(store, params, "default_tax_rates")]
    entries = params.hashes("items")
    if not entries:
        raise invalid_request(
            "Missing required param: items.", param="items", code="parameter_missing"
        )
    method = str(params.choice("collection_method", _COLLECTION, default="charge_automatically"))
    days = _days_until_due(params, method)
    behavior = params.choice(
        "payment_behavior", ("allow_incomplete", "default_incomplete"), default="allow_incomplete"
    )
    at = store.now(customer["id"])
    prices = [_price(store, entry, recurring=True) for entry in entries]
    first = prices[0]
    currency = first["currency"]
    asked = params.text("currency")
    if asked and asked.lower() != currency:
        raise invalid_request(
            f"The subscription currency ({asked.lower()}) does not match its prices ({currency}).",
            param="currency",
        )
    invoicing.set_customer_currency(customer, currency, param="items[0][price]")
    interval = (
        (first["recurring"]["interval"], first["recurring"]["interval_count"])
        if first["recurring"]
        else None
    )
    subscription = _new_subscription(store, customer, params, method=method, days=days, at=at)
    subscription["currency"] = currency
    subscription["default_tax_rates"] = default_rates
    if interval is not None:
        subscription["current_period_end"] = add_interval(at, *interval)
    for entry, price in zip(entries, prices, strict=True):
        entry.only(("metadata", "price", "price_data", "quantity"))
        cycle.check_price(price, currency=currency, interval=interval, param=entry.name("price"))
        quantity = item_quantity(
            price, entry.integer("quantity", minimum=0), param=entry.name("quantity")
        )
        cycle.new_item(store, subscription, price, quantity, entry.metadata({}), at)
    for extra in params.hashes("add_invoice_items"):
        _add_invoice_item(store, customer, extra, subscription)
    store.emit("customer.subscription.created", render(store, subscription), created=at)
    period = (subscription["current_period_start"], subscription["current_period_end"])
    invoice = cycle.subscription_invoice(
        store,
        subscription,
        reason="subscription_create",
        at=at,
        period=(at, at),
        lines_period=period,
        include_unattached=True,
    )
    cycle.bill_now(store, subscription, invoice, at=at, collect=behavior == "allow_incomplete")
    return render(store, subscription, params.texts("expand"))


def get_subscription(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("subscription", path["subscription"]), params.texts("expand"))


def update_subscription(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "add_invoice_items",
            "cancel_at",
            "cancel_at_period_end",
            "collection_method",
            "days_until_due",
            "default_payment_method",
            "description",
            "items",
            "metadata",
            "off_session",
            "payment_behavior",
            "proration_behavior",
            "proration_date",
        )
    )
    subscription = store.get("subscription", path["subscription"])
    if subscription["status"] == "canceled" and set(params.data) - {"metadata", "expand"}:
        raise invalid_request(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    before = render(store, subscription)
    customer = store.get("customer", subscription["customer"])
    at = params.integer("proration_date") or store.now(customer["id"])
    behavior = str(params.choice("proration_behavior", _PRORATION, default="create_prorations"))
    changes = [_change(store, subscription, entry) for entry in params.hashes("items")]
    prorations = cycle.apply_item_changes(store, subscription, changes, behavior=behavior, at=at)
    _apply_settings(subscription, params)
    for extra in params.hashes("add_invoice_items"):
        _add_invoice_item(store, customer, extra, subscription)
    after = render(store, subscription)
    previous = changed(before, after)
    if previous:
        store.emit("customer.subscription.updated", after, previous=previous, created=at)
    if behavior == "always_invoice" and prorations:
        period = (at, subscription["current_period_end"])
        invoice = cycle.subscription_invoice(
            store,
            subscription,
            reason="subscription_update",
            at=at,
            period=period,
            lines_period=None,
        )
        cycle.bill_now(store, subscription, invoice, at=at, collect=True)
    return render(store, subscription, params.texts("expand"))


def cancel_subscription(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("cancellation_details", "invoice_now", "prorate"))
    subscription = store.get("subscription", path["subscription"])
    if subscription["status"] == "canceled":
        raise invalid_request(f"The subscription {subscription['id']} is already canceled.")
    at = store.now(subscription["customer"])
    details = params.nested("cancellation_details")
    if details is not None:
        details.only(("comment", "feedback"))
    if params.flag("prorate"):
        for item in cycle.items_of(store, subscription):
            cycle.credit_unused(store, subscription, item, at=at)
    cycle.cancel(
        store,
        subscription,
        at=at,
        reason="cancellation_requested",
        comment=details.text("comment") if details else None,
        feedback=details.text("feedback") if details else None,
    )
    if params.flag("invoice_now"):
        # A final invoice now, of the un-invoiced metered usage and the pending items.
        invoice = cycle.final_invoice(store, subscription, at=at, reason="subscription_update")
        if invoice is not None:
            cycle.bill_now(store, subscription, invoice, at=at, collect=True)
    return render(store, subscription, params.texts("expand"))


def list_subscriptions(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "collection_method",
            "created",
            "current_period_end",
            "current_period_start",
            "customer",
            "price",
            "status",
            "test_clock",
            "limit",
            "starting_after",
            "ending_before",
        )
    )
    customer, price = params.text("customer"), params.text("price")
    clock = params.text("test_clock")
    status = params.choice("status", _STATUSES)
    method = params.choice("collection_method", _COLLECTION)
    windows = [
        created_filter(params, key)
        for key in ("created", "current_period_start", "current_period_end")
    ]
    priced = {
        i["subscription"] for i in store.oldest_first("subscription_item") if i["price"] == price
    }
    candidates = [
        subscription
        for subscription in store.newest_first("subscription")
        if (customer is None or subscription["customer"] == customer)
        and (price is None or subscription["id"] in priced)
        and (clock is None or subscription["test_clock"] == clock)
        and (method is None or subscription["collection_method"] == method)
        and _status_matches(subscription["status"], status)
        and all(window(subscription) for window in windows)
    ]
    return page(store, candidates, params, "/v1/subscriptions")


def list_subscription_items(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("subscription", "limit", "starting_after", "ending_before"))
    subscription = store.get(
        "subscription", params.required_text("subscription"), param="subscription"
    )
    items = list(reversed(cycle.items_of(store, subscription)))
    return page(store, items, params, "/v1/subscription_items")


def get_subscription_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("subscription_item", path["item"]), params.texts("expand"))


def create_subscription_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        ("metadata", "price", "proration_behavior", "proration_date", "quantity", "subscription")
    )
    subscription = store.get(
        "subscription", params.required_text("subscription"), param="subscription"
    )
    known = {item["id"] for item in cycle.items_of(store, subscription)}
    _item_change(store, subscription, params, item=None)
    created = next(item for item in cycle.items_of(store, subscription) if item["id"] not in known)
    return render(store, created, params.texts("expand"))


def update_subscription_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("metadata", "price", "proration_behavior", "proration_date", "quantity"))
    item = store.get("subscription_item", path["item"])
    subscription = store.get("subscription", item["subscription"])
    _item_change(store, subscription, params, item=item)
    return render(store, item, params.texts("expand"))


def delete_subscription_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("clear_usage", "proration_behavior", "proration_date"))
    item = store.get("subscription_item", path["item"])
    subscription = store.get("subscription", item["subscription"])
    _item_change(store, subscription, params, item=item, deleted=True)
    return {"id": item["id"], "object": "subscription_item", "deleted": True}


def _item_change(
    store: Store, subscription: Obj, params: Params, *, item: Obj | None, deleted: bool = False
) -> None:
    if subscription["status"] == "canceled":
        raise invalid_request("A canceled subscription cannot be changed.", param="subscription")
    before = render(store, subscription)
    at = params.integer("proration_date") or store.now(subscription["customer"])
    behavior = str(params.choice("proration_behavior", _PRORATION, default="create_prorations"))
    price_id = params.text("price")
    change = cycle.ItemChange(
        item=item,
        price=store.get("price", price_id, param="price") if price_id else None,
        quantity=params.integer("quantity", minimum=0),
        deleted=deleted,
        metadata=params.metadata(item["metadata"] if item else {})
        if params.has("metadata")
        else None,
    )
    prorations = cycle.apply_item_changes(store, subscription, [change], behavior=behavior, at=at)
    after = render(store, subscription)
    store.emit("customer.subscription.updated", after, previous=changed(before, after), created=at)
    if behavior == "always_invoice" and prorations:
        period = (at, subscription["current_period_end"])
        invoice = cycle.subscription_invoice(
            store,
            subscription,
            reason="subscription_update",
            at=at,
            period=period,
            lines_period=None,
        )
        cycle.bill_now(store, subscription, invoice, at=at, collect=True)


def _new_subscription(
    store: Store, customer: Obj, params: Params, *, method: str, days: int | None, at: int
) -> Obj:
    subscription: Obj = {
        "id": store.mint("sub"),
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False},
        "billing_cycle_anchor": at,
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": bool(params.flag("cancel_at_period_end")),
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": method,
        "created": at,
        "currency": None,
        "current_period_end": at,
        "current_period_start": at,
        "customer": customer["id"],
        "days_until_due": days,
        "default_payment_method": params.text("default_payment_method") or None,
        "default_source": None,
        "default_tax_rates": [],
        "description": params.text("description") or None,
        "discount": None,
        "ended_at": None,
        "items": None,
        "latest_invoice": None,
        "livemode": False,
        "metadata": params.metadata({}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": at,
        # Automatic collection starts incomplete until the first invoice is paid.
        "status": "incomplete" if method == "charge_automatically" else "active",
        "test_clock": customer["test_clock"],
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    return store.insert(subscription)


def _price(store: Store, entry: Params, *, recurring: bool) -> Obj:
    """The item's `price`, or the inline price its `price_data` makes (exactly one of them)."""
    data = entry.nested("price_data")
    if data is not None and entry.has("price"):
        raise invalid_request(
            "You may only specify one of these parameters: price, price_data.",
            param=entry.name("price_data"),
        )
    if data is not None:
        return inline_price(store, data, recurring=recurring)
    return store.get("price", entry.required_text("price"), param=entry.name("price"))


def _add_invoice_item(store: Store, customer: Obj, extra: Params, subscription: Obj) -> None:
    """One `add_invoice_items[n]` entry: a pending item of this subscription only, so it is
    billed on the subscription's next invoice and never on another subscription's."""
    extra.only(("metadata", "period", "price", "price_data", "quantity", "tax_rates"))
    price = _price(store, extra, recurring=False)
    item = new_invoice_item(store, customer, extra, subscription=subscription, price=price)
    store.emit("invoiceitem.created", render(store, item), created=item["date"])


def _change(store: Store, subscription: Obj, entry: Params) -> cycle.ItemChange:
    entry.only(("deleted", "id", "metadata", "price", "quantity", "clear_usage"))
    item_id = entry.text("id")
    item = store.get("subscription_item", item_id, param=entry.name("id")) if item_id else None
    if item is not None and item["subscription"] != subscription["id"]:
        raise invalid_request(
            f"Subscription item {item_id} does not belong to this subscription.",
            param=entry.name("id"),
        )
    price_id = entry.text("price")
    return cycle.ItemChange(
        item=item,
        price=store.get("price", price_id, param=entry.name("price")) if price_id else None,
        quantity=entry.integer("quantity", minimum=0),
        deleted=bool(entry.flag("deleted")),
        metadata=entry.metadata(item["metadata"] if item else {})
        if entry.has("metadata")
        else None,
    )


def _apply_settings(subscription: Obj, params: Params) -> None:
    if params.has("collection_method"):
        method = str(params.choice("collection_method", _COLLECTION))
        subscription["collection_method"] = method
        subscription["days_until_due"] = _days_until_due(params, method)
    elif params.has("days_until_due"):
        subscription["days_until_due"] = _days_until_due(params, subscription["collection_method"])
    flag = params.flag("cancel_at_period_end")
    if flag is not None:
        subscription["cancel_at_period_end"] = flag
    if params.has("cancel_at"):
        # An empty value clears it. The sandbox ends the subscription at the first period end
        # on or after `cancel_at` (Stripe ends it at that instant, prorating unless told not
        # to; the gateway only asks for a period end).
        subscription["cancel_at"] = params.integer("cancel_at", minimum=0)
    for field in ("description", "default_payment_method"):
        if params.has(field):
            subscription[field] = params.text(field) or None
    subscription["metadata"] = params.metadata(subscription["metadata"])


def _days_until_due(params: Params, method: str) -> int | None:
    days = params.integer("days_until_due", minimum=0)
    if method == "send_invoice" and days is None:
        raise invalid_request(
            "Missing required param: days_until_due (needed with collection_method=send_invoice).",
            param="days_until_due",
            code="parameter_missing",
        )
    if method == "charge_automatically" and days is not None:
        raise invalid_request(
            "days_until_due can only be set when collection_method=send_invoice.",
            param="days_until_due",
        )
    return days


def _status_matches(status: str, wanted: str | None) -> bool:
    if wanted is None:
        # Stripe lists every subscription that is not canceled unless asked otherwise.
        return status not in ("canceled", "incomplete_expired")
    if wanted == "all":
        return True
    if wanted == "ended":
        return status in ("canceled", "incomplete_expired")
    return status == wanted
