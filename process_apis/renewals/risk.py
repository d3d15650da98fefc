"""Renewal risk: the signals a renewal is judged by, the rules that rate it, and its summary.

Pure functions on integers, so the scan, the sales view and their tests agree. Each rule looks
at one signal and, past its threshold, raises the risk to its level; the renewal's risk is the
highest level any rule reached (`low` when none fired), and the rules that fired are the
explanation. Thresholds are the fields of `RiskRules`, chosen by whoever wires the flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, Protocol

import msgspec

from contracts.money import Money, format_decimal
from contracts.v1 import RenewalRisk

__all__ = [
    "Assessment",
    "FiredRule",
    "RiskRules",
    "Signals",
    "UsageHistory",
    "UsagePeriod",
    "UsageTrend",
    "assess",
    "parse_rules",
    "summary",
    "usage_trend",
]

UsageTrend = Literal["growing", "flat", "declining", "unknown"]
"""`unknown`: no usage source knows the subscription (nothing metered, or no usage source)."""

_LEVELS: dict[RenewalRisk, int] = {"low": 0, "medium": 1, "high": 2}


class UsagePeriod(msgspec.Struct, frozen=True, kw_only=True):
    """The usage billed for one closed billing period."""

    period_start: datetime
    quantity: int


class UsageHistory(Protocol):
    """Where a renewal reads a subscription's usage: the narrow view it needs of metering."""

    async def last_periods(
        self, subscription_id: str, periods: int = 3
    ) -> list[UsagePeriod] | None:
        """Up to `periods` closed periods, oldest first; None when the subscription is not
        metered anywhere this source knows."""
        ...


class Signals(msgspec.Struct, frozen=True, kw_only=True):
    """What the renewal of one contract is judged by, over the last `window_days`."""

    usage_trend: UsageTrend
    usage_periods: list[int] = []
    """Usage of the last periods, oldest first (empty when unknown)."""
    urgent_cases: int = 0
    """Sev-1 (urgent) support cases opened in the window."""
    sla_breaches: int = 0
    """Of those, the ones whose first response missed the SLA target."""
    service_credits: int = 0
    """Service credit notes issued in the window."""
    service_credit_amount: int = 0
    """Their total, minor units of `currency`."""
    failed_payments: int = 0
    """Invoices of the window whose payment failed (open past due or uncollectible)."""
    days_past_due: int = 0
    """Days the oldest unpaid invoice is past its due date (0: nothing overdue)."""
    currency: str
    window_days: int = 90


_Threshold = Annotated[int, msgspec.Meta(ge=0)]


class RiskRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The thresholds of the risk rules: a signal at or above one raises the risk to its level.

    0 turns a rule off. `parse_rules` reads them from the gateway's setting.
    """

    urgent_cases_medium: _Threshold = 1
    urgent_cases_high: _Threshold = 3
    sla_breaches_high: _Threshold = 1
    service_credits_medium: _Threshold = 1
    failed_payments_medium: _Threshold = 1
    days_past_due_high: _Threshold = 30
    usage_decline_percent_medium: _Threshold = 20
    """Usage of the last period this many percent below the first of the window."""
    usage_decline_percent_high: _Threshold = 50


def parse_rules(text: str) -> RiskRules:
    """Thresholds from a JSON object naming the ones that differ from the defaults
    (`{"sla_breaches_high": 2}`).

    Raises:
        ValueError: not such an object, an unknown rule, or a negative threshold.
    """
    try:
        return msgspec.json.decode(text or "{}", type=RiskRules)
    except msgspec.DecodeError as exc:
        raise ValueError(f"renewal risk rules: {exc}") from None


class FiredRule(msgspec.Struct, frozen=True, kw_only=True):
    """A rule that fired: its name, the level it raised the risk to, and why."""

    rule: str
    level: RenewalRisk
    reason: str


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    risk: RenewalRisk
    signals: Signals
    rules: list[FiredRule]
    """Every rule that fired, highest level first: why the risk is what it is."""


def usage_trend(periods: Sequence[UsagePeriod] | None) -> tuple[UsageTrend, list[int]]:
    """The trend of usage over its last periods: the last against the first, 10% either way
    being flat; unknown with fewer than two periods or no source."""
    if periods is None or len(periods) < 2:
        return "unknown", [p.quantity for p in periods or ()]
    quantities = [p.quantity for p in periods]
    first, last = quantities[0], quantities[-1]
    if last * 10 > first * 11:
        return "growing", quantities
    if last * 10 < first * 9:
        return "declining", quantities
    return "flat", quantities


def assess(signals: Signals, rules: RiskRules) -> Assessment:
    """The risk of a renewal and the rules that made it so."""
    fired = [
        *_at_least(
            "urgent_cases",
            signals.urgent_cases,
            rules.urgent_cases_high,
            "high",
            f"{signals.urgent_cases} urgent cases in {signals.window_days} days",
        ),
        *_at_least(
            "sla_breaches",
            signals.sla_breaches,
            rules.sla_breaches_high,
            "high",
            f"{signals.sla_breaches} SLA breaches in {signals.window_days} days",
        ),
        *_at_least(
            "days_past_due",
            signals.days_past_due,
            rules.days_past_due_high,
            "high",
            f"an invoice {signals.days_past_due} days past due",
        ),
        *_usage_rules(signals, rules),
        *_at_least(
            "failed_payments",
            signals.failed_payments,
            rules.failed_payments_medium,
            "medium",
            f"{signals.failed_payments} failed payments",
        ),
        *_at_least(
            "service_credits",
            signals.service_credits,
            rules.service_credits_medium,
            "medium",
            f"{signals.service_credits} service credits "
            f"({_money(signals.service_credit_amount, signals.currency)})",
        ),
    ]
    if not any(rule.rule == "urgent_cases" for rule in fired):
        fired += _at_least(
            "urgent_cases",
            signals.urgent_cases,
            rules.urgent_cases_medium,
            "medium",
            f"{signals.urgent_cases} urgent cases in {signals.window_days} days",
        )
    fired.sort(key=lambda rule: -_LEVELS[rule.level])
    risk: RenewalRisk = fired[0].level if fired else "low"
    return Assessment(risk=risk, signals=signals, rules=fired)


def summary(assessment: Assessment) -> str:
    """The short readable context written to the renewal opportunity."""
    s = assessment.signals
    usage = (
        "usage unknown (no usage source)"
        if s.usage_trend == "unknown"
        else f"usage {s.usage_trend} ({' -> '.join(str(q) for q in s.usage_periods)})"
    )
    payments = f"{s.failed_payments} failed payments, " + (
        f"{s.days_past_due} days past due" if s.days_past_due else "nothing overdue"
    )
    lines = [
        f"Renewal risk: {assessment.risk}.",
        f"Last {s.window_days} days: {usage}; {s.urgent_cases} urgent cases, "
        f"{s.sla_breaches} SLA breaches; {s.service_credits} service credits "
        f"({_money(s.service_credit_amount, s.currency)}); {payments}.",
    ]
    if assessment.rules:
        lines.append("Why: " + "; ".join(rule.reason for rule in assessment.rules) + ".")
    return "\n".join(lines)


def _at_least(
    name: str, value: int, threshold: int, level: RenewalRisk, reason: str
) -> list[FiredRule]:
    if threshold <= 0 or value < threshold:
        return []
    return [FiredRule(rule=name, level=level, reason=reason)]


def _usage_rules(signals: Signals, rules: RiskRules) -> list[FiredRule]:
    if signals.usage_trend != "declining" or not signals.usage_periods:
        return []
    first, last = signals.usage_periods[0], signals.usage_periods[-1]
    if first <= 0:
        return []
    # Whole percent, rounded down: a rule fires only at the decline it names or more.
    decline = (first - last) * 100 // first
    reason = f"usage down {decline}% over {len(signals.usage_periods)} periods"
    levels: tuple[tuple[int, RenewalRisk], ...] = (
        (rules.usage_decline_percent_high, "high"),
        (rules.usage_decline_percent_medium, "medium"),
    )
    for threshold, level in levels:
        if 0 < threshold <= decline:
            return [FiredRule(rule="usage_decline", level=level, reason=reason)]
    return []


def _money(amount: int, currency: str) -> str:
    return f"{format_decimal(Money(amount=amount, currency=currency))} {currency}"
