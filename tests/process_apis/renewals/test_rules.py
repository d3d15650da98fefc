"""The renewal risk rules and signal counts: pure, so each rule is checked at its threshold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.v1 import CreditNote, Invoice, Subscription, SupportCase
from process_apis.cross_references import CrossReferences
from process_apis.renewals.desk import RenewalDesk, boundary_of
from process_apis.renewals.risk import (
    RiskRules,
    Signals,
    UsagePeriod,
    assess,
    parse_rules,
    summary,
)
from process_apis.renewals.signals import count_billing, count_support
from tests.fakes import FakeBilling, FakeCrm, FakeSupport

AS_OF = date(2027, 6, 30)
NOW = datetime(2027, 6, 30, 12, tzinfo=UTC)


class FakeUsage:
    """A usage source that knows some subscriptions' periods (the narrow usage port)."""

    def __init__(self, periods: dict[str, list[int]]) -> None:
        self.periods = periods
        self.asked: list[tuple[str, int]] = []

    async def last_periods(
        self, subscription_id: str, periods: int = 3
    ) -> list[UsagePeriod] | None:
        self.asked.append((subscription_id, periods))
        known = self.periods.get(subscription_id)
        if known is None:
            return None
        start = datetime(2027, 1, 1, tzinfo=UTC)
        return [
            UsagePeriod(period_start=start + timedelta(days=30 * i), quantity=q)
            for i, q in enumerate(known[-periods:])
        ]


def _desk(usage: FakeUsage | None = None, rules: RiskRules | None = None) -> RenewalDesk:

    return RenewalDesk(
        crm=FakeCrm(),
        contracts=FakeCrm(),
        billing=FakeBilling(),
        support=FakeSupport(),
        references=CrossReferences(create_async_engine("sqlite+aiosqlite://")),
        usage=usage,
        rules=rules,
    )


def _signals(**values: int) -> Signals:
    return Signals(usage_trend="unknown", currency="USD", **values)  # type: ignore[arg-type]


def test_no_signal_is_low_risk_with_no_reason() -> None:
    assessment = assess(_signals(), RiskRules())
    assert assessment.risk == "low" and assessment.rules == []
    assert "Renewal risk: low." in summary(assessment)
    assert "usage unknown (no usage source)" in summary(assessment)


def test_each_rule_fires_at_its_threshold_and_not_below() -> None:
    rules = RiskRules()
    cases = [
        ({"urgent_cases": 1}, "medium", "urgent_cases"),
        ({"urgent_cases": 3}, "high", "urgent_cases"),
        ({"sla_breaches": 1}, "high", "sla_breaches"),
        ({"service_credits": 1, "service_credit_amount": 12_345}, "medium", "service_credits"),
        ({"failed_payments": 1}, "medium", "failed_payments"),
        ({"days_past_due": 30}, "high", "days_past_due"),
        ({"days_past_due": 29}, "low", None),
    ]
    for values, risk, rule in cases:
        assessment = assess(_signals(**values), rules)
        assert assessment.risk == risk, values
        assert [r.rule for r in assessment.rules] == ([rule] if rule else []), values
    credit = assess(_signals(service_credits=1, service_credit_amount=12_345), rules)
    assert credit.rules[0].reason == "1 service credits (123.45 USD)"


def test_thresholds_are_configurable_and_zero_turns_a_rule_off() -> None:
    strict = RiskRules(urgent_cases_high=1)
    assert assess(_signals(urgent_cases=1), strict).risk == "high"
    off = RiskRules(sla_breaches_high=0, failed_payments_medium=0)
    assert assess(_signals(sla_breaches=5, failed_payments=2), off).risk == "low"


def test_rules_read_from_the_setting_change_only_what_they_name() -> None:
    rules = parse_rules('{"urgent_cases_high": 1, "failed_payments_medium": 0}')
    assert rules == RiskRules(urgent_cases_high=1, failed_payments_medium=0)
    assert parse_rules("{}") == RiskRules() == parse_rules("")
    assert assess(_signals(urgent_cases=1, failed_payments=3), rules).risk == "high"
    for bad in ('{"typo": 1}', '{"urgent_cases_high": -1}', "[]", "{"):
        with pytest.raises(ValueError, match="renewal risk rules"):
            parse_rules(bad)


def test_highest_level_wins_and_every_fired_rule_is_listed() -> None:
    assessment = assess(
        _signals(sla_breaches=1, failed_payments=2, service_credits=1, urgent_cases=1),
        RiskRules(),
    )
    assert assessment.risk == "high"
    assert assessment.rules[0].level == "high"
    assert {r.rule for r in assessment.rules} == {
        "sla_breaches",
        "failed_payments",
        "service_credits",
        "urgent_cases",
    }
    text = summary(assessment)
    assert text.startswith("Renewal risk: high.") and "Why: 1 SLA breaches in 90 days" in text


