"""Invoices, invoice items and payment intents over HTTP (`/v1/invoices`, `/v1/invoiceitems`)."""

from __future__ import annotations

from sandbox.stripe import invoicing
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.pricing import line_amount
from sandbox.stripe.render import (
    created_filter,
    page,
    page_of,
    render,
    render_lines,
)
from sandbox.stripe.routes_catalog import inline_price
from sandbox.stripe.routes_tax_rates import tax_rates_of
from sandbox.stripe.store import Obj, Store

__all__ = [
    "create_invoice",
    "create_invoice_item",
    "delete_invoice",
    "delete_invoice_item",
    "finalize_invoice",
    "get_invoice",
    "get_invoice_item",
    "get_payment_intent",
    "invoice_lines",
    "list_invoice_items",
    "list_invoices",
    "mark_uncollectible",
    "new_invoice_item",
    "pay_invoice",
    "send_invoice",
    "update_invoice",
    "void_invoice",
]

_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
_COLLECTION = ("charge_automatically", "send_invoice")


def create_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "auto_advance",
            "collection_method",
            "currency",
            "customer",
            "days_until_due",
            "default_tax_rates",
            "description",
            "due_date",
            "footer",
            "metadata",
            "pending_invoice_items_behavior",
            "subscription",
        )
    )
    customer = store.get("customer", params.required_text("customer"), param="customer")
    subscription_id = params.text("subscription")
    subscription = (
        store.get("subscription", subscription_id, param="subscription")
        if subscription_id
        else None
    )
    method = params.choice("collection_method", _COLLECTION, default="charge_automatically")
    days, due = _due_terms(params, str(method))
    # Since API version 2022-08-01 pending items stay out unless asked for.
    behavior = params.choice(
        "pending_invoice_items_behavior", ("include", "exclude"), default="exclude"
    )
    pending = (
        _pending_items(store, customer["id"], subscription_id) if behavior == "include" else []
    )
    currency = (
        params.text("currency") or customer["currency"] or _items_currency(pending) or "usd"
    ).lower()
    # Stripe creates nothing for a refused request: every check comes before the draft
    # exists (a stray draft would be billed by whoever finalizes the customer's drafts).
    rates = tax_rates_of(store, params, "default_tax_rates")
    metadata = params.metadata({})
    for item in pending:
        invoicing.check_item_currency(item, currency)
    invoicing.set_customer_currency(customer, currency, param="currency")
    at = store.now(customer["id"])
    invoice = invoicing.new_invoice(
        store,
        customer,
        currency=currency,
        collection_method=str(method),
        billing_reason="manual",
        created=at,
        subscription=subscription,
        days_until_due=days,
        auto_advance=bool(params.flag("auto_advance")),
    )
    invoice["due_date"] = due
    if params.has("default_tax_rates"):
        invoice["default_tax_rates"] = [dict(rate) for rate in rates]
    invoice["description"] = params.text("description") or None
    invoice["footer"] = params.text("footer") or None
    invoice["metadata"] = metadata
    for item in pending:
        invoicing.attach_item(store, invoice, item)
    return render(store, invoice, params.texts("expand"))


def get_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("invoice", path["invoice"]), params.texts("expand"))


def update_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "auto_advance",
            "collection_method",
            "days_until_due",
            "description",
            "due_date",
            "footer",
            "metadata",
        )
    )
    invoice = store.get("invoice", path["invoice"])
    before = render(store, invoice)
    draft_only = [k for k in ("collection_method", "days_until_due", "due_date") if params.has(k)]
    if draft_only and invoice["status"] != "draft":
        raise invalid_request(
            f"You can only update {draft_only[0]} on a draft invoice.", param=draft_only[0]
        )
    if params.has("collection_method"):
        invoice["collection_method"] = params.choice("collection_method", _COLLECTION)
    if params.has("days_until_due") or params.has("due_date"):
        invoice["_days_until_due"], invoice["due_date"] = _due_terms(
            params, invoice["collection_method"]
        )
    for field in ("description", "footer"):
        if params.has(field):
            invoice[field] = params.text(field) or None
    if params.has("auto_advance"):
        invoice["auto_advance"] = bool(params.flag("auto_advance"))
    invoice["metadata"] = params.metadata(invoice["metadata"])
    invoicing.refresh_snapshot(
        store, invoice, "invoice.updated", at=store.now(invoice["customer"]), before=before
    )
    return render(store, invoice, params.texts("expand"))


def delete_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    invoice = store.get("invoice", path["invoice"])
    if invoice["status"] != "draft":
        raise invalid_request("You can only delete draft invoices.", code="invoice_not_editable")
    for item in store.oldest_first("invoiceitem"):
        if item["invoice"] == invoice["id"]:
            item["invoice"] = None
    snapshot = render(store, invoice)
    store.remove(invoice)
    store.emit("invoice.deleted", snapshot)
    return {"id": invoice["id"], "object": "invoice", "deleted": True}


