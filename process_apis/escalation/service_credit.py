"""The service credit an SLA entitlement owes for a month: which sev-1 cases breached their
first-response target, the monthly recurring amount they are measured against, and the credit.

Pure functions on integers (money in minor units), so the flow, its routes and their tests
compute the same figure. The rules:

- A breach is a sev-1 (urgent) case created in the month (UTC) whose first public response
  came after `created_at + sla_first_response_minutes`, or, while the case is still open
  without a first response, whose target has passed by `as_of`.
- The monthly recurring amount (MRR) of a subscription is the sum of its lines brought to one
  month: a yearly line counts 1/12, a line billed every n months 1/n, weekly 52/12, daily
  365/12. The sum is exact (rational) and rounded half up to a whole minor unit once.
- The credit is `MRR x percent / 100` with `percent = min(breaches x percent per breach,
  cap percent)`, rounded half up to a whole minor unit. MRR is rounded before this
  multiplication, so the figures shown (MRR, percent, credit) recompute to the credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Literal

import msgspec

from contracts.money import Money, format_decimal
from contracts.v1 import CasePriority, CaseStatus, Price, RecurringInterval

__all__ = [
    "Breach",
    "CaseTiming",
    "CreditComputation",
    "RecurringLine",
    "ServiceCredit",
    "ServiceCreditStatus",
    "billing_month",
    "compute_credit",
    "describe_credit",
    "find_breaches",
    "line_amount",
    "month_bounds",
    "monthly_recurring_amount",
    "next_breach_at",
    "round_half_up",
]

_MONTHS_PER_UNIT: dict[RecurringInterval, Fraction] = {
    "month": Fraction(1),
    "year": Fraction(12),
    "week": Fraction(12, 52),
    "day": Fraction(12, 365),
}
"""How many months one interval unit lasts: an amount billed per unit is divided by this."""

ServiceCreditStatus = Literal[
    "computing", "not_owed", "pending_approval", "expired", "approved", "credited", "rejected"
]
"""`computing` until the figures are known; `not_owed` when no breach earned a credit;
`pending_approval` while finance decides (the month's total less what is already credited;
a later breach meanwhile raises the same pending approval); `expired` when nobody decided in
time (the flow then waits in finance's exception queue); `approved` while the credit is
being issued; `credited` once billing, the ERP and the case all show it; `rejected` when
finance refused it."""

_CLOSED: frozenset[CaseStatus] = frozenset({"solved", "closed"})


class RecurringLine(msgspec.Struct, frozen=True, kw_only=True):
    """What one subscription line bills per period, in minor units."""

    amount: int
    interval: RecurringInterval
    interval_count: int = 1


class CaseTiming(msgspec.Struct, frozen=True, kw_only=True):
    """The facts of a support case that decide a breach."""

    case_id: str
    priority: CasePriority
    status: CaseStatus
    created_at: datetime
    first_response_at: datetime | None = None


class Breach(msgspec.Struct, frozen=True, kw_only=True):
    """A sev-1 case that missed its first-response target."""

    case_id: str
    created_at: datetime
    target_at: datetime
    first_response_at: datetime | None = None
    """None: still unanswered when the credit was computed."""
    late_by_minutes: int
    """Whole minutes past the target (at the first response, or when computed)."""


class CreditComputation(msgspec.Struct, frozen=True, kw_only=True):
    """A month's credit and every figure it came from."""

    monthly_recurring_amount: int
    currency: str
    breaches: list[Breach]
    percent_per_breach: int
    cap_percent: int
    percent_applied: int
    cap_applied: bool
    """True when the breaches would have earned more than the cap."""
    amount: int
    """The credit in minor units of `currency`."""


class ServiceCredit(msgspec.Struct, frozen=True, kw_only=True):
    """A month's service credit for one organization, as `GET /process/v1/service-credits/{id}`
    shows it. Its id is the id of the escalation flow that computes and issues it."""

    id: str
    status: ServiceCreditStatus
    organization_id: str
    ticket_id: str | None = None
    """The sev-1 case that started the escalation (None until the flow has started)."""
    month: str
    """`YYYY-MM` (UTC) whose breaches the credit covers."""
    legal_entity: str | None = None
    crm_account_id: str | None = None
    amount: int | None = None
    """The month's credit in minor units of `currency`, every breach found so far counted
    (capped); None while computing."""
    credited_amount: int = 0
    """What earlier approvals of the month already credited: a later breach's approval is for
    `amount - credited_amount` only."""
    currency: str | None = None
    monthly_recurring_amount: int | None = None
    percent_per_breach: int | None = None
    cap_percent: int | None = None
    percent_applied: int | None = None
    cap_applied: bool | None = None
    breaches: list[Breach] = []
    subscription_id: str | None = None
    invoice_id: str | None = None
    """The billing invoice the credit note goes against (the subscription's latest paid one)."""
    approval_task_id: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    credit_note_id: str | None = None
    credit_memo_id: str | None = None
    flow_status: str | None = None
    """The escalation flow's own status (`waiting_approval`, `failed`, ...), when read."""


def round_half_up(value: Fraction) -> int:
    """`value` to the nearest integer, halves away from zero (0.5 -> 1, -0.5 -> -1)."""
    magnitude = (abs(value.numerator) * 2 + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude


def line_amount(price: Price, quantity: int) -> int:
    """What `quantity` units of `price` bill per period, tiers included, in minor units."""
    if price.billing_scheme != "tiered" or not price.tiers:
        return (price.unit_amount or 0) * quantity
    if price.tiers_mode == "volume":
        tier = next(
            (t for t in price.tiers if t.up_to is None or quantity <= t.up_to), price.tiers[-1]
        )
        return (tier.unit_amount or 0) * quantity + (tier.flat_amount or 0)
    total, below = 0, 0
    for tier in price.tiers:
        if quantity <= below:
            break
        top = quantity if tier.up_to is None else min(quantity, tier.up_to)
        total += (tier.unit_amount or 0) * (top - below) + (tier.flat_amount or 0)
        below = top
    return total


def monthly_recurring_amount(lines: Iterable[RecurringLine]) -> int:
    """The lines' exact monthly sum, rounded half up once to a whole minor unit."""
    total = sum(
        (
            Fraction(line.amount) / (_MONTHS_PER_UNIT[line.interval] * line.interval_count)
            for line in lines
        ),
        Fraction(0),
    )
    return round_half_up(total)


def billing_month(moment: datetime) -> str:
    """`YYYY-MM` of `moment` in UTC: the month a case counts in."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a `YYYY-MM` month in UTC."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following


def find_breaches(
    cases: Iterable[CaseTiming], *, sla_minutes: int, month: str, as_of: datetime
) -> list[Breach]:
    """The sev-1 cases created in `month` that missed their first-response target, oldest
    first. A case still open and unanswered counts once `as_of` is past its target."""
    start, end = month_bounds(month)
    found: list[Breach] = []
    for case in cases:
        if case.priority != "urgent" or not start <= case.created_at < end:
            continue
        target = case.created_at + timedelta(minutes=sla_minutes)
        if case.first_response_at is not None:
            reference = case.first_response_at
        elif case.status not in _CLOSED:
            reference = as_of
        else:
            continue
        if reference > target:
            found.append(
                Breach(
                    case_id=case.case_id,
                    created_at=case.created_at,
                    target_at=target,
                    first_response_at=case.first_response_at,
                    late_by_minutes=int((reference - target).total_seconds() // 60),
                )
            )
    return sorted(found, key=lambda breach: (breach.created_at, breach.case_id))


def next_breach_at(
    cases: Iterable[CaseTiming], *, sla_minutes: int, month: str, as_of: datetime
) -> datetime | None:
    """When the next sev-1 case of `month` still open and unanswered at `as_of` breaches
    its target (None when none is due to): the month's credit must be looked at again then."""
    start, end = month_bounds(month)
    targets = [
        case.created_at + timedelta(minutes=sla_minutes)
        for case in cases
        if case.priority == "urgent"
        and start <= case.created_at < end
        and case.first_response_at is None
        and case.status not in _CLOSED
        and case.created_at + timedelta(minutes=sla_minutes) > as_of
    ]
    return min(targets, default=None)


def compute_credit(
    *,
    monthly_recurring_amount: int,
    currency: str,
    breaches: Sequence[Breach],
    percent_per_breach: int,
    cap_percent: int,
) -> CreditComputation:
    """The credit for `breaches` at `percent_per_breach` each, capped at `cap_percent`."""
    earned = len(breaches) * percent_per_breach
    percent = min(earned, cap_percent)
    amount = round_half_up(Fraction(monthly_recurring_amount * percent, 100))
    return CreditComputation(
        monthly_recurring_amount=monthly_recurring_amount,
        currency=currency,
        breaches=list(breaches),
        percent_per_breach=percent_per_breach,
        cap_percent=cap_percent,
        percent_applied=percent,
        cap_applied=earned > cap_percent,
        amount=amount,
    )


def describe_credit(credit: ServiceCredit) -> str:
    """One line a person reads (approval queue, memos, notes): what, for whom, how much."""
    amount = (
        f"{format_decimal(Money(amount=credit.amount, currency=credit.currency))} {credit.currency}"
        if credit.amount is not None and credit.currency is not None
        else "(not computed)"
    )
    capped = f" (capped at {credit.cap_percent} %)" if credit.cap_applied else ""
    already = ""
    if credit.credited_amount and credit.amount is not None and credit.currency is not None:
        rest = Money(amount=credit.amount - credit.credited_amount, currency=credit.currency)
        done = Money(amount=credit.credited_amount, currency=credit.currency)
        already = (
            f"; {format_decimal(rest)} {credit.currency} due after "
            f"{format_decimal(done)} {credit.currency} already credited"
        )
    return (
        f"Service credit {amount} for organization {credit.organization_id}, {credit.month}: "
        f"{len(credit.breaches)} SLA breach(es) x {credit.percent_per_breach} %{capped}"
        f"{already}"
    )
