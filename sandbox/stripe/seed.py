"""The sandbox's starting catalog: the demo products, each with a price per currency.

Stripe starts without customers (the gateway's flows create them); products carry
`metadata[product_code]` so the gateway can match them to the CRM and ERP catalogs.
Ids derive from the product codes, so every reset gives the same ids.
"""

from __future__ import annotations

from sandbox.demo_data import PRODUCTS, DemoProduct
from sandbox.stripe.ids import stable_id
from sandbox.stripe.store import Obj, Store

__all__ = ["SEED_CREATED", "price_id_for", "product_id_for", "seed_catalog"]

SEED_CREATED = 1_767_225_600
"""2026-01-01T00:00:00Z: when the demo catalog was 'created'."""


def product_id_for(code: str) -> str:
    return stable_id("prod", code)


def price_id_for(code: str, currency: str) -> str:
    return stable_id("price", f"{code}:{currency.upper()}")


def seed_catalog(store: Store) -> None:
    for product in PRODUCTS:
        prices = [
            _price(product, currency, amount)
            for currency, amount in sorted(product.unit_amounts.items())
        ]
        store.insert(_product(product, default_price=prices[-1]["id"] if prices else None))
        for price in prices:
            store.insert(price)


def _product(product: DemoProduct, *, default_price: str | None) -> Obj:
    return {
        "id": product_id_for(product.code),
        "object": "product",
        "active": True,
        "created": SEED_CREATED,
        "default_price": default_price,
        "description": None,
        "features": [],
        "images": [],
        "livemode": False,
        "metadata": {
            "product_code": product.code,
            "billing_interval": product.billing_interval,
            "netsuite_item_id": product.netsuite_item_id,
            **({"usage_metric": product.usage_metric} if product.usage_metric else {}),
        },
        "name": product.name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": SEED_CREATED,
        "url": None,
    }


def _price(product: DemoProduct, currency: str, amount: int) -> Obj:
    recurring = None
    if product.billing_interval != "one_time":
        metered = product.usage_metric is not None
        recurring = {
            "aggregate_usage": "sum" if metered else None,
            "interval": product.billing_interval,
            "interval_count": 1,
            "trial_period_days": None,
            "usage_type": "metered" if metered else "licensed",
        }
    return {
        "id": price_id_for(product.code, currency),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": SEED_CREATED,
        "currency": currency.lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": f"{product.code.lower()}_{currency.lower()}",
        "metadata": {"product_code": product.code},
        "nickname": None,
        "product": product_id_for(product.code),
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }
