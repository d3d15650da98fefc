"""Stripe products and prices <-> the canonical catalog."""

from __future__ import annotations

from typing import Any

from contracts.v1 import Price, Product
from contracts.v1.catalog import BillingInterval, RecurringInterval
from system_apis.billing.stripe._amounts import tier, tier_params, to_stripe_amount, unit_amount
from system_apis.billing.stripe._conventions import (
    META_BILLING_INTERVAL,
    META_NETSUITE_ITEM,
    META_PRODUCT_CODE,
    META_USAGE_METRIC,
    refs,
)
from system_apis.billing.stripe._form import FormParams
from system_apis.billing.stripe._wire import PriceWire, ProductWire

__all__ = ["from_price", "from_product", "to_price", "to_product"]


def to_product(wire: ProductWire) -> Product:
    """The canonical product, identified by `metadata[product_code]`."""
    meta = wire.metadata
    return Product(
        id=wire.id,
        code=meta.get(META_PRODUCT_CODE) or wire.id,
        name=wire.name or wire.id,
        description=wire.description,
        billing_interval=_billing_interval(meta.get(META_BILLING_INTERVAL), wire.default_price),
        active=wire.active,
        usage_metric=meta.get(META_USAGE_METRIC) or None,
        refs=refs(wire.id, netsuite=meta.get(META_NETSUITE_ITEM)),
    )


def from_product(product: Product) -> FormParams:
    """`POST /v1/products` parameters for a catalog product."""
    netsuite = product.refs.get("netsuite")
    metadata = {
        META_PRODUCT_CODE: product.code,
        META_BILLING_INTERVAL: product.billing_interval,
        META_NETSUITE_ITEM: netsuite,
        META_USAGE_METRIC: product.usage_metric,
    }
    return {
        "name": product.name,
        "description": product.description,
        "active": product.active,
        "metadata": {key: value for key, value in metadata.items() if value is not None},
    }


def to_price(wire: PriceWire) -> Price:
    """The canonical price; tiers are present when Stripe was asked to expand them."""
    currency = wire.currency.upper()
    product = wire.product
    product_id = product.id if isinstance(product, ProductWire) else product
    code = wire.metadata.get(META_PRODUCT_CODE)
    if code is None and isinstance(product, ProductWire):
        code = product.metadata.get(META_PRODUCT_CODE)
    recurring = wire.recurring
    return Price(
        id=wire.id,
        product_id=product_id or "",
        currency=currency,
        unit_amount=unit_amount(wire, currency),
        billing_scheme="tiered" if wire.billing_scheme == "tiered" else "per_unit",
        tiers=[tier(entry, currency) for entry in wire.tiers or []],
        tiers_mode="volume"
        if wire.tiers_mode == "volume"
        else ("graduated" if wire.tiers_mode == "graduated" else None),
        recurring_interval=_recurring_interval(recurring.interval) if recurring else None,
        interval_count=recurring.interval_count if recurring else 1,
        product_code=code,
        active=wire.active,
        usage_type="metered" if recurring and recurring.usage_type == "metered" else "licensed",
        refs=refs(wire.id),
    )


def from_price(price: Price, *, product_id: str, lookup_key: str | None = None) -> FormParams:
    """`POST /v1/prices` parameters: per-unit or tiered, one-time or recurring."""
    currency = price.currency
    params: dict[str, Any] = {
        "product": product_id,
        "currency": currency.lower(),
        "active": price.active,
        "lookup_key": lookup_key,
        "metadata": {META_PRODUCT_CODE: price.product_code} if price.product_code else None,
    }
    if price.recurring_interval is not None:
        params["recurring"] = {
            "interval": price.recurring_interval,
            "interval_count": price.interval_count,
        }
        if price.usage_type == "metered":
            # Billed per unit of the period's reported usage, summed, at the period's end.
            params["recurring"] |= {"usage_type": "metered", "aggregate_usage": "sum"}
    if price.billing_scheme == "tiered":
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = price.tiers_mode
        params["tiers"] = [tier_params(entry, currency) for entry in price.tiers]
    else:
        params["unit_amount"] = to_stripe_amount(price.unit_amount or 0, currency)
    return params


def _billing_interval(
    declared: str | None, default_price: str | PriceWire | None
) -> BillingInterval:
    if declared in ("month", "year", "one_time"):
        return declared  # type: ignore[return-value]
    if isinstance(default_price, PriceWire):
        if default_price.recurring is None:
            return "one_time"
        if default_price.recurring.interval == "year":
            return "year"
        return "month"
    return "one_time"


def _recurring_interval(interval: str) -> RecurringInterval:
    if interval in ("day", "week", "month", "year"):
        return interval  # type: ignore[return-value]
    raise ValueError(f"unknown Stripe recurring interval {interval!r}")
