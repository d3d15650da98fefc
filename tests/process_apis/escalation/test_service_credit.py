"""The service-credit arithmetic: breaches, monthly recurring amount, percent, cap, rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from contracts.v1 import Price, PriceTier
from process_apis.escalation.service_credit import (
    CaseTiming,
    RecurringLine,
    billing_month,
    compute_credit,
    find_breaches,
    line_amount,
    month_bounds,
    monthly_recurring_amount,
    round_half_up,
)

NOV = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def case(
    case_id: str,
    created: datetime,
    *,
    answered_after: int | None,
    priority: str = "urgent",
    status: str = "open",
) -> CaseTiming:
    return CaseTiming(
        case_id=case_id,
        priority=priority,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        created_at=created,
        first_response_at=(
            None if answered_after is None else created + timedelta(minutes=answered_after)
        ),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(5, 2), 3),
        (Fraction(7, 2), 4),
        (Fraction(-5, 2), -3),
        (Fraction(249, 100), 2),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(10), 10),
    ],
)
def test_rounds_half_up_away_from_zero(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


def test_monthly_recurring_amount_brings_every_interval_to_one_month() -> None:
    lines = [
        RecurringLine(amount=50_000, interval="month"),
        RecurringLine(amount=1_200_000, interval="year"),
        RecurringLine(amount=30_000, interval="month", interval_count=3),
    ]
    # 50,000 + 100,000 + 10,000
    assert monthly_recurring_amount(lines) == 160_000


def test_yearly_price_not_divisible_by_twelve_rounds_once_half_up() -> None:
    # 1,000 / 12 = 83.33 and 1,006 / 12 = 83.83: summed exactly (167.17), then rounded.
    lines = [
        RecurringLine(amount=1_000, interval="year"),
        RecurringLine(amount=1_006, interval="year"),
    ]
    assert monthly_recurring_amount(lines) == 167
    assert monthly_recurring_amount([RecurringLine(amount=6, interval="year")]) == 1  # 0.5 up


def test_weekly_and_daily_lines() -> None:
    assert monthly_recurring_amount([RecurringLine(amount=1_200, interval="week")]) == 5_200
    assert monthly_recurring_amount([RecurringLine(amount=120, interval="day")]) == 3_650


def test_line_amount_per_unit_and_tiered() -> None:
    flat = Price(id="p1", product_id="x", currency="USD", unit_amount=2_500)
    graduated = Price(
        id="p2",
        product_id="x",
        currency="USD",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[
            PriceTier(up_to=10, unit_amount=1_000),
            PriceTier(up_to=None, unit_amount=500, flat_amount=100),
        ],
    )
    volume = Price(
        id="p3",
        product_id="x",
        currency="USD",
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=[PriceTier(up_to=10, unit_amount=1_000), PriceTier(up_to=None, unit_amount=800)],
    )
    assert line_amount(flat, 20) == 50_000
    assert line_amount(graduated, 4) == 4_000
    assert line_amount(graduated, 15) == 10_000 + 2_500 + 100
    assert line_amount(volume, 15) == 12_000


def test_breaches_are_late_answers_and_overdue_open_cases_of_the_month() -> None:
    cases = [
        case("late", NOV + timedelta(days=2), answered_after=135),
        case("in-time", NOV + timedelta(days=3), answered_after=59),
        case("on-the-dot", NOV + timedelta(days=3, hours=1), answered_after=60),
        case("unanswered-overdue", AS_OF - timedelta(hours=2), answered_after=None),
        case("unanswered-not-yet", AS_OF - timedelta(minutes=30), answered_after=None),
        case("solved-unanswered", NOV + timedelta(days=4), answered_after=None, status="solved"),
        case("not-urgent", NOV + timedelta(days=5), answered_after=500, priority="high"),
        case("october", NOV - timedelta(hours=1), answered_after=500),
    ]

    found = find_breaches(cases, sla_minutes=60, month="2026-11", as_of=AS_OF)

    assert [b.case_id for b in found] == ["late", "unanswered-overdue"]
    assert found[0].late_by_minutes == 75
    assert found[0].target_at == NOV + timedelta(days=2, minutes=60)
    assert found[1].first_response_at is None
    assert found[1].late_by_minutes == 60


def test_credit_per_breach_below_the_cap() -> None:
    breaches = find_breaches(
        [case(f"c{i}", NOV + timedelta(days=i), answered_after=120) for i in range(1, 4)],
        sla_minutes=60,
        month="2026-11",
        as_of=AS_OF,
    )

    credit = compute_credit(
        monthly_recurring_amount=100_000,
        currency="USD",
        breaches=breaches,
        percent_per_breach=5,
        cap_percent=20,
    )

    assert len(credit.breaches) == 3
    assert credit.percent_applied == 15
    assert not credit.cap_applied
    assert credit.amount == 15_000


def test_credit_is_capped_per_month() -> None:
    breaches = find_breaches(
        [case(f"c{i}", NOV + timedelta(days=i), answered_after=61) for i in range(1, 6)],
        sla_minutes=60,
        month="2026-11",
        as_of=AS_OF,
    )

    credit = compute_credit(
        monthly_recurring_amount=100_000,
        currency="USD",
        breaches=breaches,
        percent_per_breach=5,
        cap_percent=20,
    )

    assert len(credit.breaches) == 5
    assert credit.percent_applied == 20
    assert credit.cap_applied
    assert credit.amount == 20_000


def test_credit_rounds_half_up_in_minor_units() -> None:
    one = find_breaches(
        [case("c1", NOV + timedelta(days=1), answered_after=241)],
        sla_minutes=240,
        month="2026-11",
        as_of=AS_OF,
    )
    # 2 % of 12,345 = 246.9 -> 247; 2 % of 12,325 = 246.5 -> 247 (half up); of 12,324 -> 246.
    for mrr, expected in ((12_345, 247), (12_325, 247), (12_324, 246)):
        credit = compute_credit(
            monthly_recurring_amount=mrr,
            currency="USD",
            breaches=one,
            percent_per_breach=2,
            cap_percent=10,
        )
        assert credit.amount == expected


def test_no_breach_no_credit() -> None:
    credit = compute_credit(
        monthly_recurring_amount=100_000,
        currency="EUR",
        breaches=[],
        percent_per_breach=5,
        cap_percent=20,
    )
    assert credit.amount == 0
    assert credit.percent_applied == 0
    assert not credit.cap_applied


def test_months_in_utc() -> None:
    assert billing_month(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-11"
    assert billing_month(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "2026-12"
    start, end = month_bounds("2026-12")
    assert (start, end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
