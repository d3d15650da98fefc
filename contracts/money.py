"""Money as integer minor units plus an ISO 4217 currency, with exact decimal conversions.

The one convention every contract follows:

- An entity that carries amounts has ONE `currency: str` field (ISO 4217, upper case) and its
  amount fields are plain `int` in minor units of that currency: `Invoice.total`,
  `Price.unit_amount`, `JournalLine.debit`, ... (for USD, 1250 means 12.50; for JPY, 1250 means
  1250 yen; for KWD, 1250 means 1.250 dinar).
- A free-standing amount that belongs to no such entity (an input carrying a sum, an event
  payload) is a `Money(amount=..., currency=...)`.
- Money is never a float: floats cannot hold 0.10 exactly and JSON parsers disagree on them.
  Vendor decimals are parsed with `decimal.Decimal` and converted with `from_decimal`, which
  refuses any value the currency cannot hold rather than round it. Tax rates are integer basis
  points (`tax_rate_bps`: 1 bps = 0.01 %, so 19 % VAT is 1900).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated

import msgspec

__all__ = [
    "CURRENCY_EXPONENTS",
    "CurrencyCode",
    "Money",
    "exponent",
    "format_decimal",
    "from_decimal",
    "is_known_currency",
    "require_currency",
    "to_decimal",
]

CurrencyCode = Annotated[
    str,
    msgspec.Meta(
        pattern="^[A-Z]{3}$",
        description="ISO 4217 alphabetic currency code, upper case (USD, EUR, JPY).",
        examples=["USD"],
    ),
]

# ISO 4217 list one (SIX Group, maintenance agency), minor-unit column. Codes whose minor unit
# is "N.A." (precious metals XAU/XAG/XPT/XPD, SDR XDR, XSU, XUA, bond units, XTS, XXX) are left
# out on purpose: they have no minor unit, so an integer amount in them would mean nothing.
# Codes recently withdrawn or being phased out (HRK, SLL, ZWL, CUC, ANG) stay because ledgers
# keep history in them; their exponent never changed.
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP "
    "GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT "
    "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO "
    "NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS "
    "SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD "
    "XCG YER ZAR ZMW ZWG ZWL"
)
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"

CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType(
    {
        code: digits
        for codes, digits in ((_ZERO, 0), (_TWO, 2), (_THREE, 3), (_FOUR, 4))
        for code in codes.split()
    }
)
"""ISO 4217 code -> number of decimal places of its minor unit (read-only)."""


class Money(msgspec.Struct, frozen=True, kw_only=True):
    """An amount in integer minor units of an ISO 4217 currency (12.50 USD = 1250 USD)."""

    amount: int
    currency: CurrencyCode

    def __post_init__(self) -> None:
        # msgspec checks types when decoding JSON but not on direct construction, so a float
        # passed from Python code would slip in without this check. bool is an int subclass.
        if type(self.amount) is not int:
            raise TypeError(f"Money.amount must be an int of minor units, got {self.amount!r}")
        require_currency(self.currency)


def is_known_currency(currency: str) -> bool:
    """True for an upper-case ISO 4217 code that has a minor unit."""
    return currency in CURRENCY_EXPONENTS


def require_currency(currency: str) -> str:
    """Return `currency` unchanged, or raise ValueError when it is not a known ISO 4217 code."""
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        raise ValueError(f"unknown ISO 4217 currency code {currency!r}")
    return currency


def exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3, CLF 4)."""
    return CURRENCY_EXPONENTS[require_currency(currency)]


def to_decimal(money: Money) -> Decimal:
    """The exact decimal value of `money` (Money(1250, "USD") -> Decimal("12.50"))."""
    places = exponent(money.currency)
    digits = tuple(int(d) for d in str(abs(money.amount)))
    # Built from the digit tuple rather than by division so no decimal context can round it.
    return Decimal((1 if money.amount < 0 else 0, digits, -places))


def from_decimal(value: Decimal | str, currency: str) -> Money:
    """Convert a decimal amount in major units to Money, exactly.

    Raises ValueError for an unknown currency, a value that is not a finite decimal, or a value
    with non-zero digits past the currency's minor unit ("1.005" USD, "1.5" JPY): rounding
    money silently is never right here. Trailing zeros are fine ("12.500" USD is 1250) since
    nothing is lost. Floats are refused with TypeError.
    """
    places = exponent(currency)
    number = _parse_decimal(value)
    sign, digits, exp = number.as_tuple()
    assert isinstance(exp, int)  # finite, checked by _parse_decimal
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exp + places
    if shift >= 0:
        minor = coefficient * 10**shift
    else:
        minor, remainder = divmod(coefficient, 10**-shift)
        if remainder:
            raise ValueError(
                f"{value!s} has more decimal places than {currency} allows ({places}); "
                "refusing to round"
            )
    return Money(amount=-minor if sign else minor, currency=currency)


def format_decimal(money: Money) -> str:
    """The plain decimal string of `money` with exactly the currency's places ("12.50")."""
    return format(to_decimal(money), "f")


def _parse_decimal(value: Decimal | str) -> Decimal:
    if isinstance(value, float) or not isinstance(value, Decimal | str):
        raise TypeError(f"expected Decimal or str, got {type(value).__name__}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return number
