"""What the layers above need to tax a sale: the treatment of a customer by a legal entity.

A treatment is a rate in basis points (1900 = 19 %) or a zero rate with the reason a
finance user and the customer read on the invoice (reverse charge, exempt). Billing and the
ERP both apply it line by line with `line_tax`, so they agree to the minor unit. The default
adapter is a rules table (`system_apis.tax.rules`); a tax engine plugs in behind the same port.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from contracts.v1 import Customer

__all__ = ["TaxPort", "TaxTreatment", "line_tax"]

BPS: int = 10_000
"""Basis points in one whole (100 %)."""


class TaxTreatment(msgspec.Struct, frozen=True, kw_only=True):
    """How a legal entity taxes one customer's purchases."""

    code: str
    """The tax code both platforms book the lines under (e.g. `DE-VAT-19`, `EU-RC`,
    `US-CA`); billing keeps one tax rate and the ERP one tax code per code."""
    rate_bps: int
    """The rate in basis points; 0 for reverse charge and exempt sales."""
    name: str
    """What the invoice shows beside the tax amount (e.g. `VAT 19%`, `Reverse charge`)."""
    reason: str | None = None
    """Why no tax is charged, printed on the invoice (reverse charge, exemption)."""
    jurisdiction: str
    """The country, or country-region, the rate is of (`DE`, `US-CA`)."""


@runtime_checkable
class TaxPort(Protocol):
    """The tax treatment of a customer (runtime-checkable: the app factory checks adapters)."""

    def treatment(self, *, legal_entity: str, customer: Customer) -> TaxTreatment:
        """The treatment `legal_entity` applies to `customer`'s purchases.

        Raises:
            ValueError: no rule covers the entity and the customer's jurisdiction.
        """
        ...


def line_tax(amount: int, rate_bps: int) -> int:
    """The tax of one line in minor units: `amount x rate`, rounded half up (away from zero
    on a tie, so a credit line mirrors its charge) once, on the line. Integer arithmetic."""
    magnitude = (abs(amount) * rate_bps * 2 + BPS) // (2 * BPS)
    return magnitude if amount >= 0 else -magnitude
