"""The catalog: products and their prices (flat or tiered), matched across platforms by code."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contracts.v1.base import CurrencyCode, Entity, MinorUnits, Refs, ValueObject

__all__ = [
    "BillingInterval",
    "BillingScheme",
    "Price",
    "PriceTier",
    "Product",
    "RecurringInterval",
    "TiersMode",
    "UsageType",
]

BillingInterval = Literal["month", "year", "one_time"]
RecurringInterval = Literal["day", "week", "month", "year"]
BillingScheme = Literal["per_unit", "tiered"]
UsageType = Literal["licensed", "metered"]
TiersMode = Literal["graduated", "volume"]
"""`graduated`: each tier prices the units inside it; `volume`: the tier the total quantity
falls in prices every unit."""


class Product(Entity, frozen=True, kw_only=True):
    """Something the company sells, identified across platforms by its `code` (SKU)."""

    id: str
    code: str
    name: str
    description: str | None = None
    billing_interval: BillingInterval
    active: bool = True
    usage_metric: str | None = None
    """Set for a metered product: what its usage records count (e.g. `api_calls`); billed
    per unit of usage in arrears, at the end of each period."""
    refs: Refs = {}


class PriceTier(ValueObject, frozen=True, kw_only=True):
    """One tier of a tiered price; the last tier has `up_to` None (no upper bound)."""

    up_to: Annotated[int, msgspec.Meta(ge=1)] | None = None
    unit_amount: MinorUnits | None = None
    flat_amount: MinorUnits | None = None


class Price(Entity, frozen=True, kw_only=True):
    """What a product costs in one currency; `unit_amount` is None for a tiered price."""

    id: str
    product_id: str
    currency: CurrencyCode
    unit_amount: MinorUnits | None = None
    billing_scheme: BillingScheme = "per_unit"
    tiers: list[PriceTier] = []
    tiers_mode: TiersMode | None = None
    recurring_interval: RecurringInterval | None = None
    """None for a one-time price."""
    interval_count: Annotated[int, msgspec.Meta(ge=1)] = 1
    product_code: str | None = None
    active: bool = True
    usage_type: UsageType = "licensed"
    """`metered`: billed per unit of reported usage at the period's end (summed), not per
    subscribed quantity."""
    refs: Refs = {}
