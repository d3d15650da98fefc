"""Money: exact conversions between integer minor units and decimals, per ISO 4217."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.money import (
    CURRENCY_EXPONENTS,
    Money,
    exponent,
    format_decimal,
    from_decimal,
    is_known_currency,
    to_decimal,
)

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
amounts = st.integers(min_value=-(10**30), max_value=10**30)


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("JPY", 0), ("KRW", 0), ("CLP", 0), ("ISK", 0), ("VND", 0), ("XOF", 0),
        ("USD", 2), ("EUR", 2), ("GBP", 2), ("CHF", 2), ("INR", 2),
        ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("IQD", 3), ("LYD", 3),
        ("CLF", 4), ("UYW", 4),
    ],
)
def test_exponent_matches_iso_4217(currency, places):
    assert exponent(currency) == places


def test_table_covers_the_active_codes_and_nothing_without_a_minor_unit():
    assert len(CURRENCY_EXPONENTS) >= 150
    assert all(len(code) == 3 and code.isupper() for code in CURRENCY_EXPONENTS)
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3, 4}
    for metal_or_test_code in ("XAU", "XAG", "XDR", "XTS", "XXX"):
        assert not is_known_currency(metal_or_test_code)


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(amount=1250, currency="USD"), "12.50"),
        (Money(amount=5, currency="USD"), "0.05"),
        (Money(amount=-1250, currency="EUR"), "-12.50"),
        (Money(amount=1250, currency="JPY"), "1250"),
        (Money(amount=1250, currency="KWD"), "1.250"),
        (Money(amount=0, currency="KWD"), "0.000"),
        (Money(amount=1, currency="CLF"), "0.0001"),
    ],
)
def test_format_decimal_gives_exactly_the_currency_places(money, text):
    assert format_decimal(money) == text
    assert to_decimal(money) == Decimal(text)
    assert from_decimal(text, money.currency) == money


@given(currency=currencies, amount=amounts)
def test_minor_units_round_trip_through_decimal(currency, amount):
    money = Money(amount=amount, currency=currency)
    assert from_decimal(to_decimal(money), currency) == money
    assert from_decimal(format_decimal(money), currency) == money


@given(data=st.data(), currency=currencies)
def test_decimals_within_the_exponent_round_trip_exactly(data, currency):
    places = exponent(currency)
    value = data.draw(
        st.decimals(
            min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=places,
            allow_nan=False, allow_infinity=False,
        )
    )
    money = from_decimal(value, currency)
    assert to_decimal(money) == value
    assert money.amount == int(value.scaleb(places))


@given(currency=currencies, amount=amounts, digit=st.integers(min_value=1, max_value=9))
def test_one_digit_too_many_is_refused_not_rounded(currency, amount, digit):
    exact = format_decimal(Money(amount=amount, currency=currency))
    too_precise = f"{exact}{digit}" if exponent(currency) else f"{exact}.{digit}"
    with pytest.raises(ValueError, match="refusing to round"):
        from_decimal(too_precise, currency)
    with pytest.raises(ValueError, match="refusing to round"):
        from_decimal(Decimal(too_precise), currency)


@pytest.mark.parametrize(
    ("value", "currency"),
    [("1.005", "USD"), ("0.5", "JPY"), ("1.2345", "KWD"), ("100.1", "KRW"), ("1.00001", "CLF")],
)
def test_excess_precision_is_refused(value, currency):
    with pytest.raises(ValueError):
        from_decimal(value, currency)


def test_trailing_zeros_lose_nothing_and_are_accepted():
    assert from_decimal("12.500", "USD") == Money(amount=1250, currency="USD")
    assert from_decimal(Decimal("1000.00"), "JPY") == Money(amount=1000, currency="JPY")


def test_huge_amounts_stay_exact():
    text = "123456789012345678901234567890.12"
    money = from_decimal(text, "USD")
    assert money.amount == 12345678901234567890123456789012
    assert format_decimal(money) == text


@pytest.mark.parametrize("currency", ["XYZ", "usd", "US", "", "USDX", "XAU"])
def test_unknown_currencies_are_refused(currency):
    with pytest.raises(ValueError, match="currency"):
        from_decimal("1.00", currency)
    with pytest.raises(ValueError, match="currency"):
        Money(amount=100, currency=currency)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(
            msgspec.json.encode({"amount": 100, "currency": currency}), type=Money
        )


@pytest.mark.parametrize("value", ["abc", "1.2.3", "NaN", "Infinity", "-inf", ""])
def test_non_numbers_are_refused(value):
    with pytest.raises(ValueError):
        from_decimal(value, "USD")


def test_floats_are_never_money():
    with pytest.raises(TypeError):
        from_decimal(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(amount=1.5, currency="USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(amount=True, currency="USD")


@pytest.mark.parametrize(
    "body", [b'{"amount":1.5,"currency":"USD"}', b'{"amount":2.0,"currency":"USD"}']
)
def test_decoding_a_float_amount_fails_validation(body):
    with pytest.raises(msgspec.ValidationError, match="Expected `int`"):
        msgspec.json.decode(body, type=Money)


def test_money_encodes_as_integer_minor_units():
    assert msgspec.json.encode(Money(amount=1250, currency="USD")) == (
        b'{"amount":1250,"currency":"USD"}'
    )
    assert msgspec.json.decode(b'{"amount":1250,"currency":"KWD"}', type=Money) == Money(
        amount=1250, currency="KWD"
    )