async def test_usage_trend_from_the_usage_port() -> None:
    usage = FakeUsage(
        {
            "sub_down": [1_000, 800, 400],
            "sub_up": [100, 150, 200],
            "sub_flat": [100, 95, 104],
            "sub_short": [100],
        }
    )
    desk = _desk(usage)
    judged = {}
    for sub in ("sub_down", "sub_up", "sub_flat", "sub_short", "sub_unknown"):
        periods = await desk.usage_periods(sub)
        judged[sub] = desk.judge(
            currency="USD",
            billing=count_billing([], [], as_of=AS_OF, window_days=90),
            support=count_support([], sla_minutes=60, as_of=AS_OF, window_days=90),
            usage=periods,
        )
    assert usage.asked[0] == ("sub_down", 3)
    down = judged["sub_down"]
    assert (down.signals.usage_trend, down.signals.usage_periods) == ("declining", [1000, 800, 400])
    assert down.risk == "high" and down.rules[0].reason == "usage down 60% over 3 periods"
    assert judged["sub_up"].signals.usage_trend == "growing" and judged["sub_up"].risk == "low"
    assert judged["sub_flat"].signals.usage_trend == "flat"
    assert judged["sub_short"].signals.usage_trend == "unknown"
    assert judged["sub_unknown"].signals.usage_trend == "unknown"
    mild = desk.judge(
        currency="USD",
        billing=count_billing([], [], as_of=AS_OF, window_days=90),
        support=count_support([], sla_minutes=None, as_of=AS_OF, window_days=90),
        usage=[UsagePeriod(period_start=NOW, quantity=q) for q in (100, 90, 75)],
    )
    assert mild.risk == "medium" and mild.rules[0].rule == "usage_decline"
    assert await _desk(None).usage_periods("sub_down") is None


def _case(
    case_id: str,
    *,
    priority: str,
    created: datetime,
    answered: datetime | None,
    status: str = "open",
) -> SupportCase:
    return SupportCase(
        id=case_id,
        subject="x",
        priority=priority,
        status=status,  # type: ignore[arg-type]
        created_at=created,
        first_response_at=answered,
    )


def test_support_counts_urgent_cases_and_breaches_in_the_window() -> None:
    day = datetime(2027, 6, 1, 9, tzinfo=UTC)
    cases = [
        _case("late", priority="urgent", created=day, answered=day + timedelta(minutes=90)),
        _case("in_time", priority="urgent", created=day, answered=day + timedelta(minutes=30)),
        _case("unanswered", priority="urgent", created=day, answered=None),
        _case("solved_silently", priority="urgent", created=day, answered=None, status="solved"),
        _case("normal", priority="normal", created=day, answered=None),
        _case("old", priority="urgent", created=day - timedelta(days=120), answered=None),
    ]
    counted = count_support(cases, sla_minutes=60, as_of=AS_OF, window_days=90)
    assert (counted.urgent_cases, counted.sla_breaches) == (4, 2)
    no_plan = count_support(cases, sla_minutes=None, as_of=AS_OF, window_days=90)
    assert (no_plan.urgent_cases, no_plan.sla_breaches) == (4, 0)


def _invoice(invoice_id: str, status: str, *, due: date | None, issued: datetime) -> Invoice:
    return Invoice(
        id=invoice_id,
        customer_id="cus_1",
        status=status,  # type: ignore[arg-type]
        currency="USD",
        subtotal=10_000,
        total=10_000,
        amount_due=10_000,
        amount_remaining=0 if status == "paid" else 10_000,
        due_date=due,
        issued_at=issued,
        legal_entity="US01",
    )


def test_billing_counts_credits_failed_payments_and_lateness() -> None:
    recent = datetime(2027, 5, 1, tzinfo=UTC)
    invoices = [
        _invoice("paid", "paid", due=date(2027, 5, 31), issued=recent),
        _invoice("late", "open", due=date(2027, 6, 10), issued=recent),
        _invoice("not_yet_due", "open", due=date(2027, 7, 10), issued=recent),
        _invoice("written_off", "uncollectible", due=date(2027, 5, 31), issued=recent),
        _invoice(
            "long_ago",
            "uncollectible",
            due=date(2026, 1, 31),
            issued=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ]
    credits = [
        CreditNote(
            id="cn_1",
            invoice_id="paid",
            customer_id="cus_1",
            currency="USD",
            amount=2_500,
            reason="service_credit",
            created_at=recent,
        ),
        CreditNote(
            id="cn_2",
            invoice_id="paid",
            customer_id="cus_1",
            currency="USD",
            amount=9_999,
            reason="duplicate",
            created_at=recent,
        ),
        CreditNote(
            id="cn_3",
            invoice_id="paid",
            customer_id="cus_1",
            currency="USD",
            amount=1_000,
            reason="service_credit",
            status="void",
            created_at=recent,
        ),
    ]
    counted = count_billing(invoices, credits, as_of=AS_OF, window_days=90)
    assert (counted.service_credits, counted.service_credit_amount) == (1, 2_500)
    assert (counted.failed_payments, counted.days_past_due) == (2, 20)


def test_boundary_is_the_period_end_at_the_contracts_end() -> None:
    annual = Subscription(
        id="sub",
        customer_id="cus",
        status="active",
        currency="USD",
        current_period_end=datetime(2027, 11, 2, 12, tzinfo=UTC),
    )
    assert boundary_of(annual, date(2027, 11, 1)) == datetime(2027, 11, 2, 12, tzinfo=UTC)
    monthly = Subscription(
        id="sub",
        customer_id="cus",
        status="active",
        currency="USD",
        current_period_end=datetime(2027, 8, 2, 12, tzinfo=UTC),
    )
    assert boundary_of(monthly, date(2027, 11, 1)) == datetime(2027, 11, 2, tzinfo=UTC)
