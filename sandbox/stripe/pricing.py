"""Amounts and periods: per-unit and tiered prices, prorations, billing intervals.

All money is integer minor units; fractional unit amounts (`unit_amount_decimal`) and prorated
amounts are computed with `Decimal` and rounded half up to a whole minor unit, once per line.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sandbox.stripe.store import Obj

__all__ = ["add_interval", "line_amount", "prorated", "to_minor"]


def to_minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_amount(price: Obj, quantity: int) -> int:
    """What `quantity` units of `price` cost for one full period."""
    if price["billing_scheme"] == "tiered":
        return to_minor(_tiered(price, quantity))
    return to_minor(_unit(price) * quantity)


def prorated(amount: int, *, start: int, end: int, at: int) -> int:
    """The share of `amount` for the rest of the period [start, end) from `at`."""
    if end <= start:
        return 0
    moment = min(max(at, start), end)
    return to_minor(Decimal(amount) * Decimal(end - moment) / Decimal(end - start))


def add_interval(timestamp: int, interval: str, count: int) -> int:
    """`timestamp` moved forward by `count` intervals, months clamped to the month's end."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    if interval == "day":
        return timestamp + 86_400 * count
    if interval == "week":
        return timestamp + 7 * 86_400 * count
    months = count if interval == "month" else 12 * count
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _unit(price: Obj) -> Decimal:
    raw = price.get("unit_amount_decimal")
    if raw is not None:
        return Decimal(raw)
    return Decimal(price.get("unit_amount") or 0)


def _tier_amounts(tier: Obj) -> tuple[Decimal, Decimal]:
    unit = tier.get("unit_amount_decimal") or tier.get("unit_amount") or 0
    flat = tier.get("flat_amount_decimal") or tier.get("flat_amount") or 0
    return Decimal(unit), Decimal(flat)


def _tiered(price: Obj, quantity: int) -> Decimal:
    tiers: list[Obj] = price["tiers"]
    if price["tiers_mode"] == "volume":
        for tier in tiers:
            if tier["up_to"] is None or quantity <= tier["up_to"]:
                unit, flat = _tier_amounts(tier)
                return unit * quantity + flat
        return Decimal(0)
    total, floor = Decimal(0), 0
    for tier in tiers:
        if quantity <= floor:
            break
        ceiling = quantity if tier["up_to"] is None else min(quantity, tier["up_to"])
        unit, flat = _tier_amounts(tier)
        total += unit * (ceiling - floor) + flat
        floor = ceiling
    return total
