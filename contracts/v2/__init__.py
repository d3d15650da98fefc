"""Canonical contracts, version 2: what changed incompatibly since v1, beside it.

Version 2 republishes every v1 contract unchanged except billing's invoices, whose amounts are
`Money` objects with per-line tax, discount and service period (`contracts.v2.billing`).
`erp-gateway contracts diff v1 v2` lists the changes. A v2 contract changes only by adding
optional fields.
"""

from __future__ import annotations

from typing import Any

from contracts import v1 as _v1
from contracts.money import Money as Money
from contracts.v2 import billing as _billing
from contracts.v2.billing import (
    InvoiceTotals as InvoiceTotals,
)
from contracts.v2.billing import (
    LineTax as LineTax,
)
from contracts.v2.billing import (
    ServicePeriod as ServicePeriod,
)
from contracts.v2.billing import (
    invoice_from_v1 as invoice_from_v1,
)

# Published under v1's names (the contract names pair v1 with v2), with classes of their own
# names (the OpenAPI's component names): see `contracts.v2.billing`.
Invoice = _billing.InvoiceV2
InvoiceLine = _billing.InvoiceLineV2

_OWN = (
    "Invoice",
    "InvoiceLine",
    "InvoiceTotals",
    "LineTax",
    "Money",
    "ServicePeriod",
    "invoice_from_v1",
)
# Every other v1 contract is v2's as it stands, including ones v1 gains later (an optional
# addition to v1 is one to v2 too): bound here rather than listed, so none is forgotten.
_KEPT: dict[str, Any] = {name: getattr(_v1, name) for name in _v1.__all__ if name not in _OWN}
globals().update(_KEPT)

__all__ = sorted({*_KEPT, *_OWN})
