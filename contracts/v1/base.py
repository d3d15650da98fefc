"""The entity base and the annotated field types every v1 contract shares.

Annotated types carry their JSON Schema constraints (pattern, format, description), so the
published schemas say what the decoder enforces.
"""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from msgspec.structs import force_setattr

from contracts.money import CurrencyCode, require_currency

__all__ = [
    "SYSTEMS",
    "CountryCode",
    "CurrencyCode",
    "Entity",
    "InputStruct",
    "LegalEntityCode",
    "MinorUnits",
    "Refs",
    "System",
    "TaxRateBps",
    "UtcDateTime",
    "ValueObject",
    "normalize_timestamps",
]

System = Literal["salesforce", "stripe", "zendesk", "netsuite"]
"""The platforms the gateway keeps in step: CRM, billing, support, ERP."""

SYSTEMS: tuple[System, ...] = ("salesforce", "stripe", "zendesk", "netsuite")

Refs = Annotated[
    dict[str, str],
    msgspec.Meta(
        description=(
            "This record's id in each platform that holds it, keyed by system name "
            "(salesforce, stripe, zendesk, netsuite)."
        ),
        examples=[{"salesforce": "001000000000001AAA", "netsuite": "42"}],
    ),
]

CountryCode = Annotated[
    str,
    msgspec.Meta(
        pattern="^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country code, upper case.",
        examples=["US"],
    ),
]

LegalEntityCode = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=32,
        description="The ERP subsidiary that books this record (e.g. US01, DE01).",
        examples=["US01"],
    ),
]

MinorUnits = Annotated[
    int,
    msgspec.Meta(description="Amount in integer minor units of the record's currency."),
]

TaxRateBps = Annotated[
    int,
    msgspec.Meta(ge=0, le=100_000, description="Tax rate in basis points (1900 = 19 %)."),
]

UtcDateTime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="RFC 3339 timestamp; decoded with any offset, held and sent in UTC.",
    ),
]


class ValueObject(msgspec.Struct, frozen=True, kw_only=True):
    """A value without identity of its own (an address, a price tier, a journal line)."""


class Entity(msgspec.Struct, frozen=True, kw_only=True):
    """A record with a canonical `id` and its ids in each platform (`refs`).

    Subclasses declare `id: str` first and `refs` last. When a subclass has a `currency`
    field, it must be a known ISO 4217 code: every amount on the record is in its minor units.
    """

    def __post_init__(self) -> None:
        currency = getattr(self, "currency", None)
        if currency is not None:
            require_currency(currency)
        normalize_timestamps(self)


class InputStruct(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request body: unknown fields are refused, so a typo is an error, not a no-op."""

    def __post_init__(self) -> None:
        currency = getattr(self, "currency", None)
        if isinstance(currency, str):
            require_currency(currency)


def normalize_timestamps(struct: msgspec.Struct) -> None:
    """Hold every timestamp field of `struct` in UTC; refuse a naive one.

    Called while the (frozen) Struct is being built. Decoding already refuses naive
    timestamps; this catches ones built in code and converts other offsets, so comparing and
    encoding timestamps never depends on which platform a record came from.
    """
    for name in _timestamp_fields(type(struct)):
        value = getattr(struct, name)
        if value is None:
            continue
        offset = value.utcoffset()
        if offset is None:
            raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
        if offset != timedelta(0) or value.tzinfo is not UTC:
            force_setattr(struct, name, value.astimezone(UTC))


@cache
def _timestamp_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(
        field.name for field in msgspec.structs.fields(cls) if _holds_datetime(field.type)
    )


def _holds_datetime(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _holds_datetime(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_holds_datetime(arg) for arg in get_args(annotation))
    return annotation is datetime