def list_invoices(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "collection_method",
            "created",
            "customer",
            "due_date",
            "status",
            "subscription",
            "limit",
            "starting_after",
            "ending_before",
        )
    )
    customer, subscription = params.text("customer"), params.text("subscription")
    status = params.choice("status", _STATUSES)
    method = params.choice("collection_method", _COLLECTION)
    in_window, due_window = created_filter(params), created_filter(params, "due_date")
    candidates = [
        invoice
        for invoice in store.newest_first("invoice")
        if (customer is None or invoice["customer"] == customer)
        and (subscription is None or invoice["subscription"] == subscription)
        and (status is None or invoice["status"] == status)
        and (method is None or invoice["collection_method"] == method)
        and in_window(invoice)
        and due_window(invoice)
    ]
    return page(store, candidates, params, "/v1/invoices")


def invoice_lines(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("limit", "starting_after", "ending_before"))
    invoice = store.get("invoice", path["invoice"])
    lines = render_lines(store, invoice)
    return page_of(lines, params, f"/v1/invoices/{invoice['id']}/lines")


def finalize_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("auto_advance",))
    invoice = store.get("invoice", path["invoice"])
    if params.has("auto_advance"):
        invoice["auto_advance"] = bool(params.flag("auto_advance"))
    invoicing.finalize(store, invoice, at=store.now(invoice["customer"]))
    return render(store, invoice, params.texts("expand"))


def pay_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("forgive", "off_session", "paid_out_of_band", "payment_method"))
    invoice = store.get("invoice", path["invoice"])
    at = store.now(invoice["customer"])
    if invoice["status"] == "paid":
        raise invalid_request("Invoice is already paid", code="invoice_already_paid")
    if invoice["status"] == "void":
        raise invalid_request(
            "This invoice has been voided and cannot be paid.", code="invoice_not_editable"
        )
    if invoice["status"] == "draft":
        invoicing.finalize(store, invoice, at=at)
    if invoice["status"] != "paid":
        if params.flag("paid_out_of_band"):
            invoicing.mark_paid_out_of_band(store, invoice, at=at)
        else:
            invoicing.collect(
                store,
                invoice,
                at=at,
                payment_method=params.text("payment_method"),
                raise_on_decline=True,
            )
    return render(store, invoice, params.texts("expand"))


def void_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    invoice = store.get("invoice", path["invoice"])
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid_request(
            f"You can only void an open or uncollectible invoice; this one is {invoice['status']}.",
            code="invoice_not_editable",
        )
    at = store.now(invoice["customer"])
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = at
    if invoice["payment_intent"]:
        intent = store.get("payment_intent", invoice["payment_intent"])
        intent.update(status="canceled", canceled_at=at, cancellation_reason="void_invoice")
    store.emit("invoice.voided", render(store, invoice), created=at)
    return render(store, invoice, params.texts("expand"))


def mark_uncollectible(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    invoice = store.get("invoice", path["invoice"])
    if invoice["status"] != "open":
        raise invalid_request(
            "You can only mark an open invoice uncollectible.", code="invoice_not_editable"
        )
    at = store.now(invoice["customer"])
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = at
    store.emit("invoice.marked_uncollectible", render(store, invoice), created=at)
    return render(store, invoice, params.texts("expand"))


def send_invoice(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    invoice = store.get("invoice", path["invoice"])
    if invoice["collection_method"] != "send_invoice":
        raise invalid_request(
            "You can only manually send an invoice if its collection method is 'send_invoice'."
        )
    at = store.now(invoice["customer"])
    if invoice["status"] == "draft":
        invoicing.finalize(store, invoice, at=at)
    if invoice["status"] not in ("open", "paid"):
        raise invalid_request(
            "You can only send an open or paid invoice.", code="invoice_not_editable"
        )
    store.emit("invoice.sent", render(store, invoice), created=at)
    return render(store, invoice, params.texts("expand"))


def create_invoice_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "amount",
            "currency",
            "customer",
            "description",
            "discountable",
            "invoice",
            "metadata",
            "period",
            "price",
            "price_data",
            "quantity",
            "subscription",
            "tax_rates",
            "unit_amount",
            "unit_amount_decimal",
        )
    )
    customer = store.get("customer", params.required_text("customer"), param="customer")
    data = params.nested("price_data")
    if data is not None and params.has("price"):
        raise invalid_request(
            "You may only specify one of these parameters: price, price_data.",
            param="price_data",
        )
    inline = inline_price(store, data, recurring=False) if data is not None else None
    item = new_invoice_item(store, customer, params, price=inline)
    invoice_id = params.text("invoice")
    if invoice_id:
        invoice = store.get("invoice", invoice_id, param="invoice")
        if invoice["status"] != "draft" or invoice["customer"] != customer["id"]:
            raise invalid_request(
                "Invoice items can only be added to draft invoices of the same customer.",
                param="invoice",
            )
        before = render(store, invoice)
        invoicing.attach_item(store, invoice, item)
        invoicing.refresh_snapshot(
            store, invoice, "invoice.updated", at=item["date"], before=before
        )
    store.emit("invoiceitem.created", render(store, item), created=item["date"])
    return render(store, item, params.texts("expand"))


