"""Customers: create, read, update, delete, list and search (`/v1/customers`)."""

from __future__ import annotations

import hashlib

from sandbox.stripe.params import Params
from sandbox.stripe.render import created_filter, page, render
from sandbox.stripe.search import search_page
from sandbox.stripe.store import Obj, Store, changed

__all__ = [
    "create_customer",
    "delete_customer",
    "get_customer",
    "list_customers",
    "search_customers",
    "update_customer",
]

_WRITABLE = (
    "address",
    "description",
    "email",
    "invoice_settings",
    "metadata",
    "name",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
)
_ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
_SEARCH_FIELDS = ("created", "email", "name", "phone")


def create_customer(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only((*_WRITABLE, "test_clock", "invoice_prefix"))
    clock_id = params.text("test_clock")
    if clock_id:
        store.get("test_helpers.test_clock", clock_id, param="test_clock")
    customer_id = store.mint("cus")
    customer: Obj = {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": 0,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": params.text("invoice_prefix") or _invoice_prefix(customer_id),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": clock_id or None,
    }
    _apply(customer, params)
    store.insert(customer)
    customer["created"] = store.now(customer_id)
    store.emit("customer.created", render(store, customer))
    return render(store, customer, params.texts("expand"))


def get_customer(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    customer = store.find("customer", path["customer"])
    if customer is None:
        deleted = store.find("deleted_customer", path["customer"])
        if deleted is not None:
            return {**deleted, "object": "customer"}
        return store.get("customer", path["customer"])
    return render(store, customer, params.texts("expand"))


def update_customer(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(_WRITABLE)
    customer = store.get("customer", path["customer"])
    before = render(store, customer)
    _apply(customer, params)
    after = render(store, customer)
    previous = changed(before, after)
    if previous:
        store.emit("customer.updated", after, previous=previous)
    return render(store, customer, params.texts("expand"))


def delete_customer(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    customer = store.get("customer", path["customer"])
    snapshot = render(store, customer)
    store.remove(customer)
    tombstone = {"id": customer["id"], "object": "customer", "deleted": True}
    store.insert({**tombstone, "object": "deleted_customer"})
    store.emit("customer.deleted", snapshot)
    return tombstone


def list_customers(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("created", "email", "test_clock", "limit", "starting_after", "ending_before"))
    email, clock_id = params.text("email"), params.text("test_clock")
    in_window = created_filter(params)
    candidates = [
        customer
        for customer in store.newest_first("customer")
        if (email is None or customer["email"] == email)
        and (clock_id is None or customer["test_clock"] == clock_id)
        and in_window(customer)
    ]
    return page(store, candidates, params, "/v1/customers")


def search_customers(store: Store, params: Params, path: dict[str, str]) -> Obj:
    return search_page(store, "customer", params, "/v1/customers/search", fields=_SEARCH_FIELDS)


def _apply(customer: Obj, params: Params) -> None:
    for field in ("name", "email", "description", "phone"):
        if params.has(field):
            customer[field] = params.text(field) or None
    if params.has("tax_exempt"):
        customer["tax_exempt"] = params.choice("tax_exempt", ("none", "exempt", "reverse"))
    if params.has("preferred_locales"):
        customer["preferred_locales"] = params.texts("preferred_locales")
    customer["metadata"] = params.metadata(customer["metadata"])
    if params.has("address"):
        customer["address"] = _address(params)
    if params.has("shipping"):
        customer["shipping"] = _shipping(params)
    settings = params.nested("invoice_settings")
    if settings is not None:
        settings.only(("default_payment_method", "footer"))
        target = customer["invoice_settings"]
        if settings.has("default_payment_method"):
            target["default_payment_method"] = settings.text("default_payment_method") or None
        if settings.has("footer"):
            target["footer"] = settings.text("footer") or None


def _shipping(params: Params) -> Obj | None:
    nested = params.nested("shipping")
    if nested is None:
        return None
    nested.only(("address", "name", "phone"))
    return {
        "address": _address(nested) or dict.fromkeys(_ADDRESS_FIELDS),
        "name": nested.required_text("name"),
        "phone": nested.text("phone") or None,
    }


def _address(params: Params) -> Obj | None:
    """A whole address: Stripe replaces the address with the fields sent."""
    nested = params.nested("address")
    if nested is None:
        return None
    nested.only(_ADDRESS_FIELDS)
    return {field: nested.text(field) or None for field in _ADDRESS_FIELDS}


def _invoice_prefix(customer_id: str) -> str:
    return hashlib.sha256(customer_id.encode()).hexdigest()[:8].upper()
