"""The one reader of a vendor's `Retry-After` header (RFC 9110 §10.2.3)."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime

import httpx

__all__ = ["MAX_RETRY_AFTER", "retry_after_of", "retry_after_seconds"]

MAX_RETRY_AFTER = 86_400.0
"""The longest wait we take from a vendor (a day): a larger value is a vendor bug, and a flow
that trusted it would sleep for years."""

# RFC 9110 allows whole seconds only; Salesforce and Stripe have been seen sending "1.5".
# ASCII digits only: `str.isdigit` and `float` accept other scripts' digits.
_SECONDS = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """The wait a `Retry-After` value asks for, in seconds within [0, MAX_RETRY_AFTER].

    Delta-seconds or an HTTP-date (a date in the past is 0); None when absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return _clamp(float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _clamp((when - (now or datetime.now(UTC))).total_seconds())


def retry_after_of(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """`retry_after_seconds` of a response's `Retry-After` header."""
    return retry_after_seconds(response.headers.get("Retry-After"), now=now)


def _clamp(seconds: float) -> float | None:
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