def new_invoice_item(
    store: Store,
    customer: Obj,
    params: Params,
    *,
    subscription: Obj | None = None,
    price: Obj | None = None,
) -> Obj:
    """A pending invoice item from `price` (or the inline `price` given) + `quantity`, or
    `amount`/`unit_amount` + `currency`."""
    quantity = params.integer("quantity", minimum=0)
    quantity = 1 if quantity is None else quantity
    price_id = price["id"] if price is not None else params.text("price")
    at = store.now(customer["id"])
    if price_id:
        price = price or store.get("price", price_id, param=params.name("price"))
        if price["type"] != "one_time":
            raise invalid_request(
                "The price specified is set to `type=recurring` but this field only accepts "
                "prices with `type=one_time`.",
                param=params.name("price"),
            )
        amount, currency = line_amount(price, quantity), price["currency"]
        unit, description = price["unit_amount"], _product_name(store, price)
    else:
        amount, unit, currency = _ad_hoc_amount(params, quantity)
        description = None
    subscription_id = params.text("subscription") or (subscription["id"] if subscription else None)
    if subscription_id:
        store.get("subscription", subscription_id, param="subscription")
    period = params.nested("period")
    start = period.integer("start") if period else None
    end = period.integer("end") if period else None
    item: Obj = {
        "id": store.mint("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "date": at,
        "description": params.text("description") or description,
        "discountable": params.flag("discountable") is not False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": params.metadata({}),
        "period": {"start": start or at, "end": end or at},
        "price": price_id or None,
        "proration": False,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [dict(rate) for rate in tax_rates_of(store, params, "tax_rates")],
        "test_clock": customer["test_clock"],
        "unit_amount": unit,
        "unit_amount_decimal": None if unit is None else str(unit),
    }
    invoicing.set_customer_currency(customer, currency, param=params.name("currency"))
    return store.insert(item)


def get_invoice_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("invoiceitem", path["invoiceitem"]), params.texts("expand"))


def delete_invoice_item(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    item = store.get("invoiceitem", path["invoiceitem"])
    if item["invoice"] is not None:
        invoice = store.get("invoice", item["invoice"])
        if invoice["status"] != "draft":
            raise invalid_request(
                "You can only delete invoice items that are pending or on a draft invoice."
            )
        invoice["lines"]["data"] = [
            line for line in invoice["lines"]["data"] if line.get("invoice_item") != item["id"]
        ]
        invoicing.recompute(invoice)
    store.remove(item)
    store.emit("invoiceitem.deleted", render(store, item))
    return {"id": item["id"], "object": "invoiceitem", "deleted": True}


def list_invoice_items(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        ("created", "customer", "invoice", "pending", "limit", "starting_after", "ending_before")
    )
    customer, invoice = params.text("customer"), params.text("invoice")
    pending = params.flag("pending")
    in_window = created_filter(params, "date")
    candidates = [
        item
        for item in store.newest_first("invoiceitem")
        if (customer is None or item["customer"] == customer)
        and (invoice is None or item["invoice"] == invoice)
        and (pending is None or (item["invoice"] is None) == pending)
        and in_window(item)
    ]
    return page(store, candidates, params, "/v1/invoiceitems")


def get_payment_intent(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("payment_intent", path["intent"]), params.texts("expand"))


def _due_terms(params: Params, method: str) -> tuple[int | None, int | None]:
    days = params.integer("days_until_due", minimum=0)
    due = params.integer("due_date")
    if method == "charge_automatically" and (days is not None or due is not None):
        raise invalid_request(
            "Invoices with collection_method=charge_automatically cannot have a due date.",
            param="days_until_due" if days is not None else "due_date",
        )
    if method == "send_invoice" and days is None and due is None:
        raise invalid_request(
            "Missing required param: days_until_due (or due_date) for send_invoice.",
            param="days_until_due",
            code="parameter_missing",
        )
    return days, due


def _pending_items(store: Store, customer_id: str, subscription_id: str | None) -> list[Obj]:
    return [
        item
        for item in store.oldest_first("invoiceitem")
        if item["customer"] == customer_id
        and item["invoice"] is None
        and (subscription_id is None or item["subscription"] == subscription_id)
    ]


def _items_currency(items: list[Obj]) -> str | None:
    return str(items[0]["currency"]) if items else None


def _product_name(store: Store, price: Obj) -> str:
    product = store.find("product", price["product"])
    return str(product["name"]) if product else str(price["id"])


def _ad_hoc_amount(params: Params, quantity: int) -> tuple[int, int | None, str]:
    currency = params.text("currency")
    if not currency:
        raise invalid_request(
            "Missing required param: currency.",
            param=params.name("currency"),
            code="parameter_missing",
        )
    amount = params.integer("amount")
    unit = params.integer("unit_amount")
    if amount is not None and unit is not None:
        raise invalid_request(
            "You may only specify one of these parameters: amount, unit_amount.", param="amount"
        )
    if amount is None and unit is None:
        raise invalid_request(
            "Missing required param: amount (or price, or unit_amount).",
            param=params.name("amount"),
            code="parameter_missing",
        )
    if amount is not None:
        return amount, None if quantity != 1 else amount, currency.lower()
    assert unit is not None
    return unit * quantity, unit, currency.lower()
