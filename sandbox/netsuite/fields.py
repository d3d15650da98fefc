"""Field-level checks the emulator applies to request bodies, each raising NetSuite's error."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.netsuite.errors import WireError

__all__ = [
    "as_date",
    "as_decimal",
    "as_text",
    "invalid",
    "missing",
    "ref_id",
]


def missing(path: str, label: str) -> WireError:
    return WireError(400, "USER_ERROR", f"Please enter value(s) for: {label}", path=path)


def invalid(path: str, value: Any, field: str | None = None) -> WireError:
    name = field or path.rsplit(".", 1)[-1]
    return WireError(
        400,
        "INVALID_CONTENT",
        "Error while accessing resource: You have entered an Invalid Field Value "
        f"{value} for the following field: {name}",
        path=path,
    )


def ref_id(value: Any, path: str) -> str:
    """The id of a reference written as `{"id": ...}` (a bare id is accepted too)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise invalid(path, value)
    return str(value)


def as_decimal(value: Any, path: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise invalid(path, value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise invalid(path, value) from exc
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise invalid(path, value)
    return number


def as_date(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise invalid(path, value)
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError as exc:
        raise invalid(path, value) from exc


def as_text(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(path, value)
    return value
