"""Products and prices (`/v1/products`, `/v1/prices`), per-unit and tiered."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.render import created_filter, page, render
from sandbox.stripe.search import search_page
from sandbox.stripe.store import Obj, Store, changed

__all__ = [
    "create_price",
    "create_product",
    "get_price",
    "get_product",
    "list_prices",
    "list_products",
    "search_products",
    "update_price",
    "update_product",
]

_PRODUCT_WRITABLE = ("active", "description", "metadata", "name", "unit_label", "url")
_PRICE_WRITABLE = ("active", "lookup_key", "metadata", "nickname", "transfer_lookup_key")
_INTERVAL_LIMITS = {"day": 365, "week": 52, "month": 12, "year": 1}
"""Stripe caps a recurring interval at one year (`interval_count` per interval)."""


def create_product(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only((*_PRODUCT_WRITABLE, "id", "images"))
    name = params.required_text("name")
    product_id = params.text("id") or store.mint("prod")
    if store.find("product", product_id) is not None:
        raise invalid_request(
            f"Product already exists: {product_id}", param="id", code="resource_already_exists"
        )
    now = store.real_now()
    product: Obj = {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "features": [],
        "images": params.texts("images"),
        "livemode": False,
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    _apply_product(product, params)
    store.insert(product)
    store.emit("product.created", render(store, product))
    return render(store, product, params.texts("expand"))


def get_product(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("product", path["id"]), params.texts("expand"))


def update_product(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only((*_PRODUCT_WRITABLE, "default_price"))
    product = store.get("product", path["id"])
    before = render(store, product)
    _apply_product(product, params)
    if params.has("default_price"):
        price_id = params.text("default_price") or None
        if price_id is not None:
            store.get("price", price_id, param="default_price")
        product["default_price"] = price_id
    product["updated"] = store.real_now()
    after = render(store, product)
    store.emit("product.updated", after, previous=changed(before, after))
    return render(store, product, params.texts("expand"))


def list_products(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("active", "created", "ids", "limit", "starting_after", "ending_before"))
    active, ids = params.flag("active"), set(params.texts("ids"))
    in_window = created_filter(params)
    candidates = [
        product
        for product in store.newest_first("product")
        if (active is None or product["active"] == active)
        and (not ids or product["id"] in ids)
        and in_window(product)
    ]
    return page(store, candidates, params, "/v1/products")


def search_products(store: Store, params: Params, path: dict[str, str]) -> Obj:
    fields = ("active", "created", "description", "name", "url")
    return search_page(store, "product", params, "/v1/products/search", fields=fields)


def create_price(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            *_PRICE_WRITABLE,
            "billing_scheme",
            "currency",
            "product",
            "recurring",
            "tax_behavior",
            "tiers",
            "tiers_mode",
            "unit_amount",
            "unit_amount_decimal",
        )
    )
    currency = params.required_text("currency").lower()
    product_id = params.required_text("product")
    store.get("product", product_id, param="product")
    scheme = params.choice("billing_scheme", ("per_unit", "tiered"), default="per_unit")
    price: Obj = {
        "id": store.mint("price"),
        "object": "price",
        "active": True,
        "billing_scheme": scheme,
        "created": store.real_now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": _recurring(params),
        "tax_behavior": params.choice(
            "tax_behavior", ("exclusive", "inclusive", "unspecified"), default="unspecified"
        ),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": None,
        "unit_amount_decimal": None,
    }
    price["type"] = "recurring" if price["recurring"] else "one_time"
    if scheme == "tiered":
        _apply_tiers(price, params)
    else:
        _apply_unit_amount(price, params)
    _apply_price(store, price, params)
    store.insert(price)
    store.emit("price.created", render(store, price))
    return render(store, price, params.texts("expand"))


def inline_price(store: Store, data: Params, *, recurring: bool) -> Obj:
    """The price Stripe makes from `price_data` on a subscription item or an invoice item.

    Stripe creates it inactive (it cannot be reused for new items) and never lists it as a
    catalog price; `recurring` says whether the field takes (and needs) `recurring`.
    """
    data.only(
        ("currency", "product", "recurring", "tax_behavior", "unit_amount", "unit_amount_decimal")
        if recurring
        else ("currency", "product", "tax_behavior", "unit_amount", "unit_amount_decimal")
    )
    product_id = data.required_text("product")
    store.get("product", product_id, param=data.name("product"))
    price: Obj = {
        "id": store.mint("price"),
        "object": "price",
        "active": False,
        "billing_scheme": "per_unit",
        "created": store.real_now(),
        "currency": data.required_text("currency").lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": _recurring(data) if recurring else None,
        "tax_behavior": data.choice(
            "tax_behavior", ("exclusive", "inclusive", "unspecified"), default="unspecified"
        ),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": None,
        "unit_amount_decimal": None,
        "_inline": True,
    }
    if recurring and price["recurring"] is None:
        raise invalid_request(
            f"Missing required param: {data.name('recurring')}.",
            param=data.name("recurring"),
            code="parameter_missing",
        )
    price["type"] = "recurring" if price["recurring"] else "one_time"
    _apply_unit_amount(price, data)
    return store.insert(price)


def get_price(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("price", path["price"]), params.texts("expand"))


def update_price(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(_PRICE_WRITABLE)
    price = store.get("price", path["price"])
    before = render(store, price)
    _apply_price(store, price, params)
    after = render(store, price)
    store.emit("price.updated", after, previous=changed(before, after))
    return render(store, price, params.texts("expand"))


def list_prices(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        (
            "active",
            "created",
            "currency",
            "lookup_keys",
            "product",
            "recurring",
            "type",
            "limit",
            "starting_after",
            "ending_before",
        )
    )
    active, product_id = params.flag("active"), params.text("product")
    currency, kind = params.text("currency"), params.choice("type", ("one_time", "recurring"))
    lookup_keys = set(params.texts("lookup_keys"))
    recurring = params.nested("recurring")
    interval = recurring.only(("interval", "usage_type")).text("interval") if recurring else None
    in_window = created_filter(params)
    candidates = [
        price
        for price in store.newest_first("price")
        if (active is None or price["active"] == active)
        and (product_id is None or price["product"] == product_id)
        and (currency is None or price["currency"] == currency.lower())
        and (kind is None or price["type"] == kind)
        and (not lookup_keys or price["lookup_key"] in lookup_keys)
        and (interval is None or (price["recurring"] or {}).get("interval") == interval)
        and in_window(price)
    ]
    return page(store, candidates, params, "/v1/prices")


def _apply_product(product: Obj, params: Params) -> None:
    for field in ("description", "unit_label", "url"):
        if params.has(field):
            product[field] = params.text(field) or None
    if params.has("name"):
        product["name"] = params.required_text("name")
    active = params.flag("active")
    if active is not None:
        product["active"] = active
    product["metadata"] = params.metadata(product["metadata"])


def _apply_price(store: Store, price: Obj, params: Params) -> None:
    active = params.flag("active")
    if active is not None:
        price["active"] = active
    if params.has("nickname"):
        price["nickname"] = params.text("nickname") or None
    price["metadata"] = params.metadata(price["metadata"])
    if params.has("lookup_key"):
        _claim_lookup_key(store, price, params.text("lookup_key") or None, params)


def _claim_lookup_key(store: Store, price: Obj, key: str | None, params: Params) -> None:
    """Lookup keys are unique; `transfer_lookup_key=true` moves one from its current price."""
    if key is not None:
        holder = next(
            (p for p in store.oldest_first("price") if p["lookup_key"] == key and p is not price),
            None,
        )
        if holder is not None:
            if not params.flag("transfer_lookup_key"):
                raise invalid_request(
                    f"A price (`{holder['id']}`) already uses that lookup key.",
                    param="lookup_key",
                )
            holder["lookup_key"] = None
    price["lookup_key"] = key


def _recurring(params: Params) -> Obj | None:
    recurring = params.nested("recurring")
    if recurring is None:
        return None
    recurring.only(("aggregate_usage", "interval", "interval_count", "usage_type"))
    interval = recurring.choice("interval", tuple(_INTERVAL_LIMITS))
    if interval is None:
        raise invalid_request(
            "Missing required param: recurring[interval].",
            param="recurring[interval]",
            code="parameter_missing",
        )
    count = recurring.integer("interval_count", minimum=1) or 1
    if count > _INTERVAL_LIMITS[interval]:
        raise invalid_request(
            "The maximum billing interval is one year (1 year, 12 months, 52 weeks or 365 days).",
            param="recurring[interval_count]",
        )
    usage = recurring.choice("usage_type", ("licensed", "metered"), default="licensed")
    aggregate = recurring.choice("aggregate_usage", ("sum",))
    if aggregate is not None and usage != "metered":
        raise invalid_request(
            "aggregate_usage can only be set when usage_type is `metered`.",
            param="recurring[aggregate_usage]",
        )
    return {
        # The sandbox sums a metered price's usage (the default of Stripe's four modes).
        "aggregate_usage": "sum" if usage == "metered" else None,
        "interval": interval,
        "interval_count": count,
        "trial_period_days": None,
        "usage_type": usage,
    }


def _apply_unit_amount(price: Obj, params: Params) -> None:
    if params.has("tiers") or params.has("tiers_mode"):
        raise invalid_request(
            "You may only specify tiers with billing_scheme=tiered.", param="tiers"
        )
    amount = params.integer("unit_amount", minimum=0)
    raw_decimal = params.text("unit_amount_decimal")
    if amount is not None and raw_decimal is not None:
        raise invalid_request(
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            param="unit_amount_decimal",
        )
    if raw_decimal is not None:
        exact = _decimal(raw_decimal, "unit_amount_decimal")
        price["unit_amount_decimal"] = _decimal_text(exact)
        price["unit_amount"] = int(exact) if exact == exact.to_integral_value() else None
    elif amount is not None:
        price["unit_amount"] = amount
        price["unit_amount_decimal"] = str(amount)
    else:
        raise invalid_request(
            "Missing required param: unit_amount.", param="unit_amount", code="parameter_missing"
        )


def _apply_tiers(price: Obj, params: Params) -> None:
    if params.has("unit_amount") or params.has("unit_amount_decimal"):
        raise invalid_request(
            "You may not specify unit_amount with billing_scheme=tiered; use tiers.",
            param="unit_amount",
        )
    mode = params.choice("tiers_mode", ("graduated", "volume"))
    tiers = params.hashes("tiers")
    if mode is None or not tiers:
        raise invalid_request(
            "Tiered prices need `tiers` and `tiers_mode`.",
            param="tiers" if mode else "tiers_mode",
            code="parameter_missing",
        )
    price["tiers_mode"] = mode
    price["tiers"] = [_tier(tier, last=index == len(tiers) - 1) for index, tier in enumerate(tiers)]
    bounds = [tier["up_to"] for tier in price["tiers"][:-1]]
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise invalid_request("Tiers must be in ascending `up_to` order.", param="tiers")


def _tier(tier: Params, *, last: bool) -> Obj:
    tier.only(("flat_amount", "flat_amount_decimal", "unit_amount", "unit_amount_decimal", "up_to"))
    raw_up_to = tier.required_text("up_to")
    if (raw_up_to == "inf") != last:
        raise invalid_request(
            "Only the last tier may (and must) have up_to=inf.", param=tier.name("up_to")
        )
    up_to = None if raw_up_to == "inf" else tier.integer("up_to", minimum=1)
    unit = _tier_amount(tier, "unit_amount")
    flat = _tier_amount(tier, "flat_amount")
    return {
        "flat_amount": flat[0],
        "flat_amount_decimal": flat[1],
        "unit_amount": unit[0],
        "unit_amount_decimal": unit[1],
        "up_to": up_to,
    }


def _tier_amount(tier: Params, field: str) -> tuple[int | None, str | None]:
    raw_decimal = tier.text(f"{field}_decimal")
    if raw_decimal is not None:
        exact = _decimal(raw_decimal, tier.name(f"{field}_decimal"))
        whole = int(exact) if exact == exact.to_integral_value() else None
        return whole, _decimal_text(exact)
    amount = tier.integer(field, minimum=0)
    return amount, None if amount is None else str(amount)


def _decimal(raw: str, param: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise invalid_request(f"Invalid decimal: {raw}", param=param) from None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -12:  # type: ignore[operator]
        raise invalid_request(
            f"Invalid decimal: {raw} (at most 12 decimal places, not negative)", param=param
        )
    return value


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
