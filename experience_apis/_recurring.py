"""Recurring revenue of subscriptions: MRR and ARR in integer minor units.

The rule: an item's charge per billing period is its unit amount times its quantity (tiered
prices: by their tiers, graduated or volume, plus any flat amount); its monthly amount is that
charge divided by the period in months (a yearly price / 12, a quarterly price / 3, a weekly
price x 52 / 12, a daily price x 365 / 12). Amounts are kept as exact fractions and rounded
once, half up, to minor units: per subscription for its MRR, over the counted subscriptions
for the total MRR, and total ARR is 12 x the exact total MRR, rounded the same way. So the
per-subscription figures may not add up to the total by a minor unit; the total is exact.

Counted: subscriptions that bill (active, trialing, past_due) in the account's currency; others
are listed with `counted_in_mrr` false.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from contracts.v1 import Price, PriceTier, Subscription, SubscriptionItem

__all__ = ["BILLING_STATUSES", "item_monthly", "round_half_up", "subscription_monthly"]

BILLING_STATUSES = frozenset({"active", "trialing", "past_due"})
_MONTHS_PER_INTERVAL: dict[str, Fraction] = {
    "month": Fraction(1),
    "year": Fraction(12),
    "week": Fraction(12, 52),
    "day": Fraction(12, 365),
}


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero (0.5 -> 1, -0.5 -> -1)."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    return sign * int((magnitude * 2 + 1) // 2)


def item_monthly(item: SubscriptionItem, price: Price | None) -> Fraction | None:
    """The item's exact monthly amount; None for a one-time or unknown price."""
    if price is None or price.recurring_interval is None:
        return None
    charge = _period_charge(item, price)
    months = _MONTHS_PER_INTERVAL[price.recurring_interval] * price.interval_count
    return Fraction(charge) / months


def subscription_monthly(
    subscription: Subscription, prices: Mapping[str, Price]
) -> Fraction:
    """The subscription's exact monthly amount (items with unknown prices count nothing)."""
    total = Fraction(0)
    for item in subscription.items:
        monthly = item_monthly(item, prices.get(item.price_id))
        if monthly is not None:
            total += monthly
    return total


def _period_charge(item: SubscriptionItem, price: Price) -> int:
    if item.unit_amount is not None:
        return item.unit_amount * item.quantity
    if price.billing_scheme == "tiered" and price.tiers:
        if price.tiers_mode == "volume":
            return _volume(price.tiers, item.quantity)
        return _graduated(price.tiers, item.quantity)
    return (price.unit_amount or 0) * item.quantity


def _volume(tiers: list[PriceTier], quantity: int) -> int:
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return (tier.unit_amount or 0) * quantity + (tier.flat_amount or 0)
    return 0


def _graduated(tiers: list[PriceTier], quantity: int) -> int:
    total, floor = 0, 0
    for tier in tiers:
        if quantity <= floor:
            break
        ceiling = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += (tier.unit_amount or 0) * (ceiling - floor) + (tier.flat_amount or 0)
        floor = ceiling
    return total
