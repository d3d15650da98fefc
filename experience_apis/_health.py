"""The account health score of the sales console: 0-100, with the factors behind it.

The rule starts at 100 and subtracts, per factor:

- `overdue_invoices` (billing): 15 per overdue open invoice, at most 45;
- `sev1_cases_90d` (support): 10 per sev-1 case opened in the last 90 days, at most 30;
- `payment_status` (billing, ERP; the worse of the two): past_due 15, delinquent 30;
- `open_exceptions` (process): 5 per unresolved exception on the account's flows, at most 20.

The score never goes below 0. A factor whose source did not answer subtracts nothing and is
reported with `known: false`, so a score built on missing data says so.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from contracts.v1 import PaymentStatus

__all__ = ["Health", "HealthFactor", "health_score", "worse_payment_status"]

OVERDUE_POINTS, OVERDUE_CAP = 15, 45
SEV1_POINTS, SEV1_CAP = 10, 30
EXCEPTION_POINTS, EXCEPTION_CAP = 5, 20
PAYMENT_POINTS: dict[str, int] = {"current": 0, "past_due": 15, "delinquent": 30}

FactorName = Literal["overdue_invoices", "sev1_cases_90d", "payment_status", "open_exceptions"]


class HealthFactor(msgspec.Struct, frozen=True, kw_only=True):
    name: FactorName
    value: int | str | None
    """The observed value: a count, or the payment status."""
    points: int
    """What this factor took off the score (0 or more)."""
    known: bool
    """False when the factor's source did not answer (it then takes nothing off)."""


class Health(msgspec.Struct, frozen=True, kw_only=True):
    score: int
    factors: list[HealthFactor]


def health_score(
    *,
    overdue_invoices: int | None,
    sev1_cases_90d: int | None,
    payment_status: PaymentStatus | None,
    payment_known: bool,
    open_exceptions: int | None,
) -> Health:
    """The score by the rule above; None counts mean the source did not answer."""
    factors = [
        _counted("overdue_invoices", overdue_invoices, OVERDUE_POINTS, OVERDUE_CAP),
        _counted("sev1_cases_90d", sev1_cases_90d, SEV1_POINTS, SEV1_CAP),
        HealthFactor(
            name="payment_status",
            value=payment_status,
            points=PAYMENT_POINTS.get(payment_status or "current", 0) if payment_known else 0,
            known=payment_known,
        ),
        _counted("open_exceptions", open_exceptions, EXCEPTION_POINTS, EXCEPTION_CAP),
    ]
    score = max(0, 100 - sum(factor.points for factor in factors))
    return Health(score=score, factors=factors)


def worse_payment_status(*statuses: PaymentStatus | None) -> PaymentStatus | None:
    """The most severe of the platforms' payment statuses (None when none is known)."""
    known = [status for status in statuses if status is not None]
    if not known:
        return None
    return max(known, key=lambda status: PAYMENT_POINTS[status])


def _counted(name: FactorName, count: int | None, points: int, cap: int) -> HealthFactor:
    if count is None:
        return HealthFactor(name=name, value=None, points=0, known=False)
    return HealthFactor(name=name, value=count, points=min(cap, points * count), known=True)
