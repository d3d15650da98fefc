"""Bounds on what one request may ask for: how many items, how large a quantity or an amount.

Set far above anything a real business sends (a deal of a million seats, ten billion in major
units), so no honest request meets them, and low enough that no request can make a vendor
bill 10^22, or make hundreds of vendor calls before its input is refused. Request Structs
declare them with the `Annotated` types below, so they show in the OpenAPI document and a
value past a bound is a 422 naming the field before anything else runs.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

__all__ = [
    "MAX_AMOUNT",
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "Quantity",
    "SignedAmount",
]

MAX_ITEMS: Final = 100
"""Items one request may list (changes of an amendment, lines of an order)."""
MAX_QUANTITY: Final = 1_000_000
"""Units of one item."""
MAX_AMOUNT: Final = 10**12
"""Minor units of one amount (ten billion dollars or euros)."""

Quantity = Annotated[int, msgspec.Meta(ge=0, le=MAX_QUANTITY)]
"""A count of units, 0 to `MAX_QUANTITY`."""
SignedAmount = Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
"""Minor units, at most `MAX_AMOUNT` either way."""
