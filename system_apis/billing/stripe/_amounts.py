"""Stripe amounts <-> canonical minor units, exactly.

Stripe amounts are integers in the currency's smallest unit as Stripe counts it: the ISO 4217
minor unit, except for zero-decimal currencies Stripe still counts in hundredths (ISK, UGX:
https://docs.stripe.com/currencies#special-cases). A conversion that would need rounding is
refused. Decimal strings (`unit_amount_decimal`) are read with `Decimal`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.money import exponent
from contracts.v1 import PriceTier
from system_apis.billing.stripe._wire import PriceWire, TierWire

__all__ = [
    "decimal_minor",
    "tier",
    "tier_params",
    "to_minor_units",
    "to_stripe_amount",
    "unit_amount",
]

_STRIPE_DECIMALS = {"ISK": 2, "UGX": 2}
"""Zero-decimal ISO currencies Stripe still counts in hundredths."""


def to_minor_units(amount: int, currency: str) -> int:
    """A Stripe amount of `currency` as canonical ISO 4217 minor units, exactly."""
    code = currency.upper()
    shift = _STRIPE_DECIMALS.get(code, exponent(code)) - exponent(code)
    if shift == 0:
        return amount
    minor, remainder = divmod(amount, int(10**shift))
    if remainder:
        raise ValueError(f"{amount} {code} (Stripe units) is not a whole {code} minor unit")
    return minor


def to_stripe_amount(minor: int, currency: str) -> int:
    """Canonical minor units of `currency` as the integer Stripe expects."""
    code = currency.upper()
    shift = _STRIPE_DECIMALS.get(code, exponent(code)) - exponent(code)
    return minor * int(10**shift)


def decimal_minor(raw: str | None, currency: str) -> int | None:
    """A Stripe decimal amount string as whole canonical minor units, None if fractional."""
    if raw is None:
        return None
    value = Decimal(raw)
    if value != value.to_integral_value():
        return None
    return to_minor_units(int(value), currency)


def unit_amount(price: PriceWire, currency: str) -> int | None:
    if price.billing_scheme == "tiered":
        return None
    if price.unit_amount is not None:
        return to_minor_units(price.unit_amount, currency)
    return decimal_minor(price.unit_amount_decimal, currency)


def tier(wire: TierWire, currency: str) -> PriceTier:
    unit = wire.unit_amount
    flat = wire.flat_amount
    return PriceTier(
        up_to=wire.up_to,
        unit_amount=to_minor_units(unit, currency)
        if unit is not None
        else (decimal_minor(wire.unit_amount_decimal, currency)),
        flat_amount=to_minor_units(flat, currency)
        if flat is not None
        else (decimal_minor(wire.flat_amount_decimal, currency)),
    )


def tier_params(tier: PriceTier, currency: str) -> dict[str, Any]:
    return {
        "up_to": "inf" if tier.up_to is None else tier.up_to,
        "unit_amount": None
        if tier.unit_amount is None
        else to_stripe_amount(tier.unit_amount, currency),
        "flat_amount": None
        if tier.flat_amount is None
        else to_stripe_amount(tier.flat_amount, currency),
    }
